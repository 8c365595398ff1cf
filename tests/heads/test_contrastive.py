from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head
from zsar.heads.contrastive import contrastive_loss, multi_positive_nce


def _unit(rng, *shape):
    return F.normalize(torch.from_numpy(rng.standard_normal(shape).astype(np.float32)), dim=-1)


def test_one_positive_is_cross_entropy():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.standard_normal((6, 5)).astype(np.float32))
    labels = torch.tensor([0, 1, 4, 4, 2, 3])
    positive = F.one_hot(labels, 5).bool()
    torch.testing.assert_close(multi_positive_nce(logits, positive), F.cross_entropy(logits, labels))


def _naive_loss(q, labels, views, scale, symmetric):
    """Sample by sample and anchor by anchor, as the module docstring words it."""
    v, c, _ = views.shape
    terms = []
    for i in range(len(q)):
        sims = [[scale * float(q[i] @ views[a, k]) for k in range(c)] for a in range(v)]
        every = np.log(sum(np.exp(s) for row in sims for s in row))
        positives = np.log(sum(np.exp(sims[a][int(labels[i])]) for a in range(v)))
        terms.append(every - positives)
    loss = np.mean(terms)
    if not symmetric:
        return loss
    back = []
    for k in sorted(set(labels.tolist())):
        for a in range(v):
            sims = [scale * float(q[i] @ views[a, k]) for i in range(len(q))]
            every = np.log(sum(np.exp(s) for s in sims))
            positives = np.log(sum(np.exp(s) for s, y in zip(sims, labels.tolist()) if y == k))
            back.append(every - positives)
    return (loss + np.mean(back)) / 2


@pytest.mark.parametrize("symmetric", [False, True])
def test_loss_equals_the_naive_sum(symmetric):
    rng = np.random.default_rng(1)
    q, views = _unit(rng, 7, 6), _unit(rng, 3, 4, 6)
    labels = torch.tensor([0, 1, 1, 3, 0, 3, 3])
    got = contrastive_loss(q, labels, views, torch.tensor(5.0), True, symmetric)
    assert float(got) == pytest.approx(_naive_loss(q, labels, views, 5.0, symmetric), rel=1e-5)


def test_without_views_as_positives_it_is_cross_entropy_on_the_mean_logits():
    rng = np.random.default_rng(2)
    q, views = _unit(rng, 5, 6), _unit(rng, 1, 4, 6)
    labels = torch.tensor([0, 2, 1, 3, 3])
    got = contrastive_loss(q, labels, views, torch.tensor(10.0), False, False)
    torch.testing.assert_close(got, F.cross_entropy(10.0 * q @ views[0].T, labels))


def _problem(views=1, seed=0, classes=6):
    rng = np.random.default_rng(seed)
    dim, text_dim = 16, 12
    mapping = rng.standard_normal((text_dim, dim))
    text = rng.standard_normal((views, classes, text_dim)).astype(np.float32)
    text /= np.linalg.norm(text, axis=2, keepdims=True)
    labels = np.repeat(np.arange(classes), 30)
    x = (text.mean(0)[labels] @ mapping + 0.3 * rng.standard_normal((len(labels), dim))).astype(np.float32)
    mean = text.mean(0) / np.linalg.norm(text.mean(0), axis=1, keepdims=True)
    protos = ClassPrototypes(np.arange(classes), [f"c{i}" for i in range(classes)], mean.astype(np.float32),
                             "ensemble" if views > 1 else "prompts", [[f"c{i}"] for i in range(classes)], "test",
                             views=text if views > 1 else None, view_names=[f"v{i}" for i in range(views)]
                             if views > 1 else None)
    return x, labels, protos


def test_refit_with_the_chosen_epochs_equals_that_snapshot():
    x, labels, protos = _problem(views=3)
    head = build_head("contrastive", {"epochs": 6, "batch_size": 32})
    snapshots = []
    head.fit(x, labels, protos, seed=3, monitor=lambda h: snapshots.append(h.snapshot()))
    assert len(snapshots) == 6
    again = build_head("contrastive", {"epochs": 4, "batch_size": 32})
    again.fit(x, labels, protos, seed=3)
    np.testing.assert_array_equal(again.score(x, protos), snapshots[3].score(x, protos))
    np.testing.assert_array_equal(head.score(x, protos), snapshots[5].score(x, protos))


def test_learns_zero_shot_transfer_and_its_temperature():
    x, labels, protos = _problem(views=1, seed=4, classes=16)
    seen = labels < 12
    head = build_head("contrastive", {"epochs": 200, "batch_size": 32})
    info = head.fit(x[seen], labels[seen], protos.subset(range(12)), seed=0)
    assert info["learned_temperature"] != pytest.approx(0.07)
    unseen = [12, 13, 14, 15]
    scores = head.score(x[~seen], protos.subset(unseen))
    assert np.mean(np.array(unseen)[scores.argmax(1)] == labels[~seen]) > 0.6  # chance 0.25 (0.83 when written)


def test_bad_input():
    x, labels, protos = _problem()
    head = build_head("contrastive", {"epochs": 1})
    with pytest.raises(ZsarError, match="no text prototype"):
        head.fit(x, labels, protos.subset([0, 1]), seed=0)
    head.fit(x, labels, protos, seed=0)
    other = ClassPrototypes(protos.class_ids, protos.class_names, np.ones((6, 5), np.float32) / 5 ** 0.5, "prompts",
                            protos.texts, "test")
    with pytest.raises(ZsarError, match="5-d"):
        head.score(x, other)
    with pytest.raises(ZsarError, match="positive"):
        build_head("contrastive", {"init_temperature": 0.0})

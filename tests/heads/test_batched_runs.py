"""Batched training (zsar/heads/batched_runs.py): every member ends where its own `fit` ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head, load_head
from zsar.heads.batched_runs import Member, batch_key, train_batched
from zsar.heads.stacked_adamw import StackedAdamW

CLASSES, FEATURES, TEXT = 8, 32, 24
TIGHT = {"rtol": 1e-5, "atol": 1e-6}


def _prototypes(views: int = 1, text_dim: int = TEXT, seed: int = 0) -> ClassPrototypes:
    rng = np.random.default_rng(seed)
    unit = lambda a: (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    all_views = unit(rng.standard_normal((views, CLASSES, text_dim)))
    names = [f"class {c}" for c in range(CLASSES)]
    return ClassPrototypes(np.arange(CLASSES), names, unit(all_views.mean(0)), "test", [[n] for n in names], "none",
                           views=all_views if views > 1 else None,
                           view_names=[f"view {v}" for v in range(views)] if views > 1 else None)


def _samples(n: int, prototypes: ClassPrototypes, seed: int = 0, dim: int = FEATURES):
    rng = np.random.default_rng(seed + 1)
    labels = np.arange(n) % CLASSES
    mapping = rng.standard_normal((prototypes.dim, dim)).astype(np.float32)
    features = prototypes.vectors[labels] @ mapping + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return features.astype(np.float32), labels


def _members(settings: list[dict], seeds=(0, 1, 2), views: int = 1) -> list[Member]:
    """Every seed with every setting on one training set, and a member on a smaller set with fewer classes."""
    prototypes = _prototypes(views)
    features, labels = _samples(300, prototypes)
    members = [Member(params, features, labels, prototypes, seed, snapshots=True)
               for seed in seeds for params in settings]
    keep = (labels != 3) & (np.arange(len(labels)) % 3 != 0)
    fewer = prototypes.subset([c for c in range(CLASSES) if c != 3])
    return members + [Member({**settings[0], "epochs": 2}, features[keep], labels[keep], fewer, 7, snapshots=True)]


def _separate(name: str, member: Member):
    head, snapshots = build_head(name, member.params), []
    monitor = {"monitor": lambda h: snapshots.append(h.snapshot())} if head.epoch_selection else {}
    info = head.fit(member.features, member.labels, member.prototypes, seed=member.seed, **monitor)
    return head, info, snapshots


def _assert_same_state(a, b):
    assert sorted(a.state) == sorted(b.state)
    for key in a.state:
        np.testing.assert_allclose(a.state[key], b.state[key], **TIGHT, err_msg=key)


CASES = [
    ("linear_projection", [{"epochs": 3, "batch_size": 64, "temperature": 0.05},
                           {"epochs": 3, "batch_size": 64, "temperature": 0.1, "lr": 1e-2, "weight_decay": 0.1}], 1),
    ("contrastive", [{"epochs": 3, "batch_size": 64},
                     {"epochs": 3, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.0, "init_temperature": 0.1}], 3),
    ("contrastive", [{"epochs": 3, "batch_size": 64, "symmetric": False, "views_as_positives": False},
                     {"epochs": 2, "batch_size": 64, "symmetric": False, "views_as_positives": False, "lr": 3e-3}], 1),
    ("contrastive", [{"epochs": 2, "batch_size": 64, "hidden": 16, "dropout": 0.0},
                     {"epochs": 2, "batch_size": 48, "hidden": 16, "dropout": 0.0, "weight_decay": 0.1}], 1),
]


@pytest.mark.parametrize(("name", "settings", "views"), CASES)
def test_every_member_equals_its_separate_fit(name, settings, views):
    members = _members(settings, views=views)
    fits = train_batched(name, members)
    for member, fit in zip(members, fits):
        head, info, snapshots = _separate(name, member)
        _assert_same_state(fit.head, head)
        assert fit.info.keys() == info.keys()
        for key, value in info.items():
            assert fit.info[key] == (pytest.approx(value, rel=1e-5) if isinstance(value, float) else value), key
        expected = snapshots or [None] * member.params["epochs"]  # linear_projection reports no epochs: count only
        assert len(fit.snapshots) == len(expected)
        for got, snapshot in zip(fit.snapshots, snapshots):
            _assert_same_state(got, snapshot)


def test_a_member_is_an_ordinary_head(tmp_path):
    member = _members([{"epochs": 2, "batch_size": 64}], seeds=(5,))[0]
    fit = train_batched("contrastive", [member])[0]
    head = _separate("contrastive", member)[0]
    queries = _samples(40, member.prototypes, seed=9)[0]
    loaded = load_head(fit.head.save(tmp_path / "head"))
    np.testing.assert_allclose(loaded.score(queries, member.prototypes), head.score(queries, member.prototypes),
                               rtol=1e-4, atol=1e-5)
    assert type(loaded) is type(head) and loaded.config == head.config


def test_training_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_batched("linear_projection", _members([{"epochs": 1, "batch_size": 64}], seeds=(0,)))
    assert torch.equal(torch.rand(3), expected)


def test_stacked_adamw_equals_one_torch_adamw_per_member():
    """Per-member learning rates and weight decays, and members that sit steps out, against torch.optim.AdamW."""
    torch.manual_seed(0)
    lrs, decays, steps = [1e-3, 3e-3, 1e-2], [0.0, 1e-2, 0.1], 12
    start = [torch.randn(3, 5, 4), torch.randn(3, 5)]
    grads = [[torch.randn(3, 5, 4), torch.randn(3, 5)] for _ in range(steps)]
    active = [np.array([True, s % 3 != 0, s % 2 == 0]) for s in range(steps)]
    stacked, planned = [t.clone() for t in start], [t.clone() for t in start]
    optimiser, ahead = StackedAdamW(stacked, [decays, [0.0] * 3], lrs), StackedAdamW(planned, [decays, [0.0] * 3], lrs)
    ahead.plan(np.stack(active))  # the masks of all steps at once, as the training loop gives an epoch's
    for grad, now in zip(grads, active):
        for p, q, g in zip(stacked, planned, grad):
            p.grad, q.grad = g.clone(), g.clone()
        optimiser.step(now)
        ahead.step()
    for p, q in zip(stacked, planned):
        assert torch.equal(p, q)
    for m in range(3):
        alone = [start[0][m].clone().requires_grad_(), start[1][m].clone().requires_grad_()]
        reference = torch.optim.AdamW([{"params": [alone[0]], "weight_decay": decays[m]},
                                       {"params": [alone[1]], "weight_decay": 0.0}], lr=lrs[m])
        for grad, now in zip(grads, active):
            if now[m]:
                alone[0].grad, alone[1].grad = grad[0][m].clone(), grad[1][m].clone()
                reference.step()
        for p, q in zip(stacked, alone):
            torch.testing.assert_close(p[m], q.detach(), rtol=0, atol=0)


def test_batch_keys_group_what_one_model_can_hold():
    prototypes = _prototypes(views=3)
    features = np.zeros((4, FEATURES), np.float32)
    assert batch_key("contrastive", {"lr": 1e-2}, features, prototypes) == \
        batch_key("contrastive", {"init_temperature": 0.2}, features, prototypes)
    assert batch_key("contrastive", {"hidden": 8}, features, prototypes) != batch_key("contrastive", {}, features,
                                                                                      prototypes)
    assert batch_key("contrastive", {"hidden": 8}, features, prototypes) is None  # dropout 0.1 on the hidden layer
    assert batch_key("linear_projection", {"text_views": "augment"}, features, prototypes) is None
    assert batch_key("nearest_prototype", {}, features, prototypes) is None


def _bad(name: str, members: list[Member], match: str):
    with pytest.raises(ZsarError, match=match):
        train_batched(name, members)


def test_bad_input_is_a_clear_error():
    prototypes = _prototypes()
    features, labels = _samples(64, prototypes)
    good = Member({"epochs": 1}, features, labels, prototypes)
    _bad("magic", [good], "unknown head 'magic'")
    _bad("sadvae", [good], "cannot train batched; batched heads: \\['contrastive', 'linear_projection'\\]")
    _bad("linear_projection", [], "no members")
    wide = _samples(64, prototypes, dim=FEATURES + 1)[0]
    _bad("linear_projection", [good, Member({}, wide, labels, prototypes)], "member 1 has 33-d features, member 0 32-d")
    other_text = _prototypes(text_dim=TEXT + 2)
    _bad("linear_projection", [good, Member({}, features, labels, other_text)], "member 1 has 26-d texts")
    _bad("contrastive", [good, Member({"hidden": 8, "dropout": 0.0}, features, labels, prototypes)],
         "member 1 has hidden = 8, member 0 0")
    _bad("contrastive", [Member({"hidden": 8}, features, labels, prototypes)], "dropout")
    _bad("linear_projection", [Member({"text_views": "augment"}, features, labels, _prototypes(views=2))],
         "text_views = 'augment'")
    _bad("linear_projection", [Member({}, features, labels[:10], prototypes)], "member 0 needs features")
    _bad("linear_projection", [Member({}, features, labels, prototypes.subset([0, 1]))], "no text prototype")
    _bad("linear_projection", [Member({"epochs": "3"}, features, labels, prototypes)], "epochs")

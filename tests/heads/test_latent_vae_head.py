"""What CADA-VAE and FS-VAE share (zsar/heads/latent_vae_head.py): zero-shot transfer on a toy problem, the
protocol's epoch / cycle choice replayed exactly by a shorter fit, save / load, batched snapshot scoring, scoring
by the feature mu, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vae_toy import SEEN, TINY, UNSEEN, toy_problem

from zsar.errors import ZsarError
from zsar.heads import build_head, head_class, load_head

HEADS = ["cada_vae", "fs_vae"]


@pytest.fixture(scope="module")
def toy():
    return toy_problem()


@pytest.fixture(scope="module")
def fitted(toy):
    """Each head fitted once on the toy problem, with the snapshots its monitor saw."""
    out = {}
    for name in HEADS:
        head, snapshots = build_head(name, TINY[name]), []
        head.fit(toy.x, toy.y, toy.seen, seed=3, monitor=lambda h: snapshots.append(h.snapshot()))
        out[name] = head, snapshots
    return out


@pytest.mark.parametrize("name", HEADS)
def test_zero_shot_transfer_on_the_toy_problem(name, toy, fitted):
    head, _ = fitted[name]
    zsl = head.score(toy.x_test, toy.unseen)
    assert np.mean(np.asarray(UNSEEN)[zsl.argmax(1)] == toy.y_test) > 0.6  # chance: 0.25
    gzsl = head.score(np.concatenate([toy.x, toy.x_test]), toy.protos)  # all 12 classes
    assert np.mean(gzsl.argmax(1)[: len(toy.x)] == toy.y) > 0.6


@pytest.mark.parametrize("name", HEADS)
def test_a_shorter_fit_is_exactly_the_snapshot(name, toy, fitted):
    head, snapshots = fitted[name]
    cls = head_class(name)
    total = head.config.setting(cls.epoch_parameter)
    assert len(snapshots) == total
    np.testing.assert_array_equal(snapshots[-1].score(toy.x_test, toy.unseen), head.score(toy.x_test, toy.unseen))
    k = 2
    short = build_head(name, {**TINY[name], cls.epoch_parameter: head.snapshot_setting(k)})
    short.fit(toy.x, toy.y, toy.seen, seed=3)
    assert set(short.state) == set(snapshots[k - 1].state)
    for key, value in snapshots[k - 1].state.items():
        np.testing.assert_array_equal(short.state[key], value, err_msg=key)
    np.testing.assert_array_equal(short.score(toy.x_test, toy.protos), snapshots[k - 1].score(toy.x_test, toy.protos))
    assert not np.array_equal(snapshots[0].state["net.feature_encoder.mu.weight"],
                              snapshots[-1].state["net.feature_encoder.mu.weight"])


@pytest.mark.parametrize("name", HEADS)
def test_save_and_load_give_identical_scores(name, toy, fitted, tmp_path):
    head, _ = fitted[name]
    loaded = load_head(head.save(tmp_path / name))
    for protos in (toy.protos, toy.unseen, toy.protos.subset([9, 2, 11])):
        np.testing.assert_array_equal(loaded.score(toy.x_test, protos), head.score(toy.x_test, protos))


@pytest.mark.parametrize("name", HEADS)
def test_snapshots_are_scored_as_one_stack(name, toy, fitted):
    snapshots = fitted[name][1][::8]  # (one stack of every snapshot is slow to check one by one)
    for protos in (toy.unseen, toy.protos):
        batched = head_class(name).score_snapshots(snapshots, toy.x_test, protos)
        assert len(batched) == len(snapshots)
        for k in (0, len(snapshots) // 2, len(snapshots) - 1):
            np.testing.assert_allclose(batched[k], snapshots[k].score(toy.x_test, protos), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", HEADS)
def test_scores_are_the_classifier_on_the_feature_mu(name, toy, fitted):
    """No noise at test time: the logits of the cached classifier on the feature encoder's mu, every time."""
    head, _ = fitted[name]
    scores = head.score(toy.x_test, toy.unseen)
    np.testing.assert_array_equal(head.score(toy.x_test, toy.unseen), scores)
    net, classifiers = head._scorer(toy.unseen)
    x = torch.from_numpy(toy.x_test)
    if "feature_mean" in head.state:
        x = torch.from_numpy(head._standardise(toy.x_test))
    with torch.no_grad():
        mu = net.encode_features(x)[0]
        expected = mu @ classifiers.weight[0].T + classifiers.bias[0]
    np.testing.assert_allclose(scores, expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("name", HEADS)
def test_errors(name, toy, fitted):
    head, _ = fitted[name]
    with pytest.raises(ZsarError, match="not fitted"):
        build_head(name, TINY[name]).score(toy.x_test, toy.unseen)
    with pytest.raises(ZsarError, match="fitted on 64-d features"):
        head.score(toy.x_test[:, :5], toy.unseen)
    short_text = type(toy.protos)(toy.protos.class_ids, toy.protos.class_names, toy.protos.vectors[:, :8], "toy",
                                  toy.protos.texts, "toy-model")
    with pytest.raises(ZsarError, match="trained on 32-d text"):
        head.score(toy.x_test, short_text)
    bad = toy.x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ZsarError, match="NaN or inf"):
        build_head(name, TINY[name]).fit(bad, toy.y, toy.seen)
    with pytest.raises(ZsarError, match="no text prototype"):
        build_head(name, TINY[name]).fit(toy.x, toy.y, toy.protos.subset(SEEN[:4]))
    huge = {**TINY[name], "feature_scaling": "none", head_class(name).epoch_parameter: 1}
    with pytest.raises(ZsarError, match=r"training diverged \(loss is NaN\); lower lr"):
        build_head(name, huge).fit(np.full_like(toy.x, 3e38), toy.y, toy.seen)

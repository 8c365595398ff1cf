from __future__ import annotations

import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.evaluate.metrics import (
    confusion_matrix,
    gzsl_metrics,
    harmonic_mean,
    per_class_mean_accuracy,
    topk_accuracy,
    zsl_metrics,
)


def test_zsl_metrics_hand_computed():
    # classes 10, 20, 30; four samples
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    labels = np.array([10, 30, 30, 30])
    m = zsl_metrics(scores, labels, [10, 20, 30], k=2)
    assert m["top1"] == pytest.approx(50.0)  # samples 0 and 3 right
    assert m["top2"] == pytest.approx(75.0)  # top-2: sample 1 has 30 second, sample 2 does not
    assert m["top5"] == pytest.approx(100.0) and m["top5_k_effective"] == 3
    # per class: class 10 -> 100 %, class 30 -> 1/3
    assert m["per_class_mean"] == pytest.approx((100 + 100 / 3) / 2)
    assert m["chance_top1"] == pytest.approx(100 / 3)


def test_topk_caps_k_and_matches_naive():
    rng = np.random.default_rng(0)
    scores, targets = rng.normal(size=(50, 7)), rng.integers(0, 7, 50)
    for k in (1, 3, 7, 10):
        naive = np.mean([t in np.argsort(-s)[:k] for s, t in zip(scores, targets)]) * 100
        assert topk_accuracy(scores, targets, k) == pytest.approx(naive)


def test_gzsl_hand_computed():
    labels = np.array([0, 0, 1, 2, 2, 3])
    predicted = np.array([0, 2, 1, 2, 0, 0])
    m = gzsl_metrics(predicted, labels, seen=[0, 1], unseen=[2, 3])
    assert m["seen"] == pytest.approx((50 + 100) / 2)
    assert m["unseen"] == pytest.approx((50 + 0) / 2)
    assert m["h"] == pytest.approx(harmonic_mean(75, 25)) == pytest.approx(37.5)
    assert m["seen_samples"] == pytest.approx(200 / 3)
    with pytest.raises(ZsarError, match="both seen and unseen"):
        gzsl_metrics(predicted[:3], labels[:3], seen=[0, 1], unseen=[2, 3])


def test_confusion_and_per_class():
    labels, predicted = np.array([5, 5, 6, 7]), np.array([5, 6, 6, 5])
    np.testing.assert_array_equal(confusion_matrix(labels, predicted, [5, 6, 7]), [[1, 1, 0], [0, 1, 0], [1, 0, 0]])
    assert per_class_mean_accuracy(predicted, labels, [5, 6, 7]) == pytest.approx((50 + 100 + 0) / 3)
    with pytest.raises(ZsarError, match="not among"):
        zsl_metrics(np.zeros((1, 2)), np.array([9]), [5, 6])

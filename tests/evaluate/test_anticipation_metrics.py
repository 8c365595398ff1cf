"""Anticipation metrics against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.evaluate.anticipation_metrics import class_mean_recall, ranked, score_anticipation, topk_hits


def test_class_mean_recall_by_hand_and_unlike_micro_accuracy_when_imbalanced():
    truth = np.array([0, 0, 0, 0, 1])
    hits = np.array([True, True, True, True, False])
    assert class_mean_recall(hits, truth) == pytest.approx(50.0)  # (4/4 + 0/1) / 2
    assert 100 * hits.mean() == pytest.approx(80.0)
    assert class_mean_recall(np.array([], dtype=bool), np.array([], dtype=np.int64)) is None


def test_ties_break_by_class_order_so_the_top_k_has_k_classes():
    scores = np.zeros((1, 6))
    classes = np.array([5, 3, 1, 0, 2, 4])
    assert ranked(scores, classes)[0].tolist() == classes.tolist()
    assert topk_hits(scores, classes, np.array([0]), 3).tolist() == [False]
    assert topk_hits(scores, classes, np.array([1]), 3).tolist() == [True]


def test_scores_by_group_with_classes_absent_from_the_targets_skipped():
    classes = np.array([0, 1, 2, 3, 4, 5, 6])
    scores = np.tile(np.arange(7, 0, -1, dtype=float), (4, 1))  # always ranks 0, 1, 2, ...
    truth = np.array([0, 1, 6, 6])
    out = score_anticipation(scores, classes, truth, held_out=(6,), k=5)
    assert out["top1"] == 25.0 and out["top5"] == 50.0 and out["recall5"] == pytest.approx(200 / 3)
    assert out["top1_seen"] == 50.0 and out["recall5_seen"] == 100.0 and out["count_seen"] == 2
    assert out["top1_unseen"] == 0.0 and out["count_unseen"] == 2 and out["k_used"] == 5
    none_held = score_anticipation(scores, classes, truth)
    assert none_held["top1_unseen"] is None and none_held["recall5_unseen"] is None


def test_bad_shapes_and_unknown_targets_are_refused():
    with pytest.raises(ZsarError, match="shape"):
        score_anticipation(np.zeros((2, 3)), [0, 1, 2], [0])
    with pytest.raises(ZsarError, match="not among"):
        score_anticipation(np.zeros((1, 3)), [0, 1, 2], [7])

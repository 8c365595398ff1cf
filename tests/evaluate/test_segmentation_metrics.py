from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.evaluate.segmentation_metrics import (
    SegmentationScores,
    background_note,
    edit_score,
    f1_counts,
    levenshtein,
    per_class_f1,
    score_segmentation,
    score_streams,
    segments,
)

A, B, C, BG = 0, 1, 2, 9
TAUS = (0.10, 0.25, 0.50)

# the spec's toy video
TOY_GT = np.array([A, A, A, B, B, BG, BG, A, A])
TOY_PRED = np.array([A, A, B, B, B, BG, A, A, A])


def test_segments_drop_background_after_run_extraction():
    labels = [A, A, BG, BG, A, -1, -1, B]
    assert segments(labels) == [(A, 0, 2), (BG, 2, 4), (A, 4, 5), (B, 7, 8)]
    # the two A runs separated by background stay two segments
    assert segments(labels, background=(BG,)) == [(A, 0, 2), (A, 4, 5), (B, 7, 8)]
    assert segments([]) == []


def test_toy_without_background_exclusion():
    # MS-TCN convention on Breakfast / FACT eval_bg=true: nothing excluded.
    # GT segments   A[0,3) B[3,5) bg[5,7) A[7,9)  -> Y = A B bg A
    # pred segments A[0,2) B[2,5) bg[5,6) A[6,9)  -> P = A B bg A ; Lev = 0 -> Edit 100
    # IoUs: A[0,2)~A[0,3) 2/3 ; B[2,5)~B[3,5) 2/3 ; bg[5,6)~bg[5,7) 1/2 ; A[6,9)~A[7,9) 2/3
    # -> all four TP at tau .1, .25 and .5 (1/2 >= .5); at tau .6 the bg one is FP and its GT a miss
    assert edit_score(TOY_PRED, TOY_GT) == pytest.approx(100.0)
    for tau in TAUS:
        assert f1_counts(TOY_PRED, TOY_GT, tau) == (4, 0, 0)
    assert f1_counts(TOY_PRED, TOY_GT, 0.6) == (3, 1, 1)
    assert f1_counts(TOY_PRED, TOY_GT, 0.7) == (0, 4, 4)
    scores = score_streams([TOY_PRED], [TOY_GT])
    # frames wrong: 2 (B for A) and 6 (A for bg) -> 7/9 correct, acc == acc_all without background
    assert scores["acc"] == pytest.approx(700 / 9)
    assert scores["acc_all"] == pytest.approx(700 / 9)
    assert scores["edit"] == pytest.approx(100.0)
    assert [scores[k] for k in ("f1@10", "f1@25", "f1@50")] == pytest.approx([100.0] * 3)


def test_toy_with_background_excluded():
    # FACT GTEA convention: bg dropped from acc, edit and F1.
    # GT segments   A[0,3) B[3,5) A[7,9) -> Y = A B A ; pred A[0,2) B[2,5) A[6,9) -> P = A B A ; Edit 100
    # IoUs 2/3, 2/3, 2/3 -> 3 TP at every tau <= 2/3 ; at tau .6 still 3 TP (the bg pair is gone)
    assert edit_score(TOY_PRED, TOY_GT, background=(BG,)) == pytest.approx(100.0)
    for tau in (*TAUS, 0.6):
        assert f1_counts(TOY_PRED, TOY_GT, tau, background=(BG,)) == (3, 0, 0)
    assert f1_counts(TOY_PRED, TOY_GT, 0.7, background=(BG,)) == (0, 3, 3)
    scores = score_streams([TOY_PRED], [TOY_GT], background=(BG,))
    # foreground GT frames 0,1,2,3,4,7,8: frame 2 is wrong -> 6/7 ; acc_all still 7/9
    assert scores["acc"] == pytest.approx(600 / 7)
    assert scores["acc_all"] == pytest.approx(700 / 9)
    assert [scores[k] for k in ("edit", "f1@10", "f1@25", "f1@50")] == pytest.approx([100.0] * 4)


def test_edit_score_counts_edits_and_empty_sides():
    # P = A B A, Y = A: two deletions -> 100 * (1 - 2/3)
    assert edit_score([A, A, B, A, A], [A] * 5) == pytest.approx(100 / 3)
    # P = A B, Y = B A: Lev 2 (not a swap) -> 0
    assert edit_score([A, B], [B, A]) == pytest.approx(0.0)
    assert edit_score([BG, BG], [A, A], background=(BG,)) == 0.0
    assert edit_score([A, A], [BG, BG], background=(BG,)) == 0.0
    assert math.isnan(edit_score([BG, BG], [BG, BG], background=(BG,)))


def test_perfect_prediction_scores_100_everywhere():
    gt = np.array([A, A, BG, B, B, C, C, BG, A])
    scores = score_streams([gt.copy(), gt[:4].copy()], [gt, gt[:4]], background=(BG,), unseen=(C,))
    assert set(scores) == {
        "acc",
        "acc_all",
        "edit",
        "f1@10",
        "f1@25",
        "f1@50",
        "acc_seen",
        "acc_unseen",
        "f1@10_seen",
        "f1@25_seen",
        "f1@50_seen",
        "f1@10_unseen",
        "f1@25_unseen",
        "f1@50_unseen",
    }
    assert list(scores.values()) == pytest.approx([100.0] * len(scores))


def test_all_background_prediction():
    gt = np.array([A, A, BG, B, B, B])
    pred = np.full(6, BG)
    scores = score_streams([pred], [gt], background=(BG,))
    # no predicted segment: Edit 0 (one side empty), TP = FP = 0, FN = 2 -> F1 0 (no division error)
    assert f1_counts(pred, gt, 0.5, background=(BG,)) == (0, 0, 2)
    assert scores["edit"] == 0.0
    assert [scores[k] for k in ("f1@10", "f1@25", "f1@50")] == [0.0, 0.0, 0.0]
    assert scores["acc"] == 0.0  # 5 foreground frames, none right
    assert scores["acc_all"] == pytest.approx(100 / 6)  # only the bg frame is right


def test_all_background_ground_truth():
    gt = np.full(4, BG)
    scores = score_streams([np.array([BG, A, A, BG])], [gt], background=(BG,))
    # one FP segment, no GT segment: Edit 0, F1 0; no foreground frame -> acc NaN; 2/4 right overall
    assert scores["edit"] == 0.0 and scores["f1@50"] == 0.0
    assert math.isnan(scores["acc"])
    assert scores["acc_all"] == pytest.approx(50.0)
    # nothing on either side: Edit NaN (skipped, so the mean is NaN), F1 0, acc_all 100
    empty = score_streams([gt.copy()], [gt], background=(BG,))
    assert math.isnan(empty["edit"]) and math.isnan(empty["acc"])
    assert empty["f1@10"] == 0.0 and empty["acc_all"] == 100.0


def test_one_frame_segments():
    # GT A0 B1 A2 B3 (all one frame) ; pred A[0,1) B[1,4)
    # A[0,1)~A0 IoU 1 -> TP ; B[1,4)~B1 1/3, ~B3 1/3 -> tie, first (B1): TP at .1/.25, FP at .5
    gt, pred = [A, B, A, B], [A, B, B, B]
    assert segments(gt) == [(A, 0, 1), (B, 1, 2), (A, 2, 3), (B, 3, 4)]
    assert f1_counts(pred, gt, 0.25) == (2, 0, 2)
    assert f1_counts(pred, gt, 0.5) == (1, 1, 3)
    # P = A B, Y = A B A B -> two insertions -> 100 * (1 - 2/4)
    assert edit_score(pred, gt) == pytest.approx(50.0)


def test_duplicate_predictions_matching_one_gt_second_is_fp():
    # GT A[0,6) ; pred A[0,3) bg A[4,6): IoU 1/2 -> TP, then IoU 2/6 >= .25 but A[0,6) is used -> FP
    gt = [A] * 6
    pred = [A, A, A, BG, A, A]
    assert f1_counts(pred, gt, 0.25, background=(BG,)) == (1, 1, 0)
    # F1: P = 1/2, R = 1 -> 2/3
    assert score_streams([pred], [gt], background=(BG,))["f1@25"] == pytest.approx(200 / 3)


def test_greedy_rule_has_no_fallback_to_second_best_gt():
    # GT  A[0,6) bg A[7,9) ; pred A[0,2) bg A[3,8) bg
    # pred A[0,2): IoU 2/6 with A[0,6) -> TP (marks it)
    # pred A[3,8): IoU 3/8 = .375 with A[0,6) (best, used) and 1/6 with A[7,9): FP, although 1/6 >= .1
    gt = [A, A, A, A, A, A, BG, A, A]
    pred = [A, A, BG, A, A, A, A, A, BG]
    assert f1_counts(pred, gt, 0.1, background=(BG,)) == (1, 1, 1)


def test_different_labels_never_match():
    # overlap is perfect but the labels differ -> FP and FN
    assert f1_counts([B, B, B], [A, A, A], 0.1) == (0, 1, 1)


def test_seen_unseen_split():
    # C is unseen, BG background
    gt = np.array([A, A, C, C, C, BG, B, B])
    pred = np.array([A, A, C, C, A, BG, B, A])
    scores = score_streams([pred], [gt], background=(BG,), unseen=(C,))
    assert scores["acc_seen"] == pytest.approx(75.0)  # GT A/B frames 0,1,6,7: frame 7 wrong
    assert scores["acc_unseen"] == pytest.approx(200 / 3)  # GT C frames 2,3,4: frame 4 wrong
    assert scores["acc"] == pytest.approx(500 / 7)
    # seen group: GT A[0,2) B[6,8) ; pred A[0,2) A[4,5) B[6,7) A[7,8) (C run dropped)
    # -> TP (IoU 1), FP, TP (IoU 1/2), FP: P = 1/2, R = 1, F1 = 200/3 at every tau
    # unseen group: GT C[2,5) ; pred C[2,4), IoU 2/3 -> TP: 100
    for t in (10, 25, 50):
        assert scores[f"f1@{t}_seen"] == pytest.approx(200 / 3)
        assert scores[f"f1@{t}_unseen"] == pytest.approx(100.0)


def test_unseen_group_without_frames_is_nan():
    scores = score_streams([[A, B]], [[A, B]], unseen=(C,))
    assert math.isnan(scores["acc_unseen"])
    assert scores["acc_seen"] == 100.0 and scores["f1@50_unseen"] == 0.0
    assert "acc_seen" not in score_streams([[A, B]], [[A, B]])


def test_f1_is_micro_and_edit_macro_over_videos():
    # video 1: perfect, TP 1. video 2: GT B[0,4), pred A C A C -> 4 FP, 1 FN, Edit 100*(1-4/4) = 0
    preds = [np.array([A, A]), np.array([A, C, A, C])]
    gts = [np.array([A, A]), np.array([B, B, B, B])]
    scores = score_streams(preds, gts)
    # micro: TP 1, FP 4, FN 1 -> P 1/5, R 1/2, F1 = 2 * .1 / .7 ; macro would be (100 + 0) / 2 = 50
    assert scores["f1@50"] == pytest.approx(100 * 0.2 / 0.7)
    assert scores["edit"] == pytest.approx(50.0)
    # frames pooled: 2 of 6 right (the per-video mean would be 50)
    assert scores["acc"] == pytest.approx(100 / 3)


def test_unlabelled_frames_are_ignored():
    # frames 2,3 unlabelled: whatever is predicted there does not count, and both sides are cut there
    gt = [A, A, -1, -1, A, A]
    scores = score_streams([[A, A, B, B, A, A]], [gt])
    assert scores["acc"] == 100.0 and scores["acc_all"] == 100.0
    assert scores["edit"] == 100.0 and scores["f1@50"] == 100.0
    assert f1_counts([A] * 6, gt, 0.5) == (2, 0, 0)


@cache
def _naive_levenshtein(a: tuple, b: tuple) -> int:
    if not a or not b:
        return len(a) + len(b)
    return min(
        _naive_levenshtein(a[1:], b) + 1,
        _naive_levenshtein(a, b[1:]) + 1,
        _naive_levenshtein(a[1:], b[1:]) + (a[0] != b[0]),
    )


def test_levenshtein_matches_naive_recursion():
    rng = np.random.default_rng(0)
    for _ in range(400):
        a = tuple(int(x) for x in rng.integers(0, 3, size=rng.integers(0, 8)))
        b = tuple(int(x) for x in rng.integers(0, 3, size=rng.integers(0, 8)))
        assert levenshtein(a, b) == _naive_levenshtein(a, b), (a, b)
    assert levenshtein([0, 1, 2], []) == 3 and levenshtein([], [4]) == 1


def test_per_class_f1():
    # A: pred A[0,4) ~ GT A[0,2), IoU 1/2 -> 100 ; B: pred B[4,5) ~ GT B[2,5), IoU 1/3 -> 0
    # C only predicted: not a GT class, not reported ; BG excluded
    gts = [np.array([A, A, B, B, B, BG])]
    preds = [np.array([A, A, A, A, B, C])]
    assert per_class_f1(preds, gts, tau=0.5, background=(BG,)) == pytest.approx({A: 100.0, B: 0.0})
    assert per_class_f1(preds, gts, tau=0.3, background=(BG,)) == pytest.approx({A: 100.0, B: 100.0})


def test_background_note():
    assert background_note((0,), {0: "SIL", 1: "pour"}) == (
        "background classes {SIL} excluded from acc, edit and F1; acc_all counts every frame"
    )
    assert background_note([18, 17], ["x"] * 17 + ["action_start", "action_end"]).startswith(
        "background classes {action_start, action_end} excluded"
    )
    assert background_note((), ["a"]) == "no background class: every frame and segment is scored"


def test_score_segmentation_dataclass_matches_flat_dict():
    result = score_segmentation([TOY_PRED], [TOY_GT], background=(BG,))
    assert isinstance(result, SegmentationScores)
    assert result.acc == pytest.approx(600 / 7)
    assert result.as_dict() == score_streams([TOY_PRED], [TOY_GT], background=(BG,))
    with pytest.raises(AttributeError):
        result.acc = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("preds", "gts", "message"),
    [
        ([], [], "no videos"),
        ([[A]], [[A], [A]], "1 predicted videos but 2"),
        ([[A, A], [A, A]], [[A, A], [A]], "video 1: prediction has 2 frames but ground truth has 1"),
        ([[0.5]], [[A]], "video 0: prediction must be a 1-D array of integer"),
    ],
)
def test_bad_stream_inputs(preds, gts, message):
    with pytest.raises(ZsarError, match=message):
        score_streams(preds, gts)


def test_bad_single_video_inputs():
    with pytest.raises(ZsarError, match="prediction has 3 frames but ground truth has 2"):
        f1_counts([A, A, A], [A, A], 0.5)
    with pytest.raises(ZsarError, match="IoU threshold"):
        f1_counts([A], [A], 0.0)
    with pytest.raises(ZsarError, match="background must be class ids"):
        score_streams([[A]], [[A]], background=("SIL",))
    with pytest.raises(ZsarError, match="both background and unseen"):
        score_streams([[A]], [[A]], background=(C,), unseen=(C,))

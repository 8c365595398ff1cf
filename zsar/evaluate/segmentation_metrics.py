"""Temporal action segmentation metrics: frame accuracy, segmental Edit and F1@tau, in percent.

Inputs are per-video 1-D integer arrays of frame labels (class ids); -1 marks an unlabelled frame.
An unlabelled ground-truth frame is ignored everywhere: it never counts for accuracy, and the prediction
at that frame is blanked to -1 as well, so both sequences are cut at the same place and neither side
gets a segment there.

A segment is a maximal run of one label, written (label, start, end) with `end` exclusive. Background
classes are removed only after the runs are found, so an action interrupted by background gives two
segments, not one.

Background conventions differ between code bases, so the background set is always an explicit argument
(and `background_note` says in words which one was used):
- MS-TCN's evaluation drops segments of a class literally named "background"; in practice only GTEA
  loses one, while Breakfast's SIL and 50Salads' action_start/action_end are scored like actions. Its
  accuracy counts every frame: that is `acc_all` here.
- FACT takes a set of background ids (GTEA: {10}; Breakfast with eval_bg: none) and leaves those out of
  accuracy, Edit and F1: that is `acc` here. With an empty set `acc` and `acc_all` coincide.

Averaging: accuracy is over all frames of all videos together; Edit is the mean of per-video scores
(videos where both sides have no segment are skipped); F1 is micro-averaged, i.e. true/false
positives and misses are summed over videos before precision and recall are formed.

For zero-shot (held-out class) protocols, `unseen` splits accuracy by the ground-truth class of each
frame and F1 by class group (both predicted and true segments are first reduced to that group).
Edit has no per-group version.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from zsar.errors import ZsarError

UNLABELLED = -1
DEFAULT_TAUS = (0.10, 0.25, 0.50)
Segment = tuple[int, int, int]


def _ids(values: Iterable, what: str) -> frozenset[int]:
    """A set of class ids; anything but integers (e.g. a class name) is a user error."""
    out = set()
    for v in values:
        if not isinstance(v, Integral) or isinstance(v, bool):
            raise ZsarError(f"{what} must be class ids (integers), got {v!r}")
        out.add(int(v))
    return frozenset(out)


def _labels(x, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ZsarError(f"{what} must be a 1-D array of integer labels, got shape {arr.shape} dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _pair(pred, gt, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Checked (pred, gt) of one video, with the prediction blanked where the ground truth is unlabelled."""
    pred, gt = _labels(pred, f"{where}prediction"), _labels(gt, f"{where}ground truth")
    if len(pred) != len(gt):
        raise ZsarError(f"{where}prediction has {len(pred)} frames but ground truth has {len(gt)}")
    return np.where(gt == UNLABELLED, UNLABELLED, pred), gt


def _streams(preds: Sequence, gts: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(preds) != len(gts):
        raise ZsarError(f"{len(preds)} predicted videos but {len(gts)} ground-truth videos")
    if len(gts) == 0:
        raise ZsarError("no videos to evaluate")
    return [_pair(p, g, where=f"video {i}: ") for i, (p, g) in enumerate(zip(preds, gts))]


def segments(labels, background: Collection[int] = ()) -> list[Segment]:
    """(label, start, end) runs in temporal order, end exclusive; background and unlabelled runs dropped."""
    labels = _labels(labels, "labels")
    if labels.size == 0:
        return []
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [labels.size]))
    drop = _ids(background, "background") | {UNLABELLED}
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends) if int(labels[s]) not in drop]


def levenshtein(a: Sequence[int], b: Sequence[int]) -> int:
    """Unit-cost edit distance (insert, delete, substitute), one vectorised DP row per element of `a`."""
    b = np.asarray(b)
    offsets = np.arange(len(b) + 1)
    row = offsets.copy()
    for i, x in enumerate(a, start=1):
        cand = np.empty_like(row)
        cand[0] = i
        cand[1:] = np.minimum(row[1:] + 1, row[:-1] + (b != x))
        # insertions: new[j] = min(cand[j], new[j-1] + 1) = min over k <= j of cand[k] + (j - k)
        row = np.minimum.accumulate(cand - offsets) + offsets
    return int(row[-1])


def edit_score(pred, gt, background: Collection[int] = ()) -> float:
    """Segmental edit score of one video; NaN when neither side has a segment."""
    pred, gt = _pair(pred, gt)
    p = [s[0] for s in segments(pred, background)]
    y = [s[0] for s in segments(gt, background)]
    if not p and not y:
        return math.nan
    return 100.0 * (1.0 - levenshtein(p, y) / max(len(p), len(y)))


def _keep(segs: list[Segment], classes: frozenset[int] | None) -> list[Segment]:
    return segs if classes is None else [s for s in segs if s[0] in classes]


def f1_counts(
    pred, gt, tau: float, background: Collection[int] = (), classes: Collection[int] | None = None
) -> tuple[int, int, int]:
    """(TP, FP, FN) of one video at IoU threshold tau.

    Each predicted segment, in temporal order, is compared with the ground-truth segment of the same label
    that overlaps it best (first one on ties). It is a TP when that IoU reaches tau and that segment is
    still unmatched; otherwise an FP, even if another ground-truth segment would have matched.
    """
    if not 0.0 < tau <= 1.0:
        raise ZsarError(f"IoU threshold must be in (0, 1], got {tau}")
    pred, gt = _pair(pred, gt)
    keep = None if classes is None else _ids(classes, "classes")
    p = _keep(segments(pred, background), keep)
    y = _keep(segments(gt, background), keep)
    if not y:
        return 0, len(p), 0
    g_label, g_start, g_end = (np.array(col) for col in zip(*y))
    used = np.zeros(len(y), dtype=bool)
    for label, start, end in p:
        inter = np.minimum(end, g_end) - np.maximum(start, g_start)
        union = np.maximum(end, g_end) - np.minimum(start, g_start)
        iou = np.clip(inter, 0, None) / union * (g_label == label)
        best = int(np.argmax(iou))
        if iou[best] >= tau and not used[best]:
            used[best] = True
    tp = int(used.sum())
    return tp, len(p) - tp, len(y) - tp


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 in percent; precision or recall with an empty denominator counts as 0."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 100.0 * 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _micro_f1(pairs, tau: float, background: frozenset[int], classes: frozenset[int] | None) -> float:
    counts = np.array([f1_counts(p, g, tau, background, classes) for p, g in pairs]).reshape(-1, 3)
    return f1_from_counts(*(int(c) for c in counts.sum(axis=0)))


def _accuracy(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    return float(100.0 * np.mean(pred[mask] == gt[mask])) if mask.any() else math.nan


def _f1_key(tau: float) -> str:
    return f"f1@{round(100 * tau)}"


@dataclass(frozen=True)
class SegmentationScores:
    """Scores over a list of videos; `groups` holds the seen/unseen split when one was asked for."""

    acc: float
    acc_all: float
    edit: float
    f1: dict[str, float]
    groups: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {"acc": self.acc, "acc_all": self.acc_all, "edit": self.edit, **self.f1, **self.groups}


def _group_scores(pairs, pred, gt, background, unseen, taus) -> dict[str, float]:
    present = {int(c) for p, g in pairs for c in np.union1d(p, g)}
    groups = {"seen": frozenset(present - background - unseen - {UNLABELLED}), "unseen": unseen}
    out = {f"acc_{name}": _accuracy(pred, gt, np.isin(gt, sorted(ids))) for name, ids in groups.items()}
    for name, ids in groups.items():
        out.update({f"{_f1_key(t)}_{name}": _micro_f1(pairs, t, background, ids) for t in taus})
    return out


def score_segmentation(
    preds: Sequence,
    gts: Sequence,
    background: Collection[int] = (),
    unseen: Collection[int] = (),
    taus: Sequence[float] = DEFAULT_TAUS,
) -> SegmentationScores:
    """All segmentation scores for a list of videos (see the module docstring for the conventions)."""
    pairs = _streams(preds, gts)
    bg, held = _ids(background, "background"), _ids(unseen, "unseen")
    if bg & held:
        raise ZsarError(f"classes {sorted(bg & held)} are both background and unseen")
    pred, gt = np.concatenate([p for p, _ in pairs]), np.concatenate([g for _, g in pairs])
    labelled = gt != UNLABELLED
    edits = [e for e in (edit_score(p, g, bg) for p, g in pairs) if not math.isnan(e)]
    return SegmentationScores(
        acc=_accuracy(pred, gt, labelled & ~np.isin(gt, sorted(bg))),
        acc_all=_accuracy(pred, gt, labelled),
        edit=float(np.mean(edits)) if edits else math.nan,
        f1={_f1_key(t): _micro_f1(pairs, t, bg, None) for t in taus},
        groups=_group_scores(pairs, pred, gt, bg, held, taus) if held else {},
    )


def score_streams(
    preds: Sequence,
    gts: Sequence,
    background: Collection[int] = (),
    unseen: Collection[int] = (),
    taus: Sequence[float] = DEFAULT_TAUS,
) -> dict[str, float]:
    """Flat dict: acc, acc_all, edit, f1@10/25/50 and, with `unseen`, acc_seen/unseen and f1@k_seen/unseen."""
    return score_segmentation(preds, gts, background, unseen, taus).as_dict()


def per_class_f1(
    preds: Sequence, gts: Sequence, tau: float = 0.5, background: Collection[int] = ()
) -> dict[int, float]:
    """Micro F1@tau for each non-background ground-truth class, segments reduced to that class."""
    pairs = _streams(preds, gts)
    bg = _ids(background, "background")
    classes = sorted({int(c) for _, g in pairs for c in np.unique(g)} - bg - {UNLABELLED})
    return {c: _micro_f1(pairs, tau, bg, frozenset({c})) for c in classes}


def background_note(background: Collection[int], class_names: Mapping[int, str] | Sequence[str]) -> str:
    """One line saying which background convention the scores follow."""
    ids = sorted(_ids(background, "background"))
    if not ids:
        return "no background class: every frame and segment is scored"
    names = ", ".join(_class_name(class_names, i) for i in ids)
    return f"background classes {{{names}}} excluded from acc, edit and F1; acc_all counts every frame"


def _class_name(class_names: Mapping[int, str] | Sequence[str], class_id: int) -> str:
    try:
        return str(class_names[class_id])
    except (KeyError, IndexError):
        return str(class_id)

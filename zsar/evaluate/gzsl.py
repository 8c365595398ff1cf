"""GZSL by calibrated stacking and the seen-unseen accuracy curve (AUSUC).

Calibrated stacking (Chao et al., 2016) subtracts a constant `gamma` from every seen class's score
before the arg-max over all classes, trading seen accuracy for unseen accuracy. Sweeping gamma traces
the seen-unseen curve; the area under it (AUSUC) summarises a scorer's GZSL ability without a
threshold. A sample's prediction depends on gamma only through d = (best seen score) - (best unseen
score): it is predicted seen while gamma < d. So the whole curve comes from sorting d once; tests check
it against re-running the arg-max at every gamma.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zsar.errors import ZsarError
from zsar.evaluate.metrics import gzsl_metrics, harmonic_mean


def calibrated_predictions(scores: np.ndarray, class_ids: Sequence[int], seen: Sequence[int], gamma: float
                           ) -> np.ndarray:
    """Arg-max class ids after subtracting `gamma` from the seen classes' scores."""
    ids = np.asarray(class_ids)
    adjusted = scores - gamma * np.isin(ids, seen)[None, :]
    return ids[adjusted.argmax(axis=1)]


def seen_unseen_curve(scores: np.ndarray, labels: np.ndarray, class_ids: Sequence[int], seen: Sequence[int],
                      unseen: Sequence[int]) -> dict:
    """Per-class-mean S and U (in %) at every gamma where a prediction changes, from 'all seen' to 'all unseen'.

    Returns gammas (ascending), seen, unseen, h arrays of equal length."""
    ids = np.asarray(class_ids)
    is_seen_col = np.isin(ids, seen)
    if not is_seen_col.any() or is_seen_col.all():
        raise ZsarError("the seen-unseen curve needs scores for seen and unseen classes")
    s_scores, u_scores = scores[:, is_seen_col], scores[:, ~is_seen_col]
    s_best, u_best = ids[is_seen_col][s_scores.argmax(1)], ids[~is_seen_col][u_scores.argmax(1)]
    d = s_scores.max(1) - u_scores.max(1)  # predicted seen iff gamma < d
    seen_mask, unseen_mask = np.isin(labels, seen), np.isin(labels, unseen)
    if not seen_mask.any() or not unseen_mask.any():
        raise ZsarError("the seen-unseen curve needs test samples of seen and unseen classes")
    # candidate gammas: below every d (all seen), between consecutive distinct d, above every d (all unseen)
    cuts = np.unique(d)
    gammas = np.concatenate([[cuts[0] - 1.0], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1.0]])
    seen_acc = _per_class_rate(d, labels, s_best == labels, seen_mask, seen, gammas, above=True)
    unseen_acc = _per_class_rate(d, labels, u_best == labels, unseen_mask, unseen, gammas, above=False)
    h = np.array([harmonic_mean(s, u) for s, u in zip(seen_acc, unseen_acc)])
    return {"gammas": gammas, "seen": seen_acc, "unseen": unseen_acc, "h": h}


def _per_class_rate(d, labels, correct, mask, classes, gammas, above: bool) -> np.ndarray:
    """Mean over `classes` of the share of that class's samples that are correct and on the right side of
    gamma (d > gamma when `above`, else d <= gamma), for every gamma; one sort per class."""
    out = np.zeros(len(gammas))
    present = [c for c in classes if np.any(mask & (labels == c))]
    for c in present:
        rows = mask & (labels == c)
        hits = np.sort(d[rows & correct])
        below_or_equal = np.searchsorted(hits, gammas, side="right")  # hits with d <= gamma
        counted = len(hits) - below_or_equal if above else below_or_equal
        out += counted / rows.sum()
    return 100.0 * out / len(present)


def ausuc(curve: dict) -> float:
    """Area under the seen-unseen curve, in % of the unit square (100 = perfect)."""
    u, s = curve["unseen"] / 100.0, curve["seen"] / 100.0
    order = np.lexsort((-s, u))
    return float(100.0 * np.trapezoid(s[order], u[order]))


def best_gamma(curve: dict) -> float:
    """The gamma with the highest H (the smallest such gamma on ties)."""
    return float(curve["gammas"][int(np.argmax(curve["h"]))])


def calibrated_stacking_metrics(scores: np.ndarray, labels: np.ndarray, class_ids: Sequence[int],
                                seen: Sequence[int], unseen: Sequence[int], gamma: float) -> dict:
    """GZSL S / U / H with the given gamma (chosen elsewhere: on validation data, never on test)."""
    predicted = calibrated_predictions(scores, class_ids, seen, gamma)
    return {**gzsl_metrics(predicted, labels, seen, unseen), "gamma": float(gamma)}


def curve_points(curve: dict) -> dict:
    """The corner points of a seen-unseen curve ({"seen", "unseen"} in %, any order), unseen ascending: the area
    (AUSUC) is unchanged, since every point left out lies on the straight segment between its neighbours."""
    u, s = np.asarray(curve["unseen"], dtype=float), np.asarray(curve["seen"], dtype=float)
    points = np.stack([u, s], axis=1)[np.lexsort((-s, u))]  # the order AUSUC integrates in
    points = points[np.r_[True, np.any(np.diff(points, axis=0) != 0, axis=1)]]  # repeated points once
    keep = np.ones(len(points), dtype=bool)
    if len(points) > 2:
        before, after = points[1:-1] - points[:-2], points[2:] - points[1:-1]
        cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
        keep[1:-1] = ~np.isclose(cross, 0.0, atol=1e-6)
    return {"unseen": points[keep, 0].round(4).tolist(), "seen": points[keep, 1].round(4).tolist()}

"""Anticipation metrics: top-1 and top-k accuracy and class-mean top-k recall, on all, seen and held-out targets.

- top-k accuracy: the fraction of samples whose true next action is among the k highest-scoring classes.
- class-mean top-k recall (the EPIC-Kitchens / RULSTM definition): for every class that occurs as a target in
  the evaluated samples, the fraction of its samples with the true class in the top k; averaged over those
  classes, so rare next actions weigh as much as frequent ones. Classes absent from the targets are skipped.
Ranks break ties by the order of `classes` (a stable sort), so equal scores never put more than k classes in
the top k. Values are percentages; groups without samples are None.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zsar.errors import ZsarError


def ranked(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class ids [N, C] from the highest score down, ties in the order of `classes`."""
    return np.asarray(classes)[np.argsort(-np.asarray(scores), axis=1, kind="stable")]


def topk_hits(scores: np.ndarray, classes: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """[N] bool: the true class is among the k best."""
    return (ranked(scores, classes)[:, :k] == np.asarray(truth)[:, None]).any(axis=1)


def class_mean_recall(hits: np.ndarray, truth: np.ndarray) -> float | None:
    """The mean over target classes of the fraction of hits among that class's samples (percent)."""
    truth = np.asarray(truth)
    if len(truth) == 0:
        return None
    return float(100 * np.mean([hits[truth == c].mean() for c in np.unique(truth)]))


def _percent(values: np.ndarray) -> float | None:
    return float(100 * values.mean()) if len(values) else None


def score_anticipation(scores: np.ndarray, classes: Sequence[int], truth: Sequence[int],
                       held_out: Sequence[int] = (), k: int = 5) -> dict:
    """top1, top{k}, recall{k} (class-mean top-k recall) on all samples, and with _seen / _unseen on the samples
    whose target is not / is a held-out class; `count*` the samples in each group, `k_used` the k applied (at most
    the number of classes; the keys keep the k asked for)."""
    scores, classes, truth = np.asarray(scores, dtype=np.float64), np.asarray(classes), np.asarray(truth)
    if scores.shape != (len(truth), len(classes)):
        raise ZsarError(f"anticipation scores of shape {scores.shape} for {len(truth)} samples and {len(classes)} "
                        "classes")
    unknown = sorted(set(truth.tolist()) - set(classes.tolist()))
    if unknown:
        raise ZsarError(f"targets {unknown} are not among the scored classes")
    used = min(k, len(classes))
    top1, topk = topk_hits(scores, classes, truth, 1), topk_hits(scores, classes, truth, used)
    unseen = np.isin(truth, list(held_out))
    out: dict = {"k_used": used}
    for suffix, members in (("", np.ones(len(truth), dtype=bool)), ("_seen", ~unseen), ("_unseen", unseen)):
        out["top1" + suffix] = _percent(top1[members])
        out[f"top{k}" + suffix] = _percent(topk[members])
        out[f"recall{k}" + suffix] = class_mean_recall(topk[members], truth[members])
        out["count" + suffix] = int(members.sum())
    return out

"""Zero-shot metrics as pure functions on arrays. Accuracies are in percent.

Scores are [N, C] over a list of candidate classes `class_ids` (global indices); labels are
global class indices [N]. GZSL seen/unseen accuracies are per-class means (each class counts
equally), the standard GZSL definition; sample-averaged ones are reported beside them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zsar.errors import ZsarError
from zsar.scoring import label_positions


def topk_accuracy(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Percent of rows whose target position is among the k highest scores (k capped at C)."""
    if len(targets) == 0:
        raise ZsarError("no samples to evaluate")
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.arange(scores.shape[1])[None]
    return float(100.0 * np.mean((top == targets[:, None]).any(axis=1)))


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, classes: Sequence[int]) -> dict[int, float]:
    """Percent correct per class, for the classes that have samples."""
    out = {}
    for c in classes:
        mask = labels == c
        if mask.any():
            out[int(c)] = float(100.0 * np.mean(predicted[mask] == c))
    return out


def per_class_mean_accuracy(predicted: np.ndarray, labels: np.ndarray, classes: Sequence[int]) -> float:
    accs = per_class_accuracy(predicted, labels, classes)
    if not accs:
        raise ZsarError("none of the classes has samples")
    return float(np.mean(list(accs.values())))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """[C, C] counts; rows = true class, columns = predicted class, in `classes` order."""
    pos = {int(c): i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(labels.tolist(), predicted.tolist()):
        if t in pos and p in pos:
            matrix[pos[t], pos[p]] += 1
    return matrix


def zsl_metrics(scores: np.ndarray, labels: np.ndarray, class_ids: Sequence[int], k: int = 5) -> dict:
    """ZSL: samples of unseen classes ranked among the unseen classes only. Top-5 is always
    reported (capped at the class count, see `top5_k_effective`); `top{k}` is added for other k."""
    targets = label_positions(labels, class_ids)
    predicted = np.asarray(class_ids)[scores.argmax(axis=1)]
    out = {
        "top1": topk_accuracy(scores, targets, 1),
        "top5": topk_accuracy(scores, targets, 5),
        "per_class_mean": per_class_mean_accuracy(predicted, labels, class_ids),
        "top5_k_effective": min(5, len(class_ids)),
        "num_samples": int(len(labels)),
        "num_classes": int(len(class_ids)),
        "chance_top1": 100.0 / len(class_ids),
    }
    if k not in (1, 5):
        out[f"top{k}"] = topk_accuracy(scores, targets, k)
    return out


def harmonic_mean(seen: float, unseen: float) -> float:
    return 0.0 if seen + unseen == 0 else 2.0 * seen * unseen / (seen + unseen)


def gzsl_metrics(predicted: np.ndarray, labels: np.ndarray, seen: Sequence[int], unseen: Sequence[int]) -> dict:
    """GZSL: predictions over all classes; S and U per-class means over seen / unseen samples; H."""
    seen_mask, unseen_mask = np.isin(labels, seen), np.isin(labels, unseen)
    if not seen_mask.any() or not unseen_mask.any():
        raise ZsarError("GZSL needs test samples of both seen and unseen classes")
    s = per_class_mean_accuracy(predicted[seen_mask], labels[seen_mask], seen)
    u = per_class_mean_accuracy(predicted[unseen_mask], labels[unseen_mask], unseen)
    s_samples = float(100.0 * np.mean(predicted[seen_mask] == labels[seen_mask]))
    u_samples = float(100.0 * np.mean(predicted[unseen_mask] == labels[unseen_mask]))
    return {
        "seen": s, "unseen": u, "h": harmonic_mean(s, u),
        "seen_samples": s_samples, "unseen_samples": u_samples, "h_samples": harmonic_mean(s_samples, u_samples),
        "num_samples": int(len(labels)),
    }

"""Seeded, class-stratified hold-out of samples (for checkpoint selection and GZSL calibration)."""

from __future__ import annotations

import numpy as np


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions to fit on and to hold out; each class with >= 2 samples gives >= 1 to the hold-out."""
    rng = np.random.RandomState(seed)
    fit, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        k = 0 if fraction == 0 or len(idx) < 2 else max(1, int(round(fraction * len(idx))))
        held += idx[:k].tolist()
        fit += idx[k:].tolist()
    return np.sort(np.array(fit, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))

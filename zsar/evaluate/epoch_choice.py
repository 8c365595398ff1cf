"""How the protocol picks a training length from a validation curve (one validation score per monitored snapshot
of a head with `epoch_selection`).

A validation problem of a few classes and tens of samples gives a noisy curve: its highest point is often a
lucky epoch (issue 14 measured a validation-selected SA-DVAE 8.6 points below its last epoch on a real held-out
dataset). Rules:
- `smoothed` (default): the curve's moving average over a centred window of about a tenth of its length (at
  least 3 points, truncated at the ends), then its highest point: a plateau beats a spike;
- `best`: the highest raw point (what the papers' codes do on test; `--select-on-test` uses it);
- `last`: no choice, the last snapshot (the leaderboard's "last epoch" column).
Ties go to the earliest snapshot.
"""

from __future__ import annotations

import numpy as np

from zsar.errors import ZsarError

EPOCH_RULES = ("smoothed", "best", "last")
SMOOTHING_FRACTION = 0.1
MIN_WINDOW = 3


def smoothing_window(length: int) -> int:
    """Odd window of about `SMOOTHING_FRACTION` of the curve, at least `MIN_WINDOW`."""
    half = max(MIN_WINDOW, round(SMOOTHING_FRACTION * length)) // 2
    return 2 * half + 1


def moving_average(curve: np.ndarray) -> np.ndarray:
    """Centred mean over `smoothing_window(len(curve))`, the window truncated at the ends."""
    curve = np.asarray(curve, dtype=float)
    half = smoothing_window(len(curve)) // 2
    sums = np.concatenate([[0.0], np.cumsum(curve)])
    lo = np.maximum(np.arange(len(curve)) - half, 0)
    hi = np.minimum(np.arange(len(curve)) + half + 1, len(curve))
    return (sums[hi] - sums[lo]) / (hi - lo)


def selection_scores(curve, rule: str) -> np.ndarray:
    """The value each snapshot is ranked by under `rule` (-inf: never chosen)."""
    if rule not in EPOCH_RULES:
        raise ZsarError(f"epoch choice must be one of {EPOCH_RULES}, not {rule!r}")
    curve = np.asarray(curve, dtype=float)
    if rule == "best" or len(curve) == 0:
        return curve
    if rule == "last":
        return np.where(np.arange(len(curve)) == len(curve) - 1, curve, -np.inf)
    return moving_average(curve)

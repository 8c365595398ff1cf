"""The in-memory form every skeleton loader produces, and the checks it must pass.

Keypoints are float32 [M, T, V, C]: M bodies, T frames, V joints, C channels (x, y[, z] and, for 2-D
pose estimates, an optional confidence score as the last channel).
"""

from __future__ import annotations

import numpy as np

from zsar.datasets.layouts import SkeletonLayout
from zsar.errors import ZsarError


def check_keypoints(keypoints, layout: SkeletonLayout | None, where) -> np.ndarray:
    """Return keypoints as float32 [M, T, V, C]; raise a ZsarError naming `where` on bad data."""
    try:
        kp = np.asarray(keypoints, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ZsarError(f"keypoints are not a numeric array ({exc})", where) from exc
    if kp.ndim != 4:
        raise ZsarError(f"keypoints must be [bodies, frames, joints, channels], got shape {kp.shape}", where)
    m, t, v, c = kp.shape
    if m == 0 or t == 0:
        raise ZsarError(f"sequence is empty (shape {kp.shape}: {m} bodies, {t} frames)", where)
    if layout is not None and v != layout.num_joints:
        raise ZsarError(f"data has {v} joints but layout {layout.name!r} has {layout.num_joints}", where)
    if c < 2 or c > 4:
        raise ZsarError(f"expected 2 to 4 channels per joint, got {c}", where)
    bad = ~np.isfinite(kp)
    if bad.any():
        frames = np.unique(np.nonzero(bad)[1])
        raise ZsarError(f"NaN or infinite joint values in {len(frames)} frame(s), first frames {frames[:5].tolist()}",
                        where)
    return kp

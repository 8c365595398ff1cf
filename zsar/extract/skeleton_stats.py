"""A training-free skeleton encoder: joint-position statistics over time.

Body-centred (root joint subtracted per frame), scale-normalised (median root-to-neck length),
optionally turned to face +z, then per joint coordinate: the mean pose, its spread, the pose in
`segments` consecutive time segments relative to the mean (which way the motion goes), and the
path length (how much it moves); plus the root's displacement and path. Bodies are averaged.
It needs no training, so it works before any learned encoder exists and stays as a baseline row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from zsar.datasets.layouts import SkeletonLayout, get_layout
from zsar.errors import ZsarError

ENCODER_NAME = "skeleton-stats"


@dataclass(frozen=True)
class SkeletonStatsConfig:
    layout: str = "kinect_v1_20"  # joint layout of the input
    segments: int = 3  # temporal segments for the motion-direction features
    align_facing: bool = True  # rotate 3D bodies about the vertical (y) axis to face +z

    def to_dict(self) -> dict:
        return asdict(self)


class SkeletonStatsEncoder:
    """`encode(keypoints [M, T, V, C]) -> [D]` float32."""

    name = ENCODER_NAME

    def __init__(self, config: SkeletonStatsConfig | None = None):
        self.config = config or SkeletonStatsConfig()
        self.layout: SkeletonLayout = get_layout(self.config.layout)
        if self.config.segments < 1:
            raise ZsarError("segments must be at least 1")

    def dim(self, channels: int = 3) -> int:
        v = self.layout.num_joints
        return v * channels * (3 + self.config.segments) + 2 * channels

    def encode(self, keypoints: np.ndarray) -> np.ndarray:
        x = np.asarray(keypoints, dtype=np.float64)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4:
            raise ZsarError(f"keypoints must be [M, T, V, C], got shape {x.shape}")
        m, t, v, c = x.shape
        if v != self.layout.num_joints:
            raise ZsarError(f"data has {v} joints but layout {self.layout.name} has {self.layout.num_joints}")
        if c not in (2, 3):
            raise ZsarError(f"keypoints need 2 or 3 coordinates, got {c}")
        if t == 0:
            raise ZsarError("sequence has zero frames")
        if not np.isfinite(x).all():
            raise ZsarError("keypoints contain NaN or inf")
        features = []
        for body in x:
            present = np.abs(body).sum(axis=(1, 2)) > 0  # frames where this body exists
            if present.any():
                features.append(self._body_features(body[present]))
        if not features:
            raise ZsarError("no body has any non-zero joint")
        return np.mean(features, axis=0).astype(np.float32)

    def _body_features(self, body: np.ndarray) -> np.ndarray:
        lay, cfg = self.layout, self.config
        t, v, c = body.shape
        missing = np.all(body == 0, axis=2)  # [T, V] joints a sensor lost (exact zeros)
        body = body.copy()
        body[missing] = np.nan
        root = _fill_missing(body[:, lay.root])  # [T, C]
        centred = body - root[:, None, :]
        torso = np.linalg.norm(centred[:, lay.neck], axis=1)
        scale = np.nanmedian(torso) if np.isfinite(torso).any() else np.nan
        if not np.isfinite(scale) or scale < 1e-6:
            extent = np.nanmax(centred, axis=(0, 1)) - np.nanmin(centred, axis=(0, 1))
            scale = float(np.nanmax(extent)) if np.isfinite(extent).any() else 1.0
            scale = scale if scale > 1e-6 else 1.0
        centred /= scale
        if cfg.align_facing and c == 3:
            centred = _face_forward(centred, lay)
        mean = np.nanmean(centred, axis=0)  # [V, C]
        spread = np.nanstd(centred, axis=0)
        bounds = np.linspace(0, t, cfg.segments + 1).round().astype(int)
        segments = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            part = centred[a:max(b, a + 1)]
            seg = np.nanmean(part, axis=0) if np.isfinite(part).any() else mean
            segments.append(seg - mean)
        step = np.abs(np.diff(centred, axis=0))  # [T-1, V, C]
        path = np.nansum(step, axis=0) if t > 1 else np.zeros((v, c))
        root_disp = (root[-1] - root[0]) / scale
        root_path = np.abs(np.diff(root, axis=0)).sum(0) / scale if t > 1 else np.zeros(c)
        parts = [mean, spread, *segments, path]
        out = np.concatenate([p.reshape(-1) for p in parts] + [root_disp, root_path])
        return np.nan_to_num(out, nan=0.0)


def _fill_missing(track: np.ndarray) -> np.ndarray:
    """Fill lost frames of one joint's track [T, C] from the nearest valid frame."""
    ok = np.isfinite(track).all(axis=1)
    if ok.all():
        return track
    if not ok.any():
        return np.zeros_like(track)
    idx = np.flatnonzero(ok)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(len(track))), 0, len(idx) - 1)]
    return track[nearest]


def _face_forward(centred: np.ndarray, lay: SkeletonLayout) -> np.ndarray:
    """Rotate about y so the body's left->right axis (hips + shoulders) points along +x."""
    across = (centred[:, lay.right_hip] - centred[:, lay.left_hip]) + (
        centred[:, lay.right_shoulder] - centred[:, lay.left_shoulder]
    )
    direction = np.nanmean(across, axis=0)
    if not np.isfinite(direction).all():
        return centred
    angle = np.arctan2(direction[2], direction[0])  # angle of the across-vector in the x-z plane
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])  # turns `direction` onto +x
    return centred @ rot.T

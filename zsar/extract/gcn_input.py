"""Skeleton input for graph networks, following mmaction2's GCN pipelines exactly, for any layout.

mmaction2 prepares a sample as PreNormalize3D (or PreNormalize2D) -> GenSkeFeat -> UniformSampleFrames
-> PoseDecode -> FormatGCNInput. The same steps are here as two stages: `prepare` (deterministic, done once
per sample and kept in memory while training) and `sample_clips` (frame sampling and body padding,
redrawn every epoch). Unlike mmaction2's transforms these take the centre, axes and bone pairs from the
skeleton layout, so Kinect v1 (20 joints) and other layouts are normalised correctly. Tests check the
result equals mmaction2's own pipeline on NTU data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from zsar.datasets.layouts import SkeletonLayout
from zsar.errors import ZsarError

FEATURES = ("j", "b", "jm", "bm")  # joints, bones, joint motion, bone motion
TEST_SEED = 255  # mmaction2's fixed seed for test-time frame sampling
# centre joint, spine (bottom, top) and shoulders (right, left) used by the 3-D normalisation
_NORMALISE_3D = {"ntu_25": (1, (0, 1), (8, 4)), "kinect_v1_20": (1, (0, 1), (8, 4))}


@dataclass(frozen=True)
class GCNInputConfig:
    clip_len: int = 64
    num_person: int = 2
    feats: tuple[str, ...] = ("j",)
    normalise: bool = True
    num_clips: int = 1  # clips per sample at extraction; their outputs are averaged

    def __post_init__(self) -> None:
        unknown = [f for f in self.feats if f not in FEATURES]
        if unknown or not self.feats:
            raise ZsarError(f"skeleton features must be a non-empty subset of {FEATURES}, not {list(self.feats)}")
        if self.clip_len < 1 or self.num_person < 1 or self.num_clips < 1:
            raise ZsarError("clip_len, num_person and num_clips must be positive")

    def channels(self, data_channels: int) -> int:
        return data_channels * len(self.feats)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["feats"] = list(self.feats)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> GCNInputConfig:
        return cls(**{**data, "feats": tuple(data.get("feats", ("j",)))})


def _rotation(axis: np.ndarray, theta: float) -> np.ndarray:
    """mmaction2's rotation about `axis` by `theta` (identity for a null axis or angle)."""
    if np.abs(axis).sum() < 1e-6 or np.abs(theta) < 1e-6:
        return np.eye(3)
    axis = axis / np.sqrt(np.dot(axis, axis))
    a = np.cos(theta / 2.0)
    b, c, d = -axis * np.sin(theta / 2.0)
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    return np.array([[aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)],
                     [2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)],
                     [2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc]])


def _angle(v1: np.ndarray, v2: np.ndarray) -> float:
    if np.abs(v1).sum() < 1e-6 or np.abs(v2).sum() < 1e-6:
        return 0.0
    u1, u2 = v1 / np.linalg.norm(v1), v2 / np.linalg.norm(v2)
    return float(np.arccos(np.clip(np.dot(u1, u2), -1.0, 1.0)))


def normalise_3d(kp: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """Drop frames where the main body is absent, centre on its first frame, turn the spine to +z and
    the shoulders to +x (mmaction2's PreNormalize3D, with the layout's joints)."""
    if layout.name not in _NORMALISE_3D:
        raise ZsarError(f"no 3-D normalisation is defined for layout {layout.name!r}")
    centre, zaxis, xaxis = _NORMALISE_3D[layout.name]
    if kp.sum() == 0:
        return kp
    m = kp.shape[0]
    if m > 2:
        raise ZsarError(f"3-D normalisation takes at most 2 bodies, got {m}")
    present = [np.nonzero(~np.all(np.isclose(kp[b], 0), axis=(1, 2)))[0] for b in range(m)]
    if m == 2 and len(present[0]) < len(present[1]):
        kp = kp[:, present[1]][[1, 0]]
    else:
        kp = kp[:, present[0]]
    kp = kp.astype(np.float64)
    mask = (kp != 0).sum(-1, keepdims=True) > 0
    kp = (kp - kp[0, 0, centre].copy()) * mask
    bottom, top = kp[0, 0, zaxis[0]], kp[0, 0, zaxis[1]]
    kp = np.einsum("abcd,kd->abck", kp, _rotation(np.cross(top - bottom, [0, 0, 1]), _angle(top - bottom, [0, 0, 1])))
    right, left = kp[0, 0, xaxis[0]], kp[0, 0, xaxis[1]]
    kp = np.einsum("abcd,kd->abck", kp, _rotation(np.cross(right - left, [1, 0, 0]), _angle(right - left, [1, 0, 0])))
    return kp.astype(np.float32)


def normalise_2d(kp: np.ndarray, img_shape=(1080, 1920)) -> np.ndarray:
    """Image coordinates to [-1, 1] (mmaction2's PreNormalize2D); a score channel is kept as is."""
    h, w = img_shape
    out = kp.copy()
    out[..., 0] = (out[..., 0] - w / 2) / (w / 2)
    out[..., 1] = (out[..., 1] - h / 2) / (h / 2)
    return out


def skeleton_features(kp: np.ndarray, layout: SkeletonLayout, feats: tuple[str, ...]) -> np.ndarray:
    """Joint / bone / motion streams stacked on the channel axis (mmaction2's GenSkeFeat)."""
    has_score = layout.dims == 2 and kp.shape[-1] == 3
    streams = {"j": kp}
    if "b" in feats or "bm" in feats:
        child, other = np.array(layout.bone_pairs).T
        bone = np.zeros_like(kp)
        bone[..., child, :] = kp[..., child, :] - kp[..., other, :]
        if has_score:
            bone[..., child, 2] = (kp[..., child, 2] + kp[..., other, 2]) / 2
        streams["b"] = bone
    for name in ("jm", "bm"):
        if name in feats:
            src = streams[name[0]]
            motion = np.zeros_like(src)
            motion[:, :-1] = np.diff(src, axis=1)
            if has_score:
                motion[:, :-1, :, 2] = (src[:, :-1, :, 2] + src[:, 1:, :, 2]) / 2
            streams[name] = motion
    return np.concatenate([streams[f] for f in feats], axis=-1).astype(np.float32)


def sample_indices(num_frames: int, clip_len: int, num_clips: int, rng: np.random.RandomState,
                   test_mode: bool) -> np.ndarray:
    """Uniform frame sampling of mmaction2's UniformSampleFrames: one random frame per equal segment;
    short sequences loop. In test mode clip i of a short sequence starts at a fixed offset."""
    out = []
    for i in range(num_clips):
        if num_frames < clip_len:
            if test_mode:
                start = i if num_frames < num_clips else i * num_frames // num_clips
            else:
                start = rng.randint(0, num_frames)
            inds = np.arange(start, start + clip_len)
        elif num_frames < 2 * clip_len:
            chosen = rng.choice(clip_len + 1, num_frames - clip_len, replace=False)
            offset = np.zeros(clip_len + 1, dtype=np.int64)
            offset[chosen] = 1
            inds = np.arange(clip_len) + np.cumsum(offset)[:-1]
        else:
            bids = np.array([j * num_frames // clip_len for j in range(clip_len + 1)])
            inds = bids[:clip_len] + rng.randint(np.diff(bids))
        out.append(inds)
    return np.mod(np.concatenate(out), num_frames)


def prepare(kp: np.ndarray, layout: SkeletonLayout, config: GCNInputConfig, img_shape=None) -> np.ndarray:
    """The deterministic stage: normalisation and feature streams, [M, T, V, C']."""
    if config.normalise:
        if layout.dims == 3:
            kp = normalise_3d(kp, layout)
        else:
            kp = normalise_2d(kp, img_shape if img_shape is not None else (1080, 1920))
    return skeleton_features(kp, layout, config.feats)


def sample_clips(prepared: np.ndarray, config: GCNInputConfig, rng: np.random.RandomState | None = None,
                 num_clips: int = 1) -> np.ndarray:
    """Frame sampling and body padding: [num_clips, num_person, clip_len, V, C']. Without `rng`,
    test-mode sampling with mmaction2's fixed seed (the same clips every time)."""
    test_mode = rng is None
    rng = np.random.RandomState(TEST_SEED) if test_mode else rng
    m, t, v, c = prepared.shape
    inds = sample_indices(t, config.clip_len, num_clips, rng, test_mode)
    kp = prepared[:, inds]
    if m < config.num_person:
        kp = np.concatenate([kp, np.zeros((config.num_person - m,) + kp.shape[1:], kp.dtype)], axis=0)
    kp = kp[: config.num_person]
    kp = kp.reshape(config.num_person, num_clips, config.clip_len, v, c)
    return np.ascontiguousarray(kp.transpose(1, 0, 2, 3, 4))


def whole_clip(prepared: np.ndarray, config: GCNInputConfig) -> np.ndarray:
    """Every frame of a prepared sequence as one clip, bodies padded or cut to `num_person`: [1, P, T, V, C']."""
    m = prepared.shape[0]
    if m < config.num_person:
        prepared = np.concatenate([prepared, np.zeros((config.num_person - m,) + prepared.shape[1:], prepared.dtype)])
    return np.ascontiguousarray(prepared[None, : config.num_person])

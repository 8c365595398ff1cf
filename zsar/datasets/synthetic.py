"""Built-in demo data: seeded synthetic skeleton sequences of compositional actions.

Each class combines a motion with a body side ("raise" + "left arm", "kick" + "right leg", ...),
so unseen classes recombine parts that seen classes show, and zero-shot transfer is measurable.
Subjects differ in body size, limb proportions, speed, amplitude, position, facing and noise.
Sequences are generated lazily and deterministically from (seed, sample index).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from zsar.datasets.layouts import KINECT_V1_20, NTU_25, SkeletonLayout
from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError

# (class name, motion, side, parts for the `parts` text variant)
SYNTHETIC_CLASSES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("raise left arm", "raise", "left", ("raise an arm up", "left arm")),
    ("raise right arm", "raise", "right", ("raise an arm up", "right arm")),
    ("raise both arms", "raise", "both", ("raise an arm up", "both arms")),
    ("wave left hand", "wave", "left", ("wave a hand", "left hand")),
    ("wave right hand", "wave", "right", ("wave a hand", "right hand")),
    ("wave both hands", "wave", "both", ("wave a hand", "both hands")),
    ("punch with left fist", "punch", "left", ("punch forward", "left fist")),
    ("punch with right fist", "punch", "right", ("punch forward", "right fist")),
    ("kick with left leg", "kick", "left", ("kick forward", "left leg")),
    ("kick with right leg", "kick", "right", ("kick forward", "right leg")),
    ("lift left knee", "knee", "left", ("lift a knee up", "left knee")),
    ("lift right knee", "knee", "right", ("lift a knee up", "right knee")),
    ("lean to the left", "lean", "left", ("lean the upper body sideways", "to the left")),
    ("lean to the right", "lean", "right", ("lean the upper body sideways", "to the right")),
    ("step to the left", "step", "left", ("step sideways", "to the left")),
    ("step to the right", "step", "right", ("step sideways", "to the right")),
)


@dataclass(frozen=True)
class SyntheticConfig:
    joints: int = 20  # 20 (Kinect v1) or 25 (NTU RGB+D)
    num_subjects: int = 10
    repetitions: int = 5  # samples per (class, subject)
    test_subjects: int = 3  # the last subjects form the `test` split (cross-subject)
    min_frames: int = 40
    max_frames: int = 90
    noise: float = 0.012  # joint noise in metres
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def synthetic_class_names() -> list[str]:
    return [c[0] for c in SYNTHETIC_CLASSES]


def synthetic_class_parts() -> list[list[str]]:
    return [list(c[3]) for c in SYNTHETIC_CLASSES]


def _rest_pose(layout: SkeletonLayout) -> np.ndarray:
    """Standing pose, arms down, facing -z (towards a camera at the origin), y up, metres."""
    half = {
        "shoulder": (0.19, 0.42), "elbow": (0.22, 0.15), "wrist": (0.24, -0.09), "hand": (0.245, -0.17),
        "hip": (0.10, -0.03), "knee": (0.11, -0.51), "ankle": (0.11, -0.89), "foot": (0.11, -0.94),
        "hand_tip": (0.25, -0.25), "thumb": (0.22, -0.19),
    }
    centre = {
        "hip_center": 0.0, "spine_base": 0.0, "spine": 0.07, "spine_mid": 0.2, "shoulder_center": 0.45,
        "spine_shoulder": 0.42, "neck": 0.5, "head": 0.64,
    }
    pose = np.zeros((layout.num_joints, 3))
    for j, name in enumerate(layout.joint_names):
        if name in centre:
            pose[j] = (0.0, centre[name], 0.0)
            continue
        side, part = name.split("_", 1)
        x, y = half[part]
        pose[j] = (-x if side == "left" else x, y, -0.08 if part in ("foot", "thumb") else 0.0)
    return pose


def _rotation(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation matrices [T, 3, 3] about a unit axis by angles [T]."""
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3)[None] + s * k[None] + (1 - c) * (k @ k)[None]


def _rotate(pose: np.ndarray, layout: SkeletonLayout, joint: int, axis, angles: np.ndarray) -> None:
    """Rotate the subtree below `joint` about it, in place. pose [T, V, 3]."""
    sub = list(layout.descendants(joint))[1:]
    pivot = pose[:, joint : joint + 1]
    rot = _rotation(np.asarray(axis, dtype=float), angles)
    pose[:, sub] = pivot + np.einsum("tvc,tdc->tvd", pose[:, sub] - pivot, rot)


def _envelope(u: np.ndarray, rise: float = 0.3, fall: float = 0.2) -> np.ndarray:
    """0 -> 1 over the first `rise` of the clip, hold, back to 0 over the last `fall`."""
    up = np.clip(u / rise, 0, 1)
    down = np.clip((1 - u) / fall, 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(up, down))


def _joint(layout: SkeletonLayout, side: str, part: str) -> int:
    return layout.index(f"{side}_{part}")


def _animate(layout: SkeletonLayout, rest: np.ndarray, motion: str, side: str, t: int, amp: float, rng) -> np.ndarray:
    pose = np.repeat(rest[None], t, axis=0)
    u = np.linspace(0, 1, t)
    env = _envelope(u)
    sides = ("left", "right") if side == "both" else (side,)
    cycles = rng.uniform(2.5, 4.0)
    for s in sides:
        sign = -1.0 if s == "left" else 1.0
        if motion == "raise":  # arm forward and up, straight
            _rotate(pose, layout, _joint(layout, s, "shoulder"), (1, 0, 0), amp * np.radians(160) * env)
        elif motion == "wave":  # upper arm out to the side, forearm up, forearm swings
            swing = np.radians(25) * np.sin(2 * np.pi * cycles * u) * env
            _rotate(pose, layout, _joint(layout, s, "elbow"), (0, 0, 1), sign * (np.radians(120) * env + swing))
            _rotate(pose, layout, _joint(layout, s, "shoulder"), (0, 0, 1), sign * amp * np.radians(80) * env)
        elif motion == "punch":  # elbow bent at the side, then the arm shoots forward, twice
            jab = np.clip(np.sin(2 * np.pi * 2 * u), 0, 1)
            _rotate(pose, layout, _joint(layout, s, "elbow"), (1, 0, 0), np.radians(110) * env * (1 - jab))
            reach = amp * np.radians(90) * env * (0.3 + 0.7 * jab)
            _rotate(pose, layout, _joint(layout, s, "shoulder"), (1, 0, 0), reach)
        elif motion == "kick":  # knee bends, then the straight leg swings forward and back
            kick = np.sin(np.pi * np.clip((u - 0.2) / 0.6, 0, 1))
            _rotate(pose, layout, _joint(layout, s, "knee"), (1, 0, 0), -np.radians(50) * env * (1 - kick))
            _rotate(pose, layout, _joint(layout, s, "hip"), (1, 0, 0), amp * np.radians(75) * kick)
        elif motion == "knee":  # thigh up to horizontal, shin hanging
            _rotate(pose, layout, _joint(layout, s, "knee"), (1, 0, 0), -np.radians(95) * env)
            _rotate(pose, layout, _joint(layout, s, "hip"), (1, 0, 0), amp * np.radians(90) * env)
        elif motion == "lean":  # upper body tilts sideways about the hip centre
            upper = layout.joint_names.index("spine_mid" if "spine_mid" in layout.joint_names else "spine")
            _rotate(pose, layout, upper, (0, 0, 1), -sign * amp * np.radians(28) * env)
        elif motion == "step":  # one leg out, the body follows: travel sideways
            out = np.sin(np.pi * np.clip(u / 0.5, 0, 1))
            _rotate(pose, layout, _joint(layout, s, "hip"), (0, 0, 1), sign * np.radians(25) * out)
            travel = 0.45 * amp * (0.5 - 0.5 * np.cos(np.pi * np.clip(u / 0.7, 0, 1)))
            pose[:, :, 0] += sign * travel[:, None]
        else:
            raise ZsarError(f"unknown synthetic motion {motion!r}")
    return pose


def _subject_body(layout: SkeletonLayout, subject: int, seed: int) -> tuple[np.ndarray, float]:
    """A subject's rest pose (size and limb proportions) and personal speed factor."""
    rng = np.random.default_rng([seed, 7919, subject])
    rest = _rest_pose(layout)
    height = rng.uniform(0.85, 1.15)
    bone_scale = rng.uniform(0.92, 1.08, size=layout.num_joints)
    scaled = np.zeros_like(rest)
    for j in range(layout.num_joints):  # parents come before children in both layouts
        p = layout.parents[j]
        scaled[j] = rest[j] if p < 0 else scaled[p] + (rest[j] - rest[p]) * bone_scale[j]
    return scaled * height, rng.uniform(0.85, 1.2)


def synthetic_metadata(config: SyntheticConfig) -> pd.DataFrame:
    """One row per generated sample. `source` names the generator settings, so a cache of other settings is
    never taken for this one (the same sample ids with other motions)."""
    settings = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:12]
    rows = []
    names = synthetic_class_names()
    first_test = config.num_subjects - config.test_subjects
    for label, name in enumerate(names):
        for subject in range(1, config.num_subjects + 1):
            for rep in range(1, config.repetitions + 1):
                rows.append({
                    "sample_id": f"syn_a{label + 1:02d}_s{subject:02d}_r{rep:02d}",
                    "label": label, "class_name": name,
                    "split": "test" if subject > first_test else "train",
                    "source": f"synthetic (generator settings {settings})", "subject": subject, "repetition": rep,
                })
    return pd.DataFrame(rows)


def synthetic_source(config: SyntheticConfig | None = None) -> SampleSource:
    """The demo dataset as a lazily generated sample source (keypoints [1, T, V, 3])."""
    config = config or SyntheticConfig()
    if config.joints not in (20, 25):
        raise ZsarError(f"synthetic skeletons have 20 or 25 joints, not {config.joints}")
    if not 0 < config.test_subjects < config.num_subjects:
        raise ZsarError("test_subjects must leave at least one training subject")
    layout = KINECT_V1_20 if config.joints == 20 else NTU_25
    meta = synthetic_metadata(config)

    def load(i: int) -> np.ndarray:
        row = meta.iloc[i]
        _, motion, side, _ = SYNTHETIC_CLASSES[int(row.label)]
        rng = np.random.default_rng([config.seed, int(row.label), int(row.subject), int(row.repetition)])
        rest, speed = _subject_body(layout, int(row.subject), config.seed)
        frames = int(np.clip(rng.integers(config.min_frames, config.max_frames + 1) / speed, 8, 400))
        pose = _animate(layout, rest, motion, side, frames, rng.uniform(0.8, 1.1), rng)
        yaw = np.radians(rng.uniform(-35, 35))
        rot = _rotation(np.array([0.0, 1.0, 0.0]), np.array([yaw]))[0]
        placed = pose @ rot.T + np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.1, 0.1), rng.uniform(2.3, 3.6)])
        placed += rng.normal(0, config.noise, size=placed.shape)
        return placed[None].astype(np.float32)  # [M=1, T, V, 3]

    return SampleSource(
        name=f"synthetic{config.joints}", class_names=synthetic_class_names(), metadata=meta, load=load,
        modality="skeleton", layout=layout.name,
    )


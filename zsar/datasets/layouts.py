"""Skeleton joint layouts with their bone trees (parent of each joint; the root's parent is -1)."""

from __future__ import annotations

from dataclasses import dataclass

from zsar.errors import ZsarError


@dataclass(frozen=True)
class SkeletonLayout:
    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    root: int  # body centre used for centring
    neck: int  # root -> neck length is the scale unit
    left_hip: int
    right_hip: int
    left_shoulder: int
    right_shoulder: int

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs: the graph a GCN uses (self-loops not included)."""
        return tuple((j, p) for j, p in enumerate(self.parents) if p >= 0)

    def descendants(self, joint: int) -> tuple[int, ...]:
        """The joint and every joint below it in the tree."""
        out, frontier = [joint], [joint]
        while frontier:
            frontier = [j for j, p in enumerate(self.parents) if p in frontier]
            out += frontier
        return tuple(out)

    def index(self, name: str) -> int:
        return self.joint_names.index(name)


_KINECT_V1 = (
    "hip_center", "spine", "shoulder_center", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
)
KINECT_V1_20 = SkeletonLayout(
    name="kinect_v1_20",
    joint_names=_KINECT_V1,
    parents=(-1, 0, 1, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18),
    root=0, neck=2, left_hip=12, right_hip=16, left_shoulder=4, right_shoulder=8,
)

_NTU = (
    "spine_base", "spine_mid", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
    "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
)
NTU_25 = SkeletonLayout(
    name="ntu_25",
    joint_names=_NTU,
    parents=(-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11),
    root=0, neck=20, left_hip=12, right_hip=16, left_shoulder=4, right_shoulder=8,
)

LAYOUTS = {layout.name: layout for layout in (KINECT_V1_20, NTU_25)}


def get_layout(name: str) -> SkeletonLayout:
    if name not in LAYOUTS:
        raise ZsarError(f"unknown skeleton layout {name!r}; known: {sorted(LAYOUTS)}")
    return LAYOUTS[name]

"""Skeleton joint layouts with their bone graphs.

Each layout has a bone tree (parent of each joint; the root's parent is -1) used by the statistics
encoder and the synthetic generator, plus what graph networks need: the centre joint of the graph and
the bone pairs used for bone features. For NTU-25 and COCO-17 these follow mmaction2's conventions
exactly, so checkpoints trained with mmaction2's own pipelines see the same input.
"""

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
    dims: int = 3  # coordinate dimensions of the data (2: image coordinates, usually with a score channel)
    graph_center: int | None = None  # centre of the GCN graph; None: the root
    mmaction_name: str | None = None  # mmaction2's built-in layout of the same joints, if any
    explicit_bone_pairs: tuple[tuple[int, int], ...] | None = None

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs: the graph a GCN uses (self-loops not included)."""
        return tuple((j, p) for j, p in enumerate(self.parents) if p >= 0)

    @property
    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        """(joint, other) pairs: the bone feature of `joint` is joint - other (the root pairs with itself)."""
        if self.explicit_bone_pairs is not None:
            return self.explicit_bone_pairs
        return tuple((j, p if p >= 0 else j) for j, p in enumerate(self.parents))

    def mmaction_graph(self) -> str | dict:
        """The `graph_cfg.layout` value for mmaction2's GCN backbones."""
        if self.mmaction_name is not None:
            return self.mmaction_name
        center = self.root if self.graph_center is None else self.graph_center
        return {"num_node": self.num_joints, "inward": [list(b) for b in self.bones], "center": center}

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
    root=0, neck=2, left_hip=12, right_hip=16, left_shoulder=4, right_shoulder=8, graph_center=1,
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
    graph_center=20, mmaction_name="nturgb+d",
    # mmaction2's bone pairs for NTU (bones point towards the spine-shoulder centre)
    explicit_bone_pairs=((0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8),
                         (10, 9), (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17),
                         (19, 18), (21, 22), (20, 20), (22, 7), (23, 24), (24, 11)),
)

_COCO = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# COCO has no joint at the body centre: the tree hangs from the nose (as in mmaction2's graph), and the
# statistics encoder centres on the left hip with the left hip -> left shoulder length as its scale unit.
COCO_17 = SkeletonLayout(
    name="coco_17",
    joint_names=_COCO,
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    root=11, neck=5, left_hip=11, right_hip=12, left_shoulder=5, right_shoulder=6,
    dims=2, graph_center=0, mmaction_name="coco",
    explicit_bone_pairs=((0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6), (9, 7), (10, 8),
                         (11, 0), (12, 0), (13, 11), (14, 12), (15, 13), (16, 14)),
)

LAYOUTS = {layout.name: layout for layout in (KINECT_V1_20, NTU_25, COCO_17)}


def get_layout(name: str) -> SkeletonLayout:
    if name not in LAYOUTS:
        raise ZsarError(f"unknown skeleton layout {name!r}; known: {sorted(LAYOUTS)}")
    return LAYOUTS[name]


def layout_for(num_joints: int, name: str | None = None, where=None) -> SkeletonLayout:
    """The named layout, checked against the data's joint count; or the only layout with that many joints."""
    if name is not None:
        layout = get_layout(name)
        if layout.num_joints != num_joints:
            raise ZsarError(f"data has {num_joints} joints but layout {name!r} has {layout.num_joints}", where)
        return layout
    matches = [layout for layout in LAYOUTS.values() if layout.num_joints == num_joints]
    if len(matches) != 1:
        raise ZsarError(f"no known skeleton layout has {num_joints} joints; known: "
                        f"{ {n: lay.num_joints for n, lay in LAYOUTS.items()} }", where)
    return matches[0]

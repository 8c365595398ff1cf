"""Raw NTU RGB+D / NTU RGB+D 120 `.skeleton` files (Kinect v2, 25 joints, several bodies per frame).

File layout: the frame count, then per frame the body count and per body a line of 10 body values
(the first is the tracking id), the joint count and one line of 12 values per joint (x, y, z in metres
first). Preprocessing follows the usual NTU choices: bodies are followed by tracking id, the `max_bodies`
with the most motion (summed coordinate spread) are kept, most active first; frames where none of them
appears are dropped; the sequence is centred on the main body's spine-mid joint of its first frame.
File names `SsssCcccPpppRrrrAaaa` give setup, camera, performer (subject), replication and action.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from zsar.class_lists.names import builtin_class_names
from zsar.datasets.keypoints import check_keypoints
from zsar.datasets.layouts import NTU_25
from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError

_NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
BENCHMARKS = ("xsub", "xview", "xset")
# Training subjects of the cross-subject benchmarks (NTU RGB+D 60 and its 120-class extension).
XSUB_TRAIN_SUBJECTS_60 = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
XSUB_TRAIN_SUBJECTS_120 = XSUB_TRAIN_SUBJECTS_60 + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103)
XVIEW_TRAIN_CAMERAS = (2, 3)
SPINE_MID = 1


def parse_ntu_name(stem: str, where=None) -> dict:
    match = _NAME.match(stem)
    if not match:
        raise ZsarError("file name does not follow SsssCcccPpppRrrrAaaa (NTU RGB+D naming)", where)
    setup, camera, subject, repetition, action = (int(g) for g in match.groups())
    if action < 1:
        raise ZsarError("action ids start at A001", where)
    return {"setup": setup, "camera": camera, "subject": subject, "repetition": repetition, "label": action - 1}


def ntu_split(info: dict, benchmark: str, num_classes: int) -> str:
    """`train` or `test` of a sample under the cross-subject / cross-view / cross-setup benchmark."""
    if benchmark == "xsub":
        train = XSUB_TRAIN_SUBJECTS_60 if num_classes <= 60 else XSUB_TRAIN_SUBJECTS_120
        return "train" if info["subject"] in train else "test"
    if benchmark == "xview":
        return "train" if info["camera"] in XVIEW_TRAIN_CAMERAS else "test"
    if benchmark == "xset":
        return "train" if info["setup"] % 2 == 0 else "test"
    raise ZsarError(f"unknown NTU benchmark {benchmark!r}; choose from {BENCHMARKS}")


class _Lines:
    """Numeric line reader that reports the file and line of any problem."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ZsarError(f"cannot read NTU skeleton file: {exc}", path) from exc
        self.pos = 0

    def numbers(self, count: int, what: str) -> list[float]:
        while self.pos < len(self.lines) and not self.lines[self.pos].strip():
            self.pos += 1
        if self.pos >= len(self.lines):
            raise ZsarError(f"truncated: the file ends where {what} was expected (line {self.pos + 1})", self.path)
        fields = self.lines[self.pos].split()
        self.pos += 1
        try:
            values = [float(f) for f in fields]
        except ValueError as exc:
            raise ZsarError(f"line {self.pos}: {what} is not numeric ({exc})", self.path) from exc
        if len(values) < count:
            raise ZsarError(f"line {self.pos}: {what} needs {count} values, found {len(values)}", self.path)
        return values

    def count(self, what: str) -> int:
        value = self.numbers(1, what)[0]
        if value < 0 or value != int(value):
            raise ZsarError(f"line {self.pos}: {what} must be a non-negative integer, not {value}", self.path)
        return int(value)


def read_ntu_skeleton(path: str | Path, max_bodies: int = 2, centre: bool = True) -> np.ndarray:
    """One `.skeleton` file as keypoints [M, T, 25, 3] (M <= max_bodies), preprocessed as described above."""
    path = Path(path)
    lines = _Lines(path)
    num_frames = lines.count("the frame count")
    bodies: dict[str, dict[int, np.ndarray]] = {}
    for frame in range(num_frames):
        for _ in range(lines.count(f"the body count of frame {frame + 1}")):
            body_line = lines.lines[lines.pos].split() if lines.pos < len(lines.lines) else []
            lines.numbers(10, f"the body line of frame {frame + 1}")
            num_joints = lines.count(f"the joint count of frame {frame + 1}")
            if num_joints != NTU_25.num_joints:
                raise ZsarError(f"line {lines.pos}: {num_joints} joints per body; NTU files have 25", path)
            joints = np.array([lines.numbers(3, f"joint {j + 1} of frame {frame + 1}")[:3] for j in range(num_joints)],
                              dtype=np.float32)
            bodies.setdefault(body_line[0], {})[frame] = joints
    if num_frames == 0 or not bodies:
        raise ZsarError(f"no skeleton in the file ({num_frames} frames, no tracked body)", path)
    chosen = sorted(bodies.values(), key=_motion, reverse=True)[:max_bodies]
    kp = np.zeros((len(chosen), num_frames, NTU_25.num_joints, 3), dtype=np.float32)
    for m, frames in enumerate(chosen):
        for frame, joints in frames.items():
            kp[m, frame] = joints
    kp = kp[:, np.abs(kp).sum(axis=(0, 2, 3)) > 0]
    if kp.shape[1] == 0:
        raise ZsarError("every frame is empty (all joints at zero)", path)
    if centre:
        present = np.abs(kp).sum(-1, keepdims=True) > 0
        first = np.nonzero(np.abs(kp[0]).sum(axis=(1, 2)) > 0)[0]
        origin = kp[0, first[0], SPINE_MID] if len(first) else np.zeros(3, np.float32)
        kp = (kp - origin) * present
    return check_keypoints(kp, NTU_25, path)


def _motion(frames: dict[int, np.ndarray]) -> float:
    joints = np.stack(list(frames.values()))
    joints = joints[np.abs(joints).sum(axis=(1, 2)) > 0]
    return float(joints.reshape(-1, 3).std(axis=0).sum()) if len(joints) > 1 else 0.0


def write_ntu_skeleton(path: str | Path, keypoints: np.ndarray) -> Path:
    """Write keypoints [M, T, 25, 3] as a `.skeleton` file (bodies with all-zero joints in a frame are left out).
    Used to make test data and to export; the unused per-body and per-joint fields are written as zeros."""
    path = Path(path)
    m, t, v, _ = keypoints.shape
    out = [str(t)]
    for frame in range(t):
        present = [b for b in range(m) if np.abs(keypoints[b, frame]).sum() > 0]
        out.append(str(len(present)))
        for b in present:
            out.append(f"{72057594037931100 + b} 0 1 1 1 1 0 0.0 0.0 2")
            out.append(str(v))
            out += [" ".join(f"{x:.6f}" for x in joint) + " 0 0 0 0 0 0 0 0 2" for joint in keypoints[b, frame]]
    path.write_text("\n".join(out) + "\n", encoding="ascii")
    return path


def ntu_source(folder: str | Path, benchmark: str = "xsub", num_classes: int | None = None, max_bodies: int = 2,
               centre: bool = True) -> SampleSource:
    """All `.skeleton` files of a folder, split into train/test by the chosen benchmark."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZsarError("NTU skeleton folder not found", folder)
    files = sorted(folder.glob("*.skeleton"))
    if not files:
        raise ZsarError("no .skeleton files in the folder", folder)
    infos = [parse_ntu_name(f.stem, f) for f in files]
    max_label = max(i["label"] for i in infos)
    num_classes = num_classes or (60 if max_label < 60 else 120)
    if max_label >= num_classes:
        raise ZsarError(f"action A{max_label + 1:03d} does not exist with {num_classes} classes", folder)
    class_names = builtin_class_names("ntu60" if num_classes == 60 else "ntu120")
    rows = [{"sample_id": f.stem, "label": i["label"], "class_name": class_names[i["label"]],
             "split": ntu_split(i, benchmark, num_classes), "source": str(f), "subject": i["subject"],
             "camera": i["camera"], "setup": i["setup"], "repetition": i["repetition"]} for f, i in zip(files, infos)]
    return SampleSource(name=f"ntu{num_classes}_{benchmark}", class_names=class_names, metadata=pd.DataFrame(rows),
                        load=lambda i: read_ntu_skeleton(files[i], max_bodies, centre), modality="skeleton",
                        layout=NTU_25.name)

"""NW-UCLA (Northwestern-UCLA Multiview Action 3D) skeletons in the JSON form CTR-GCN distributes.

One file per sample, `aXX_sYY_eZZ_vVV.json` (action, subject, episode, camera view), holding
`{"file_name", "skeletons": [T][20][3], "label": 1..10}`: one body, Kinect v1 20 joints, metres.
The standard cross-view protocol trains on views 1 and 2 and tests on view 3.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from zsar.class_lists.names import builtin_class_names
from zsar.datasets.keypoints import check_keypoints
from zsar.datasets.layouts import KINECT_V1_20
from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError

ACTION_IDS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)  # file action ids in class order (no a07, a10)
_NAME = re.compile(r"^a(\d+)_s(\d+)_e(\d+)_v(\d+)$")


def parse_nw_ucla_name(stem: str, where=None) -> dict:
    match = _NAME.match(stem)
    if not match:
        raise ZsarError("file name does not follow aXX_sYY_eZZ_vVV.json", where)
    action, subject, episode, view = (int(g) for g in match.groups())
    if action not in ACTION_IDS:
        raise ZsarError(f"action a{action:02d} is not an NW-UCLA action {list(ACTION_IDS)}", where)
    return {"label": ACTION_IDS.index(action), "subject": subject, "repetition": episode, "view": view}


def read_nw_ucla_json(path: str | Path) -> np.ndarray:
    """One sample as keypoints [1, T, 20, 3]; a ZsarError names the file on bad content."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ZsarError(f"cannot read NW-UCLA JSON: {type(exc).__name__}: {exc}", path) from exc
    if not isinstance(data, dict) or "skeletons" not in data:
        raise ZsarError("not an NW-UCLA sample: no `skeletons` key", path)
    expected = parse_nw_ucla_name(path.stem, path)["label"] + 1
    if "label" in data and data["label"] != expected:
        raise ZsarError(f"label {data['label']} in the file does not match the file name (expected {expected})", path)
    if not data["skeletons"]:
        raise ZsarError("sequence is empty: `skeletons` has zero frames", path)
    try:
        skeletons = np.asarray(data["skeletons"], dtype=np.float32)
    except (TypeError, ValueError, RecursionError, OverflowError) as exc:
        raise ZsarError(f"`skeletons` is not a [frames][20][3] array ({exc})", path) from exc
    if skeletons.ndim != 3 or skeletons.shape[2] != 3:
        raise ZsarError(f"`skeletons` must be [frames][joints][3], got shape {skeletons.shape}", path)
    return check_keypoints(skeletons[None], KINECT_V1_20, path)


def nw_ucla_source(folder: str | Path, train_views: tuple[int, ...] = (1, 2)) -> SampleSource:
    """All samples of the folder; split `train` = `train_views`, `test` = the other views."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZsarError("NW-UCLA folder not found", folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ZsarError("no .json files in the NW-UCLA folder", folder)
    class_names = builtin_class_names("nw_ucla")
    rows, problems = [], {}
    for path in files:
        try:
            info = parse_nw_ucla_name(path.stem, path)
        except ZsarError as exc:  # kept as a row that fails to load, so it shows among the cache's failures
            problems[len(rows)] = exc
            rows.append({"sample_id": path.stem, "label": -1, "class_name": "", "split": "unused",
                         "source": str(path), "subject": -1, "repetition": -1, "view": -1, "camera": -1})
            continue
        rows.append({"sample_id": path.stem, "label": info["label"], "class_name": class_names[info["label"]],
                     "split": "train" if info["view"] in train_views else "test", "source": str(path),
                     "subject": info["subject"], "repetition": info["repetition"], "view": info["view"],
                     "camera": info["view"]})

    def load(i: int) -> np.ndarray:
        if i in problems:
            raise problems[i]
        return read_nw_ucla_json(files[i])

    meta = pd.DataFrame(rows)
    return SampleSource(name="nw_ucla", class_names=class_names, metadata=meta,
                        load=load, modality="skeleton", layout=KINECT_V1_20.name)

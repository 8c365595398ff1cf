"""The annotation pickle of mmaction2 / pyskl skeleton datasets.

`{"split": {"xsub_train": [frame_dir, ...], ...}, "annotations": [{"frame_dir", "label", "keypoint"
[M, T, V, C], "total_frames", optional "keypoint_score" [M, T, V], "img_shape", ...}]}`. 2-D estimates
carry their confidence in `keypoint_score`; it becomes the last channel, as mmaction2's GCN input does.
Pickles can run code when loaded: open only files you trust (the same holds for mmaction2 itself).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from zsar.class_lists.names import builtin_class_names
from zsar.class_lists.text_files import read_class_names
from zsar.datasets.keypoints import check_keypoints
from zsar.datasets.layouts import layout_for
from zsar.datasets.ntu_skeleton import parse_ntu_name
from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError


def read_pose_pickle(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError) as exc:
        raise ZsarError(f"cannot read the annotation pickle: {type(exc).__name__}: {exc}", path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise ZsarError("not an mmaction2/pyskl annotation pickle: needs a dict with an `annotations` list", path)
    if not data["annotations"]:
        raise ZsarError("the pickle has no annotations", path)
    for i, ann in enumerate(data["annotations"]):
        missing = [k for k in ("frame_dir", "label", "keypoint") if not isinstance(ann, dict) or k not in ann]
        if missing:
            raise ZsarError(f"annotation {i} lacks {missing}", path)
    split = data.get("split", {})
    if not isinstance(split, dict):
        raise ZsarError("`split` must map split names to lists of frame_dir", path)
    return data


def choose_split_keys(split: dict, train: str | None, test: str | None, path) -> tuple[str | None, str | None]:
    """Which pickle splits become zsar's `train` and `test`: given, or the only `<x>_train` / `<x>_val|test` pair
    (`xsub` preferred when there are several)."""
    if train or test:
        for key in (train, test):
            if key is not None and key not in split:
                raise ZsarError(f"split {key!r} is not in the pickle; it has {sorted(split)}", path)
        return train, test
    prefixes = sorted({k[: -len("_train")] for k in split if k.endswith("_train")})
    pairs = [(f"{p}_train", t) for p in prefixes for t in (f"{p}_val", f"{p}_test") if t in split]
    if not pairs:
        return ("train" if "train" in split else None), next((k for k in ("val", "test") if k in split), None)
    preferred = [p for p in pairs if p[0] == "xsub_train"]
    if len(pairs) > 1 and not preferred:
        raise ZsarError(f"several train/test split pairs {pairs}; choose one (train_split=..., test_split=...)", path)
    return (preferred or pairs)[0]


def _class_names(anns: list, names_from: str | None, path) -> list[str]:
    num = max(int(a["label"]) for a in anns) + 1
    if names_from:
        resolved = Path(names_from)
        names = read_class_names(resolved) if resolved.exists() else builtin_class_names(names_from)
    elif all(parse_ntu_name_or_none(str(a["frame_dir"])) for a in anns[:50]):
        names = builtin_class_names("ntu60" if num <= 60 else "ntu120")
    else:
        raise ZsarError("the pickle's classes need names: pass class_names = a built-in dataset or a names file", path)
    if num > len(names):
        raise ZsarError(f"labels go up to {num - 1} but there are only {len(names)} class names", path)
    return names


def parse_ntu_name_or_none(stem: str) -> dict | None:
    try:
        return parse_ntu_name(stem)
    except ZsarError:
        return None


def annotation_keypoints(ann: dict) -> np.ndarray:
    """Keypoints with the confidence score appended as the last channel when the annotation has one."""
    kp = np.asarray(ann["keypoint"], dtype=np.float32)
    if "keypoint_score" in ann and ann["keypoint_score"] is not None:
        kp = np.concatenate([kp, np.asarray(ann["keypoint_score"], dtype=np.float32)[..., None]], axis=-1)
    return kp


def pose_pickle_source(path: str | Path, train_split: str | None = None, test_split: str | None = None,
                       layout: str | None = None, class_names: str | None = None) -> SampleSource:
    """Samples of the pickle; pickle split `train_split` -> `train`, `test_split` -> `test`, others `unused`."""
    path = Path(path)
    data = read_pose_pickle(path)
    anns = data["annotations"]
    names = _class_names(anns, class_names, path)
    first = np.asarray(anns[0]["keypoint"])
    if first.ndim != 4:
        raise ZsarError(f"annotation 0 ({anns[0]['frame_dir']}): keypoint must be [M, T, V, C], got {first.shape}",
                        path)
    lay = layout_for(first.shape[2], layout, path)
    train_key, test_key = choose_split_keys(data["split"], train_split, test_split, path)
    train_ids = set(data["split"].get(train_key, ())) if train_key else set()
    test_ids = set(data["split"].get(test_key, ())) if test_key else set()
    rows = []
    for ann in anns:
        sid = str(ann["frame_dir"])
        info = parse_ntu_name_or_none(sid) or {}
        label = int(ann["label"])
        rows.append({"sample_id": sid, "label": label, "class_name": names[label],
                     "split": "train" if sid in train_ids else "test" if sid in test_ids else "unused",
                     "source": f"{path}#{sid}", **{k: info[k] for k in ("subject", "camera", "setup", "repetition")
                                                    if k in info}})
    meta = pd.DataFrame(rows)
    if meta["sample_id"].duplicated().any():
        raise ZsarError(f"duplicate frame_dir {meta['sample_id'][meta['sample_id'].duplicated()].iloc[0]!r}", path)
    shapes = [tuple(a.get("img_shape", ())) for a in anns]
    if lay.dims == 2:
        meta["img_shape"] = [list(s) if s else [1080, 1920] for s in shapes]

    def load(i: int) -> np.ndarray:
        return check_keypoints(annotation_keypoints(anns[i]), lay, f"{path}#{anns[i]['frame_dir']}")

    return SampleSource(name=path.stem, class_names=names, metadata=meta, load=load, modality="skeleton",
                        layout=lay.name)

"""The annotation pickle of mmaction2 / pyskl skeleton datasets.

`{"split": {"xsub_train": [frame_dir, ...], ...}, "annotations": [{"frame_dir", "label", "keypoint"
[M, T, V, C], "total_frames", optional "keypoint_score" [M, T, V], "img_shape", ...}]}`. 2-D estimates
carry their confidence in `keypoint_score`; it becomes the last channel, as mmaction2's GCN input does.
Pickles can run code when loaded. zsar reads them with a restricted unpickler that builds only what the
format uses (dicts, lists, tuples, strings, numbers, numpy arrays and scalars) and refuses anything else by
name; `trust_pickle=True` (`--trust-pickle`) uses the full unpickler for files the user trusts, and the cache
header records that it was used.
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

_PLAIN_DATA = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"), ("builtins", "complex"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5 arrays
}


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds only plain data; any other global (a function, a class with side effects) is refused by name."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PLAIN_DATA or (module == "numpy.dtypes" and name.endswith("DType") and "." not in name):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def read_pose_pickle(path: str | Path, trust_pickle: bool = False) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle) if trust_pickle else _PlainDataUnpickler(handle).load()
    except pickle.UnpicklingError as exc:
        if "refused global" in str(exc):
            raise ZsarError(f"{exc}: pose pickles may hold only dicts, lists, strings, numbers and numpy arrays, "
                            "and loading other objects could run code. If you trust this file, pass --trust-pickle "
                            "(data option trust_pickle = true)", path) from exc
        raise ZsarError(f"cannot read the annotation pickle: {type(exc).__name__}: {exc}", path) from exc
    except Exception as exc:  # noqa: BLE001 - a damaged pickle raises many types (EOFError, KeyError, ...)
        raise ZsarError(f"cannot read the annotation pickle: {type(exc).__name__}: {exc}", path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise ZsarError("not an mmaction2/pyskl annotation pickle: needs a dict with an `annotations` list", path)
    if not data["annotations"]:
        raise ZsarError("the pickle has no annotations", path)
    for i, ann in enumerate(data["annotations"]):
        missing = [k for k in ("frame_dir", "label", "keypoint") if not isinstance(ann, dict) or k not in ann]
        if missing:
            raise ZsarError(f"annotation {i} lacks {missing}", path)
    split = data.setdefault("split", {})
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
                       layout: str | None = None, class_names: str | None = None,
                       trust_pickle: bool = False) -> SampleSource:
    """Samples of the pickle; pickle split `train_split` -> `train`, `test_split` -> `test`, others `unused`.
    A malformed pickle is one error naming it; a malformed annotation fails when that sample is loaded."""
    path = Path(path)
    data = read_pose_pickle(path, trust_pickle)
    try:
        return _pickle_samples(path, data, train_split, test_split, layout, class_names, trust_pickle)
    except ZsarError:
        raise
    except Exception as exc:  # noqa: BLE001 - wrong types or values anywhere in the annotations
        raise ZsarError(f"malformed annotation pickle ({type(exc).__name__}: {exc})", path) from exc


def _pickle_samples(path: Path, data: dict, train_split, test_split, layout, class_names,
                    trust_pickle: bool) -> SampleSource:
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
        where = f"{path}#{anns[i]['frame_dir']}"
        try:
            keypoints = annotation_keypoints(anns[i])
        except Exception as exc:  # noqa: BLE001 - a malformed annotation is that sample's failure
            raise ZsarError(f"malformed keypoints ({type(exc).__name__}: {exc})", where) from exc
        return check_keypoints(keypoints, lay, where)

    return SampleSource(name=path.stem, class_names=names, metadata=meta, load=load, modality="skeleton",
                        layout=lay.name, provenance={"trust_pickle": True} if trust_pickle else {})

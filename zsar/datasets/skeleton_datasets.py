"""Open any supported skeleton dataset by path: NW-UCLA JSON folder, NTU `.skeleton` folder, pose pickle."""

from __future__ import annotations

from pathlib import Path

from zsar.datasets.ntu_skeleton import ntu_source
from zsar.datasets.nw_ucla import nw_ucla_source
from zsar.datasets.pose_pickle import pose_pickle_source
from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError

FORMATS = {"nw_ucla": nw_ucla_source, "ntu": ntu_source, "pickle": pose_pickle_source}


def detect_format(path: Path) -> str:
    if path.is_file() and path.suffix in (".pkl", ".pickle"):
        return "pickle"
    if path.is_dir():
        if next(path.glob("*.skeleton"), None) is not None:
            return "ntu"
        if next(path.glob("a*_s*_e*_v*.json"), None) is not None:
            return "nw_ucla"
    raise ZsarError("cannot tell the skeleton format: expected a .pkl file, a folder of NTU .skeleton files or a "
                    "folder of NW-UCLA aXX_sYY_eZZ_vVV.json files (or give the format)", path)


def open_skeleton_dataset(path: str | Path, format: str = "auto", **options) -> SampleSource:
    """The dataset at `path` as a SampleSource; `options` go to the format's loader."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ZsarError("skeleton dataset not found", path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in FORMATS:
        raise ZsarError(f"unknown skeleton format {fmt!r}; choose from {sorted(FORMATS)} or 'auto'")
    try:
        return FORMATS[fmt](path, **options)
    except TypeError as exc:
        raise ZsarError(f"bad options for the {fmt} loader: {exc}", path) from exc

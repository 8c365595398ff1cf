"""Video datasets as sample sources: a folder of class folders, a list file, the HRI30 layouts, and
unlabelled videos for inference.

Every source has the columns of the cache metadata (sample_id, label, class_name, split, source) plus
`path`, the absolute file path; `load(i)` returns that path and decoding happens in the extraction, so a
listed file that is missing or broken becomes a failed row there (the run goes on), never a crash here.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import pandas as pd

from zsar.class_lists.names import builtin_class_names
from zsar.class_lists.text_files import read_class_names
from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
SAMPLE_SPLITS = ("train", "val", "test")
COURSE_NAME = re.compile(r"^CID(\d+)_SID(\d+)_VID(\d+)$", re.IGNORECASE)


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def _source(name: str, class_names: list[str], rows: list[dict], class_ids: list[int] | None = None) -> SampleSource:
    table = pd.DataFrame(rows, columns=None if rows else ["sample_id", "label", "class_name", "split", "source",
                                                          "path"])
    if table.empty:
        raise ZsarError(f"dataset {name!r} has no videos")
    dup = table["sample_id"][table["sample_id"].duplicated()]
    if len(dup):
        raise ZsarError(f"dataset {name!r} lists the same video twice, e.g. {dup.iloc[:3].tolist()}")
    paths = table["path"].tolist()
    return SampleSource(name, class_names, table, lambda i: Path(paths[i]), modality="video", class_ids=class_ids)


def _row(sample_id: str, label: int, class_names: list[str], split: str, source: str, path: Path, **extra) -> dict:
    return {"sample_id": sample_id, "label": label, "class_name": class_names[label] if label >= 0 else "",
            "split": split, "source": source, "path": str(path.resolve()), **extra}


def folder_source(root: str | Path, class_names: list[str] | None = None, name: str | None = None) -> SampleSource:
    """`root/<class>/<video>`, or `root/{train,val,test}/<class>/<video>` (Kinetics-style) with those splits."""
    root = Path(root)
    split_dirs = [root / s for s in SAMPLE_SPLITS if (root / s).is_dir()]
    parts = [(d.name, d) for d in split_dirs] if split_dirs else [("all", root)]
    found = sorted({c.name for _, d in parts for c in d.iterdir() if c.is_dir()})
    if not found:
        raise ZsarError("no class folders (expected <root>/<class>/<video> or <root>/train/<class>/<video>)", root)
    names = list(class_names) if class_names else found
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise ZsarError(f"class folders {unknown[:5]} are not in the given class names", root)
    index = {n: i for i, n in enumerate(names)}
    rows = []
    for split, base in parts:
        for class_dir in sorted(c for c in base.iterdir() if c.is_dir()):
            for video in sorted(p for p in class_dir.rglob("*") if _is_video(p)):
                rel = video.relative_to(root)
                rows.append(_row(rel.with_suffix("").as_posix(), index[class_dir.name], names, split, rel.as_posix(),
                                 video))
    return _source(name or root.name, names, rows)


def _list_lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise ZsarError("list file not found", path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        lines = [r for r in csv.reader(text.splitlines()) if r and any(f.strip() for f in r)]
        if lines and lines[0] and lines[0][0].strip().lower() in ("path", "video", "filename", "file"):
            lines = lines[1:]
        return [[f.strip() for f in r] for r in lines]
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _label_of(value: str, names: list[str], index: dict[str, int], where: str, path: Path) -> int:
    if value.lstrip("-").isdigit():
        label = int(value)
        if not 0 <= label < len(names):
            raise ZsarError(f"{where}: label {label} is outside 0..{len(names) - 1}", path)
        return label
    if value not in index:
        raise ZsarError(f"{where}: class {value!r} is not among the class names", path)
    return index[value]


def list_source(list_file: str | Path, root: str | Path | None = None, class_names: list[str] | None = None,
                split: str = "all", name: str | None = None) -> SampleSource:
    """A list of `path [label [split]]` lines (space-separated .txt, or .csv). Labels are 0-based class
    indices or class names; paths are relative to `root` (default: the list's folder). Lines without a label
    are unlabelled videos (label -1) for inference."""
    list_file = Path(list_file)
    root = Path(root) if root is not None else list_file.parent
    lines = _list_lines(list_file)
    if not lines:
        raise ZsarError("the list has no videos", list_file)
    labels = [r[1] for r in lines if len(r) > 1]
    if class_names is None:
        if labels and all(v.lstrip("-").isdigit() for v in labels):
            top = max(int(v) for v in labels)
            class_names = [str(i) for i in range(top + 1)]
            log.warning("%s: integer labels without class names; the classes are named 0..%d", list_file, top)
        else:
            class_names = sorted({v for v in labels})
    index = {n: i for i, n in enumerate(class_names)}
    rows = []
    for line_no, fields in enumerate(lines, start=1):
        rel = fields[0]
        label = _label_of(fields[1], class_names, index, f"line {line_no}", list_file) if len(fields) > 1 else -1
        sample_split = fields[2] if len(fields) > 2 else split
        rows.append(_row(Path(rel).with_suffix("").as_posix(), label, class_names, sample_split, rel, root / rel))
    return _source(name or list_file.stem, list(class_names), rows)


def video_paths_source(paths: list[str | Path], class_names: list[str] | None = None,
                       name: str = "videos") -> SampleSource:
    """Unlabelled videos (files, or folders searched for videos) for inference."""
    files = []
    for p in map(Path, paths):
        files.extend(sorted(v for v in p.rglob("*") if _is_video(v)) if p.is_dir() else [p])
    rows = [_row(f"{i:06d}_{f.stem}" if len(files) != len({g.stem for g in files}) else f.stem, -1,
                 class_names or [], "unlabelled", str(f), f) for i, f in enumerate(files)]
    return _source(name, list(class_names or []), rows)


def _hri30_names(class_ind: Path | None) -> tuple[list[str], list[int]]:
    """HRI30 classes from `classInd.txt` (`id name` lines, ids from 1) or the built-in list."""
    if class_ind is None:
        names = builtin_class_names("hri30")
        return names, list(range(1, len(names) + 1))
    pairs = []
    for line_no, line in enumerate(class_ind.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise ZsarError(f"line {line_no} is not `id name`: {line!r}", class_ind)
        pairs.append((int(fields[0]), fields[1]))
    pairs.sort()
    return [n for _, n in pairs], [i for i, _ in pairs]


def hri30_source(root: str | Path, class_ind: str | Path | None = None, train_list: str | Path | None = None,
                 test_list: str | Path | None = None) -> SampleSource:
    """The official HRI30 layout: `<root>/<Class>/v_<Class>_gXX_cYY.avi` with `classInd.txt`,
    `trainlist01.txt` (path and class id) and `testlist01.txt` (paths), found in `root` unless given."""
    root = Path(root)

    def find(given, name):
        path = Path(given) if given is not None else root / name
        if not path.is_file():
            raise ZsarError(f"HRI30 needs {name} (give its path, or put it in the dataset folder)", path)
        return path

    ind = Path(class_ind) if class_ind is not None else (root / "classInd.txt" if (root / "classInd.txt").is_file()
                                                           else None)
    names, ids = _hri30_names(ind)
    by_id = {cid: i for i, cid in enumerate(ids)}
    index = {n: i for i, n in enumerate(names)}
    rows = []
    lists = (("train", find(train_list, "trainlist01.txt")), ("test", find(test_list, "testlist01.txt")))
    for split, list_path in lists:
        for line_no, fields in enumerate(_list_lines(list_path), start=1):
            rel = fields[0]
            folder = rel.split("/")[0]
            if folder not in index:
                raise ZsarError(f"line {line_no}: class folder {folder!r} is not an HRI30 class", list_path)
            label = index[folder]
            if len(fields) > 1:
                if not fields[1].isdigit() or int(fields[1]) not in by_id or by_id[int(fields[1])] != label:
                    raise ZsarError(f"line {line_no}: class id {fields[1]} does not match folder {folder!r} "
                                    f"(id {ids[label]})", list_path)
            match = re.search(r"_g(\d+)_c(\d+)", rel)
            rows.append(_row(Path(rel).stem, label, names, split, rel, root / rel, class_id=ids[label],
                             group=int(match.group(1)) if match else -1, clip=int(match.group(2)) if match else -1))
    return _source("hri30", names, rows, ids)


def _course_labels(labels_csv: Path, names: list[str], ids: list[int]) -> dict[str, int]:
    """video id -> label from a CSV of (video id, class id or class name), header optional."""
    by_id = {cid: i for i, cid in enumerate(ids)}
    index = {n: i for i, n in enumerate(names)}
    if not labels_csv.is_file():
        raise ZsarError("label CSV not found", labels_csv)
    rows = [r for r in csv.reader(labels_csv.read_text(encoding="utf-8").splitlines()) if r and any(r)]
    if rows and not COURSE_NAME.match(Path(rows[0][0].strip()).stem):
        rows = rows[1:]
    out = {}
    for line_no, row in enumerate(rows, start=2):
        if len(row) < 2:
            raise ZsarError(f"row {line_no} is not `video id, class`: {row}", labels_csv)
        video, value = Path(row[0].strip()).stem, row[1].strip()
        if value.isdigit():
            if int(value) not in by_id:
                raise ZsarError(f"row {line_no}: class id {value} is not one of {ids[0]}..{ids[-1]}", labels_csv)
            out[video] = by_id[int(value)]
        elif value in index:
            out[video] = index[value]
        else:
            raise ZsarError(f"row {line_no}: {value!r} is neither a class id nor a class name", labels_csv)
    return out


def hri30_course_source(folder: str | Path, labels_csv: str | Path | None = None,
                        class_ind: str | Path | None = None) -> SampleSource:
    """Course-style HRI30: `CIDxx_SIDxx_VIDxx.<ext>` files in a folder, labels from a CSV of (video id, class id
    from 1 or class name). Labelled videos are split "train", the rest "unlabelled" (to predict); a CSV row
    whose video is missing stays as a row that fails with "video file not found"."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZsarError("video folder not found", folder)
    names, ids = _hri30_names(Path(class_ind) if class_ind else None)
    labels = _course_labels(Path(labels_csv), names, ids) if labels_csv else {}
    videos = {v.stem: v for v in sorted(folder.iterdir()) if _is_video(v)}
    bad = [s for s in videos if not COURSE_NAME.match(s)]
    if bad:
        raise ZsarError(f"{len(bad)} videos are not named CIDxx_SIDxx_VIDxx, e.g. {bad[:3]}", folder)
    for missing in sorted(set(labels) - set(videos)):
        videos[missing] = folder / f"{missing}.avi"
    rows = []
    for stem in sorted(videos):
        match = COURSE_NAME.match(stem)
        if not match:
            raise ZsarError(f"label CSV names {stem!r}, which is not CIDxx_SIDxx_VIDxx", labels_csv)
        label = labels.get(stem, -1)
        cid, sid, vid = (int(g) for g in match.groups())
        rows.append(_row(stem, label, names, "train" if label >= 0 else "unlabelled", videos[stem].name,
                         videos[stem], cid=cid, sid=sid, vid=vid))
    return _source("hri30", names, rows, ids)


FORMATS = ("folders", "list", "hri30", "hri30-course", "unlabelled")


def open_video_dataset(path: str | Path, format: str = "auto", class_names: str | Path | None = None,
                       **options) -> SampleSource:
    """A video dataset by path. auto: a list file (.txt/.csv) -> list; a folder holding classInd.txt and
    trainlist01.txt -> hri30; a folder of CIDxx_SIDxx_VIDxx videos -> hri30-course; a folder with videos but
    no sub-folders -> unlabelled (for inference; `class_names` then names the head's classes); else class
    folders."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ZsarError("video dataset not found", path)
    names = read_class_names(class_names) if class_names else None
    if format == "auto":
        if path.is_file():
            format = "list"
        elif (path / "trainlist01.txt").is_file():
            format = "hri30"
        elif any(COURSE_NAME.match(v.stem) for v in path.iterdir() if _is_video(v)):
            format = "hri30-course"
        elif any(_is_video(v) for v in path.iterdir()) and not any(v.is_dir() for v in path.iterdir()):
            format = "unlabelled"
        else:
            format = "folders"
    try:
        if format == "folders":
            return folder_source(path, names, **options)
        if format == "list":
            return list_source(path, class_names=names, **options)
        if format == "hri30":
            return hri30_source(path, **options)
        if format == "hri30-course":
            return hri30_course_source(path, **options)
        if format == "unlabelled":
            return video_paths_source([path], names, name=path.name, **options)
    except TypeError as exc:
        raise ZsarError(f"bad options for the {format} loader: {exc}", path) from exc
    raise ZsarError(f"unknown video dataset format {format!r}; choose from {FORMATS} or 'auto'")

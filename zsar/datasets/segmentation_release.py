"""The standard temporal-action-segmentation feature release (MS-TCN's data.zip; FACT and successors reuse it).

Layout of one dataset folder (`data/<dataset>/` in the release):

```
<root>/features/<video>.npy      float32 [D, T]   (note: D x T, one column per frame; transposed here to [T, D])
<root>/groundTruth/<video>.txt   T lines, one class NAME per frame
<root>/mapping.txt               "<id> <name>" per line, ids 0..C-1
<root>/splits/train.split<k>.bundle, test.split<k>.bundle   one "<video>.txt" per line
```

Bundle lines carry a ".txt" suffix (they name the label file); it is stripped to get the video stem. Feature and
label lengths differ by a few frames in the real releases: both are truncated to min(T_feat, T_gt), and a video whose
lengths differ by more than the tolerance (see `default_length_tolerance`) is refused, because that is a wrong file
rather than an off-by-a-few decoder difference.

The release has no validation set: MS-TCN trains a fixed number of epochs and evaluates the last one. Any model
or hyper-parameter selection must therefore happen on a seeded random part of the training videos
(`validation_fraction`), never on the test bundle.

Background classes: the release itself does not say which classes are background. `background="auto"` marks the
names in `AUTO_BACKGROUND` that the mapping contains (`background` in GTEA, `SIL` in Breakfast, `action_start` /
`action_end` in 50Salads). Whether a metric excludes them is the metric's convention, and the conventions differ:
MS-TCN's evaluation drops only the NAME "background" (so only GTEA loses a class; Breakfast `SIL` and 50Salads
`action_start/end` are scored); FACT drops GTEA's background (id 10) and nothing on Breakfast. To reproduce one of
them exactly pass the names explicitly (`background=("background",)` for MS-TCN, `()` for FACT on Breakfast).
`StreamSet.background` records the ids chosen and `provenance` their names, so every report can print them.

Memory: each stream's features are a [T, D] view of its memory-mapped file (read when used, in the file's dtype),
so importing Breakfast (tens of GB at D = 2048) writes the cache stream by stream without holding it in memory.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from zsar.datasets.streams import Stream, StreamSet
from zsar.errors import ZsarError

AUTO_BACKGROUND = ("background", "SIL", "action_start", "action_end")
MAX_PROBLEMS_SHOWN = 10
_BUNDLE = re.compile(r"^(train|test)\.split(\d+)\.bundle$")


def default_length_tolerance(t_features: int, t_labels: int) -> int:
    """Frames by which feature and label lengths may differ by default: 5% of the longer, at least 2 frames.
    The real releases differ by 0 to a few frames (decoders count the last frames differently); a larger gap means
    the feature file and the label file are not of the same video, or not at the same frame rate."""
    return max(2, math.ceil(0.05 * max(t_features, t_labels)))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ZsarError("file not found", path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ZsarError(f"cannot read: {type(exc).__name__}: {exc}", path) from exc


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise ZsarError(f"{what} folder not found" if not path.exists() else f"{what} should be a folder", path)
    return path


def _root(root: str | Path) -> Path:
    root = Path(root)
    _folder(root, "segmentation release")
    return root


def read_mapping(path: str | Path) -> list[str]:
    """Class names by id from a mapping.txt ("<id> <name>" per line, ids 0..C-1 each once in any order, names
    unique; blank lines skipped). A bad line is a ZsarError naming the file and the line number."""
    path = Path(path)
    by_id: dict[int, tuple[str, int]] = {}
    line_of_name: dict[str, int] = {}
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(None, 1)
        if len(fields) != 2 or not re.fullmatch(r"[+-]?\d+", fields[0]):
            raise ZsarError(f"line {number}: expected \"<id> <name>\", got {line.strip()!r}", path)
        class_id, name = int(fields[0]), fields[1].strip()
        if class_id < 0:
            raise ZsarError(f"line {number}: class id {class_id} is negative", path)
        if class_id in by_id:
            raise ZsarError(f"line {number}: class id {class_id} repeats (first on line {by_id[class_id][1]})", path)
        if name in line_of_name:
            raise ZsarError(f"line {number}: class name {name!r} repeats (first on line {line_of_name[name]})", path)
        by_id[class_id] = (name, number)
        line_of_name[name] = number
    if not by_id:
        raise ZsarError("no classes: the mapping is empty", path)
    missing = sorted(set(range(len(by_id))) - set(by_id))
    if missing:
        beyond = sorted(i for i in by_id if i >= len(by_id))
        raise ZsarError(f"class ids must be 0..{len(by_id) - 1} with each once: {missing[:10]} missing, "
                        f"{beyond[:10]} beyond (line {by_id[beyond[0]][1]})", path)
    return [by_id[i][0] for i in range(len(by_id))]


def _read_bundle(path: Path) -> list[str]:
    stems: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        stem = entry[:-4] if entry.endswith(".txt") else entry
        if not stem or stem in (".", "..") or "/" in stem or "\\" in stem:
            raise ZsarError(f"line {number}: {entry!r} is not a video file name", path)
        if stem in first_line:
            raise ZsarError(f"line {number}: video {stem!r} repeats (first on line {first_line[stem]})", path)
        first_line[stem] = number
        stems.append(stem)
    return stems


def _bundle_paths(root: Path) -> dict[int, dict[str, Path]]:
    splits = _folder(root / "splits", "splits")
    found: dict[int, dict[str, Path]] = {}
    for path in sorted(splits.iterdir()):
        match = _BUNDLE.match(path.name)
        if match and path.is_file():
            found.setdefault(int(match.group(2)), {})[match.group(1)] = path
    if not found:
        raise ZsarError("no bundles: expected train.split<k>.bundle and test.split<k>.bundle files", splits)
    return dict(sorted(found.items()))


def _complete(k: int, sides: dict[str, Path], splits: Path) -> dict[str, Path]:
    for side, other in (("train", "test"), ("test", "train")):
        if side not in sides:
            raise ZsarError(f"split {k} has a {other} bundle but no {side} bundle", splits / f"{side}.split{k}.bundle")
    return sides


def list_bundles(root: str | Path) -> dict[int, dict[str, list[str]]]:
    """Split index -> {"train": [...], "test": [...]} video stems (".txt" stripped), in bundle order."""
    root = _root(root)
    paths = {k: _complete(k, sides, root / "splits") for k, sides in _bundle_paths(root).items()}
    return {k: {side: _read_bundle(sides[side]) for side in ("train", "test")} for k, sides in paths.items()}


def _auto_background(class_names: list[str]) -> list[str]:
    return [name for name in class_names if name in AUTO_BACKGROUND]


def segmentation_release_info(root: str | Path) -> dict:
    """A cheap summary: classes, videos, splits and the feature dimension (read from one file's header)."""
    root = _root(root)
    classes = read_mapping(root / "mapping.txt")
    features = _folder(root / "features", "features")
    labels = _folder(root / "groundTruth", "groundTruth")
    feature_stems = {p.stem for p in features.glob("*.npy")}
    label_stems = {p.stem for p in labels.glob("*.txt")}
    bundles = list_bundles(root)
    feature_dim = None
    if feature_stems:
        first = features / f"{min(feature_stems)}.npy"
        try:
            array = np.load(first, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ZsarError(f"cannot read features: {type(exc).__name__}: {exc}", first) from exc
        if array.ndim != 2:
            raise ZsarError(f"features must be [D, T], got shape {array.shape}", first)
        feature_dim = int(array.shape[0])
    return {
        "root": str(root),
        "classes": classes,
        "num_classes": len(classes),
        "background_auto": _auto_background(classes),
        "videos": len(feature_stems & label_stems),
        "features_without_labels": sorted(feature_stems - label_stems),
        "labels_without_features": sorted(label_stems - feature_stems),
        "splits": {k: {side: len(stems) for side, stems in sides.items()} for k, sides in bundles.items()},
        "feature_dim": feature_dim,
    }


def _background_ids(background, class_names: list[str], mapping: Path) -> tuple[tuple[int, ...], list[str]]:
    if isinstance(background, str):
        names = _auto_background(class_names) if background == "auto" else [background]
    else:
        names = list(background)
    unknown = [n for n in names if n not in class_names]
    if unknown:
        raise ZsarError(f"background class {', '.join(map(repr, unknown))} not in the mapping; known classes: "
                        f"{', '.join(class_names)}", mapping)
    ids = tuple(sorted({class_names.index(n) for n in names}))
    return ids, [class_names[i] for i in ids]


def _load_labels(path: Path, ids: dict[str, int]) -> np.ndarray:
    lines = _read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ZsarError("empty label file: zero frames", path)
    labels = np.empty(len(lines), dtype=np.int64)
    unknown: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if name in ids:
            labels[number - 1] = ids[name]
        else:
            unknown.append((number, name))
    if unknown:
        number, name = unknown[0]
        shown = repr(name) if name else "'' (a blank line)"
        more = f" ({len(unknown) - 1} more unknown lines)" if len(unknown) > 1 else ""
        raise ZsarError(f"label {shown} on line {number} is not in mapping.txt{more}", path)
    return labels


def _load_features(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ZsarError("feature file not found", path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ZsarError(f"cannot read features: {type(exc).__name__}: {exc}", path) from exc
    if not isinstance(array, np.ndarray):
        raise ZsarError("not a single .npy array", path)
    if array.ndim != 2:
        raise ZsarError(f"features must be 2-D [D, T], got shape {array.shape}", path)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ZsarError(f"features must be numbers, got dtype {array.dtype}", path)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ZsarError(f"features are empty: shape {array.shape} [D, T]", path)
    return array


def _raise_collected(problems: list[ZsarError], root: Path, what: str) -> None:
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    shown = "; ".join(str(p) for p in problems[:MAX_PROBLEMS_SHOWN])
    more = f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
    raise ZsarError(f"{len(problems)} {what} are unusable: {shown}{more}", root)


def _check_options(split, validation_fraction: float, max_length_mismatch) -> None:
    if isinstance(split, bool) or not isinstance(split, int | np.integer):
        raise ZsarError(f"split must be a whole number, got {split!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ZsarError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if max_length_mismatch is not None and (isinstance(max_length_mismatch, bool) or max_length_mismatch < 0):
        raise ZsarError(f"max_length_mismatch must be a whole number of frames >= 0, got {max_length_mismatch!r}")


def _split_videos(root: Path, split: int, features_dir: Path, labels_dir: Path
                  ) -> tuple[dict[str, list[str]], dict[str, Path]]:
    """The train and test video stems of `split` and their bundle files; every entry without both files is
    reported at once."""
    bundle_paths = _bundle_paths(root)
    if split not in bundle_paths:
        raise ZsarError(f"no bundles for split {split}; available splits: {', '.join(map(str, bundle_paths))}",
                        root / "splits")
    paths = _complete(split, bundle_paths[split], root / "splits")
    videos = {side: _read_bundle(paths[side]) for side in ("train", "test")}
    both = [v for v in videos["train"] if v in set(videos["test"])]
    if both:
        raise ZsarError(f"{len(both)} videos are in both the train and the test bundle: {both[:MAX_PROBLEMS_SHOWN]} "
                        f"(test bundle {paths['test']})", paths["train"])
    missing: list[ZsarError] = []
    for side in ("train", "test"):
        for stem in videos[side]:
            absent = [str(f) for f in (features_dir / f"{stem}.npy", labels_dir / f"{stem}.txt") if not f.is_file()]
            if absent:
                missing.append(ZsarError(f"names video {stem!r} but {' and '.join(absent)} "
                                         f"{'is' if len(absent) == 1 else 'are'} missing", paths[side]))
    _raise_collected(missing, root, "bundle entries")
    return videos, paths


def _assign(videos: dict[str, list[str]], paths: dict[str, Path], validation_fraction: float,
            seed: int) -> dict[str, str]:
    """Each video's split: its bundle's, except a seeded fraction of the train videos that becomes "val"."""
    assignment = {stem: side for side in ("train", "test") for stem in videos[side]}
    if validation_fraction > 0:
        train = sorted(videos["train"])
        if len(train) < 2:
            raise ZsarError(f"validation_fraction {validation_fraction} needs at least 2 train videos, the bundle "
                            f"has {len(train)}", paths["train"])
        n_val = min(len(train) - 1, max(1, round(validation_fraction * len(train))))
        order = np.random.default_rng(seed).permutation(len(train))
        for i in order[:n_val]:
            assignment[train[i]] = "val"
    return assignment


def _one_video(stem: str, folders: tuple[Path, Path], ids: dict[str, int], feature_dim, max_length_mismatch):
    """(labels, features view [T, D], T of the features, T of the labels) of one video, lengths reconciled."""
    feature_file, label_file = folders[0] / f"{stem}.npy", folders[1] / f"{stem}.txt"
    labels = _load_labels(label_file, ids)
    raw = _load_features(feature_file)
    if feature_dim is not None and raw.shape[0] != feature_dim[0]:
        raise ZsarError(f"features have D = {raw.shape[0]} but {feature_dim[1].name} has D = {feature_dim[0]}",
                        feature_file)
    t_feat, t_gt = raw.shape[1], len(labels)
    tolerance = default_length_tolerance(t_feat, t_gt) if max_length_mismatch is None else max_length_mismatch
    if abs(t_feat - t_gt) > tolerance:
        raise ZsarError(f"features have {t_feat} frames but {label_file} has {t_gt} labels (more than "
                        f"{tolerance} frames apart)", feature_file)
    t = min(t_feat, t_gt)
    features = raw[:, :t].T  # a view of the memory-mapped file: read when used, not held in memory
    bad = int(features.size - np.count_nonzero(np.isfinite(raw[:, :t])))
    if bad:
        raise ZsarError(f"features have {bad} non-finite values", feature_file)
    return labels[:t], features, t_feat, t_gt


def _load_videos(root: Path, videos, assignment, folders, class_names, max_length_mismatch):
    """Every video as a Stream (problems collected and raised together), with the truncation counts and the
    feature dimension."""
    ids = {n: i for i, n in enumerate(class_names)}
    streams: list[Stream] = []
    problems: list[ZsarError] = []
    feature_dim: tuple[int, Path] | None = None
    truncated, dropped_max = 0, 0
    for stem in videos["train"] + videos["test"]:
        try:
            labels, features, t_feat, t_gt = _one_video(stem, folders, ids, feature_dim, max_length_mismatch)
        except ZsarError as exc:
            problems.append(exc)
            continue
        feature_file = folders[0] / f"{stem}.npy"
        if feature_dim is None:
            feature_dim = (features.shape[1], feature_file)
        if t_feat != t_gt:
            truncated += 1
            dropped_max = max(dropped_max, abs(t_feat - t_gt))
        streams.append(Stream(stream_id=stem, split=assignment[stem], labels=labels, features=features,
                              source=str(feature_file)))
    _raise_collected(problems, root, "videos")
    return streams, truncated, dropped_max, feature_dim


def open_segmentation_release(
    root: str | Path,
    split: int = 1,
    background: str | list[str] | tuple[str, ...] = "auto",
    name: str | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    max_length_mismatch: int | None = None,
) -> StreamSet:
    """The videos of split `split`'s train and test bundles as streams (features [T, D] float32, labels [T] int64).

    `split` on each stream is "train" or "test"; with `validation_fraction` > 0, round(fraction x train videos)
    of them (at least one, leaving at least one for training), drawn with `seed` from the sorted train stems,
    become "val" (the release has no validation set; this keeps selection off the test bundle).
    `background`: "auto" (the `AUTO_BACKGROUND` names present), a class name or a list of names, or () for none.
    `max_length_mismatch`: frames by which feature and label lengths may differ (None: `default_length_tolerance`);
    within it both are truncated to the shorter. Every unusable video is collected and reported in one ZsarError.
    """
    root = _root(root)
    _check_options(split, validation_fraction, max_length_mismatch)
    mapping = root / "mapping.txt"
    class_names = read_mapping(mapping)
    background_ids, background_names = _background_ids(background, class_names, mapping)
    folders = (_folder(root / "features", "features"), _folder(root / "groundTruth", "groundTruth"))
    videos, paths = _split_videos(root, int(split), *folders)
    assignment = _assign(videos, paths, validation_fraction, seed)
    streams, truncated, dropped_max, feature_dim = _load_videos(root, videos, assignment, folders, class_names,
                                                                max_length_mismatch)
    return StreamSet(
        name=name or root.name,
        class_names=class_names,
        streams=streams,
        background=background_ids,
        provenance={
            "format": "segmentation_release",
            "root": str(root),
            "split": int(split),
            "background": background_names,
            "validation_fraction": float(validation_fraction),
            "seed": int(seed),
            "max_length_mismatch": max_length_mismatch,
            "truncated_videos": truncated,
            "max_frames_dropped": dropped_max,
            "feature_dim": feature_dim[0] if feature_dim else None,
        },
    )

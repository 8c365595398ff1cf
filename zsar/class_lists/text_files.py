"""User text inputs: class-name lists and per-class description files (several variants per class)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from zsar.errors import ZsarError


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ZsarError("file not found", path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ZsarError(f"cannot read as UTF-8 text: {exc}", path) from exc


def _csv_rows(path: Path) -> list[tuple[int, str]]:
    """Rows `idx,text` of a CSV; an optional header row (first field not an integer) is skipped."""
    rows = [r for r in csv.reader(_read_text(path).splitlines()) if r and any(f.strip() for f in r)]
    if rows and not rows[0][0].strip().lstrip("-").isdigit():
        rows = rows[1:]
    out = []
    for line_no, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip().lstrip("-").isdigit():
            raise ZsarError(f"row {line_no} is not `idx,text`: {row}", path)
        out.append((int(row[0]), ",".join(row[1:]).strip()))
    return out


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a `.txt` (one per line) or a `.csv` of `idx,label` rows (indices 0..C-1)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(path)
        by_idx: dict[int, str] = {}
        for idx, label in rows:
            if idx in by_idx:
                raise ZsarError(f"class index {idx} appears twice", path)
            by_idx[idx] = label
        if sorted(by_idx) != list(range(len(by_idx))):
            raise ZsarError(f"class indices must be 0..{len(by_idx) - 1} without gaps", path)
        names = [by_idx[i] for i in range(len(by_idx))]
    else:
        names = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    if not names:
        raise ZsarError("no class names in file", path)
    if any(not n for n in names):
        raise ZsarError("empty class name", path)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ZsarError(f"class names repeat: {dup}", path)
    return names


def read_class_texts(path: str | Path, class_names: list[str]) -> list[list[str]]:
    """Per-class text variants (descriptions, paraphrases) for the given classes.

    Formats: `.txt` with one text per line aligned with the classes; `.csv` of `idx,text` rows
    (repeat an index for several variants); `.json` mapping class name or index to a text or a
    list of texts. Every class must get at least one text.
    """
    path = Path(path)
    texts: list[list[str]] = [[] for _ in class_names]
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(_read_text(path))
        except ValueError as exc:
            raise ZsarError(f"invalid JSON: {exc}", path) from exc
        if not isinstance(data, dict):
            raise ZsarError("expected an object mapping class name or index to text(s)", path)
        index = {name: i for i, name in enumerate(class_names)}
        for key, value in data.items():
            idx = int(key) if key.lstrip("-").isdigit() else index.get(key)
            if idx is None or not 0 <= idx < len(class_names):
                raise ZsarError(f"unknown class {key!r}", path)
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ZsarError(f"texts for {key!r} must be a string or a list of strings", path)
            texts[idx].extend(v.strip() for v in values if v.strip())
    elif suffix == ".csv":
        for idx, text in _csv_rows(path):
            if not 0 <= idx < len(class_names):
                raise ZsarError(f"class index {idx} outside 0..{len(class_names) - 1}", path)
            texts[idx].append(text)
    else:
        lines = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
        if len(lines) != len(class_names):
            raise ZsarError(f"has {len(lines)} lines but there are {len(class_names)} classes", path)
        texts = [[line] for line in lines]
    missing = [class_names[i] for i, t in enumerate(texts) if not t]
    if missing:
        raise ZsarError(f"no text for classes {missing}", path)
    return texts

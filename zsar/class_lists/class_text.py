"""Class text files: per class, what the action is, how the body moves, its parts and other names.

One TOML format (`zsar-class-text/1`, docs/class_text.md) serves the built-in class lists (written for zsar,
in `data/text/`) and the files users write for their own classes (`zsar text template` starts one):

```toml
format = "zsar-class-text/1"

[[class]]
id = 0                      # the class index (line number - 1 in the class-names file)
name = "drink water"        # exactly the class name
description = "..."         # one sentence: what the action is
motion = "..."              # which body parts move how, in what order, as a skeleton shows it
parts = ["drink", "hand to mouth", "cup"]      # verb, body part or direction, object (2 or 3 phrases)
paraphrases = ["take a sip", "drink from a cup"]  # at least two other names
```

A user file may leave out a field for every class (then the variants built from it are unavailable), but a field
given for one class must be given, non-empty, for all. Loading checks everything at once and names the file, the
class and the fix.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from zsar.class_lists.names import builtin_class_names, canonical_dataset
from zsar.errors import ZsarError

FORMAT = "zsar-class-text/1"
TEXT_FIELDS = ("description", "motion", "parts", "paraphrases")
_LIST_FIELDS = {"parts": (2, 3), "paraphrases": (2, None)}  # field -> (fewest, most) entries
# built-in class lists whose text lives in another list's file (NTU-60 is the first 60 classes of NTU-120)
_TEXT_FILE_OF = {"ntu60": "ntu120"}
TEXT_DATASETS = ("ntu60", "ntu120", "pku51", "hri30", "nw_ucla", "synthetic")


@dataclass(frozen=True)
class ClassText:
    """The texts of one class; a field the file does not give is None."""

    name: str
    description: str | None = None
    motion: str | None = None
    parts: tuple[str, ...] | None = None
    paraphrases: tuple[str, ...] | None = None

    def field(self, name: str) -> str | tuple[str, ...] | None:
        return getattr(self, name)


def _problems_of_entry(entry: object, position: int, class_names: list[str] | None) -> list[str]:
    """Everything wrong with one `[[class]]` table (empty when it is fine)."""
    if not isinstance(entry, dict):
        return [f"[[class]] table {position} is not a table"]
    label = f"class {entry.get('name', '?')!r} ([[class]] table {position})"
    problems = []
    unknown = sorted(set(entry) - {"id", "name", *TEXT_FIELDS})
    if unknown:
        problems.append(f"{label}: unknown keys {unknown}; known: id, name, {', '.join(TEXT_FIELDS)}")
    name, idx = entry.get("name"), entry.get("id")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"[[class]] table {position}: `name` is missing or empty; give the class name")
    if not isinstance(idx, int) or isinstance(idx, bool):
        problems.append(f"{label}: `id` must be the class index (an integer)")
    elif class_names is not None and isinstance(name, str):
        if not 0 <= idx < len(class_names):
            problems.append(f"{label}: id {idx} is outside 0..{len(class_names) - 1} of the class names")
        elif class_names[idx] != name:
            where = f"; {name!r} is class {class_names.index(name)}" if name in class_names else \
                "; it is not one of the class names"
            problems.append(f"{label}: id {idx} is {class_names[idx]!r} in the class names{where}: "
                            "make `id` and `name` match the class-names file")
    for key in TEXT_FIELDS:
        if key in entry:
            problems += [f"{label}: {p}" for p in _field_problems(key, entry[key])]
    return problems


def _field_problems(key: str, value: object) -> list[str]:
    if key not in _LIST_FIELDS:
        ok = isinstance(value, str) and value.strip()
        return [] if ok else [f"`{key}` is empty or not a string; write it"]
    fewest, most = _LIST_FIELDS[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return [f"`{key}` must be a list of non-empty strings"]
    if len(value) < fewest or (most is not None and len(value) > most):
        span = f"{fewest} to {most}" if most else f"at least {fewest}"
        return [f"`{key}` has {len(value)} entries; give {span}"]
    return []


def parse_class_text(text: str, path: Path, class_names: list[str] | None = None) -> list[ClassText]:
    """Class texts from the TOML `text` of `path`, checked against `class_names` (every class present once, ids and
    names agreeing, no empty field; entries may come in any order); one error lists every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ZsarError(f"not valid TOML: {exc}", path) from exc
    if data.get("format") != FORMAT:
        raise ZsarError(f"`format = \"{FORMAT}\"` is missing or different ({data.get('format')!r}); "
                        "see docs/class_text.md", path)
    entries = data.get("class")
    if not isinstance(entries, list) or not entries:
        raise ZsarError("no [[class]] tables; write one per class (zsar text template NAMES starts a file)", path)
    problems = [p for i, entry in enumerate(entries, start=1) for p in _problems_of_entry(entry, i, class_names)]
    usable = [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), int)]
    problems += _coverage_problems(usable, class_names if class_names is not None else range(len(entries)))
    if problems:
        raise ZsarError(_listing(problems), path)
    by_id = {entry["id"]: entry for entry in usable}
    return [_class_text(by_id[i]) for i in range(len(by_id))]


def _coverage_problems(entries: list[dict], class_names) -> list[str]:
    """Ids given twice, classes without an entry, fields given for some classes only."""
    problems, seen = [], {}
    for entry in entries:
        if entry["id"] in seen:
            problems.append(f"id {entry['id']} appears twice ({seen[entry['id']]!r}, {entry.get('name')!r}): "
                            "give each class one [[class]] table")
        seen[entry["id"]] = entry.get("name")
    named = not isinstance(class_names, range)
    for i in (i for i in range(len(class_names)) if i not in seen):
        problems.append(f"class {class_names[i] if named else i!r} (id {i}) is missing; add a [[class]] with id = {i}"
                        + (f' and name = "{class_names[i]}"' if named else ""))
    for key in TEXT_FIELDS:
        lacking = [e.get("name") for e in entries if key not in e]
        if len(lacking) < len(entries) and lacking:
            problems.append(f"`{key}` is given for some classes but not for {lacking[:10]}; give it for every class "
                            "(or for none)")
    return problems


def _class_text(entry: dict) -> ClassText:
    lists = {k: tuple(s.strip() for s in entry[k]) for k in _LIST_FIELDS if k in entry}
    plain = {k: entry[k].strip() for k in ("description", "motion") if k in entry}
    return ClassText(name=entry["name"], **plain, **lists)


def _listing(problems: list[str]) -> str:
    head = f"{len(problems)} problem(s) in the class text file:"
    return "\n  ".join([head, *problems[:30]]) + (f"\n  ... and {len(problems) - 30} more" if len(problems) > 30
                                                   else "")


def read_class_text(path: str | Path, class_names: list[str] | None = None) -> list[ClassText]:
    """A user's class text file, checked against the class names (when given)."""
    path = Path(path)
    if not path.is_file():
        raise ZsarError("class text file not found", path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark some editors write is fine
    except UnicodeDecodeError as exc:
        raise ZsarError(f"is not UTF-8 text (byte {exc.start}); save it as UTF-8", path) from exc
    return parse_class_text(text, path, class_names)


def builtin_class_text(dataset: str) -> list[ClassText]:
    """The class text zsar ships for a built-in class list (or the demo's `synthetic` classes)."""
    key = canonical_dataset(dataset)
    if key not in TEXT_DATASETS:
        raise ZsarError(f"no built-in class text for {dataset!r}; built-in: {', '.join(TEXT_DATASETS)}")
    stem = _TEXT_FILE_OF.get(key, key)
    resource = resources.files("zsar.class_lists").joinpath("data", "text", f"{stem}.toml")
    names = builtin_class_names(stem) if stem != "synthetic" else None
    texts = parse_class_text(resource.read_text(encoding="utf-8"), Path(str(resource)), names)
    if key != stem:
        own = builtin_class_names(key)
        texts = texts[: len(own)]
        if [t.name for t in texts] != own:
            raise ZsarError(f"the {stem} class text does not start with the {key} classes", Path(str(resource)))
    return texts


def find_builtin_class_text(class_names: list[str]) -> tuple[str, list[ClassText]] | None:
    """(dataset, class text) of the built-in list whose names are exactly `class_names`, else None (only a list
    whose names file matches is parsed; the demo's classes have no names file)."""
    for key in TEXT_DATASETS:
        if key != "synthetic" and builtin_class_names(key) != list(class_names):
            continue
        texts = builtin_class_text(key)
        if [t.name for t in texts] == list(class_names):
            return key, texts
    return None


def class_text_for(class_names: list[str], class_text: str | Path | None = None) -> list[ClassText] | None:
    """The class text of these classes: the file `class_text` (checked against them), else the built-in one whose
    classes these are, else None."""
    if class_text:
        return read_class_text(class_text, class_names)
    found = find_builtin_class_text(class_names)
    return None if found is None else found[1]


def class_text_template(class_names: list[str]) -> str:
    """A class text file for the given classes with every field to fill in."""
    lines = [f'format = "{FORMAT}"', ""]
    for i, name in enumerate(class_names):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        lines += ["[[class]]", f"id = {i}", f'name = "{escaped}"', 'description = ""  # one sentence: what it is',
                  'motion = ""       # which body parts move how, in what order',
                  'parts = ["", ""]  # verb, body part or direction, (object)',
                  'paraphrases = ["", ""]', ""]
    return "\n".join(lines)


def resolve_classes(classes: str | Path, class_text: str | Path | None = None
                    ) -> tuple[list[str], list[ClassText] | None]:
    """Class names and class text from a built-in list's name (`ntu60`, `synthetic`, ...) or a class-names file;
    the class text is `class_text` when given, else the built-in one whose classes these are (None if none)."""
    from zsar.class_lists.text_files import read_class_names

    key = canonical_dataset(str(classes))
    if key in TEXT_DATASETS and not Path(classes).exists():
        builtin = builtin_class_text(key)
        names = [t.name for t in builtin]
        return names, read_class_text(class_text, names) if class_text else builtin
    names = read_class_names(classes)
    return names, class_text_for(names, class_text)

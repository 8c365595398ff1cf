"""Built-in class names (one per line; line number - 1 = class index)."""

from __future__ import annotations

from importlib import resources

from zsar.errors import ZsarError

BUILTIN_DATASETS = ("ntu60", "ntu120", "pku51", "hri30", "nw_ucla")
_ALIASES = {"nw-ucla": "nw_ucla", "nwucla": "nw_ucla", "ntu-60": "ntu60", "ntu-120": "ntu120", "pku-mmd": "pku51"}


def canonical_dataset(name: str) -> str:
    """Normalise a dataset name (`NTU-60` -> `ntu60`)."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def builtin_class_names(dataset: str) -> list[str]:
    """Class names of a built-in dataset, in class-index order."""
    key = canonical_dataset(dataset)
    if key not in BUILTIN_DATASETS:
        raise ZsarError(f"unknown dataset {dataset!r}; built-in class lists: {', '.join(BUILTIN_DATASETS)}")
    text = resources.files("zsar.class_lists").joinpath("data", f"{key}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]

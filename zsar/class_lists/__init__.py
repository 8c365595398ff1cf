"""Class names, standard zero-shot splits and user text inputs, as data."""

from __future__ import annotations

from zsar.class_lists.names import BUILTIN_DATASETS, builtin_class_names, canonical_dataset
from zsar.class_lists.splits import (
    ZeroShotSplit,
    builtin_split_names,
    load_split,
    make_split,
    random_split,
)
from zsar.class_lists.text_files import read_class_names, read_class_texts

__all__ = [
    "BUILTIN_DATASETS",
    "ZeroShotSplit",
    "builtin_class_names",
    "builtin_split_names",
    "canonical_dataset",
    "load_split",
    "make_split",
    "random_split",
    "read_class_names",
    "read_class_texts",
]

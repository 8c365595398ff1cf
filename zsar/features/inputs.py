"""What a cache was computed from, as digests: a rerun or re-import with changed inputs must not keep old rows.

Two digests are kept in the cache's attributes: one of the metadata table (sample ids, labels, splits, every
extra column) and one of the content the rows were computed from. By default the content digest covers every
source file's path, size and modification time (cheap; a changed file changes it); importers of in-memory
arrays pass a hash of the arrays themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

_TABLE_EXCLUDED = ("status", "error", "source")  # source paths are covered by the content digest


def metadata_digest(table: pd.DataFrame) -> str:
    """sha256 of the metadata table's content (status and error excluded: the writer fills them; source excluded:
    a dataset that moves keeps its cache), from
    pandas' fixed-key row hashes of every column (object columns holding lists are hashed as their text)."""
    kept = table.drop(columns=[c for c in _TABLE_EXCLUDED if c in table.columns])
    digest = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in kept.dtypes.items()]).encode())
    for column in kept.columns:
        series = kept[column]
        try:
            hashed = pd.util.hash_pandas_object(series, index=False)
        except TypeError:  # unhashable values (lists, arrays)
            hashed = pd.util.hash_pandas_object(series.astype(str), index=False)
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


def _file_record(source: str) -> str:
    """`name<TAB>size<TAB>mtime` of the file a source names (`file#member` names a member of a file). The folder
    is left out, so a dataset moved with its modification times (mv, cp -p, rsync -a) keeps its caches."""
    for candidate in (source, source.partition("#")[0]):
        try:
            stat = os.stat(candidate)
        except (OSError, ValueError):
            continue
        return f"{os.path.basename(candidate)}\t{source.partition('#')[2]}\t{stat.st_size}\t{stat.st_mtime_ns}"
    return f"{source}\t-"


def source_files_digest(sources: Iterable[str]) -> str:
    """sha256 over each distinct source file's name, size and modification time (a source that is not a file
    counts as its text)."""
    records = sorted(_file_record(source) for source in set(map(str, sources)))
    return hashlib.sha256("\n".join(records).encode()).hexdigest()


def samples_digest(sample_ids: list[str]) -> str:
    """sha256 of a sample list in order (a sharded run's whole list, which a merge must reproduce)."""
    return hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()


def arrays_digest(*arrays: np.ndarray | None) -> str:
    """sha256 of arrays' shapes, dtypes and bytes (features imported from memory)."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def describe_input_change(old: dict, new: dict) -> list[str]:
    """Which recorded inputs differ (an empty list when they match or were not recorded)."""
    labels = {"metadata": "the metadata table (sample ids, labels, splits or other columns)",
              "content": "the input data (features, or source files' size / modification time)"}
    return [labels[k] for k in labels if old.get(k) and new.get(k) and old[k] != new[k]]

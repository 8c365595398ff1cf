"""Join the shard caches of one sharded extraction into the cache a single process would have written.

Checks before anything is written: every shard's content matches its fingerprint, all shards come from the
same encoder, config, checkpoint and sample list, every shard index 0..n-1 is there exactly once, and the
shards' samples are disjoint and together are the whole list in its order (no duplicate, no missing sample).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from zsar.errors import ZsarError
from zsar.features.inputs import samples_digest
from zsar.features.reader import FeatureCache
from zsar.features.schema import identity_difference
from zsar.features.writer import partial_path, write_cache


def _open_shard(path: Path) -> FeatureCache:
    if not path.exists() and partial_path(path).exists():
        raise ZsarError("this shard is unfinished (only its .partial file exists); rerun the shard to complete it",
                        path)
    cache = FeatureCache(path)
    if cache.header.shard is None:
        raise ZsarError("not a shard cache (its header has no shard record)", path)
    cache.verify_all(fingerprint=True)
    return cache


def _arrays(cache: FeatureCache) -> dict[str, np.ndarray]:
    with h5py.File(cache.path, "r") as h5:
        return {name: h5[name][:] for name in ("embeddings", "logits", "temporal") if name in h5}


def merge_shards(paths: list[str | Path], out: str | Path, overwrite: bool = False) -> Path:
    """Write the merged cache to `out`; returns its path."""
    if not paths:
        raise ZsarError("no shard caches given")
    caches = [_open_shard(Path(p)) for p in paths]
    first = caches[0]
    record = first.header.shard
    for cache in caches[1:]:
        diff = identity_difference(first.header, cache.header)
        if diff:
            raise ZsarError(f"was written by another encoder or config than {first.path} ({'; '.join(diff)})",
                            cache.path)
        other = cache.header.shard
        for key in ("count", "total_rows", "samples_sha256"):
            if other[key] != record[key]:
                raise ZsarError(f"belongs to another sharded run than {first.path} ({key} {other[key]} != "
                                f"{record[key]})", cache.path)
    count, total = int(record["count"]), int(record["total_rows"])
    by_index: dict[int, FeatureCache] = {}
    for cache in caches:
        index = int(cache.header.shard["index"])
        if index in by_index:
            raise ZsarError(f"shard {index} of {count} is given twice ({by_index[index].path} and {cache.path})")
        by_index[index] = cache
    missing = sorted(set(range(count)) - set(by_index))
    if missing:
        raise ZsarError(f"shards {missing} of {count} are missing; each of 0..{count - 1} is needed")
    order = np.arange(total)
    ids = np.empty(total, dtype=object)
    for index, cache in by_index.items():
        rows = order[index::count]
        if cache.num_rows != rows.size:
            raise ZsarError(f"shard {index} of {count} should hold {rows.size} of the {total} samples but holds "
                            f"{cache.num_rows}", cache.path)
        ids[rows] = cache.metadata["sample_id"].astype(str).to_numpy()
    seen = pd.Series(ids)
    if seen.duplicated().any():
        raise ZsarError(f"samples appear in more than one shard, e.g. {seen[seen.duplicated()].iloc[:3].tolist()}")
    if samples_digest(ids.tolist()) != record["samples_sha256"]:
        raise ZsarError("the shards' samples, interleaved, are not the sample list of the sharded run")
    metadata = pd.concat([by_index[i].metadata for i in range(count)], ignore_index=True)
    position = np.concatenate([order[i::count] for i in range(count)])
    inverse = np.empty(total, dtype=np.int64)
    inverse[position] = np.arange(total)
    metadata = metadata.iloc[inverse].reset_index(drop=True)
    parts = [_arrays(by_index[i]) for i in range(count)]
    arrays = {name: np.concatenate([p[name] for p in parts])[inverse] for name in parts[0]}
    header = replace(first.header, shard=None)
    shards_digest = hashlib.sha256(" ".join(by_index[i].fingerprint for i in range(count)).encode()).hexdigest()
    return write_cache(out, header, metadata, arrays["embeddings"], arrays.get("logits"), arrays.get("temporal"),
                       overwrite=overwrite, content_digest=shards_digest)

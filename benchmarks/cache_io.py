"""Cache write and read throughput: 100,000 x 768 float16 embeddings with metadata. Prints JSON.

Baselines measured in the same run on the same file: a raw h5py write of the same array (one dataset, no
metadata, no checksums, no sync) and a raw h5py read of the cache's `embeddings` dataset. zsar's reads are
timed with the row checksums checked (the default) and without (`verify=False`)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from zsar.features import CacheHeader, FeatureCache, write_cache


def best_of(run, repeats: int = 3):
    """(fastest wall time of `repeats` calls, the last result): reads here are noisy from allocation and paging."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - t)
    return best, result


def _raw_read(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5["embeddings"][:]


def main(n: int = 100_000, d: int = 768) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float16)
    labels = rng.integers(0, 60, n)
    splits = np.where(np.arange(n) % 5 == 0, "test", "train")
    meta = pd.DataFrame({"sample_id": [f"S{i:07d}" for i in range(n)], "label": labels,
                         "class_name": [f"c{c}" for c in labels], "split": splits,
                         "source": "bench", "subject": rng.integers(1, 40, n)})
    header = CacheHeader(dataset="bench", modality="video", encoder="bench", embedding_dim=d, dtype="float16",
                         class_names=tuple(f"c{i}" for i in range(60)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        t = time.perf_counter()
        write_cache(path, header, meta, x, batch_rows=4096)
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        with h5py.File(Path(tmp) / "raw.h5", "w") as h5:
            h5.create_dataset("embeddings", data=x)
        raw_write_s = time.perf_counter() - t
        t = time.perf_counter()
        cache = FeatureCache(path)
        open_s = time.perf_counter() - t
        raw_read_s, raw = best_of(lambda: _raw_read(path))
        timings = {}
        for _ in range(2):  # alternate, so that neither side always runs on a cold allocator
            for verify in (True, False):
                suffix = "" if verify else "_unverified"
                seconds, full = best_of(lambda v=verify: cache.load(verify=v))
                timings[f"read_all_s{suffix}"] = min(timings.get(f"read_all_s{suffix}", 1e9), round(seconds, 3))
                seconds, subset = best_of(lambda v=verify: cache.load(split="test", classes=list(range(10)), verify=v))
                timings[f"read_subset_s{suffix}"] = min(timings.get(f"read_subset_s{suffix}", 1e9), round(seconds, 3))
        size_mb = path.stat().st_size / 2**20
    assert len(full) == n and raw.shape == x.shape
    data_mb = x.nbytes / 2**20
    return {
        "benchmark": "cache_io", "rows": n, "dim": d, "dtype": "float16", "file_mb": round(size_mb, 1),
        "write_s": round(write_s, 3), "write_mb_per_s": round(data_mb / write_s, 1),
        "raw_h5py_write_s": round(raw_write_s, 3), "raw_h5py_write_mb_per_s": round(data_mb / raw_write_s, 1),
        "open_validate_s": round(open_s, 3), "raw_h5py_read_s": round(raw_read_s, 3), **timings,
        "read_all_vs_raw": round(raw_read_s / timings["read_all_s"], 2),
        "read_all_unverified_vs_raw": round(raw_read_s / timings["read_all_s_unverified"], 2),
        "read_subset_rows": len(subset), "python": sys.version.split()[0],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

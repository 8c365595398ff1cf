"""Cache write and read throughput: 100,000 x 768 float16 embeddings with metadata. Prints JSON.

Baselines measured in the same run on the same file: a raw h5py write of the same array (one dataset, no
metadata, no checksums, no sync) and raw h5py reads of the cache's `embeddings` dataset (all rows, and the
subset's rows by h5py's own selection). zsar's reads are timed in the stored dtype and as float32, with the row
checksums checked (the default) and without (`verify=False`); NaN/inf is always checked."""

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


def _raw_read(path: Path, rows: np.ndarray | None = None) -> np.ndarray:
    """The baseline: h5py reading the `embeddings` dataset (all of it, or the rows by h5py's own selection)."""
    with h5py.File(path, "r") as h5:
        return h5["embeddings"][:] if rows is None else h5["embeddings"][rows]


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
        subset_rows = cache.select_rows("test", list(range(10)))
        timings, raw = {}, None
        for _ in range(2):  # alternate, so that neither side always runs on a cold allocator
            seconds, raw = best_of(lambda: _raw_read(path))
            _keep_min(timings, "raw_h5py_read_all_s", seconds)
            seconds, _ = best_of(lambda: _raw_read(path, subset_rows))
            _keep_min(timings, "raw_h5py_read_subset_s", seconds)
            for verify, dtype in [(True, None), (False, None), (True, np.float32), (False, np.float32)]:
                suffix = ("" if verify else "_unverified") + ("_float32" if dtype else "")
                seconds, full = best_of(lambda v=verify, t=dtype: cache.load(verify=v, dtype=t))
                _keep_min(timings, f"read_all_s{suffix}", seconds)
                seconds, subset = best_of(lambda v=verify, t=dtype: cache.load("test", list(range(10)), verify=v,
                                                                                dtype=t))
                _keep_min(timings, f"read_subset_s{suffix}", seconds)
        size_mb = path.stat().st_size / 2**20
    assert len(full) == n and raw.shape == x.shape and len(subset) == len(subset_rows)
    data_mb = x.nbytes / 2**20
    ratios = {}
    for key, value in timings.items():
        if key.startswith("read_"):
            base = "read_all" if key.startswith("read_all") else "read_subset"
            ratios[key.replace(f"{base}_s", base)] = round(timings[f"raw_h5py_{base}_s"] / value, 2)
    return {
        "benchmark": "cache_io", "rows": n, "dim": d, "dtype": "float16", "file_mb": round(size_mb, 1),
        "write_s": round(write_s, 3), "write_mb_per_s": round(data_mb / write_s, 1),
        "raw_h5py_write_s": round(raw_write_s, 3), "raw_h5py_write_mb_per_s": round(data_mb / raw_write_s, 1),
        "open_validate_s": round(open_s, 3), **timings, "throughput_vs_raw_h5py": ratios,
        "read_subset_rows": len(subset), "python": sys.version.split()[0],
        "note": "reads keep float16 unless _float32; unverified = row checksums not checked (NaN/inf always)",
    }


def _keep_min(timings: dict, key: str, seconds: float) -> None:
    timings[key] = min(timings.get(key, 1e9), round(seconds, 4))

if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

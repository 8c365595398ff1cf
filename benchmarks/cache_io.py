"""Cache write and read throughput: 100,000 x 768 float16 embeddings with metadata. Prints JSON."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from zsar.features import CacheHeader, FeatureCache, write_cache


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
        cache = FeatureCache(path)
        open_s = time.perf_counter() - t
        t = time.perf_counter()
        full = cache.load()
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        subset = cache.load(split="test", classes=list(range(10)))
        subset_s = time.perf_counter() - t
        size_mb = path.stat().st_size / 2**20
    assert len(full) == n
    return {
        "benchmark": "cache_io", "rows": n, "dim": d, "dtype": "float16", "file_mb": round(size_mb, 1),
        "write_s": round(write_s, 3), "write_rows_per_s": round(n / write_s),
        "open_validate_s": round(open_s, 3),
        "read_all_s": round(read_s, 3), "read_rows_per_s": round(n / read_s),
        "read_subset_rows": len(subset), "read_subset_s": round(subset_s, 3),
        "python": sys.version.split()[0],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

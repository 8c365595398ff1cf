"""Prototype search queries/s, FAISS vs numpy, at 60, 120 and 10,000 prototypes. Prints JSON."""

from __future__ import annotations

import json
import time

import numpy as np

from zsar.scoring import PrototypeIndex, faiss_available


def _qps(index: PrototypeIndex, queries: np.ndarray, k: int, repeats: int = 3) -> float:
    index.search(queries[:64], k)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        index.search(queries, k)
        best = min(best, time.perf_counter() - t)
    return len(queries) / best


def main(num_queries: int = 20_000, dim: int = 384, k: int = 5) -> dict:
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(num_queries, dim)).astype(np.float32)
    results = []
    for c in (60, 120, 10_000):
        protos = rng.normal(size=(c, dim)).astype(np.float32)
        row = {"prototypes": c, "numpy_qps": round(_qps(PrototypeIndex(protos, backend="numpy"), queries, k))}
        if faiss_available():
            fast = PrototypeIndex(protos, backend="faiss")
            row["faiss_qps"] = round(_qps(fast, queries, k))
            row["faiss_backend"] = fast.backend
            row["faiss_over_numpy"] = round(row["faiss_qps"] / row["numpy_qps"], 2)
        results.append(row)
    return {"benchmark": "prototype_search", "queries": num_queries, "dim": dim, "k": k, "results": results}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

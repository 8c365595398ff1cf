"""Scoring shared by the heads and the evaluation (a floor below both): prototype search, softmax, label
positions.

Prototype search: cosine similarity of queries to class prototypes, top-k.

FAISS `IndexFlatIP` on L2-normalised float32 vectors (moved to a GPU when faiss-gpu and a GPU are
present and a CUDA device is asked for); plain numpy when FAISS is not installed. Both return the
same neighbours (`numpy_topk` is the reference the FAISS path is tested against).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from zsar.errors import ZsarError

log = logging.getLogger(__name__)
BACKENDS = ("auto", "faiss", "numpy")


def normalise_rows(x: np.ndarray, what: str = "vectors") -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ZsarError(f"{what} must be a 2-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ZsarError(f"{what} contain NaN or inf")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms < 1e-12).any():
        raise ZsarError(f"{int((norms < 1e-12).sum())} {what} have zero length; cosine similarity is undefined")
    return x / norms


def numpy_topk(queries: np.ndarray, prototypes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: full cosine matrix, then the k best per row, best first."""
    sims = normalise_rows(queries, "queries") @ normalise_rows(prototypes, "prototypes").T
    k = min(k, sims.shape[1])
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else np.tile(np.arange(k), (len(sims), 1))
    part = np.take_along_axis(sims, idx, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(idx, order, axis=1)


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class PrototypeIndex:
    """Cosine top-k search over a fixed set of prototypes [C, D]."""

    def __init__(self, prototypes: np.ndarray, backend: str = "auto", device: str = "cpu"):
        if backend not in BACKENDS:
            raise ZsarError(f"search backend must be one of {BACKENDS}, not {backend!r}")
        self.prototypes = normalise_rows(prototypes, "prototypes")
        self.backend = "numpy"
        self._index = None
        if backend in ("auto", "faiss") and faiss_available():
            import faiss

            index = faiss.IndexFlatIP(self.prototypes.shape[1])
            if device.startswith("cuda") and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
                self._gpu_resources = faiss.StandardGpuResources()
                gpu_id = int(device.split(":")[1]) if ":" in device else 0
                index = faiss.index_cpu_to_gpu(self._gpu_resources, gpu_id, index)
                self.backend = "faiss-gpu"
            else:
                self.backend = "faiss-cpu"
            index.add(self.prototypes)
            self._index = index
        elif backend == "faiss":
            raise ZsarError("FAISS is not installed: pip install 'zsar[cpu]' (or 'zsar[gpu]')")

    def __len__(self) -> int:
        return int(self.prototypes.shape[0])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores [N, k], indices [N, k]), best first; k is capped at the number of prototypes."""
        q = normalise_rows(queries, "queries")
        if q.shape[1] != self.prototypes.shape[1]:
            raise ZsarError(f"queries are {q.shape[1]}-d but prototypes are {self.prototypes.shape[1]}-d")
        k = min(k, len(self))
        if self._index is None:
            return numpy_topk(q, self.prototypes, k)
        scores, idx = self._index.search(q, k)
        return scores, idx.astype(np.int64)

    def similarities(self, queries: np.ndarray) -> np.ndarray:
        """Full cosine matrix [N, C] in prototype order."""
        scores, idx = self.search(queries, len(self))
        out = np.empty_like(scores)
        np.put_along_axis(out, idx, scores, axis=1)
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def label_positions(labels: np.ndarray, class_ids: Sequence[int]) -> np.ndarray:
    """Map global labels to positions in `class_ids`; a label not among them is an error."""
    lookup = {int(c): i for i, c in enumerate(class_ids)}
    missing = sorted({int(x) for x in labels if int(x) not in lookup})
    if missing:
        raise ZsarError(f"labels {missing[:10]} are not among the candidate classes")
    return np.array([lookup[int(x)] for x in labels], dtype=np.int64)

"""Fingerprints: of a cache's content (identity, row order, status, every stored array) and of any file."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np

_CHUNK_ROWS = 8192
_ARRAYS = ("embeddings", "logits", "temporal")


def compute_fingerprint(h5: h5py.File, identity: dict) -> str:
    """Hash what defines the cache's content; equal fingerprints mean equal features."""
    digest = hashlib.sha256()
    digest.update(json.dumps(identity, sort_keys=True).encode())
    digest.update("\n".join(s.decode() if isinstance(s, bytes) else s for s in h5["sample_id"][:]).encode())
    digest.update(np.ascontiguousarray(h5["row_status"][:]).tobytes())
    for name in _ARRAYS:
        if name not in h5:
            continue
        data = h5[name]
        digest.update(f"{name}{data.shape}{data.dtype}".encode())
        for start in range(0, data.shape[0], _CHUNK_ROWS):
            digest.update(np.ascontiguousarray(data[start : start + _CHUNK_ROWS]).tobytes())
    return digest.hexdigest()


def file_sha256(path) -> str:
    """sha256 of a file's bytes (checkpoints, prototype files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

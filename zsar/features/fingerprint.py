"""Fingerprints and checksums: of a cache's content (identity, row order, status, every stored array), of its
rows (crc32 per row and array, written with the row and checked on every read) and of any file."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator

import h5py
import numpy as np

from zsar.features.crc_combine import block_matches, power_of_two_pieces

_CHUNK_ROWS = 8192
ARRAYS = ("embeddings", "logits", "temporal")


def row_crc32(values: np.ndarray) -> np.ndarray:
    """crc32 of each row's bytes, in the dtype the array is stored in: [N] uint32."""
    values = np.ascontiguousarray(values)
    rows = values.reshape(values.shape[0], -1).view(np.uint8) if values.size else values.reshape(len(values), 0)
    return np.fromiter((zlib.crc32(r) for r in rows), dtype=np.uint32, count=rows.shape[0])


def mismatched_in_block(block: np.ndarray, sums: np.ndarray, rows_per_piece: int) -> np.ndarray:
    """Positions (in the block) of rows whose bytes do not match `sums`; whole pieces are checked at once and
    only a piece that fails is checked row by row."""
    wrong = []
    for start, size in power_of_two_pieces(len(block), rows_per_piece):
        piece = block[start : start + size]
        if not block_matches(piece, sums[start : start + size]):
            wrong.append(np.flatnonzero(row_crc32(piece) != sums[start : start + size]) + start)
    return np.concatenate(wrong) if wrong else np.zeros(0, np.int64)


def stored_arrays(h5: h5py.File) -> list[str]:
    return [name for name in ARRAYS if name in h5]


def checksum_names(h5: h5py.File) -> list[str]:
    """The arrays whose per-row crc32 columns `row_crc32` holds, in column order ([] for version 1 caches)."""
    names = h5.attrs.get("checksum_arrays", []) if "row_crc32" in h5 else []
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def iter_row_blocks(h5: h5py.File, names: list[str], block_rows: int = _CHUNK_ROWS) -> Iterator[tuple[int, dict]]:
    """(first row, {name: rows of that array}) over the whole cache, in blocks."""
    n = h5["row_status"].shape[0]
    for start in range(0, n, block_rows):
        yield start, {name: h5[name][start : start + block_rows] for name in names}


def mismatched_rows(h5: h5py.File, ok: np.ndarray) -> dict[str, np.ndarray]:
    """Per array with checksums, the rows selected by `ok` (a boolean [N] mask) whose stored bytes do not match
    their crc32, read block by block (a block whose rows all match is checked with one crc32 call)."""
    names, sums = checksum_names(h5), h5["row_crc32"][:]
    found: dict[str, list] = {name: [] for name in names}
    for start, blocks in iter_row_blocks(h5, names):
        stop = start + len(blocks[names[0]])
        for column, name in enumerate(names):
            wrong = mismatched_in_block(blocks[name], sums[start:stop, column], _CHUNK_ROWS)
            found[name].append(wrong[ok[start + wrong]] + start)
    return {name: np.concatenate(parts) if parts else np.zeros(0, np.int64) for name, parts in found.items()}


def compute_fingerprint(h5: h5py.File, identity: dict) -> str:
    """Hash what defines the cache's content; equal fingerprints mean equal features."""
    digest = hashlib.sha256()
    digest.update(json.dumps(identity, sort_keys=True).encode())
    digest.update("\n".join(s.decode() if isinstance(s, bytes) else s for s in h5["sample_id"][:]).encode())
    digest.update(np.ascontiguousarray(h5["row_status"][:]).tobytes())
    for name in stored_arrays(h5):
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

"""Writing caches: by row index, crash-safe, resumable.

Rows go into `<path>.partial`; the fill mask `row_status` records which rows are done. A killed
run leaves the partial file, and a rerun with the same header and samples writes only the
missing rows. `finalize()` proves every row is ok or failed, fingerprints the content and renames
the partial file onto `<path>` in one step, so a reader sees the old file or the complete new one.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from zsar import __version__
from zsar.atomic import atomic_target
from zsar.errors import ZsarError
from zsar.features.fingerprint import compute_fingerprint
from zsar.features.schema import (
    SCHEMA_VERSION,
    STATUS_FAILED,
    STATUS_NAMES,
    STATUS_OK,
    STATUS_PENDING,
    CacheHeader,
    identity_difference,
    validate_metadata,
)

log = logging.getLogger(__name__)
_STR = h5py.string_dtype("utf-8")


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def sibling_parquet(path: Path) -> Path:
    return path.with_suffix(".parquet")


class CacheWriter:
    """Fill a cache row by row. Use as a context manager; call `finalize()` when done.

    `pending_rows()` lists what still has to be computed: all rows for a new cache, the holes
    of an interrupted one, none for a finished one with the same identity.
    """

    def __init__(self, path: str | Path, header: CacheHeader, metadata: pd.DataFrame, overwrite: bool = False):
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.header = header
        try:
            self.metadata = validate_metadata(metadata, header)
        except ZsarError as exc:
            raise ZsarError(f"metadata for this cache is invalid: {exc.problem}", self.path) from exc
        self._h5: h5py.File | None = None
        self.finished = False
        if self.path.exists() and not overwrite:
            self._check_finished_cache()
            self.finished = True
            log.info("%s is complete with the same encoder and samples; nothing to write", self.path)
            return
        if self.partial.exists() and not overwrite:
            self._resume()
        else:
            self._create()

    # -- opening ---------------------------------------------------------------------------
    def _check_finished_cache(self) -> None:
        from zsar.features.reader import FeatureCache

        existing = FeatureCache(self.path)
        diff = identity_difference(existing.header, self.header)
        if diff:
            raise ZsarError(
                "exists and was written by another encoder or config (" + "; ".join(diff) + "); refusing to "
                "mix them. Write elsewhere, or overwrite (the old file stays until the new one is complete)",
                self.path,
            )
        if existing.metadata["sample_id"].tolist() != self.metadata["sample_id"].tolist():
            raise ZsarError("exists with different samples; write elsewhere or overwrite", self.path)

    def _resume(self) -> None:
        try:
            h5 = h5py.File(self.partial, "r+")
        except OSError as exc:
            raise ZsarError(
                f"interrupted cache file is damaged ({exc}); delete it to start this cache over", self.partial
            ) from exc
        try:
            if int(h5.attrs.get("zsar_schema_version", -1)) != SCHEMA_VERSION:
                raise ZsarError("interrupted cache has another schema version; delete it to start over", self.partial)
            old = CacheHeader.from_json(h5.attrs["header"])
            diff = identity_difference(old, self.header)
            if diff:
                raise ZsarError(
                    "refusing to resume with a different encoder or config (" + "; ".join(diff) + "); delete the "
                    "file or write elsewhere",
                    self.partial,
                )
            ids = [s.decode() for s in h5["sample_id"][:]]
            if ids != self.metadata["sample_id"].tolist():
                raise ZsarError("refusing to resume: the samples differ from the interrupted run", self.partial)
        except ZsarError:
            h5.close()
            raise
        self._h5 = h5
        done = int((h5["row_status"][:] != STATUS_PENDING).sum())
        log.info("resuming %s: %d of %d rows already written", self.partial, done, len(ids))

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.partial.exists():
            self.partial.unlink()
        n, h = len(self.metadata), self.header
        h5 = h5py.File(self.partial, "w")
        h5.attrs["zsar_schema_version"] = SCHEMA_VERSION
        h5.attrs["header"] = h.to_json()
        h5.attrs["zsar_version"] = __version__
        h5.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        chunk_rows = max(1, min(n, 4096))
        h5.create_dataset("embeddings", (n, h.embedding_dim), dtype=h.dtype, chunks=(chunk_rows, h.embedding_dim))
        if h.logit_classes is not None:
            h5.create_dataset("logits", (n, len(h.logit_classes)), dtype="float32")
        if h.temporal_length is not None:
            h5.create_dataset(
                "temporal", (n, h.temporal_length, h.embedding_dim), dtype=h.dtype,
                chunks=(1, h.temporal_length, h.embedding_dim),
            )
        h5.create_dataset("row_status", data=np.zeros(n, dtype=np.int8))
        h5.create_dataset("row_error", data=np.array([""] * n, dtype=object), dtype=_STR)
        h5.create_dataset("sample_id", data=np.array(self.metadata["sample_id"].tolist(), dtype=object), dtype=_STR)
        h5.flush()
        self._h5 = h5

    # -- writing ---------------------------------------------------------------------------
    def pending_rows(self) -> np.ndarray:
        """Row indices that are neither ok nor failed yet."""
        if self.finished:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self._file()["row_status"][:] == STATUS_PENDING)

    def _file(self) -> h5py.File:
        if self._h5 is None:
            raise ZsarError("cache writer is closed", self.path)
        return self._h5

    def _check_rows(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self.metadata)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ZsarError(f"row indices must be in 0..{n - 1}", self.path)
        if np.unique(rows).size != rows.size:
            raise ZsarError("row indices repeat within one write", self.path)
        return rows

    def write(self, rows, embeddings, logits=None, temporal=None) -> None:
        """Store finished rows. `embeddings` [len(rows), D]; `logits` / `temporal` as the header says."""
        if self.finished:
            raise ZsarError("cache is already complete", self.path)
        h5, h = self._file(), self.header
        rows = self._check_rows(rows)
        arrays = {"embeddings": (embeddings, (rows.size, h.embedding_dim))}
        if h.logit_classes is not None:
            if logits is None:
                raise ZsarError("this cache stores logits; pass them with every write", self.path)
            arrays["logits"] = (logits, (rows.size, len(h.logit_classes)))
        elif logits is not None:
            raise ZsarError("header declares no logit classes; cannot store logits", self.path)
        if h.temporal_length is not None:
            if temporal is None:
                raise ZsarError("this cache stores temporal features; pass them with every write", self.path)
            arrays["temporal"] = (temporal, (rows.size, h.temporal_length, h.embedding_dim))
        elif temporal is not None:
            raise ZsarError("header declares no temporal length; cannot store temporal features", self.path)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        contiguous = sorted_rows.size > 0 and sorted_rows[-1] - sorted_rows[0] + 1 == sorted_rows.size
        index = slice(int(sorted_rows[0]), int(sorted_rows[-1]) + 1) if contiguous else sorted_rows
        prepared = {}
        for name, (values, shape) in arrays.items():
            values = np.asarray(values)
            if values.shape != shape:
                raise ZsarError(f"{name} has shape {values.shape}, expected {shape}", self.path)
            flat = values.reshape(values.shape[0], -1)
            finite = np.isfinite(flat).all(axis=1)
            if name == "logits":  # a row without logits (e.g. imported releases give them for test rows only)
                finite |= np.isnan(flat).all(axis=1)
            if not finite.all():
                bad = self.metadata["sample_id"].iloc[rows[~finite][:5]].tolist()
                raise ZsarError(f"{name} contain NaN or inf for samples {bad}", self.path)
            prepared[name] = values[order]
        if sorted_rows.size == 0:
            return
        for name, values in prepared.items():
            h5[name][index] = values.astype(h5[name].dtype, copy=False)
        status = h5["row_status"]
        status[index] = STATUS_OK
        h5.flush()

    def fail(self, rows, errors: str | list[str]) -> None:
        """Record rows that could not be computed, with the reason; they are kept, marked failed."""
        h5 = self._file()
        rows = np.sort(self._check_rows(rows))
        messages = [errors] * rows.size if isinstance(errors, str) else list(errors)
        for row, message in zip(rows.tolist(), messages):
            h5["row_status"][row] = STATUS_FAILED
            h5["row_error"][row] = message or "failed"
        h5.flush()

    # -- finishing -------------------------------------------------------------------------
    def finalize(self) -> Path:
        """Check completeness, fingerprint, and publish the cache atomically. Returns its path."""
        if self.finished:
            return self.path
        h5 = self._file()
        status = h5["row_status"][:]
        pending = np.flatnonzero(status == STATUS_PENDING)
        if pending.size:
            examples = self.metadata["sample_id"].iloc[pending[:5]].tolist()
            raise ZsarError(f"{pending.size} rows were never written (e.g. {examples}); rerun to fill them", self.path)
        table = self.metadata.copy()
        table["status"] = [STATUS_NAMES[int(s)] for s in status]
        table["error"] = [e.decode() if isinstance(e, bytes) else str(e) for e in h5["row_error"][:]]
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        blob = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        if "metadata_parquet" in h5:
            del h5["metadata_parquet"]
        h5.create_dataset("metadata_parquet", data=blob)
        h5.attrs["metadata_sha256"] = _sha256(blob)
        h5.attrs["fingerprint"] = compute_fingerprint(h5, self.header.identity())
        h5.close()
        self._h5 = None
        os.replace(self.partial, self.path)
        self.finished = True
        with atomic_target(sibling_parquet(self.path)) as tmp:
            tmp.write_bytes(blob.tobytes())
        failed = int((status == STATUS_FAILED).sum())
        log.info("wrote %s: %d rows (%d failed)", self.path, status.size, failed)
        return self.path

    def close(self) -> None:
        """Close without finishing; the partial file stays for a later resume."""
        if self._h5 is not None:
            self._h5.flush()
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sha256(blob: np.ndarray) -> str:
    return hashlib.sha256(blob.tobytes()).hexdigest()


def write_cache(
    path: str | Path,
    header: CacheHeader,
    metadata: pd.DataFrame,
    embeddings: np.ndarray,
    logits: np.ndarray | None = None,
    temporal: np.ndarray | None = None,
    batch_rows: int = 4096,
    overwrite: bool = False,
) -> Path:
    """Write whole arrays as a cache (e.g. features computed elsewhere). Rows marked
    `status == "failed"` in the metadata are stored as failed rows with their `error`."""
    with CacheWriter(path, header, metadata, overwrite=overwrite) as writer:
        if writer.finished:
            return writer.path
        failed_mask = (writer.metadata["status"] == "failed").to_numpy()
        if failed_mask.any():
            rows = np.flatnonzero(failed_mask)
            writer.fail(rows, writer.metadata["error"].iloc[rows].tolist())
        todo = np.intersect1d(writer.pending_rows(), np.flatnonzero(~failed_mask))
        for start in range(0, todo.size, batch_rows):
            rows = todo[start : start + batch_rows]
            writer.write(
                rows,
                embeddings[rows],
                None if logits is None else logits[rows],
                None if temporal is None else temporal[rows],
            )
        return writer.finalize()

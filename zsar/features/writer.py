"""Writing caches: by row index, crash-safe, resumable, one writer at a time.

Rows go into `<path>.partial`; the fill mask `row_status` records which rows are done. The mask never runs
ahead of the data: a write stores the rows' arrays, then their crc32 checksums, then marks them ok, and no
write is deferred (no HDF5 sieve buffer; a flush between the steps). The arrays are contiguous and allocated
when the file is created, with the disk space reserved then (a full disk stops the run before any work), so
writing rows changes no HDF5 structure. A new partial is built under a temporary name and renamed into place
complete. A killed run leaves the partial file; a rerun with the same identity and inputs checks every ok row
against its checksum (a row that does not match is computed again) and writes only the missing rows. A partial
that cannot be opened is set aside under a new name (the message names it) and the run starts over.

`finalize()` proves every row is ok or failed and publishes (see `publish.py`): the finished file is built
beside the partial, every ok row checked against its checksum, and renamed into place with its Parquet copy.
Any HDF5 or OS error while writing is one ZsarError naming the file; an old cache at the path is never touched
before the new one is complete. An exclusive lock on `<path>.lock` (`lock.py`) keeps a second writer out from
start to publish.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from zsar import __version__
from zsar.errors import ZsarError
from zsar.features.fingerprint import checksum_names, mismatched_rows, row_crc32
from zsar.features.h5file import contiguous_dataset, open_for_writing, reserve_space
from zsar.features.inputs import describe_input_change, metadata_digest, source_files_digest
from zsar.features.lock import CacheLock
from zsar.features.publish import (
    build_final_file,
    parquet_tmp,
    publish,
    publishing_path,
    repair_sibling_parquet,
)
from zsar.features.schema import (
    ERROR_BYTES,
    STATUS_FAILED,
    STATUS_NAMES,
    STATUS_OK,
    STATUS_PENDING,
    CacheHeader,
    identity_difference,
    read_text_attr,
    text_attr,
    validate_metadata,
)

log = logging.getLogger(__name__)
_H5_ERRORS = (OSError, RuntimeError)


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def as_stored(name: str, values, dtype) -> tuple[np.ndarray, np.ndarray]:
    """`values` cast to the stored dtype, and the positions of rows that hold NaN or inf once stored (1e5 is inf
    in float16; a logits row of all NaN means "no logits" and is allowed: imported releases give logits for test
    rows only)."""
    with np.errstate(over="ignore", invalid="ignore"):
        stored = np.asarray(values).astype(dtype, copy=False)
    flat = stored.reshape(stored.shape[0], int(np.prod(stored.shape[1:])))
    finite = np.isfinite(flat).all(axis=1)
    if name == "logits":
        finite |= np.isnan(flat).all(axis=1)
    return stored, np.flatnonzero(~finite)


def _run_id(path: Path) -> str:
    """The id a partial file gets when it is created and its published cache keeps ("" when unreadable)."""
    try:
        with h5py.File(path, "r") as h5:
            return read_text_attr(h5.attrs, "run_id")
    except Exception:  # noqa: BLE001 - a damaged file has no usable id
        return ""


def _encode_error(message: str) -> bytes:
    """An error message as at most ERROR_BYTES of UTF-8, cut at a character boundary."""
    raw = (message or "failed").encode("utf-8")[:ERROR_BYTES]
    return raw.decode("utf-8", errors="ignore").encode("utf-8")


class CacheWriter:
    """Fill a cache row by row. Use as a context manager; call `finalize()` when done.

    `pending_rows()` lists what still has to be computed: all rows for a new cache, the holes
    of an interrupted one, none for a finished one with the same identity and inputs.
    `content_digest`: what the rows are computed from (default: the `source` files' paths, sizes and
    modification times); a finished or interrupted cache made from other inputs is refused, not reused.
    `lock_wait`: seconds to wait for another process writing the same cache before refusing.
    """

    def __init__(self, path: str | Path, header: CacheHeader, metadata: pd.DataFrame, overwrite: bool = False,
                 content_digest: str | None = None, lock_wait: float = 0.0):
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.header = header
        try:
            self.metadata = validate_metadata(metadata, header)
        except ZsarError as exc:
            raise ZsarError(f"metadata for this cache is invalid: {exc.problem}", self.path) from exc
        self.inputs = {"metadata": metadata_digest(self.metadata),
                       "content": content_digest or source_files_digest(self.metadata["source"])}
        self._h5: h5py.File | None = None
        self._lock: CacheLock | None = None
        self.finished = False
        if self.path.exists() and not overwrite:
            self._reuse_finished()
            return
        self._lock = CacheLock.acquire(self.path, lock_wait)
        try:
            if self.path.exists() and not overwrite:  # another writer published it while we waited
                self._release()
                self._reuse_finished()
            elif self.partial.exists() and self._resume(overwrite):
                pass
            else:
                self._create()
        except BaseException:
            self._abort()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _reuse_finished(self) -> None:
        from zsar.features.reader import FeatureCache

        try:
            existing = FeatureCache(self.path)
        except ZsarError as exc:
            raise ZsarError(f"{exc.problem}; overwrite to compute this cache again (the old file stays until the "
                            "new one is complete)", self.path) from exc
        diff = identity_difference(existing.header, self.header)
        if diff:
            raise ZsarError(
                "exists and was written by another encoder or config (" + "; ".join(diff) + "); refusing to "
                "mix them. Write elsewhere, or overwrite (the old file stays until the new one is complete)",
                self.path,
            )
        if existing.metadata["sample_id"].tolist() != self.metadata["sample_id"].tolist():
            raise ZsarError("exists with different samples; write elsewhere or overwrite", self.path)
        changed = describe_input_change(existing.inputs, self.inputs)
        if changed:
            raise ZsarError("exists but was computed from other inputs: " + " and ".join(changed) + " changed "
                            "since. Overwrite to recompute it (the old file stays until the new one is complete)",
                            self.path)
        self._tidy_after_publish()
        if self.partial.exists():
            log.warning("%s: an interrupted run's partial file lies beside the finished cache; rerun with overwrite "
                        "to resume it (it then replaces the cache), or delete it", self.partial)
        self.finished = True
        log.info("%s is complete with the same encoder, samples and inputs; nothing to write", self.path)

    def _tidy_after_publish(self) -> None:
        """What a crash during publishing can leave beside a finished cache, mended under the lock (skipped while
        another writer holds it): a missing or stale Parquet, its temporary copy, and the partial file the cache
        was built from (recognised by the run id the cache copied from it)."""
        try:
            lock = CacheLock.acquire(self.path)
        except ZsarError:
            return
        try:
            repair_sibling_parquet(self.path)
            parquet_tmp(self.path).unlink(missing_ok=True)
            if self.partial.exists() and _run_id(self.partial) == _run_id(self.path) != "":
                self.partial.unlink()
                log.info("removed %s, left over from an interrupted publish of this cache", self.partial)
        finally:
            lock.release()

    def _set_aside(self, reason: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = self.partial.with_name(f"{self.partial.name}.damaged-{stamp}-{os.getpid()}")
        try:
            os.replace(self.partial, target)
        except OSError as exc:
            raise ZsarError(f"interrupted cache cannot be resumed ({reason}) and cannot be set aside "
                            f"({exc.strerror}); move or delete it", self.partial) from exc
        log.warning("%s: interrupted cache cannot be resumed (%s); set aside as %s, starting over",
                    self.partial, reason, target.name)

    def _resume(self, overwrite: bool = False) -> bool:
        """Open the interrupted partial file; False when the run must start over (the partial was set aside, or
        with `overwrite` it belongs to another run). A partial of the same run is resumed with or without
        `overwrite`."""
        try:
            h5 = open_for_writing(self.partial, create=False)
        except Exception as exc:  # noqa: BLE001 - HDF5 raises several types for a damaged file
            if "unable to lock file" in str(exc).lower():
                raise ZsarError(f"interrupted cache file is open in another process ({exc}); stop that process "
                                "or wait for it", self.partial) from exc
            if getattr(exc, "errno", None) is not None:  # the system refused (permissions, file limits): not damage
                raise ZsarError(f"cannot open the interrupted cache file: {exc}", self.partial) from exc
            self._set_aside(f"not a readable HDF5 file: {exc}")
            return False
        try:
            problem = self._partial_problem(h5)
            if problem is None:
                self._check_same_run(h5, CacheHeader.from_json(read_text_attr(h5.attrs, "header")))
                self._h5 = h5
                self._recheck_ok_rows()
        except ZsarError as exc:
            self._abort_file(h5)
            if not overwrite:
                raise
            log.info("%s belongs to another run (%s); overwrite starts over", self.partial, exc.problem)
            return False
        except Exception as exc:  # noqa: BLE001 - any damage in what was read
            problem = f"damaged ({type(exc).__name__}: {exc})"
        if problem is not None:
            self._abort_file(h5)
            self._set_aside(problem)
            return False
        done = int((h5["row_status"][:] != STATUS_PENDING).sum())
        log.info("resuming %s: %d of %d rows already written", self.partial, done, len(self.metadata))
        return True

    def _abort_file(self, h5: h5py.File) -> None:
        with contextlib.suppress(Exception):
            h5.close()
        self._h5 = None

    def _partial_problem(self, h5: h5py.File) -> str | None:
        version, writes = int(h5.attrs.get("zsar_schema_version", -1)), self.header.schema_version
        if version != writes:
            return f"written with cache schema version {version}, this zsar writes {writes}"
        if "sample_id" not in h5:
            return "dataset `sample_id` is missing"
        n = h5["sample_id"].shape[0]
        arrays = checksum_names(h5)
        for name in ("embeddings", "row_status", "row_crc32", "row_error", *arrays):
            if name not in h5 or h5[name].shape[0] != n:
                return f"dataset `{name}` is missing or has the wrong length"
        if "embeddings" not in arrays or h5["row_crc32"].shape != (n, len(arrays)):
            return "the row checksums do not match the stored arrays"
        return None

    def _check_same_run(self, h5: h5py.File, old: CacheHeader) -> None:
        diff = identity_difference(old, self.header)
        if diff:
            raise ZsarError("refusing to resume with a different encoder or config (" + "; ".join(diff) + "); "
                            "overwrite to start over, or write elsewhere", self.partial)
        ids = [s.decode() for s in h5["sample_id"][:]]
        if ids != self.metadata["sample_id"].tolist():
            raise ZsarError("refusing to resume: the samples differ from the interrupted run; overwrite to start "
                            "over", self.partial)
        old_inputs = {"metadata": read_text_attr(h5.attrs, "input_metadata_digest"),
                      "content": read_text_attr(h5.attrs, "input_content_digest")}
        changed = describe_input_change(old_inputs, self.inputs)
        if changed:
            raise ZsarError("refusing to resume: " + " and ".join(changed) + " changed since the interrupted run; "
                            "overwrite to start over", self.partial)

    def _recheck_ok_rows(self) -> None:
        """Rows marked ok whose data does not match its checksum (torn by a crash) become pending again."""
        h5 = self._file()
        mismatched = mismatched_rows(h5, h5["row_status"][:] == STATUS_OK)
        bad = np.unique(np.concatenate([np.zeros(0, np.int64), *mismatched.values()]))
        if bad.size:  # a write error here means the partial is damaged: the caller sets it aside
            log.warning("%s: %d rows marked done do not match their checksums; computing them again",
                        self.partial, bad.size)
            h5["row_status"][bad] = np.full(bad.size, STATUS_PENDING, np.int8)
            h5.flush()

    def _create(self) -> None:
        """A new partial file: built under a temporary name, its space reserved, then renamed into place, so
        an existing partial always has its whole structure and sample list."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        creating = self.partial.with_name(self.partial.name + ".creating")
        for stale in (self.partial, creating):
            stale.unlink(missing_ok=True)
        try:
            h5 = open_for_writing(creating, create=True)
        except _H5_ERRORS as exc:
            creating.unlink(missing_ok=True)
            raise ZsarError(f"cannot create the cache file ({exc})", creating) from exc
        self._h5 = h5
        try:
            with self._guard("creating the cache file", kept="new file was removed"):
                self._layout(h5)
                h5.flush()
                reserve_space(creating)
                os.replace(creating, self.partial)
        except BaseException:
            self._abort()
            creating.unlink(missing_ok=True)
            raise

    def _layout(self, h5: h5py.File) -> None:
        n, h = len(self.metadata), self.header
        h5.attrs["zsar_schema_version"] = h.schema_version
        h5.attrs["run_id"] = text_attr(uuid.uuid4().hex)
        h5.attrs["header"] = text_attr(h.to_json())
        h5.attrs["zsar_version"] = text_attr(__version__)
        h5.attrs["created"] = text_attr(datetime.now(UTC).isoformat(timespec="seconds"))
        h5.attrs["input_metadata_digest"] = text_attr(self.inputs["metadata"])
        h5.attrs["input_content_digest"] = text_attr(self.inputs["content"])
        shapes = {"embeddings": ((n, h.embedding_dim), h.dtype)}
        if h.logit_classes is not None:
            shapes["logits"] = ((n, len(h.logit_classes)), "float32")
        if h.temporal_length is not None:
            shapes["temporal"] = ((n, h.temporal_length, h.embedding_dim), h.dtype)
        for name, (shape, dtype) in shapes.items():
            contiguous_dataset(h5, name, shape, dtype)
        ids = np.array([s.encode("utf-8") for s in self.metadata["sample_id"]], dtype=bytes)
        contiguous_dataset(h5, "sample_id", (n,), ids.dtype if n else "S1")[...] = ids
        # whole arrays, not scalars: h5py writes a broadcast scalar element by element
        contiguous_dataset(h5, "row_crc32", (n, len(shapes)), np.uint32)[...] = np.zeros((n, len(shapes)), np.uint32)
        contiguous_dataset(h5, "row_error", (n,), f"S{ERROR_BYTES}")[...] = np.zeros(n, f"S{ERROR_BYTES}")
        contiguous_dataset(h5, "row_status", (n,), np.int8)[...] = np.full(n, STATUS_PENDING, np.int8)
        h5.attrs["checksum_arrays"] = np.array(list(shapes), dtype="S")  # fixed-length: no global heap

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self, doing: str, kept: str = "rows already marked done are kept (a rerun checks them)"):
        """Any HDF5 or OS error while writing stops the writer with one message naming the file."""
        try:
            yield
        except _H5_ERRORS as exc:
            self._abort()
            raise ZsarError(f"writing the cache failed while {doing}: {exc}. The {kept}; any previous cache at this "
                            "path is untouched", self.partial) from exc

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

    def _expected_arrays(self, rows, embeddings, logits, temporal) -> dict:
        h = self.header
        arrays = {"embeddings": (embeddings, (rows.size, h.embedding_dim))}
        for name, values, declared, shape in (
            ("logits", logits, h.logit_classes, lambda: (rows.size, len(h.logit_classes))),
            ("temporal", temporal, h.temporal_length, lambda: (rows.size, h.temporal_length, h.embedding_dim)),
        ):
            if declared is not None and values is None:
                raise ZsarError(f"this cache stores {name}; pass them with every write", self.path)
            if declared is None and values is not None:
                raise ZsarError(f"header declares no {name}; cannot store them", self.path)
            if declared is not None:
                arrays[name] = (values, shape())
        return arrays

    def _stored_dtype(self, name: str) -> str:
        return "float32" if name == "logits" else self.header.dtype

    def _prepared(self, rows: np.ndarray, arrays: dict, order: np.ndarray) -> dict:
        """Arrays checked (shape, finite), in stored dtype and sorted row order."""
        prepared = {}
        for name, (values, shape) in arrays.items():
            values = np.asarray(values)
            if values.shape != shape:
                raise ZsarError(f"{name} has shape {values.shape}, expected {shape}", self.path)
            stored, bad = as_stored(name, values, self._stored_dtype(name))
            if bad.size:
                ids = self.metadata["sample_id"].iloc[rows[bad][:5]].tolist()
                raise ZsarError(f"{name} contain NaN or inf (as {stored.dtype}) for samples {ids}", self.path)
            prepared[name] = np.ascontiguousarray(stored[order])
        return prepared

    def check_outputs(self, embeddings, logits=None, temporal=None) -> None:
        """Raise when an encoder's outputs for some rows cannot be stored (shape, NaN/inf in the stored dtype);
        extraction loops use it to fail the sample that produced them instead of the batch."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.header.embedding_dim:
            raise ZsarError(f"the encoder gave embeddings of shape {embeddings.shape[1:]}, the cache holds "
                            f"{self.header.embedding_dim}-d ones (the sample's data has another shape)")
        for name, values in (("embeddings", embeddings), ("logits", logits), ("temporal", temporal)):
            if values is not None:
                stored, bad = as_stored(name, values, self._stored_dtype(name))
                if bad.size:
                    raise ZsarError(f"the encoder gave NaN or inf {name} (as {stored.dtype})")

    def write(self, rows, embeddings, logits=None, temporal=None) -> None:
        """Store finished rows. `embeddings` [len(rows), D]; `logits` / `temporal` as the header says."""
        if self.finished:
            raise ZsarError("cache is already complete", self.path)
        h5 = self._file()
        rows = self._check_rows(rows)
        arrays = self._expected_arrays(rows, embeddings, logits, temporal)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        prepared = self._prepared(rows, arrays, order)
        if sorted_rows.size == 0:
            return
        contiguous = sorted_rows[-1] - sorted_rows[0] + 1 == sorted_rows.size
        index = slice(int(sorted_rows[0]), int(sorted_rows[-1]) + 1) if contiguous else sorted_rows
        sums = np.stack([row_crc32(prepared[name]) for name in checksum_names(h5)], axis=1)
        with self._guard("writing rows"):
            for name, values in prepared.items():
                h5[name][index] = values
            h5.flush()  # the data reaches the file before anything vouches for it
            h5["row_crc32"][index] = sums
            h5.flush()
            h5["row_status"][index] = np.full(sorted_rows.size, STATUS_OK, np.int8)
            h5.flush()

    def fail(self, rows, errors: str | list[str]) -> None:
        """Record rows that could not be computed, with the reason; they are kept, marked failed."""
        h5 = self._file()
        rows = self._check_rows(rows)
        messages = [errors] * rows.size if isinstance(errors, str) else list(errors)
        order = np.argsort(rows, kind="stable")
        if rows.size == 0:
            return
        with self._guard("recording failed rows"):
            encoded = [_encode_error(messages[i]) for i in order]
            h5["row_error"][rows[order]] = np.array(encoded, dtype=f"S{ERROR_BYTES}")
            h5.flush()
            h5["row_status"][rows[order]] = np.full(rows.size, STATUS_FAILED, np.int8)
            h5.flush()

    # -- finishing -------------------------------------------------------------------------
    def finalize(self) -> Path:
        """Check completeness and every row, fingerprint, and publish the cache atomically. Returns its path."""
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
        table["error"] = [e.decode("utf-8", errors="replace") if s == STATUS_FAILED else ""
                          for e, s in zip(h5["row_error"][:], status)]
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        blob = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        built = publishing_path(self.path)
        with self._guard("writing the finished cache"):
            torn = build_final_file(h5, built, self.header.identity(), blob)
            if torn.size:
                h5["row_status"][torn] = np.full(torn.size, STATUS_PENDING, np.int8)
                h5.flush()
        if torn.size:
            raise ZsarError(f"{torn.size} rows on disk do not match what was computed (damaged while writing); "
                            "nothing was published. Rerun to compute them again", self.partial)
        with self._guard("publishing the finished cache"):
            h5.close()
            self._h5 = None
            publish(built, self.path, blob, self.partial)
        self.finished = True
        self._release()
        failed = int((status == STATUS_FAILED).sum())
        log.info("wrote %s: %d rows (%d failed)", self.path, status.size, failed)
        return self.path

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _abort(self) -> None:
        """Drop the file handle after a failure (closing errors ignored) and release the lock."""
        if self._h5 is not None:
            with contextlib.suppress(Exception):
                self._h5.close()
            self._h5 = None
        self._release()

    def close(self) -> None:
        """Close without finishing; the partial file stays for a later resume."""
        try:
            if self._h5 is not None:
                with self._guard("closing the cache file"):
                    self._h5.flush()
                    self._h5.close()
                    self._h5 = None
        finally:
            self._release()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_cache(
    path: str | Path,
    header: CacheHeader,
    metadata: pd.DataFrame,
    embeddings: np.ndarray,
    logits: np.ndarray | None = None,
    temporal: np.ndarray | None = None,
    batch_rows: int = 4096,
    overwrite: bool = False,
    content_digest: str | None = None,
) -> Path:
    """Write whole arrays as a cache (e.g. features computed elsewhere). Rows marked
    `status == "failed"` in the metadata are stored as failed rows with their `error`."""
    with CacheWriter(path, header, metadata, overwrite=overwrite, content_digest=content_digest) as writer:
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

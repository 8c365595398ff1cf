"""Publishing a finished cache: a fresh file built from the partial, checked row by row, then renamed into place.

The partial file is never changed by publishing, so a crash at any point leaves it resumable: the finished file
is built beside it as `<path>.publishing` (every ok row checked against its checksum and the fingerprint
computed in the same pass), synced to disk, then put in place: the old sibling Parquet is removed, the new file
renamed onto `<path>`, the new Parquet renamed into place, the partial removed. A crash between those steps
leaves a cache without its Parquet (rebuilt from the cache's own table by `repair_sibling_parquet`), never a
cache beside another cache's table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import h5py
import numpy as np

from zsar.atomic import atomic_target
from zsar.errors import ZsarError
from zsar.features.fingerprint import checksum_names, row_crc32
from zsar.features.h5file import contiguous_dataset, fsync_path, open_for_writing, reserve_space
from zsar.features.schema import STATUS_OK, read_text_attr, text_attr

log = logging.getLogger(__name__)
_BLOCK_ROWS = 8192
_ROW_TABLES = ("sample_id", "row_status", "row_crc32")  # row_error stays in the partial: the table has the errors


def sibling_parquet(path: Path) -> Path:
    return path.with_suffix(".parquet")


def parquet_tmp(path: Path) -> Path:
    """Where the new Parquet is written before it is renamed into place (one name: only the lock holder
    publishes)."""
    sibling = sibling_parquet(path)
    return sibling.with_name(f".{sibling.name}.publishing")


def publishing_path(path: Path) -> Path:
    return path.with_name(path.name + ".publishing")


def _copy_checked(source: h5py.File, target: h5py.File, digest, status: np.ndarray) -> np.ndarray:
    """Copy every stored array block by block, feeding the fingerprint and checking ok rows' checksums.
    Returns the rows whose data does not match its checksum."""
    sums, names, bad = source["row_crc32"][:], checksum_names(source), []
    for column, name in enumerate(names):
        data = source[name]
        digest.update(f"{name}{data.shape}{data.dtype}".encode())
        for start in range(0, data.shape[0], _BLOCK_ROWS):
            block = np.ascontiguousarray(data[start : start + _BLOCK_ROWS])
            stop = start + block.shape[0]
            wrong = (status[start:stop] == STATUS_OK) & (row_crc32(block) != sums[start:stop, column])
            bad.extend((np.flatnonzero(wrong) + start).tolist())
            digest.update(block.tobytes())
            target[name][start:stop] = block
    return np.unique(np.asarray(bad, dtype=np.int64))


def build_final_file(source: h5py.File, target: Path, identity: dict, table_blob: np.ndarray) -> np.ndarray:
    """Write the finished cache to `target` from the partial file `source` (read only). Returns the rows whose data
    did not match its checksum; when there are any, `target` is removed and nothing is to be published."""
    try:
        with open_for_writing(target, create=True) as h5:
            for key, value in source.attrs.items():
                h5.attrs[key] = value
            for name in (*checksum_names(source), *_ROW_TABLES):
                contiguous_dataset(h5, name, source[name].shape, source[name].dtype)
            h5.flush()
            reserve_space(target)
            status = source["row_status"][:]
            for name in _ROW_TABLES:
                h5[name][...] = source[name][:]
            digest = hashlib.sha256()
            digest.update(json.dumps(identity, sort_keys=True).encode())
            digest.update("\n".join(s.decode() for s in source["sample_id"][:]).encode())
            digest.update(np.ascontiguousarray(status).tobytes())
            bad = _copy_checked(source, h5, digest, status)
            if bad.size == 0:
                h5.create_dataset("metadata_parquet", data=table_blob)
                h5.attrs["metadata_sha256"] = text_attr(hashlib.sha256(table_blob.tobytes()).hexdigest())
                h5.attrs["fingerprint"] = text_attr(digest.hexdigest())
                h5.flush()
        if bad.size:
            target.unlink()
        else:
            fsync_path(target)
        return bad
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def publish(built: Path, path: Path, table_blob: np.ndarray, partial: Path) -> None:
    """Put the built file and its Parquet in place, then remove the partial (see the module's docstring). An error
    before the cache is renamed into place removes what was built and is raised; after it, the cache is published
    and a failure to place the Parquet or remove the partial is only logged (the Parquet is rebuilt later)."""
    sibling = sibling_parquet(path)
    tmp = parquet_tmp(path)
    try:
        tmp.write_bytes(table_blob.tobytes())
        fsync_path(tmp)
        sibling.unlink(missing_ok=True)
        os.replace(built, path)
    except BaseException:
        built.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, sibling)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.warning("%s: published, but its Parquet copy could not be written (%s); it is rebuilt on the next run",
                    path, exc)
    for step in (partial.unlink, lambda: fsync_path(path.parent)):
        try:
            step()
        except OSError as exc:
            log.warning("%s: published; tidying up failed (%s)", path, exc)


def parquet_state(path: str | Path) -> str:
    """Whether the sibling Parquet is the cache's own table: "matches", "missing" or "stale"."""
    path = Path(path)
    sibling = sibling_parquet(path)
    if not sibling.is_file():
        return "missing (rebuilt by the next write of this cache)"
    with h5py.File(path, "r") as h5:
        expected = read_text_attr(h5.attrs, "metadata_sha256")
    same = hashlib.sha256(sibling.read_bytes()).hexdigest() == expected
    return "matches the cache's table" if same else "stale: differs from the cache's table (rebuilt by the next write)"


def repair_sibling_parquet(path: str | Path) -> bool:
    """Rewrite `<stem>.parquet` from the cache's own table when it is missing or differs. True if rewritten."""
    path = Path(path)
    sibling = sibling_parquet(path)
    with h5py.File(path, "r") as h5:
        if "metadata_parquet" not in h5:
            return False
        expected = read_text_attr(h5.attrs, "metadata_sha256")
        blob = h5["metadata_parquet"][:].tobytes()
    if sibling.is_file() and hashlib.sha256(sibling.read_bytes()).hexdigest() == expected:
        return False
    if hashlib.sha256(blob).hexdigest() != expected:
        raise ZsarError("metadata table does not match its checksum (damaged file)", path)
    try:
        with atomic_target(sibling) as tmp:
            tmp.write_bytes(blob)
    except OSError as exc:
        log.warning("%s: the Parquet copy of the metadata is missing or stale and could not be rewritten (%s)",
                    sibling, exc)
        return False
    log.warning("%s was missing or stale (an interrupted publish); rewritten from %s", sibling, path.name)
    return True

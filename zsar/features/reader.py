"""Reading caches: validate the schema on open, load only the rows asked for."""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from zsar.errors import ZsarError
from zsar.features.fingerprint import checksum_names, compute_fingerprint, mismatched_rows
from zsar.features.row_reader import h5py_rows, read_rows
from zsar.features.schema import (
    READABLE_SCHEMA_VERSIONS,
    REQUIRED_COLUMNS,
    STATUS_NAMES,
    STATUS_PENDING,
    CacheHeader,
    check_frame_rows,
    read_text_attr,
)


@dataclass
class FeatureSet:
    """Rows of a cache in memory: embeddings (in the dtype `load` was asked for) with labels and metadata."""

    embeddings: np.ndarray  # [N, D], the stored dtype unless load(dtype=...) asked for another
    labels: np.ndarray  # [N] int64, global class indices
    metadata: pd.DataFrame  # N rows, same order
    rows: np.ndarray  # [N] row indices in the cache
    logits: np.ndarray | None = None  # [N, C_logit] float32
    logit_classes: tuple[int, ...] | None = None
    temporal: np.ndarray | None = None  # [N, T, D], like the embeddings

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def sample_ids(self) -> list[str]:
        return self.metadata["sample_id"].tolist()

    @classmethod
    def concat(cls, parts: list[FeatureSet]) -> FeatureSet:
        """Rows of several sets of the same cache, in order."""
        def joined(name):
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        return cls(embeddings=np.concatenate([p.embeddings for p in parts]),
                   labels=np.concatenate([p.labels for p in parts]),
                   metadata=pd.concat([p.metadata for p in parts], ignore_index=True),
                   rows=np.concatenate([p.rows for p in parts]), logits=joined("logits"),
                   logit_classes=parts[0].logit_classes, temporal=joined("temporal"))

    def subset(self, mask: np.ndarray) -> FeatureSet:
        """Rows where `mask` is true (boolean [N]) or the given positions (int array)."""
        pick = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask, dtype=np.int64)
        return FeatureSet(
            embeddings=self.embeddings[pick],
            labels=self.labels[pick],
            metadata=self.metadata.iloc[pick].reset_index(drop=True),
            rows=self.rows[pick],
            logits=None if self.logits is None else self.logits[pick],
            logit_classes=self.logit_classes,
            temporal=None if self.temporal is None else self.temporal[pick],
        )

    def with_classes(self, classes: Sequence[int]) -> FeatureSet:
        return self.subset(np.isin(self.labels, np.asarray(list(classes), dtype=np.int64)))


@contextlib.contextmanager
def _damage_is_an_error(path: Path):
    """HDF5 reports a damaged structure as KeyError, OSError, ValueError, ...: one clear error instead."""
    try:
        yield
    except ZsarError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read a structure means the file is damaged
        raise ZsarError(f"cannot read the cache, the file is damaged ({type(exc).__name__}: {exc})", path) from exc


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise ZsarError("cache file not found", path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ZsarError(f"not a readable HDF5 file ({exc})", path) from exc


class FeatureCache:
    """A finished cache. Opening validates the schema; `load()` reads only the selected rows and, by default,
    checks them against the checksums written with them (`verify=False` skips that for speed)."""

    def __init__(self, path: str | Path, verify: bool = True):
        self.path = Path(path)
        self.verify = verify
        with _damage_is_an_error(self.path), _open_h5(self.path) as h5:
            self.schema_version = self._check_version(h5)
            try:
                self.header = CacheHeader.from_json(read_text_attr(h5.attrs, "header"))
            except (KeyError, ValueError, TypeError, ZsarError) as exc:
                raise ZsarError(f"cache header is missing or invalid ({exc})", self.path) from exc
            for name in ("embeddings", "row_status", "sample_id", "metadata_parquet"):
                if name not in h5:
                    raise ZsarError(f"cache has no `{name}` dataset (unfinished or damaged)", self.path)
            blob = h5["metadata_parquet"][:]
            if hashlib.sha256(blob.tobytes()).hexdigest() != read_text_attr(h5.attrs, "metadata_sha256"):
                raise ZsarError("metadata table does not match its checksum (damaged file)", self.path)
            self.metadata = pd.read_parquet(io.BytesIO(blob.tobytes()))
            self.num_rows, self.embedding_dim = h5["embeddings"].shape
            self.fingerprint = read_text_attr(h5.attrs, "fingerprint")
            self.created = read_text_attr(h5.attrs, "created")
            self.zsar_version = read_text_attr(h5.attrs, "zsar_version")
            self.has_logits = "logits" in h5
            self.has_temporal = "temporal" in h5
            self.checksum_arrays = checksum_names(h5)
            self.inputs = {"metadata": read_text_attr(h5.attrs, "input_metadata_digest"),
                           "content": read_text_attr(h5.attrs, "input_content_digest")}
            problems = self._structure_problems(h5)
            if problems:
                raise ZsarError("invalid cache: " + "; ".join(problems), self.path)

    def _check_version(self, h5: h5py.File) -> int:
        if read_text_attr(h5.attrs, "kind") == "class_prototypes":
            raise ZsarError("this is a class prototype file (text vectors per class), not a feature cache", self.path)
        version = h5.attrs.get("zsar_schema_version")
        if version is None:
            raise ZsarError("not a zsar cache (no zsar_schema_version attribute)", self.path)
        if int(version) not in READABLE_SCHEMA_VERSIONS:
            raise ZsarError(
                f"written with cache schema version {int(version)}; this zsar reads versions "
                f"{list(READABLE_SCHEMA_VERSIONS)}. Re-extract, or use the zsar version that wrote it",
                self.path,
            )
        return int(version)

    def _structure_problems(self, h5: h5py.File) -> list[str]:
        problems = []
        missing = [c for c in REQUIRED_COLUMNS if c not in self.metadata.columns]
        if missing:
            problems.append(f"metadata lacks columns {missing}")
        if len(self.metadata) != self.num_rows:
            problems.append(f"metadata has {len(self.metadata)} rows but embeddings have {self.num_rows}")
        if self.embedding_dim != self.header.embedding_dim:
            problems.append(f"embeddings are {self.embedding_dim}-d, the header says {self.header.embedding_dim}")
        logit_classes = self.header.logit_classes
        if self.has_logits and (logit_classes is None or h5["logits"].shape != (self.num_rows, len(logit_classes))):
            problems.append("logits shape does not match the header's logit classes")
        if self.schema_version >= 2 and (
            "row_crc32" not in h5 or h5["row_crc32"].shape != (self.num_rows, len(self.checksum_arrays))
        ):
            problems.append("row checksums are missing or have the wrong shape")
        if (self.schema_version >= 3) != (self.header.frames is not None):
            problems.append("the header's `frames` entry does not match the schema version")
        elif self.header.frames is not None:
            try:
                check_frame_rows(self.metadata)
            except ZsarError as exc:
                problems.append(exc.problem)
        if problems:
            return problems
        status = h5["row_status"][:]
        if status.shape != (self.num_rows,) or (status == STATUS_PENDING).any():
            problems.append("has rows that were never written")
        elif [STATUS_NAMES.get(int(s), "?") for s in status] != self.metadata["status"].tolist():
            problems.append("row status differs from the metadata table (damaged file)")
        elif [s.decode() for s in h5["sample_id"][:]] != self.metadata["sample_id"].tolist():
            problems.append("row order of embeddings and metadata differ")
        return problems

    @property
    def class_names(self) -> list[str]:
        return list(self.header.class_names)

    def select_rows(
        self,
        split: str | Sequence[str] | None = None,
        classes: Sequence[int] | None = None,
        include_failed: bool = False,
    ) -> np.ndarray:
        """Row indices matching a sample split (or several) and a class set; failed rows excluded."""
        columns = self._selection_columns
        keep = np.ones(self.num_rows, dtype=bool)
        if not include_failed:
            keep &= columns["ok"]
        if split is not None:
            splits = [split] if isinstance(split, str) else list(split)
            known = set(columns["split_names"])
            unknown = [s for s in splits if s not in known]
            if unknown:
                raise ZsarError(f"no samples in split(s) {unknown}; the cache has {sorted(known)}", self.path)
            codes = [columns["split_names"].index(s) for s in splits]
            keep &= np.isin(columns["split_codes"], codes)
        if classes is not None:
            keep &= np.isin(columns["label"], np.asarray(list(classes), dtype=np.int64))
        return np.flatnonzero(keep)

    @cached_property
    def _selection_columns(self) -> dict:
        """The metadata columns rows are selected by, as numpy arrays (computed once)."""
        codes, names = pd.factorize(self.metadata["split"].astype(str))
        return {"ok": (self.metadata["status"] == "ok").to_numpy(), "split_codes": codes, "split_names": list(names),
                "label": self.metadata["label"].to_numpy(np.int64)}

    def _mismatch_error(self, name: str, rows: np.ndarray) -> ZsarError:
        ids = self.metadata["sample_id"].iloc[rows[:5]].tolist()
        return ZsarError(f"{name} of {rows.size} rows do not match their checksums (damaged file), e.g. samples "
                         f"{ids}; re-extract or restore this cache", self.path)

    def load(
        self,
        split: str | Sequence[str] | None = None,
        classes: Sequence[int] | None = None,
        with_temporal: bool = False,
        verify: bool | None = None,
        dtype=None,
        rows: np.ndarray | None = None,
    ) -> FeatureSet:
        """Load the selected ok rows (or the given `rows`, in that order), in the stored dtype unless `dtype` asks
        for another; a checksum mismatch or NaN/inf in the embeddings is an error naming the samples."""
        rows = self.select_rows(split, classes) if rows is None else self._given_rows(rows)
        if with_temporal and not self.has_temporal:
            raise ZsarError("cache stores no temporal features", self.path)
        verify = (self.verify if verify is None else verify) and bool(self.checksum_arrays)
        names = ["embeddings"] + (["logits"] if self.has_logits else []) + (["temporal"] if with_temporal else [])
        with _damage_is_an_error(self.path), _open_h5(self.path) as h5:
            sums = h5py_rows(h5["row_crc32"], rows) if verify else None
            read = {}
            for name in names:
                column = sums[:, self.checksum_arrays.index(name)] if verify and name in self.checksum_arrays \
                    else None
                read[name] = read_rows(self.path, h5[name], rows, column, dtype if name != "logits" else np.float32,
                                       check_finite=name == "embeddings")
                if read[name].mismatched.size:
                    raise self._mismatch_error(name, rows[np.sort(read[name].mismatched)])
        bad = np.sort(read["embeddings"].nonfinite)
        if bad.size:
            ids = self.metadata["sample_id"].iloc[rows[bad][:5]].tolist()
            raise ZsarError(f"embeddings contain NaN or inf for {int(bad.size)} samples, e.g. {ids}", self.path)
        meta = self.metadata.iloc[rows].reset_index(drop=True)
        return FeatureSet(
            embeddings=read["embeddings"].values,
            labels=meta["label"].to_numpy(dtype=np.int64),
            metadata=meta,
            rows=rows,
            logits=read["logits"].values if self.has_logits else None,
            logit_classes=self.header.logit_classes,
            temporal=read["temporal"].values if with_temporal else None,
        )

    def _given_rows(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_rows):
            raise ZsarError(f"row indices must be in 0..{self.num_rows - 1}", self.path)
        not_ok = rows[~self._selection_columns["ok"][rows]]
        if not_ok.size:
            ids = self.metadata["sample_id"].iloc[not_ok[:5]].tolist()
            raise ZsarError(f"{not_ok.size} requested rows failed at extraction, e.g. {ids}", self.path)
        return rows

    def verify_all(self, fingerprint: bool = False) -> dict:
        """Check every ok row against its checksum (and, with `fingerprint`, recompute the content fingerprint).
        Returns what was checked; raises a ZsarError naming the file on any mismatch."""
        ok = (self.metadata["status"] == "ok").to_numpy()
        with _damage_is_an_error(self.path), _open_h5(self.path) as h5:
            if self.checksum_arrays:
                for name, rows in mismatched_rows(h5, ok).items():
                    if rows.size:
                        raise self._mismatch_error(name, rows)
            if fingerprint and compute_fingerprint(h5, self.header.identity()) != self.fingerprint:
                raise ZsarError("content does not match its fingerprint (damaged or edited file)", self.path)
        checked = int(ok.sum()) if self.checksum_arrays else 0
        return {"rows_checked": checked, "checksums": bool(self.checksum_arrays), "fingerprint_checked": fingerprint}

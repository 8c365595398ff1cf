"""Reading caches: validate the schema on open, load only the rows asked for."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from zsar.errors import ZsarError
from zsar.features.schema import REQUIRED_COLUMNS, SCHEMA_VERSION, CacheHeader


@dataclass
class FeatureSet:
    """Rows of a cache in memory: float32 embeddings with their labels and metadata."""

    embeddings: np.ndarray  # [N, D] float32
    labels: np.ndarray  # [N] int64, global class indices
    metadata: pd.DataFrame  # N rows, same order
    rows: np.ndarray  # [N] row indices in the cache
    logits: np.ndarray | None = None  # [N, C_logit] float32
    logit_classes: tuple[int, ...] | None = None
    temporal: np.ndarray | None = None  # [N, T, D]

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


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise ZsarError("cache file not found", path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ZsarError(f"not a readable HDF5 file ({exc})", path) from exc


class FeatureCache:
    """A finished cache. Opening validates the schema; `load()` reads only the selected rows."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with _open_h5(self.path) as h5:
            version = h5.attrs.get("zsar_schema_version")
            if version is None:
                raise ZsarError("not a zsar cache (no zsar_schema_version attribute)", self.path)
            if int(version) != SCHEMA_VERSION:
                raise ZsarError(
                    f"written with cache schema version {int(version)}; this zsar reads version {SCHEMA_VERSION}. "
                    "Re-extract, or use the zsar version that wrote it",
                    self.path,
                )
            try:
                self.header = CacheHeader.from_json(h5.attrs["header"])
            except (KeyError, ValueError, TypeError, ZsarError) as exc:
                raise ZsarError(f"cache header is missing or invalid ({exc})", self.path) from exc
            for name in ("embeddings", "row_status", "sample_id", "metadata_parquet"):
                if name not in h5:
                    raise ZsarError(f"cache has no `{name}` dataset (unfinished or damaged)", self.path)
            blob = h5["metadata_parquet"][:]
            if hashlib.sha256(blob.tobytes()).hexdigest() != h5.attrs.get("metadata_sha256"):
                raise ZsarError("metadata table does not match its checksum (damaged file)", self.path)
            self.metadata = pd.read_parquet(io.BytesIO(blob.tobytes()))
            self.num_rows, self.embedding_dim = h5["embeddings"].shape
            self.fingerprint = str(h5.attrs.get("fingerprint", ""))
            self.created = str(h5.attrs.get("created", ""))
            self.zsar_version = str(h5.attrs.get("zsar_version", ""))
            self.has_logits = "logits" in h5
            self.has_temporal = "temporal" in h5
            problems = []
            missing = [c for c in REQUIRED_COLUMNS if c not in self.metadata.columns]
            if missing:
                problems.append(f"metadata lacks columns {missing}")
            if len(self.metadata) != self.num_rows:
                problems.append(f"metadata has {len(self.metadata)} rows but embeddings have {self.num_rows}")
            if self.embedding_dim != self.header.embedding_dim:
                problems.append(f"embeddings are {self.embedding_dim}-d, the header says {self.header.embedding_dim}")
            logit_classes = self.header.logit_classes
            if self.has_logits and (
                logit_classes is None or h5["logits"].shape != (self.num_rows, len(logit_classes))
            ):
                problems.append("logits shape does not match the header's logit classes")
            if (h5["row_status"][:] == 0).any():
                problems.append("has rows that were never written")
            if not problems and [s.decode() for s in h5["sample_id"][:]] != self.metadata["sample_id"].tolist():
                problems.append("row order of embeddings and metadata differ")
            if problems:
                raise ZsarError("invalid cache: " + "; ".join(problems), self.path)

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
        keep = np.ones(self.num_rows, dtype=bool)
        if not include_failed:
            keep &= (self.metadata["status"] == "ok").to_numpy()
        if split is not None:
            splits = [split] if isinstance(split, str) else list(split)
            known = set(self.metadata["split"].unique())
            unknown = [s for s in splits if s not in known]
            if unknown:
                raise ZsarError(f"no samples in split(s) {unknown}; the cache has {sorted(known)}", self.path)
            keep &= self.metadata["split"].isin(splits).to_numpy()
        if classes is not None:
            keep &= self.metadata["label"].isin(list(classes)).to_numpy()
        return np.flatnonzero(keep)

    def load(
        self,
        split: str | Sequence[str] | None = None,
        classes: Sequence[int] | None = None,
        with_temporal: bool = False,
    ) -> FeatureSet:
        """Load the selected ok rows as float32; NaN/inf is an error naming the samples."""
        rows = self.select_rows(split, classes)
        with _open_h5(self.path) as h5:
            embeddings = _read_rows(h5["embeddings"], rows).astype(np.float32)
            logits = _read_rows(h5["logits"], rows).astype(np.float32) if self.has_logits else None
            temporal = None
            if with_temporal:
                if not self.has_temporal:
                    raise ZsarError("cache stores no temporal features", self.path)
                temporal = _read_rows(h5["temporal"], rows).astype(np.float32)
        bad = ~np.isfinite(embeddings).all(axis=1)
        if bad.any():
            ids = self.metadata["sample_id"].iloc[rows[bad][:5]].tolist()
            raise ZsarError(f"embeddings contain NaN or inf for {int(bad.sum())} samples, e.g. {ids}", self.path)
        meta = self.metadata.iloc[rows].reset_index(drop=True)
        return FeatureSet(
            embeddings=embeddings,
            labels=meta["label"].to_numpy(dtype=np.int64),
            metadata=meta,
            rows=rows,
            logits=logits,
            logit_classes=self.header.logit_classes,
            temporal=temporal,
        )


def _read_rows(dataset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """Read rows (sorted indices); a contiguous block is read as one slice."""
    if rows.size == 0:
        return np.zeros((0, *dataset.shape[1:]), dtype=dataset.dtype)
    if rows[-1] - rows[0] + 1 == rows.size:
        return dataset[int(rows[0]) : int(rows[-1]) + 1]
    # h5py point selection is slow for many scattered rows; read the covering block when dense enough
    span = rows[-1] - rows[0] + 1
    if span <= 4 * rows.size:
        return dataset[int(rows[0]) : int(rows[-1]) + 1][rows - rows[0]]
    return dataset[rows]

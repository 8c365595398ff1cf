"""The cache schema, as code: versions, dataset names, columns, the header and how it is checked.

A cache is one HDF5 file per (dataset, modality, encoder):

- `embeddings`   [N, D] float16 or float32, one row per sample
- `logits`       [N, C] float32, optional: the encoder's own scores for the classes in `logit_classes`; a row of
                  all NaN means "no logits for this sample" (imported releases give them for test rows only)
- `temporal`     [N, T, D], optional: per-time-step features
- `row_status`   [N] int8: 0 pending, 1 ok, 2 failed (the fill mask that proves completeness)
- `row_crc32`    [N, K] uint32 (version 2): crc32 of each row's bytes in each stored array, in the order of the
                  `checksum_arrays` attribute; written after the row's data and before its status, checked on read
- `row_error`    [N] str: why a row failed ('' when ok); version 2: UTF-8, at most ERROR_BYTES bytes
- `sample_id`    [N] str: the row order, checked against the metadata table
- `metadata_parquet` uint8 bytes: the metadata table (Parquet), authoritative copy, in row order

Attributes: `zsar_schema_version`, `header` (JSON of `CacheHeader`), `zsar_version`, `created`,
`fingerprint`, `metadata_sha256`; version 2 adds `checksum_arrays`, `input_metadata_digest` and
`input_content_digest` (what the rows were computed from, see `inputs.py`). A sibling `<stem>.parquet` holds
the same table for other tools.

Version 2 files are written in the HDF5 1.8 format (checksummed metadata: a damaged structure is an error, not
a hang) with contiguous, pre-allocated arrays. Version 1 files are still read (without row checksums).

Version 3 is the per-frame layout for untrimmed streams (clip caches are still written as version 2): the header
has `frames` (background classes, frame rate, the encoder's window and stride), every row is one frame, and the
metadata gains `stream_id` and `frame`. A stream's rows are consecutive with frames 0..T-1 in order, so the row
table is the concatenation of the streams without padding and its offsets follow from the metadata
(`streams.py` reads and writes it by stream).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd

from zsar.errors import ZsarError

SCHEMA_VERSION = 2  # clip caches
FRAME_SCHEMA_VERSION = 3  # per-frame caches of untrimmed streams
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
PROTOTYPE_SCHEMA_VERSION = 1  # class prototype files (prototypes.py) version on their own
ERROR_BYTES = 512
REQUIRED_COLUMNS = ("sample_id", "label", "class_name", "split", "source", "status", "error")
STATUS_PENDING, STATUS_OK, STATUS_FAILED = 0, 1, 2
STATUS_NAMES = {STATUS_PENDING: "pending", STATUS_OK: "ok", STATUS_FAILED: "failed"}
EMBEDDING_DTYPES = ("float16", "float32")
MODALITIES = ("skeleton", "video", "text", "other")
FRAME_COLUMNS = ("stream_id", "frame")
FRAME_KEYS = {"background": list, "frame_rate": (float, int, type(None)), "window": (int, type(None)), "stride": int}


def text_attr(text: str) -> np.bytes_:
    """A string attribute stored fixed-length, inside the (checksummed) object header, not in a global heap."""
    return np.bytes_(text.encode("utf-8"))


def read_text_attr(attrs, key: str, default: str = "") -> str:
    """A string attribute, written fixed-length (version 2) or variable-length (version 1)."""
    value = attrs.get(key, default)
    return value.decode("utf-8") if isinstance(value, bytes | np.bytes_) else str(value)


def config_hash(config: dict) -> str:
    """Stable sha256 of a JSON-serialisable encoder configuration."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class CacheHeader:
    """What produced the embeddings. Stored with the file; resume refuses a different identity."""

    dataset: str
    modality: str
    encoder: str
    embedding_dim: int
    class_names: tuple[str, ...]  # global label index -> name, the whole label space of the dataset
    dtype: str = "float32"
    encoder_config: dict = field(default_factory=dict)
    checkpoint_sha256: str | None = None
    # Classes the encoder saw labels of during training; None when it was never trained on labels.
    # Evaluation refuses a split whose unseen classes appear here (label leakage).
    trained_classes: tuple[int, ...] | None = None
    logit_classes: tuple[int, ...] | None = None  # global labels of the `logits` columns
    temporal_length: int | None = None
    preprocessing: dict = field(default_factory=dict)
    normalisation: str = "none"
    # A shard of a larger extraction (`zsar cache merge` joins them): index, count, total_rows, samples_sha256
    shard: dict | None = None
    # Per-frame caches only (schema version 3): background class ids, frame rate (None: unknown), and the
    # encoder's window (input frames one row sees; None: one input frame) and stride (input frames per row)
    frames: dict | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ZsarError(f"modality must be one of {MODALITIES}, not {self.modality!r}")
        if self.dtype not in EMBEDDING_DTYPES:
            raise ZsarError(f"embedding dtype must be one of {EMBEDDING_DTYPES}, not {self.dtype!r}")
        if self.embedding_dim < 1:
            raise ZsarError(f"embedding_dim must be positive, not {self.embedding_dim}")
        if self.frames is not None:
            check_frames(self.frames, len(self.class_names))

    @property
    def schema_version(self) -> int:
        """The schema version a cache with this header is written in."""
        return SCHEMA_VERSION if self.frames is None else FRAME_SCHEMA_VERSION

    @property
    def config_hash(self) -> str:
        return config_hash(self.encoder_config)

    def identity(self) -> dict:
        """The fields that must match for a resumed write to continue."""
        return {
            "dataset": self.dataset,
            "modality": self.modality,
            "encoder": self.encoder,
            "config_hash": self.config_hash,
            "checkpoint_sha256": self.checkpoint_sha256,
            "embedding_dim": self.embedding_dim,
            "dtype": self.dtype,
            "logit_classes": None if self.logit_classes is None else list(self.logit_classes),
            "temporal_length": self.temporal_length,
        } | ({} if self.frames is None else {"frames": self.frames})

    def to_json(self) -> str:
        data = asdict(self)
        data["config_hash"] = self.config_hash
        return json.dumps(data, sort_keys=True, default=list)

    @classmethod
    def from_json(cls, text: str) -> CacheHeader:
        data = json.loads(text)
        data.pop("config_hash", None)
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ZsarError(f"unknown header fields {sorted(unknown)}")
        for key in ("class_names", "trained_classes", "logit_classes"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def check_frames(frames: dict, n_classes: int) -> None:
    """The `frames` header entry of a per-frame cache: known keys of the right types, background ids in range."""
    unknown = set(frames) - set(FRAME_KEYS)
    missing = set(FRAME_KEYS) - set(frames)
    if unknown or missing:
        raise ZsarError(f"header `frames` must have exactly the keys {sorted(FRAME_KEYS)} (unknown {sorted(unknown)}, "
                        f"missing {sorted(missing)})")
    for key, kind in FRAME_KEYS.items():
        if not isinstance(frames[key], kind) or isinstance(frames[key], bool):
            raise ZsarError(f"header `frames.{key}` has the wrong type: {frames[key]!r}")
    bad = [b for b in frames["background"] if not isinstance(b, int) or not 0 <= b < n_classes]
    if bad:
        raise ZsarError(f"header `frames.background` ids {bad} are outside 0..{n_classes - 1}")
    if frames["stride"] < 1 or (frames["window"] is not None and frames["window"] < 1):
        raise ZsarError(f"header `frames` window and stride must be positive: {frames}")


def check_frame_rows(table: pd.DataFrame) -> None:
    """Per-frame metadata: `stream_id` and `frame` present, each stream's rows consecutive with frames 0..T-1."""
    missing = [c for c in FRAME_COLUMNS if c not in table.columns]
    if missing:
        raise ZsarError(f"per-frame metadata is missing columns {missing}")
    streams = table["stream_id"].astype(str).to_numpy()
    frames = pd.to_numeric(table["frame"], errors="coerce").to_numpy()
    starts = np.r_[True, streams[1:] != streams[:-1]] if len(streams) else np.zeros(0, bool)
    if pd.Series(streams[starts]).duplicated().any():
        again = pd.Series(streams[starts])[pd.Series(streams[starts]).duplicated()].iloc[0]
        raise ZsarError(f"the rows of stream {again!r} are not consecutive")
    position = np.arange(len(streams)) - np.maximum.accumulate(np.where(starts, np.arange(len(streams)), 0))
    wrong = np.flatnonzero(frames != position)
    if wrong.size:
        row = int(wrong[0])
        raise ZsarError(f"stream {streams[row]!r}: frame {table['frame'].iloc[row]} is in row {position[row]} of "
                        "the stream (frames must be 0..T-1 in order)")


def identity_difference(old: CacheHeader, new: CacheHeader) -> list[str]:
    """Human-readable list of identity fields that differ; a different encoder config names the settings that
    differ (not its two hashes)."""
    a, b = old.identity(), new.identity()
    out = []
    for k in a:
        if a[k] == b[k]:
            continue
        settings = config_differences(old.encoder_config, new.encoder_config) if k == "config_hash" else []
        out.append(f"encoder config (config_hash) differs: {', '.join(settings)}" if settings
                   else f"{k}: {a[k]!r} != {b[k]!r}")
    return out


SHOWN_DIFFERENCES = 5
_ABSENT = object()


def _flat_settings(config: object, prefix: str = "") -> dict[str, object]:
    """A config's leaves by dotted key (nested dicts as a.b.c); other values, lists included, are leaves."""
    if not isinstance(config, dict) or (prefix and not config):
        return {prefix: config}
    out: dict[str, object] = {}
    for key, value in config.items():
        out.update(_flat_settings(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _shown(value: object, width: int = 60) -> str:
    text = "(absent)" if value is _ABSENT else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def config_differences(old: dict, new: dict, limit: int = SHOWN_DIFFERENCES) -> list[str]:
    """The settings of two configs that differ, as `a.b.c: old != new` in key order, compared as `config_hash`
    sees them (their JSON); at most `limit`, then how many more. Empty when they hash alike."""
    a, b = (_flat_settings(json.loads(json.dumps(c, sort_keys=True, default=str))) for c in (old, new))
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, _ABSENT) != b.get(k, _ABSENT))
    shown = [f"{k}: {_shown(a.get(k, _ABSENT))} != {_shown(b.get(k, _ABSENT))}" for k in keys[:limit]]
    return shown + ([f"and {len(keys) - limit} more"] if len(keys) > limit else [])


def class_names_of(labels: pd.Series, names: tuple[str, ...] | list[str]) -> list[str]:
    """The class name of each label ('' for -1, unlabelled, and for labels the range check will refuse)."""
    ids = pd.to_numeric(labels, errors="coerce")
    return [names[int(i)] if pd.notna(i) and float(i).is_integer() and 0 <= int(i) < len(names) else ""
            for i in ids]


def validate_metadata(table: pd.DataFrame, header: CacheHeader) -> pd.DataFrame:
    """Check and normalise a metadata table; `status`, `error` and `source` ('') are added when missing, and
    `class_name` from the labels and the header's class names."""
    table = table.reset_index(drop=True).copy()
    if "status" not in table:
        table["status"] = "pending"
    if "error" not in table:
        table["error"] = ""
    if "source" not in table:
        table["source"] = ""
    if "class_name" not in table and "label" in table:
        table["class_name"] = class_names_of(table["label"], header.class_names)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ZsarError(f"metadata is missing columns {missing} (required: {list(REQUIRED_COLUMNS)})")
    if table["sample_id"].isna().any():
        raise ZsarError("metadata has empty sample_id values")
    table["sample_id"] = table["sample_id"].astype(str)
    dup = table["sample_id"][table["sample_id"].duplicated()]
    if len(dup):
        raise ZsarError(f"sample_id values repeat, e.g. {dup.iloc[:3].tolist()}")
    labels = pd.to_numeric(table["label"], errors="coerce")
    if labels.isna().any() or not (labels == labels.round()).all():
        odd = table["label"][labels.isna() | (labels != labels.round())].astype(str).unique()[:5].tolist()
        raise ZsarError(f"metadata label column must hold integer class indices; found {odd}")
    table["label"] = labels.astype(np.int64)
    n_classes = len(header.class_names)
    bad = table["label"][(table["label"] < -1) | (table["label"] >= n_classes)]
    if len(bad):
        raise ZsarError(f"labels {sorted(set(bad.tolist()))[:5]} are outside -1..{n_classes - 1} (-1 = unlabelled)")
    for col in ("class_name", "split", "source", "status", "error"):
        table[col] = table[col].fillna("").astype(str)
    if header.frames is not None:
        check_frame_rows(table)
        table["stream_id"] = table["stream_id"].astype(str)
        table["frame"] = table["frame"].astype(np.int64)
    return table

"""Per-frame caches of untrimmed streams (schema version 3), written and read by stream.

Every row is one frame; a stream's rows are consecutive (frames 0..T-1), so the row table is the streams
concatenated without padding, and `StreamCache.table` gives each stream's first row, length, split and state.
Writing goes through `CacheWriter`: the same crash safety, checksums, resume and publish as clip caches. A stream
is written in one call (its data, checksums, then its status), so after a crash it is either whole or pending;
a stream that cannot be computed is failed as a whole, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from zsar.datasets.streams import Stream, StreamSet
from zsar.errors import ZsarError
from zsar.features.reader import FeatureCache
from zsar.features.schema import CacheHeader, class_names_of
from zsar.features.writer import CacheWriter


def frames_entry(background: Sequence[int] = (), frame_rate: float | None = None, window: int | None = None,
                 stride: int = 1) -> dict:
    """The header's `frames` entry (see `schema.check_frames`)."""
    return {"background": [int(b) for b in background], "frame_rate": None if frame_rate is None else float(frame_rate),
            "window": None if window is None else int(window), "stride": int(stride)}


def row_centres(length: int, stride: int) -> np.ndarray:
    """The input frame each row of a per-frame cache stands for: row k covers frames [k * stride, (k + 1) * stride)
    and is labelled at that block's middle (the last row's middle cut at the stream's end)."""
    return np.minimum(np.arange(0, length, stride) + stride // 2, length - 1)


@dataclass(frozen=True)
class StreamRows:
    """What the writer needs to know of one stream before its features exist: its id, split, per-row labels
    (one per cache row, i.e. per output frame of the encoder) and source."""

    stream_id: str
    split: str
    labels: np.ndarray
    source: str = ""


def frame_metadata(streams: Sequence[StreamRows], class_names: Sequence[str]) -> pd.DataFrame:
    """One metadata row per frame, streams concatenated in order."""
    if not streams:
        raise ZsarError("no streams to write")
    lengths = np.array([len(s.labels) for s in streams], dtype=np.int64)
    empty = [s.stream_id for s, n in zip(streams, lengths, strict=True) if n == 0]
    if empty:
        raise ZsarError(f"streams with no frames: {empty[:5]}")
    stream_ids = np.repeat(np.array([s.stream_id for s in streams], dtype=object), lengths)
    frames = np.concatenate([np.arange(n) for n in lengths])
    labels = np.concatenate([np.asarray(s.labels, dtype=np.int64) for s in streams])
    table = pd.DataFrame({
        "sample_id": [f"{sid}/{f:06d}" for sid, f in zip(stream_ids, frames, strict=True)],
        "label": labels,
        "split": np.repeat([s.split for s in streams], lengths),
        "source": np.repeat([s.source for s in streams], lengths),
        "stream_id": stream_ids.astype(str),
        "frame": frames,
    })
    table["class_name"] = class_names_of(table["label"], tuple(class_names))
    return table


class StreamCacheWriter:
    """Fill a per-frame cache stream by stream; a context manager like `CacheWriter` (whose options it takes)."""

    def __init__(self, path: str | Path, header: CacheHeader, streams: Sequence[StreamRows], **options):
        if header.frames is None:
            raise ZsarError("a per-frame cache needs a header with `frames` (see frames_entry)", path)
        self.streams = list(streams)
        self.writer = CacheWriter(path, header, frame_metadata(self.streams, header.class_names), **options)
        lengths = np.array([len(s.labels) for s in self.streams], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])

    @property
    def finished(self) -> bool:
        return self.writer.finished

    def rows_of(self, index: int) -> np.ndarray:
        return np.arange(self.offsets[index], self.offsets[index + 1])

    def pending_streams(self) -> list[int]:
        """Indices of the streams with any row still to compute (all of a new cache, the holes of a resumed one)."""
        pending = self.writer.pending_rows()
        if pending.size == 0:
            return []
        owners = np.searchsorted(self.offsets, pending, side="right") - 1
        return [int(i) for i in np.unique(owners)]

    def write_stream(self, index: int, features: np.ndarray) -> None:
        """All frames of stream `index`: `features` [T, D] with T its number of rows."""
        stream = self.streams[index]
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] != len(stream.labels):
            raise ZsarError(f"stream {stream.stream_id!r}: features of shape {features.shape} for "
                            f"{len(stream.labels)} frames", self.writer.path)
        self.writer.write(self.rows_of(index), features)

    def fail_stream(self, index: int, error: str) -> None:
        self.writer.fail(self.rows_of(index), error)

    def finalize(self) -> Path:
        return self.writer.finalize()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> StreamCacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StreamCache:
    """A finished per-frame cache, read by stream without loading the others."""

    def __init__(self, path: str | Path, verify: bool = True):
        self.cache = FeatureCache(path, verify=verify)
        self.path = self.cache.path
        if self.cache.header.frames is None:
            raise ZsarError("this is a clip cache (one row per sample), not a per-frame stream cache", self.path)
        self.header = self.cache.header
        self.background = tuple(self.header.frames["background"])

    @property
    def class_names(self) -> list[str]:
        return self.cache.class_names

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per stream: stream_id, split, source, first_row, frames, failed frames, error, classes."""
        meta = self.cache.metadata
        starts = np.flatnonzero(np.r_[True, meta["stream_id"].to_numpy()[1:] != meta["stream_id"].to_numpy()[:-1]])
        ends = np.r_[starts[1:], len(meta)]
        failed = (meta["status"] == "failed").to_numpy()
        labels = meta["label"].to_numpy(np.int64)
        return pd.DataFrame({
            "stream_id": meta["stream_id"].to_numpy()[starts],
            "split": meta["split"].to_numpy()[starts],
            "source": meta["source"].to_numpy()[starts],
            "first_row": starts,
            "frames": ends - starts,
            "failed": [bool(failed[a:b].any()) for a, b in zip(starts, ends, strict=True)],
            "error": [meta["error"].iat[a] for a in starts],
            "classes": [tuple(int(c) for c in np.unique(labels[a:b]) if c >= 0)
                        for a, b in zip(starts, ends, strict=True)],
        })

    def select_streams(self, split: str | Sequence[str] | None = None, without_classes: Sequence[int] = (),
                       include_failed: bool = False) -> pd.DataFrame:
        """Streams of a split (or several), leaving out those with any frame of `without_classes`."""
        table = self.table
        keep = np.ones(len(table), dtype=bool) if include_failed else ~table["failed"].to_numpy()
        if split is not None:
            splits = [split] if isinstance(split, str) else list(split)
            unknown = sorted(set(splits) - set(table["split"]))
            if unknown:
                raise ZsarError(f"no streams in split(s) {unknown}; the cache has {sorted(set(table['split']))}",
                                self.path)
            keep &= table["split"].isin(splits).to_numpy()
        if len(without_classes):
            drop = set(int(c) for c in without_classes)
            keep &= np.array([not drop.intersection(c) for c in table["classes"]], dtype=bool)
        return table[keep].reset_index(drop=True)

    def load_streams(self, selected: pd.DataFrame | None = None, dtype=np.float32) -> list[Stream]:
        """The streams in `selected` (rows of `table`, default: every ok stream) with their features [T, D],
        read in one pass and checked against their checksums."""
        selected = self.select_streams() if selected is None else selected
        if selected.empty:
            return []
        rows = np.concatenate([np.arange(a, a + n) for a, n in zip(selected["first_row"], selected["frames"],
                                                                   strict=True)])
        loaded = self.cache.load(rows=rows, dtype=dtype)
        bounds = np.concatenate([[0], np.cumsum(selected["frames"].to_numpy())])
        return [Stream(stream_id=str(row.stream_id), split=str(row.split), source=str(row.source),
                       labels=loaded.labels[bounds[i]:bounds[i + 1]],
                       features=loaded.embeddings[bounds[i]:bounds[i + 1]])
                for i, row in enumerate(selected.itertuples())]


def write_stream_set(path: str | Path, streams: StreamSet, encoder: str, modality: str = "other",
                     dtype: str = "float32", encoder_config: dict | None = None, overwrite: bool = False,
                     content_digest: str | None = None) -> Path:
    """Write streams that already carry features (an imported release) as a per-frame cache, resumably."""
    missing = [s.stream_id for s in streams.streams if s.features is None]
    if missing:
        raise ZsarError(f"streams without features cannot be written as a cache: {missing[:5]}", path)
    dims = {s.features.shape[1] for s in streams.streams}
    if len(dims) != 1:
        raise ZsarError(f"the streams' features have different dimensions {sorted(dims)}", path)
    header = CacheHeader(dataset=streams.name, modality=modality, encoder=encoder, embedding_dim=dims.pop(),
                         class_names=tuple(streams.class_names), dtype=dtype, encoder_config=encoder_config or {},
                         preprocessing=dict(streams.provenance),
                         frames=frames_entry(streams.background, streams.frame_rate))
    rows = [StreamRows(s.stream_id, s.split, s.labels, s.source) for s in streams.streams]
    with StreamCacheWriter(path, header, rows, overwrite=overwrite, content_digest=content_digest) as writer:
        if writer.finished:
            return writer.writer.path
        for index in writer.pending_streams():
            writer.write_stream(index, streams.streams[index].features)
        return writer.finalize()


def import_segmentation_release(root: str | Path, path: str | Path, split: int = 1,
                                background: str | Sequence[str] = "auto", validation_fraction: float = 0.0,
                                seed: int = 0, name: str | None = None, overwrite: bool = False) -> Path:
    """A standard segmentation feature release (features/*.npy [D, T], groundTruth/, mapping.txt, splits/) as a
    per-frame cache: one split's train (and validation) and test videos, the background recorded as such."""
    from zsar.datasets.segmentation_release import open_segmentation_release

    streams = open_segmentation_release(root, split=split, background=background, name=name,
                                        validation_fraction=validation_fraction, seed=seed)
    return write_stream_set(path, streams, encoder="imported", modality="other",
                            encoder_config={"release": Path(root).name, "split": int(split)}, overwrite=overwrite)

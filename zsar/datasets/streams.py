"""Untrimmed streams in memory: per-frame data with one label per frame.

A `Stream` is one untrimmed recording (or one stream built from trimmed samples): its frame labels and,
depending on where it came from, either per-frame features [T, D] (an imported segmentation release, a
per-frame cache) or raw keypoints [M, T, V, C] (a stream built from skeleton samples, before extraction).
A `StreamSet` is the streams of one dataset with its class names and background classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zsar.errors import ZsarError

SPLITS = ("train", "val", "test", "unused")


@dataclass
class Stream:
    """One stream. `labels` [T] int64 global class ids (-1: unlabelled frame). `features` [T, D] float32 or
    `keypoints` [M, T, V, C] float32: exactly one of them is set once the stream is loaded. `parts`: for built
    streams, the (sample_id, start, end) each source sample occupies (end exclusive); `source`: the file(s)."""

    stream_id: str
    split: str
    labels: np.ndarray
    features: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    source: str = ""
    parts: list[tuple[str, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.ndim != 1 or len(self.labels) == 0:
            raise ZsarError(f"stream {self.stream_id!r} is empty (it needs at least one labelled frame)",
                            self.source or None)
        for name, data, axis in (("features", self.features, 0), ("keypoints", self.keypoints, 1)):
            if data is not None and data.shape[axis] != len(self.labels):
                raise ZsarError(f"stream {self.stream_id!r}: {name} have {data.shape[axis]} frames but there are "
                                f"{len(self.labels)} frame labels", self.source or None)

    def __len__(self) -> int:
        return len(self.labels)

    def classes(self) -> set[int]:
        """The classes with at least one frame in the stream."""
        return {int(c) for c in np.unique(self.labels) if c >= 0}


@dataclass
class StreamSet:
    """The streams of one dataset. `background`: class ids that are background (scored or not, as the metrics'
    convention says; recorded so every report can print it). `frame_rate`: frames per second, when known."""

    name: str
    class_names: list[str]
    streams: list[Stream]
    background: tuple[int, ...] = ()
    frame_rate: float | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.class_names)
        bad = [b for b in self.background if not 0 <= b < n]
        if bad:
            raise ZsarError(f"background classes {bad} are outside 0..{n - 1}")
        seen: set[str] = set()
        for stream in self.streams:
            if stream.stream_id in seen:
                raise ZsarError(f"stream id {stream.stream_id!r} repeats", stream.source or None)
            seen.add(stream.stream_id)
            outside = stream.labels[(stream.labels < -1) | (stream.labels >= n)]
            if len(outside):
                raise ZsarError(f"stream {stream.stream_id!r} has labels {sorted(set(outside.tolist()))[:5]} outside "
                                f"-1..{n - 1}", stream.source or None)

    def __len__(self) -> int:
        return len(self.streams)

    def split(self, name: str) -> list[Stream]:
        return [s for s in self.streams if s.split == name]

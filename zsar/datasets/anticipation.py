"""Action anticipation samples on per-frame streams: what was observed before an action, and which action it is.

For every action segment of a stream (a run of one non-background class), the sample's input is the stream's
rows observed up to `tau_a` before the segment starts, at most `observe` frames' worth of rows, and its target is the
segment's class. Samples are index records (stream, first row, end row); the features stay in the streams, and
`observed_features` returns a view of them, never a copy.

Rows and frames. A per-frame cache row k stands for input frames [k * stride, (k + 1) * stride) and, when the
encoder read a window of input frames around it, sees up to the end of that window (`RowGeometry`). A row is
observable for an action only when the last input frame its encoder saw lies at least `tau_a` frames before
the action's first frame; with windows of 16 frames and stride 2, the last 4 rows before an action's start see
into the action and are never observed, even at tau_a = 0. The action's first frame is taken conservatively as
the frame after the centre of the row before its first row.

Skipped, and counted: segments of background, streams with a single segment (nothing came before it), and
segments whose observable history is shorter than `min_observed` rows. `observe` limits the rows observed to
ceil(observe / stride); their encoder windows reach back further (half a window before the first row). A choice
of `tau_a` that leaves no sample at all is an error that names the longest history the streams have.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zsar.datasets.streams import Stream
from zsar.errors import ZsarError

UNITS = ("frames", "seconds")


@dataclass(frozen=True)
class AnticipationWindow:
    """`tau_a`: how long before the action's start observation ends; `observe`: how much is observed at most
    (both in input `unit`s: frames, or seconds with a known frame rate); `min_observed`: rows a sample needs."""

    tau_a: float = 8.0
    observe: float = 32.0
    unit: str = "frames"
    min_observed: int = 4

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ZsarError(f"anticipation unit must be one of {list(UNITS)}, not {self.unit!r}")
        if not self.tau_a >= 0 or not self.observe > 0:
            raise ZsarError(f"anticipation needs tau_a >= 0 and observe > 0, got tau_a = {self.tau_a}, "
                            f"observe = {self.observe}")
        if not isinstance(self.min_observed, int) or isinstance(self.min_observed, bool) or self.min_observed < 1:
            raise ZsarError(f"anticipation min_observed must be a whole number >= 1, not {self.min_observed!r}")

    def in_frames(self, frame_rate: float | None) -> tuple[float, float]:
        """(tau_a, observe) in input frames."""
        if self.unit == "frames":
            return float(self.tau_a), float(self.observe)
        if not frame_rate:
            raise ZsarError("anticipation in seconds needs the streams' frame rate, and this cache records none; "
                            "give tau_a and observe in frames (unit = \"frames\")")
        return self.tau_a * frame_rate, self.observe * frame_rate


@dataclass(frozen=True)
class RowGeometry:
    """How cache rows map to input frames: `stride` frames per row and the encoder's sliding `window` centred on
    each row (zsar's extractors record it), or, when the window is not known (an imported release), `lookahead`:
    how many frames after its own a row's features read (0 only for causal features; a centred 21-frame I3D window
    reads 10)."""

    stride: int = 1
    window: int | None = None
    lookahead: int = 0

    def __post_init__(self) -> None:
        if self.stride < 1 or (self.window is not None and self.window < 1) or self.lookahead < 0:
            raise ZsarError(f"row geometry needs stride >= 1, window >= 1 and lookahead >= 0, got {self}")

    def last_frame_seen(self, rows: np.ndarray) -> np.ndarray:
        """The last input frame the encoder read for each row (ignoring the cut at a stream's end, which only
        makes a window end earlier)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.window is None:
            return (rows + 1) * self.stride - 1 + self.lookahead
        centres = rows * self.stride + self.stride // 2
        return np.maximum(centres - self.window // 2, 0) + self.window - 1

    def first_frame(self, row: int) -> int:
        """The earliest input frame an action whose first row is `row` can start at (conservatively)."""
        return 0 if row == 0 else (row - 1) * self.stride + self.stride // 2 + 1


@dataclass(frozen=True)
class AnticipationSample:
    """One sample: the rows [start, end) of stream `stream` (an index into the stream list) are observed; the
    action of class `target` starts at row `action_start`. `history`: the action classes observed up to `end`
    (whole stream history, oldest first, background left out, repeated neighbours merged)."""

    stream: int
    start: int
    end: int
    action_start: int
    target: int
    history: tuple[int, ...]

    @property
    def last_observed(self) -> int:
        """The class of the last action observed before the target (-1: none was)."""
        return self.history[-1] if self.history else -1


def segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """The runs of one label: (class, first row, end row), in order."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return []
    bounds = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(labels)]
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _history(runs: list[tuple[int, int, int]], end: int, background: set[int]) -> tuple[int, ...]:
    seen = [c for c, a, _ in runs if a < end and c >= 0 and c not in background]
    return tuple(c for k, c in enumerate(seen) if k == 0 or seen[k - 1] != c)


def stream_samples(stream: Stream, index: int, window: AnticipationWindow, geometry: RowGeometry,
                   background: Sequence[int], frame_rate: float | None, skipped: Counter) -> list[AnticipationSample]:
    """The samples of one stream (`index` in the stream list); skipped segments are counted in `skipped`."""
    tau, observe = window.in_frames(frame_rate)
    observe_rows = max(1, math.ceil(observe / geometry.stride))
    background = set(background)
    runs = segments(stream.labels)
    actions = [r for r in runs if r[0] >= 0 and r[0] not in background]
    if len(runs) == 1:
        skipped["single-segment streams"] += 1
        return []
    if len(runs) > len(actions):
        skipped["background or unlabelled segments"] += len(runs) - len(actions)
    seen_until = geometry.last_frame_seen(np.arange(len(stream)))
    samples = []
    for target, first, _ in actions:
        observable = int(np.searchsorted(seen_until, geometry.first_frame(first) - tau, side="left"))
        end = min(observable, first)  # rows [0, end) saw only frames before first_frame - tau
        start = max(0, end - observe_rows)
        if end - start < window.min_observed:
            skipped[f"history shorter than {window.min_observed} rows"] += 1
            continue
        samples.append(AnticipationSample(index, start, end, first, target, _history(runs, end, background)))
    return samples


def anticipation_samples(streams: Sequence[Stream], window: AnticipationWindow, geometry: RowGeometry,
                         background: Sequence[int] = (), frame_rate: float | None = None
                         ) -> tuple[list[AnticipationSample], dict[str, int]]:
    """Every sample of `streams` and the counts of skipped segments by reason (see the module docstring)."""
    skipped: Counter = Counter()
    samples = [s for i, stream in enumerate(streams)
               for s in stream_samples(stream, i, window, geometry, background, frame_rate, skipped)]
    return samples, dict(skipped)


def check_some_samples(samples: Sequence[AnticipationSample], streams: Sequence[Stream], window: AnticipationWindow,
                       geometry: RowGeometry, background: Sequence[int], what: str) -> None:
    """No sample at all: one error naming the longest history an action has and what tau_a leaves of it."""
    if samples:
        return
    longest = 0
    for stream in streams:
        runs = segments(stream.labels)
        if len(runs) > 1:
            firsts = [a for c, a, _ in runs if c >= 0 and c not in set(background)]
            longest = max([longest, *(geometry.first_frame(a) for a in firsts)])
    raise ZsarError(f"no anticipation sample in the {what}: with tau_a = {window.tau_a} {window.unit} and at least "
                    f"{window.min_observed} observed rows nothing is left; the longest history before an action is "
                    f"{longest} input frames (rows of {geometry.stride} frames, encoder window "
                    f"{geometry.window or 'none'}). Lower tau_a or min_observed.")


def observed_features(streams: Sequence[Stream], sample: AnticipationSample) -> np.ndarray:
    """The observed rows' features [end - start, D]: a view into the stream, not a copy."""
    return streams[sample.stream].features[sample.start:sample.end]

"""Untrimmed skeleton streams built from trimmed samples: a temporal action segmentation benchmark from any
trimmed skeleton dataset (NW-UCLA, the synthetic demo data, ...).

Each stream concatenates a few trimmed samples of one sample split along time, with one label per frame. The
samples of a split are shuffled and dealt (each used once before any is used again), so the streams cover the
split, and a stream never mixes sample splits: test samples never enter training streams. Between two actions a
recipe may put `background_gap` frames of background (the previous action's last pose held still, or zero
keypoints) and then `transition` frames that move linearly from the end pose of one action to the start pose of
the next. Everything is drawn from the recipe's seed: the same source and recipe give the same streams.

Order: by default the next action is whatever the shuffled deck deals (no activity structure). With
`successors = k` the streams follow a script: every class gets k successor classes, drawn once from the seed and
shared by all splits (`stream_script`), and the next action is the first dealt sample of a successor class of the
previous action (any other class only when the deck has none left), so what comes next can be anticipated from
what came before, as in real activities.

Frame labels: an action's frames carry its sample's class. Gap and transition frames carry the background class,
appended to the class names as `background_name` (id = number of source classes) whenever the recipe asks for
gaps or transitions. With `background_name=None` no class is appended: transition frames then carry the next
action's class (the motion into its start pose) and gap frames are unlabelled (-1).
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np

from zsar.datasets.source import SampleSource
from zsar.datasets.streams import SPLITS, Stream, StreamSet
from zsar.errors import ZsarError

BACKGROUND_MODES = ("still", "zeros")


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _int_range(name: str, value, low: int) -> tuple[int, int]:
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple) or len(value) != 2 or not all(_is_int(v) for v in value):
        raise ZsarError(f"stream recipe: {name} must be two whole numbers (low, high), got {value!r}")
    lo, hi = int(value[0]), int(value[1])
    if lo < low or hi < lo:
        raise ZsarError(f"stream recipe: {name} must satisfy {low} <= low <= high, got ({lo}, {hi})")
    return lo, hi


@dataclass(frozen=True)
class StreamRecipe:
    """How streams are drawn. `actions_per_stream`: inclusive range of actions per stream, drawn per stream.
    `streams_per_split`: streams to build per sample split; None (or a split it does not name): deal the
    split's shuffled samples once, so each sample is used exactly once (about ceil(samples / mean actions)
    streams; the last one may be shorter). A count above that deals the samples again once all are used.
    `background_gap`: inclusive range of background frames between two actions (0: none), drawn per gap;
    `background_mode`: "still" holds the previous action's last pose, "zeros" puts zero keypoints.
    `transition`: frames interpolated linearly from one action's end pose to the next action's start pose
    (after the gap), labelled background (see the module docstring when there is no background class).
    `no_repeat`: two consecutive actions of a stream never share a class. `successors`: 0 for a random order, or
    the number of successor classes per class of a seeded script (see the module docstring)."""

    actions_per_stream: tuple[int, int] = (4, 8)
    streams_per_split: dict[str, int] | None = None
    background_gap: tuple[int, int] = (0, 0)
    background_mode: str = "still"
    transition: int = 0
    no_repeat: bool = True
    successors: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions_per_stream", _int_range("actions_per_stream", self.actions_per_stream, 1))
        object.__setattr__(self, "background_gap", _int_range("background_gap", self.background_gap, 0))
        if self.streams_per_split is not None:
            if not isinstance(self.streams_per_split, dict):
                raise ZsarError("stream recipe: streams_per_split must be a table {split: number of streams} or "
                                f"None, got {type(self.streams_per_split).__name__}")
            for split, count in self.streams_per_split.items():
                if split not in SPLITS:
                    raise ZsarError(f"stream recipe: streams_per_split names split {split!r}; splits are "
                                    f"{list(SPLITS)}")
                if not _is_int(count) or count < 1:
                    raise ZsarError(f"stream recipe: streams_per_split[{split!r}] must be a whole number >= 1, "
                                    f"got {count!r}")
            object.__setattr__(self, "streams_per_split", {k: int(v) for k, v in self.streams_per_split.items()})
        if self.background_mode not in BACKGROUND_MODES:
            raise ZsarError(f"stream recipe: background_mode must be one of {list(BACKGROUND_MODES)}, got "
                            f"{self.background_mode!r}")
        if not _is_int(self.transition) or self.transition < 0:
            raise ZsarError(f"stream recipe: transition must be a whole number of frames >= 0, got "
                            f"{self.transition!r}")
        if not isinstance(self.no_repeat, bool | np.bool_):
            raise ZsarError(f"stream recipe: no_repeat must be true or false, got {self.no_repeat!r}")
        if not _is_int(self.successors) or self.successors < 0:
            raise ZsarError(f"stream recipe: successors must be a whole number >= 0, got {self.successors!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ZsarError(f"stream recipe: seed must be a whole number >= 0, got {self.seed!r}")
        object.__setattr__(self, "transition", int(self.transition))
        object.__setattr__(self, "successors", int(self.successors))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "no_repeat", bool(self.no_repeat))

    @property
    def has_filler(self) -> bool:
        """Whether streams get frames between actions (gaps or transitions)."""
        return self.background_gap[1] > 0 or self.transition > 0


class _Dealer:
    """Deals one split's samples: shuffled, each once before any again; skips samples that fail to load, have a
    label outside the classes, or whose joints x channels differ from the split's first loaded sample."""

    def __init__(self, source: SampleSource, rows: list[int], rng: np.random.Generator, skipped: dict[str, str]):
        self.source, self.rows, self.rng, self.skipped = source, rows, rng, skipped
        self.meta = source.metadata
        self.deck: list[int] = []
        self.shape: tuple[int, int] | None = None  # (V, C) of the split's first loaded sample
        self.refill()

    def refill(self) -> None:
        """A new shuffled round of the split's loadable samples, after what is left of the current one."""
        ids = self.meta["sample_id"]
        live = [r for r in self.rows if str(ids.iloc[r]) not in self.skipped]
        self.deck += [live[i] for i in self.rng.permutation(len(live))]

    def label(self, row: int) -> int:
        return int(self.meta["label"].iloc[row])

    def _load(self, row: int) -> np.ndarray | None:
        sample_id = str(self.meta["sample_id"].iloc[row])
        n = len(self.source.class_names)
        try:
            label = self.label(row)
            if not 0 <= label < n:
                raise ZsarError(f"label {label} is outside the classes 0..{n - 1}")
            loaded = self.source.load(row)
            try:
                data = np.asarray(loaded, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise ZsarError(f"keypoints are not a numeric array ({exc})") from exc
            if data.ndim != 4 or data.shape[0] < 1 or data.shape[1] < 1:
                raise ZsarError(f"keypoints must be [bodies, frames, joints, channels] with at least one body and "
                                f"frame, got shape {data.shape}")
            if self.shape is not None and data.shape[2:] != self.shape:
                raise ZsarError(f"keypoints have {data.shape[2]} joints x {data.shape[3]} channels, but the split's "
                                f"other samples have {self.shape[0]} x {self.shape[1]}")
        except ZsarError as exc:
            self.skipped[sample_id] = str(exc)
            return None
        self.shape = data.shape[2:]
        return data

    def draw(self, previous: int | None, no_repeat: bool, may_refill: bool,
             allowed: frozenset[int] = frozenset()) -> tuple[int, np.ndarray] | None:
        """The next loadable sample (row, keypoints): the first of a class in `allowed` when there is one, else
        the first whose class differs from `previous` when `no_repeat`; None when the deck has none (after a
        refill, when allowed)."""
        refilled = False
        while True:
            pick = next((i for i, r in enumerate(self.deck) if self.label(r) in allowed), None)
            pick = pick if pick is not None else next((i for i, r in enumerate(self.deck) if not no_repeat
                                                       or previous is None or self.label(r) != previous), None)
            if pick is None:
                if not may_refill or refilled:
                    return None
                self.refill()
                refilled = True
                continue
            row = self.deck.pop(pick)
            data = self._load(row)
            if data is not None:
                return row, data


def _pad_bodies(data: np.ndarray, bodies: int) -> np.ndarray:
    if data.shape[0] == bodies:
        return data
    pad = np.zeros((bodies - data.shape[0], *data.shape[1:]), dtype=np.float32)
    return np.concatenate([data, pad], axis=0)


def _compose(split: str, index: int, name: str, picked: list[tuple[str, int, np.ndarray]], recipe: StreamRecipe,
             rng: np.random.Generator, filler: int | None) -> Stream:
    """One stream from its (sample_id, label, keypoints) actions, gaps and transitions drawn from `rng`.
    `filler`: the background class of gap and transition frames (None: there is none)."""
    bodies = max(d.shape[0] for _, _, d in picked)
    chunks, labels, parts, t = [], [], [], 0
    last = np.zeros(0, dtype=np.float32)
    for k, (sample_id, label, data) in enumerate(picked):
        data = _pad_bodies(data, bodies)
        if k:
            prev_end = last  # the previous action's last pose [M, 1, V, C]
            gap = int(rng.integers(recipe.background_gap[0], recipe.background_gap[1] + 1))
            if gap:
                hold = np.repeat(prev_end, gap, axis=1) if recipe.background_mode == "still" else \
                    np.zeros((bodies, gap, *data.shape[2:]), dtype=np.float32)
                chunks.append(hold)
                labels.append(np.full(gap, -1 if filler is None else filler))
                t += gap
            if recipe.transition:
                w = (np.arange(1, recipe.transition + 1, dtype=np.float32) / (recipe.transition + 1))
                w = w[None, :, None, None]
                chunks.append(((1 - w) * prev_end + w * data[:, :1]).astype(np.float32))
                labels.append(np.full(recipe.transition, label if filler is None else filler))
                t += recipe.transition
        chunks.append(data)
        labels.append(np.full(data.shape[1], label))
        parts.append((sample_id, t, t + data.shape[1]))
        t += data.shape[1]
        last = data[:, -1:]
    stream_id = f"{split}_{index:04d}"
    return Stream(stream_id=stream_id, split=split, labels=np.concatenate(labels),
                  keypoints=np.concatenate(chunks, axis=1), source=f"{name}/{stream_id}", parts=parts)


def stream_script(num_classes: int, recipe: StreamRecipe) -> dict[int, tuple[int, ...]]:
    """The script of `recipe.successors`: class -> its successor classes (never itself), drawn from the recipe's
    seed alone; empty for a random order."""
    if not recipe.successors:
        return {}
    if recipe.successors >= num_classes:
        raise ZsarError(f"stream recipe: successors = {recipe.successors} needs more than {recipe.successors} "
                        f"classes; the source has {num_classes}")
    rng = np.random.default_rng([recipe.seed, zlib.crc32(b"script")])
    return {c: tuple(sorted(int(n) for n in rng.choice([o for o in range(num_classes) if o != c],
                                                         size=recipe.successors, replace=False)))
            for c in range(num_classes)}


def stream_classes(source: SampleSource, recipe: StreamRecipe, background_name: str | None = "background"
                   ) -> tuple[list[str], tuple[int, ...]]:
    """The class names of streams built from `source` and their background ids: the source's classes, plus
    `background_name` (id = number of source classes) when the recipe asks for gaps or transitions."""
    class_names = list(source.class_names)
    if not recipe.has_filler or background_name is None:
        return class_names, ()
    if not isinstance(background_name, str) or not background_name.strip():
        raise ZsarError(f"background_name must be a non-empty name or None, got {background_name!r}")
    if background_name in class_names:
        raise ZsarError(f"{source.name!r} already has a class named {background_name!r}; give the background "
                        "class another name (background_name)")
    return class_names + [background_name], (len(class_names),)


def build_streams(source: SampleSource, recipe: StreamRecipe, splits=("train", "val", "test"),
                  background_name: str | None = "background") -> StreamSet:
    """Untrimmed streams of `source`'s samples, split by split (only the requested splits the metadata has).
    A sample that fails to load is skipped and recorded in `provenance["skipped"]` ({sample_id: message}); a
    split left without any stream is an error. See the module docstring for labels and background."""
    if source.modality != "skeleton":
        raise ZsarError(f"streams are built from skeleton samples; {source.name!r} holds {source.modality} samples")
    if isinstance(splits, str):
        splits = (splits,)
    splits = tuple(splits)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise ZsarError(f"cannot build streams for splits {unknown or list(splits)}: splits are {list(SPLITS)}")
    class_names, background = stream_classes(source, recipe, background_name)
    filler = background[0] if background else None

    present = [s for s in splits if s in set(source.metadata["split"].astype(str))]
    if not present:
        raise ZsarError(f"{source.name!r} has no samples in the splits {list(splits)} (its splits: "
                        f"{sorted(set(source.metadata['split'].astype(str)))})")
    split_of = source.metadata["split"].astype(str).to_numpy()
    script = {c: frozenset(n) for c, n in stream_script(len(source.class_names), recipe).items()}
    lo, hi = recipe.actions_per_stream
    skipped: dict[str, str] = {}
    streams: list[Stream] = []
    for split in present:
        # one generator per split: a split's streams do not depend on which other splits are built
        rng = np.random.default_rng([recipe.seed, zlib.crc32(split.encode())])
        rows = [int(r) for r in np.flatnonzero(split_of == split)]
        dealer = _Dealer(source, rows, rng, skipped)
        wanted = (recipe.streams_per_split or {}).get(split)
        built: list[Stream] = []
        while wanted is None or len(built) < wanted:
            size = int(rng.integers(lo, hi + 1))
            picked: list[tuple[str, int, np.ndarray]] = []
            previous = None
            while len(picked) < size:
                got = dealer.draw(previous, recipe.no_repeat, may_refill=wanted is not None,
                                  allowed=script.get(previous, frozenset()))
                if got is None:
                    break
                row, data = got
                previous = dealer.label(row)
                picked.append((str(source.metadata["sample_id"].iloc[row]), previous, data))
            if not picked:
                break  # nothing left to deal (coverage done, or nothing loads)
            built.append(_compose(split, len(built), source.name, picked, recipe, rng, filler))
        if not built:
            raise ZsarError(f"no stream could be built for split {split!r} of {source.name!r}: none of its "
                            f"{len(rows)} samples loaded ({len(skipped)} skipped in all)")
        streams.extend(built)
    provenance = {"built_from": source.name, "recipe": asdict(recipe), "splits": present,
                  "background_name": background_name if background else None, "skipped": skipped}
    if script:
        provenance["script"] = {str(c): sorted(n) for c, n in sorted(script.items())}
    if source.provenance:
        provenance["source_provenance"] = dict(source.provenance)
    return StreamSet(name=f"{source.name}_streams", class_names=class_names, streams=streams,
                     background=background, provenance=provenance)


def describe_streams(streams: StreamSet) -> dict:
    """Counts per split and in total: streams, frames, actions (parts), mean actions per stream, the fraction of
    frames labelled background and the fraction unlabelled (-1)."""
    background = np.asarray(streams.background, dtype=np.int64)

    def summary(group: list[Stream]) -> dict:
        frames = sum(len(s) for s in group)
        actions = sum(len(s.parts) for s in group)
        bg = sum(int(np.isin(s.labels, background).sum()) for s in group)
        unlabelled = sum(int((s.labels == -1).sum()) for s in group)
        return {"streams": len(group), "frames": frames, "actions": actions,
                "mean_actions_per_stream": actions / len(group) if group else 0.0,
                "background_fraction": bg / frames if frames else 0.0,
                "unlabelled_fraction": unlabelled / frames if frames else 0.0}

    order = [s for s in SPLITS if any(x.split == s for x in streams.streams)]
    order += sorted({x.split for x in streams.streams} - set(order))
    out = {split: summary(streams.split(split)) for split in order}
    out["total"] = summary(streams.streams)
    return out


__all__ = ["StreamRecipe", "build_streams", "describe_streams"]

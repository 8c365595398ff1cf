"""`zsar streams run`: streams -> per-frame cache -> text prototypes -> stream heads -> segmentation report.

```toml
name = "nw_ucla_streams"
seeds = [0, 1]
task = "segmentation"         # segmentation | anticipation (the next action from the rows observed before it)

[data]
source = "skeleton"           # skeleton | synthetic (streams built from trimmed samples) | release | cache
dataset = "path/to/all_sqe"   # skeleton: the dataset; release: the release folder (features/, groundTruth/, ...)
format = "nw_ucla"            # skeleton: the format (auto | nw_ucla | ntu | pickle)
validation_fraction = 0.2     # training samples (release: videos) set aside, seeded, as validation streams
validation_seed = 0
release_split = 1             # release: which splits/*.split<k>.bundle
background = "auto"           # release: background class names, "auto" or []
cache = "streams.h5"          # cache: a per-frame cache (zsar streams import, or an earlier run's)
[data.synthetic]              # synthetic: SyntheticConfig fields

[streams]                     # skeleton / synthetic: StreamRecipe fields
actions_per_stream = [2, 4]
background_gap = [4, 12]
successors = 0                # 2: each class is followed by one of 2 classes (a seeded script); 0: random order

[extract]                     # skeleton / synthetic: sliding windows of the statistics encoder
window = 16
stride = 2
checkpoint = "encoder.pth"    # optional: a trained graph network instead (never trained on a held-out class)
mode = "windows"              # with a checkpoint: windows | temporal (the network's per-time-step output)

[text]
variant = "prompts"           # text variant of the action classes (built-in class text where the names match)
background = ["no action", "a person standing still"]  # texts of the background class
prototypes = "protos.h5"      # optional: a prototype file holding every class (background too) instead

[splits]
held_out = [["pick up with one hand", "drop trash"]]   # class names (or ids) held out, one list per split
random_held_out = 3           # and/or seeded random held-out sets of this size ...
random_seeds = [1, 2]         # ... one per seed

[[heads]]
name = "text_segmentation"    # or "mstcn"; anticipation: last_segment | successor | pooled_linear | sgear
params = { epochs = 30 }
label = "text head"           # optional: the head's name in the report

[anticipation]                # task = "anticipation" only
tau_a = 8                     # observation ends this long before the action starts (after the encoder's window)
observe = 32                  # and covers at most this long
unit = "frames"               # frames | seconds (needs the cache's frame rate)
min_observed = 4              # rows a sample needs; shorter histories are skipped and counted in the report
lookahead = 10                # only for caches that record no encoder window (imported releases): frames read ahead
examples = 6                  # test samples shown with their past and ranked predictions

[evaluate]
epoch_choice = "smoothed"     # smoothed | best | last (on the validation streams)
select_on_test = false        # the released codes' protocol, for comparison only (labelled)
timelines = 4
```
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from zsar.errors import ZsarError
from zsar.experiment.config import ConfigFile, build_section, read_toml

DATA_SOURCES = ("skeleton", "synthetic", "release", "cache")
TASKS = ("segmentation", "anticipation")


@dataclass(frozen=True)
class StreamDataConfig:
    source: str = "synthetic"
    dataset: str | None = None
    format: str = "auto"
    options: dict = field(default_factory=dict)
    synthetic: dict = field(default_factory=dict)
    validation_fraction: float = 0.2
    validation_seed: int = 0
    release_split: int = 1
    background: str | list = "auto"
    cache: str | None = None


@dataclass(frozen=True)
class WindowConfig:
    window: int = 16
    stride: int = 2
    checkpoint: str | None = None  # a trained skeleton encoder (zsar encoder train) instead of the statistics one
    mode: str = "windows"  # with a checkpoint: "windows" (its clip embedding per window) or "temporal" (its
    # per-time-step output over the whole stream, one row per temporal stride)


@dataclass(frozen=True)
class StreamTextConfig:
    variant: str = "prompts"
    model: str | None = None
    prototypes: str | None = None  # a zsar prototype file with every class (background included) instead
    background: list = field(default_factory=lambda: ["no action", "a person standing still between actions"])


@dataclass(frozen=True)
class HeldOutConfig:
    held_out: list = field(default_factory=list)
    random_held_out: int = 0
    random_seeds: list = field(default_factory=list)


@dataclass(frozen=True)
class StreamHeadSpec:
    name: str
    params: dict = field(default_factory=dict)
    label: str | None = None  # the name in the report (to tell two settings of one head apart)

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class AnticipationConfig:
    tau_a: float = 8.0  # observation ends this long before the next action starts (in `unit`s)
    observe: float = 32.0  # and covers at most this long
    unit: str = "frames"  # frames (input frames) | seconds (needs the cache's frame rate)
    min_observed: int = 4  # rows a sample needs; segments with less history are skipped and counted
    examples: int = 6  # test samples listed in the report with their past and ranked predictions
    lookahead: int | None = None  # caches without a recorded encoder window (imported releases): frames after its
    # own each row's features read (0: causal features; a centred 21-frame I3D window: 10)


ANTICIPATION_HEADS_DEFAULT = ("last_segment", "successor", "pooled_linear", "sgear")


@dataclass(frozen=True)
class StreamEvaluateConfig:
    epoch_choice: str = "smoothed"
    select_on_test: bool = False
    timelines: int = 4


@dataclass(frozen=True)
class StreamExperimentConfig(ConfigFile):
    name: str
    seeds: list = field(default_factory=lambda: [0])
    output_dir: str | None = None
    task: str = "segmentation"
    data: StreamDataConfig = field(default_factory=StreamDataConfig)
    streams: dict = field(default_factory=dict)
    extract: WindowConfig = field(default_factory=WindowConfig)
    text: StreamTextConfig = field(default_factory=StreamTextConfig)
    splits: HeldOutConfig = field(default_factory=HeldOutConfig)
    heads: list = field(default_factory=lambda: [StreamHeadSpec("mstcn"), StreamHeadSpec("text_segmentation")])
    evaluate: StreamEvaluateConfig = field(default_factory=StreamEvaluateConfig)
    anticipation: AnticipationConfig = field(default_factory=AnticipationConfig)
    base_dir: str = "."


_SECTIONS = {"data": StreamDataConfig, "extract": WindowConfig, "text": StreamTextConfig, "splits": HeldOutConfig,
             "evaluate": StreamEvaluateConfig, "anticipation": AnticipationConfig}


def _head_problems(config: StreamExperimentConfig) -> list[str]:
    if config.task == "anticipation":
        from zsar.heads.anticipation_heads import ANTICIPATION_HEADS as known
    else:
        from zsar.heads.stream_heads import STREAM_HEADS as known
    problems = [f"[[heads]] {h.name!r} is not a {config.task} head; choose from {sorted(known)}"
                for h in config.heads if h.name not in known]
    titles = [h.title for h in config.heads]
    if len(set(titles)) < len(titles):
        problems.append("[[heads]] repeat a head: give each setting its own `label`")
    return problems


def _problems(config: StreamExperimentConfig) -> list[str]:
    d, problems = config.data, []
    if config.task not in TASKS:
        problems.append(f"`task` must be one of {TASKS}, not {config.task!r}")
    else:
        problems += _head_problems(config)
    if config.task == "anticipation":
        from zsar.datasets.anticipation import AnticipationWindow

        a = config.anticipation
        try:
            AnticipationWindow(a.tau_a, a.observe, a.unit, a.min_observed)
        except ZsarError as exc:
            problems.append(f"[anticipation] {exc}")
        if a.lookahead is not None and (not isinstance(a.lookahead, int) or a.lookahead < 0):
            problems.append(f"[anticipation] lookahead must be a whole number of frames >= 0, not {a.lookahead!r}")
        if config.streams.get("transition", 0):
            problems.append("[streams] transition frames move toward the next action's first pose, so an observed "
                            "window would see the action it should anticipate: use transition = 0 for anticipation")
    if d.source not in DATA_SOURCES:
        problems.append(f"[data] source must be one of {DATA_SOURCES}, not {d.source!r}")
    if d.source in ("skeleton", "release") and not d.dataset:
        problems.append(f"[data] source = {d.source!r} needs `dataset = PATH`")
    if d.source == "cache" and not d.cache:
        problems.append("[data] source = 'cache' needs `cache = PATH`")
    if config.extract.mode not in ("windows", "temporal"):
        problems.append(f"[extract] mode must be 'windows' or 'temporal', not {config.extract.mode!r}")
    if not 0 <= d.validation_fraction < 1:
        problems.append(f"[data] validation_fraction must be in [0, 1), not {d.validation_fraction}")
    if not config.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in config.seeds):
        problems.append("`seeds` must be a non-empty list of integers")
    if not config.splits.held_out and not config.splits.random_held_out:
        problems.append("[splits] needs `held_out` lists or `random_held_out` with `random_seeds`")
    if config.splits.random_held_out and not config.splits.random_seeds:
        problems.append("[splits] random_held_out needs `random_seeds`")
    for key in ("select_on_test",):
        if not isinstance(getattr(config.evaluate, key), bool):
            problems.append(f"[evaluate] {key} must be true or false")
    return problems


def stream_config_from_dict(data: dict, source: Path | None = None, base_dir: str = ".") -> StreamExperimentConfig:
    data = dict(data)
    if "name" not in data:
        raise ZsarError("stream experiment config needs a `name`", source)
    kwargs: dict = {key: build_section(cls, data.pop(key), key, source)
                    for key, cls in _SECTIONS.items() if key in data}
    if "heads" in data:
        heads = data.pop("heads")
        if not isinstance(heads, list) or not heads:
            raise ZsarError("`heads` must be a non-empty array of tables ([[heads]])", source)
        kwargs["heads"] = [build_section(StreamHeadSpec, h, f"heads.{i}", source) for i, h in enumerate(heads)]
    elif data.get("task") == "anticipation":
        kwargs["heads"] = [StreamHeadSpec(name) for name in ANTICIPATION_HEADS_DEFAULT]
    if "streams" in data and not isinstance(data["streams"], dict):
        raise ZsarError("[streams] must be a table", source)
    config = build_section(StreamExperimentConfig, {**data, **kwargs}, "experiment", source)
    config = replace(config, base_dir=str(base_dir))
    problems = _problems(config)
    if problems:
        raise ZsarError("; ".join(problems), source)
    return config


def load_stream_config(path: str | Path) -> StreamExperimentConfig:
    path = Path(path)
    return stream_config_from_dict(read_toml(path, "stream experiment config"), path, str(path.parent.resolve()))


def resolve_held_out(config: HeldOutConfig, class_names: list[str], background: tuple[int, ...]) -> list:
    """The held-out class sets as `HeldOut` splits: named lists first, then seeded random ones (never background)."""
    from zsar.evaluate.stream_protocol import HeldOut

    ids = {n: i for i, n in enumerate(class_names)}
    actions = [i for i in range(len(class_names)) if i not in background]
    splits = []
    for k, names in enumerate(config.held_out):
        chosen = []
        for item in names:
            if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(class_names):
                chosen.append(item)
            elif isinstance(item, str) and item in ids:
                chosen.append(ids[item])
            else:
                raise ZsarError(f"[splits] held_out {k}: {item!r} is not a class of this data; classes: {class_names}")
        if set(chosen) & set(background) or not chosen or len(set(chosen)) >= len(actions):
            raise ZsarError(f"[splits] held_out {k}: hold out one or more action classes (not background), and "
                            "not all of them")
        splits.append(HeldOut(f"held_out_{k}", tuple(sorted(set(chosen)))))
    n = config.random_held_out
    if n and not 0 < n < len(actions):
        raise ZsarError(f"[splits] random_held_out must be between 1 and {len(actions) - 1}, not {n}")
    for seed in config.random_seeds if n else []:
        pick = np.random.default_rng(seed).choice(actions, size=n, replace=False)
        splits.append(HeldOut(f"random{n}_seed{seed}", tuple(sorted(int(c) for c in pick))))
    return splits

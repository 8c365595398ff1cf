"""Experiment configuration: a small TOML file read into frozen dataclasses; unknown keys fail.

```toml
name = "demo"                 # used for the default output folder runs/<name>
seeds = [0, 1]                # head training seeds; several give mean and std

[data]
source = "synthetic"          # "synthetic" (built-in demo data), "skeleton" (a skeleton dataset) or "cache"
cache = "features.h5"         # source = "cache": a zsar cache (see `zsar cache import`, `zsar extract`)
validation_cache = "val.h5"   # source = "cache", optional: training features of an encoder trained on the
                              # validation-seen classes only, used for model selection and GZSL calibration
dataset = "path/to/all_sqe"   # source = "skeleton": NW-UCLA JSON folder, NTU .skeleton folder or pose pickle
format = "auto"               # source = "skeleton": auto | nw_ucla | ntu | pickle
options = { benchmark = "xsub" }  # source = "skeleton": options of the format's loader
train_split = "train"         # sample split the heads train (and validate) on
test_split = "test"           # sample split touched once, for the final numbers
[data.synthetic]              # source = "synthetic": SyntheticConfig fields (joints, num_subjects, ...)

[encoder]                     # source = "synthetic" / "skeleton": the skeleton encoder run on the samples
name = "skeleton-stats"       # or "stgcn" / "stgcnpp" / an mmaction2 config: trained per split on seen classes
checkpoint = "model.pth"      # optional: use this trained checkpoint for every split instead of training
mm_config = "cfg.py"          # with a foreign checkpoint: its mmaction2 config (zsar checkpoints carry theirs)
extract = { batch_size = 16, temporal = false, num_clips = 1 }
validation_encoder = false    # trained encoders: also train one per split on the validation-seen classes only and
                              # select / calibrate with its features (the validation classes stay truly unseen)
[encoder.params]              # skeleton-stats: SkeletonStatsConfig fields; trained encoders: EncoderTrainConfig
                              # fields (epochs, batch_size, lr, frames, num_person, feats, val_fraction, device)

[text]
model = "all-MiniLM-L6-v2"    # the packaged default; or a local sentence-transformers folder
variant = "prompts"           # name | prompts | description | motion | parts | paraphrases | ensemble, or a list
                              # of them: each head then chooses its variant on the validation problem
class_text = "classes.toml"   # description / motion / parts / paraphrases: a class text file (docs/class_text.md);
                              # built-in class lists (NTU, PKU-MMD, HRI30, NW-UCLA, the demo) have their own
ensemble = { prompts = 1.0, motion = 1.0 }  # ensemble: components and weights (default: prompts, description,
                              # motion, paraphrases, equally weighted)
templates = ["a person {}."]  # prompts: optional own templates
descriptions = "desc.json"    # description: a file of texts per class (overrides the class text's descriptions)
parts = "parts.json"          # parts: a file of parts per class (overrides the class text's parts)
part_weights = [0.6, 0.4]     # parts: optional weights of the part positions
class_names = "names.txt"     # optional: class names overriding the cache's
prototypes = "protos.h5"      # optional: precomputed prototypes (of every `variant`) instead of embedding texts

[splits]
names = ["ntu60/55-5", "my_split.toml"]  # standard names or split files
random_unseen = 4             # and/or seeded random splits with this many unseen classes ...
random_seeds = [1, 2, 3]      # ... one per seed

[[heads]]
name = "linear_projection"
params = { epochs = 150 }     # fixed parameters
search = { weight_decay = [1e-4, 1e-3] }  # grid searched on the validation split; {} = no search

[evaluate]
gzsl = true
top_k = 5
search_backend = "auto"       # auto | faiss | numpy
device = "cpu"                # extraction, search, and training of heads whose params name no device
allow_leakage = false         # evaluate even if the encoder was trained on unseen classes (flagged)
select_on_test = false        # papers' best-on-test model selection, for comparison only (flagged)
epoch_choice = "smoothed"     # training length from the validation curve: smoothed | best | last
leaderboard_columns = false   # also the last-epoch and test-selected ZSL top-1 of every run (zsar leaderboard)
threads = 0                   # CPU threads for the heads; 0: the cores other processes leave free (zsar/compute.py)
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from zsar.errors import ZsarError


@dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"
    cache: str | None = None
    dataset: str | None = None
    format: str = "auto"
    options: dict = field(default_factory=dict)
    train_split: str = "train"
    test_split: str = "test"
    synthetic: dict = field(default_factory=dict)
    validation_cache: str | None = None  # source = "cache": features for the validation problem (see the docs)


@dataclass(frozen=True)
class EncoderConfig:
    name: str = "skeleton-stats"
    params: dict = field(default_factory=dict)
    checkpoint: str | None = None
    mm_config: str | None = None
    extract: dict = field(default_factory=dict)
    validation_encoder: bool = False


@dataclass(frozen=True)
class TextConfig:
    model: str | None = None
    variant: str | list = "prompts"  # a list: chosen per head, split and seed on the validation problem
    class_text: str | None = None  # a class text file; None: the built-in one whose class names match, if any
    ensemble: dict | None = None  # variant "ensemble": component -> weight
    templates: list | None = None
    descriptions: str | None = None
    parts: str | None = None
    part_weights: list | None = None
    class_names: str | None = None
    prototypes: str | None = None  # a zsar prototype file (e.g. from `zsar import sadvae`) instead of embedding

    @property
    def variants(self) -> list[str]:
        """The variant(s) asked for, as a list."""
        if isinstance(self.variant, str):
            return [self.variant]
        return list(self.variant) if isinstance(self.variant, (list, tuple)) else []


@dataclass(frozen=True)
class SplitsConfig:
    names: list = field(default_factory=list)
    random_unseen: int | None = None
    random_seeds: list = field(default_factory=list)


@dataclass(frozen=True)
class HeadSpec:
    name: str
    params: dict = field(default_factory=dict)
    search: dict | None = None  # None: the head's default grid; {}: no search


@dataclass(frozen=True)
class EvaluateConfig:
    gzsl: bool = True
    top_k: int = 5
    search_backend: str = "auto"
    device: str = "cpu"
    allow_leakage: bool = False
    select_on_test: bool = False
    epoch_choice: str = "smoothed"  # zsar/evaluate/epoch_choice.py: smoothed | best | last
    leaderboard_columns: bool = False  # also the last-epoch and test-selected top-1 (zsar/experiment/leaderboard.py)
    threads: int = 0  # CPU threads of head training and scoring; 0: the cores other processes leave free


LOADER_PATH_OPTIONS = ("class_names",)  # [data] options of the skeleton loaders that name files


class ConfigFile:
    """What every experiment config does with its `base_dir`: resolve relative paths, and leave it out of records."""

    base_dir: str

    def resolve(self, path: str | None) -> Path | None:
        """A path from the config, relative to the config file's folder."""
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def loader_options(self, options: dict) -> dict:
        """A dataset loader's options with file names (`class_names`) resolved against the config's folder; a
        value naming no file there (a built-in class list, an absolute path) stays as given."""
        out = dict(options)
        for key in LOADER_PATH_OPTIONS:
            value = out.get(key)
            if isinstance(value, str) and not Path(value).expanduser().is_absolute() and self.resolve(value).exists():
                out[key] = str(self.resolve(value))
        return out

    def to_dict(self) -> dict:
        from dataclasses import asdict

        out = asdict(self)
        out.pop("base_dir")
        return out


@dataclass(frozen=True)
class ExperimentConfig(ConfigFile):
    name: str
    seeds: list = field(default_factory=lambda: [0])
    output_dir: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    text: TextConfig = field(default_factory=TextConfig)
    splits: SplitsConfig = field(default_factory=SplitsConfig)
    heads: list = field(default_factory=lambda: [HeadSpec("nearest_prototype"), HeadSpec("linear_projection")])
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    base_dir: str = "."  # folder relative paths in the config are resolved against



_SECTIONS = {"data": DataConfig, "encoder": EncoderConfig, "text": TextConfig, "splits": SplitsConfig,
             "evaluate": EvaluateConfig}


def build_section(cls: type, data: dict, where: str, source: Path | None):
    """A config section's dataclass from its TOML table; unknown keys and wrong arguments name the file."""
    if not isinstance(data, dict):
        raise ZsarError(f"[{where}] must be a table", source)
    known = {f.name for f in fields(cls)} - {"base_dir"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ZsarError(f"unknown keys {unknown} in [{where}]; known: {sorted(known)}", source)
    try:
        return cls(**data)
    except TypeError as exc:
        raise ZsarError(f"[{where}]: {exc}", source) from exc


def config_from_dict(data: dict, source: Path | None = None, base_dir: str = ".") -> ExperimentConfig:
    """Build and check a config; relative paths in it resolve against `base_dir`."""
    data = dict(data)
    if "name" not in data:
        raise ZsarError("experiment config needs a `name`", source)
    kwargs: dict = {}
    for key, cls in _SECTIONS.items():
        if key in data:
            kwargs[key] = build_section(cls, data.pop(key), key, source)
    if "heads" in data:
        heads = data.pop("heads")
        if not isinstance(heads, list) or not heads:
            raise ZsarError("`heads` must be a non-empty array of tables ([[heads]])", source)
        kwargs["heads"] = [build_section(HeadSpec, h, f"heads.{i}", source) for i, h in enumerate(heads)]
    config = build_section(ExperimentConfig, {**data, **kwargs}, "experiment", source)
    config = replace(config, base_dir=str(base_dir))
    if not config.seeds or not all(isinstance(s, int) for s in config.seeds):
        raise ZsarError("`seeds` must be a non-empty list of integers", source)
    if config.data.source not in ("synthetic", "cache", "skeleton"):
        raise ZsarError(f"[data] source must be 'synthetic', 'skeleton' or 'cache', not {config.data.source!r}",
                        source)
    if config.data.source == "cache" and not config.data.cache:
        raise ZsarError("[data] source = 'cache' needs `cache = PATH`", source)
    if config.data.source == "skeleton" and not config.data.dataset:
        raise ZsarError("[data] source = 'skeleton' needs `dataset = PATH`", source)
    unknown_extract = sorted(set(config.encoder.extract) - {"batch_size", "temporal", "num_clips"})
    if unknown_extract:
        raise ZsarError(f"unknown keys {unknown_extract} in [encoder] extract; known: batch_size, temporal, "
                        "num_clips", source)
    if not config.splits.names and not config.splits.random_unseen:
        raise ZsarError("[splits] needs `names` or `random_unseen` with `random_seeds`", source)
    if config.splits.random_unseen and not config.splits.random_seeds:
        raise ZsarError("[splits] random_unseen needs `random_seeds`", source)
    return config


def read_toml(path: str | Path, what: str = "experiment config") -> dict:
    """A TOML file as a dict; a missing file or bad TOML is one error naming it."""
    path = Path(path)
    if not path.is_file():
        raise ZsarError(f"{what} not found", path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ZsarError(f"invalid TOML: {exc}", path) from exc


def load_config(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    return config_from_dict(read_toml(path), path, str(path.parent.resolve()))

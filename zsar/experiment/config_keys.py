"""Every key of the experiment files, as README tables generated from the config dataclasses.

The keys, their types and their defaults come from `dataclasses.fields` of `ExperimentConfig`
(zsar/experiment/config.py, `zsar run`) and `StreamExperimentConfig` (zsar/experiment/streams.py,
`zsar streams run`), so they cannot drift from what the parser accepts. The one thing written by hand is what
each key does, in `DESCRIPTIONS` below; a field without a description is an error, so a new config key cannot
reach the README (or pass the tests) undocumented.

The README holds the generated text between marker comments (`<!-- NAME:begin -->` ... `<!-- NAME:end -->`),
one block per name in `BLOCKS`. Regenerate them after changing a config class, a description, or mmaction2:

    python -m zsar.experiment.config_keys --write README.md     # rewrite the blocks in place
    python -m zsar.experiment.config_keys --check README.md     # exit 1 when a block is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import MISSING, Field, fields, is_dataclass
from pathlib import Path

from zsar.errors import ZsarError
from zsar.experiment.config import (
    DataConfig,
    EncoderConfig,
    EvaluateConfig,
    ExperimentConfig,
    HeadSpec,
    SplitsConfig,
    TextConfig,
)
from zsar.experiment.streams import (
    AnticipationConfig,
    HeldOutConfig,
    StreamDataConfig,
    StreamEvaluateConfig,
    StreamExperimentConfig,
    StreamHeadSpec,
    StreamTextConfig,
    WindowConfig,
)

# Fields that are not TOML keys: `base_dir` is the config file's folder, set by the loader.
INTERNAL_FIELDS = frozenset({"base_dir"})

DESCRIPTIONS: dict[type, dict[str, str]] = {
    ExperimentConfig: {
        "name": "The experiment's name; the default output folder is `runs/<name>`.",
        "seeds": "Head training seeds (a non-empty list of integers); several give a mean and a standard deviation.",
        "output_dir": "Output folder; `zsar run --out` overrides it. Not set: `runs/<name>`.",
        "data": "What the heads train and are tested on: built-in synthetic data, a skeleton dataset or a cache.",
        "encoder": "The skeleton encoder run over the samples when `[data] source` is `synthetic` or `skeleton`.",
        "text": "How the class prototypes are made: text model, text variant(s), class text files.",
        "splits": "The zero-shot class splits to run: standard names, split files and seeded random splits.",
        "heads": "The zero-shot heads to run, one `[[heads]]` table each.",
        "evaluate": "How the runs are evaluated: GZSL, top-k, search backend, device, model selection.",
    },
    DataConfig: {
        "source": 'Where the samples come from: `"synthetic"` (the built-in demo data), `"skeleton"` (a skeleton '
                  'dataset, encoded per split) or `"cache"` (a zsar feature cache).',
        "cache": "`source = \"cache\"`: the cache file (from `zsar cache import`, `zsar extract ...` or "
                 "`zsar import sadvae`).",
        "dataset": '`source = "skeleton"`: an NW-UCLA JSON folder, a folder of NTU `.skeleton` files or an '
                   "mmaction2 / pyskl pose pickle.",
        "format": '`source = "skeleton"`: `auto`, `nw_ucla`, `ntu` or `pickle`.',
        "options": '`source = "skeleton"`: options of the format\'s loader, e.g. `{ benchmark = "xsub" }` for NTU, '
                   "`train_split`, `test_split`, `class_names`, `layout` or `trust_pickle` for a pickle.",
        "train_split": "The sample split the heads train (and validate) on.",
        "test_split": "The sample split touched once, for the final numbers.",
        "synthetic": '`source = "synthetic"`: `SyntheticConfig` fields (`joints`, `num_subjects`, `repetitions`, '
                     "`test_subjects`, ...), written as a `[data.synthetic]` table.",
        "validation_cache": '`source = "cache"`, optional: training features of an encoder trained on the '
                            "validation-seen classes only; model selection and GZSL calibration use them, so the "
                            "validation classes stay truly unseen.",
    },
    EncoderConfig: {
        "name": '`"skeleton-stats"` (training-free statistics), or `"stgcn"`, `"stgcnpp"` or an mmaction2 config: '
                "a graph network trained per split on the seen classes.",
        "params": "skeleton-stats: `SkeletonStatsConfig` fields; trained encoders: `EncoderTrainConfig` fields "
                  "(`epochs`, `batch_size`, `lr`, `frames`, `num_person`, `feats`, `val_fraction`, `device`).",
        "checkpoint": "Optional: use this trained checkpoint for every split instead of training one per split.",
        "mm_config": "With a checkpoint not written by zsar: its mmaction2 config (zsar checkpoints carry theirs).",
        "extract": "Extraction settings: `batch_size` (default 16), `temporal` (also per-time-step features) and "
                   "`num_clips` (clips per sample, averaged); other keys are refused.",
        "validation_encoder": "Trained encoders: also train one per split on the validation-seen classes only, and "
                              "select and calibrate with its features.",
    },
    TextConfig: {
        "model": "A local sentence-transformers folder. Not set: the packaged all-MiniLM-L6-v2.",
        "variant": "`name`, `prompts`, `description`, `motion`, `parts`, `paraphrases` or `ensemble`; or a list of "
                   "them, and each head then chooses its variant per split and seed on the validation problem.",
        "class_text": "A class text file (docs/class_text.md). Not set: the built-in class text whose class names "
                      "match (NTU, PKU-MMD, HRI30, NW-UCLA, the demo), if any.",
        "ensemble": "The `ensemble` variant's components and weights, e.g. `{ prompts = 1.0, motion = 2.0 }`. "
                    "Not set: prompts, description, motion and paraphrases, equally weighted.",
        "templates": 'The `prompts` variant\'s own templates, e.g. `["a person {}."]`.',
        "descriptions": "The `description` variant from a file of texts per class (JSON `{\"class name\": [...]}` "
                        "or an idx,text CSV); overrides the class text's descriptions.",
        "parts": "The `parts` variant from a file of parts per class (JSON); overrides the class text's parts.",
        "part_weights": "The `parts` variant: optional weights of the part positions, e.g. `[0.6, 0.4]`.",
        "class_names": "Optional: a class names file overriding the cache's class names.",
        "prototypes": "Optional: a zsar prototype file holding every asked `variant` (e.g. from "
                      "`zsar import sadvae`), used instead of embedding texts.",
    },
    SplitsConfig: {
        "names": 'Standard split names (`zsar splits list`) or split files (TOML / JSON), e.g. `["ntu60/55-5"]`.',
        "random_unseen": "And/or seeded random splits with this many unseen classes ...",
        "random_seeds": "... one per seed (needed with `random_unseen`).",
    },
    HeadSpec: {
        "name": "The head: `nearest_prototype`, `linear_projection`, `dual_head`, `sadvae`, `contrastive`, "
                "`cada_vae`, `fs_vae` or `tdsm`.",
        "params": "Fixed parameters of the head, e.g. `{ epochs = 150 }`.",
        "search": "A grid searched on the validation split only, e.g. `{ weight_decay = [1e-4, 1e-3] }`. Not set: "
                  "the head's default grid; `{}`: no search.",
    },
    EvaluateConfig: {
        "gzsl": "Also evaluate generalised zero-shot (all classes compete): plain, calibrated stacking, gate, AUSUC.",
        "top_k": "k of the top-k accuracy, and the classes listed per prediction.",
        "search_backend": "Prototype search: `auto`, `faiss` or `numpy`.",
        "device": "Where extraction, search and the training of heads whose params name no device run "
                  "(`zsar run --device` overrides it).",
        "allow_leakage": "Evaluate even when the encoder was trained on unseen classes (the report flags it).",
        "select_on_test": "The papers' best-on-test model selection, for comparison only (the report flags it).",
        "epoch_choice": "The training length from the validation curve: `smoothed`, `best` or `last` "
                        "(zsar/evaluate/epoch_choice.py).",
        "leaderboard_columns": "Also the last-epoch and test-selected ZSL top-1 of every run (`zsar leaderboard` "
                               "sets it).",
        "threads": "CPU threads of head training and scoring; 0: the cores other processes leave free "
                   "(zsar/compute.py).",
    },
    StreamExperimentConfig: {
        "name": "The experiment's name; the default output folder is `runs/<name>`.",
        "seeds": "Head training seeds (a non-empty list of integers).",
        "output_dir": "Output folder; `zsar streams run --out` overrides it. Not set: `runs/<name>`.",
        "task": '`"segmentation"` (label every frame) or `"anticipation"` (the next action from the rows observed '
                "before it).",
        "data": "Where the streams come from: trimmed skeleton samples, synthetic data, a segmentation feature "
                "release or a per-frame cache.",
        "streams": "skeleton / synthetic: `StreamRecipe` fields (`actions_per_stream`, `streams_per_split`, "
                   "`background_gap`, `background_mode`, `transition`, `no_repeat`, `successors`, `seed`) as a "
                   "`[streams]` table; `successors = k` orders actions by a seeded script (k successor classes "
                   "per class), `0` at random.",
        "extract": "skeleton / synthetic: the per-frame features, sliding windows of an encoder.",
        "text": "Text of the action classes and of the background class.",
        "splits": "The held-out class sets, one per split.",
        "heads": "The stream heads to run, one `[[heads]]` table each.",
        "evaluate": "Model selection and the report.",
        "anticipation": "task = anticipation: the observation window.",
    },
    StreamDataConfig: {
        "source": '`"skeleton"`, `"synthetic"` (streams built from trimmed samples), `"release"` (a segmentation '
                  'feature release) or `"cache"` (a per-frame cache).',
        "dataset": "skeleton: the skeleton dataset; release: the release folder (`features/`, `groundTruth/`, ...).",
        "format": "skeleton: `auto`, `nw_ucla`, `ntu` or `pickle`.",
        "options": "skeleton: options of the format's loader.",
        "synthetic": "synthetic: `SyntheticConfig` fields, as a `[data.synthetic]` table.",
        "validation_fraction": "Training samples (release: videos) set aside, seeded, as validation streams; in "
                               "[0, 1).",
        "validation_seed": "The seed of that draw.",
        "release_split": "release: which `splits/*.split<k>.bundle`.",
        "background": 'release: the background class names, `"auto"` (detected) or a list (`[]`: none).',
        "cache": "cache: a per-frame cache (`zsar streams import`, or an earlier run's).",
    },
    WindowConfig: {
        "window": "Frames per sliding window.",
        "stride": "Frames between two windows (one feature row per stride).",
        "checkpoint": "Optional: a trained skeleton encoder (`zsar encoder train`, never trained on a held-out "
                      "class) instead of the statistics encoder.",
        "mode": 'With a checkpoint: `"windows"` (its clip embedding per window) or `"temporal"` (its per-time-step '
                "output over the whole stream, one row per temporal stride).",
    },
    StreamTextConfig: {
        "variant": "Text variant of the action classes (the built-in class text where the names match).",
        "model": "A local sentence-transformers folder. Not set: the packaged all-MiniLM-L6-v2.",
        "background": "Texts of the background class.",
        "prototypes": "Optional: a zsar prototype file holding every class (background too) instead of embedding "
                      "text; a missing class is named in the error.",
    },
    HeldOutConfig: {
        "held_out": 'Class names (or ids) held out, one list per split, e.g. `[["pick up with one hand", '
                    '"drop trash"]]`.',
        "random_held_out": "And/or seeded random held-out sets of this size ...",
        "random_seeds": "... one per seed (needed with `random_held_out`).",
    },
    StreamHeadSpec: {
        "name": "The stream head: `mstcn` or `text_segmentation`; anticipation: `last_segment`, `successor`, "
                "`pooled_linear` or `sgear`.",
        "params": "Parameters of the head, e.g. `{ epochs = 30 }`.",
        "label": "Optional: the head's name in the report (two settings of one head need two labels).",
    },
    AnticipationConfig: {
        "tau_a": "Observation ends this long before the next action starts, after the encoder's window (in "
                 "`unit`s).",
        "observe": "And covers at most this long.",
        "unit": '`"frames"` (input frames) or `"seconds"` (needs the cache\'s frame rate).',
        "min_observed": "Rows a sample needs; segments with less history are skipped and counted in the report.",
        "examples": "Test samples listed in the report with their recent actions and ranked predictions.",
        "lookahead": "Only for caches that record no encoder window (imported releases): frames after its own each "
                     "row's features read (0 for causal features, 10 for centred 21-frame I3D windows).",
    },
    StreamEvaluateConfig: {
        "epoch_choice": "The training length from the validation streams: `smoothed`, `best` or `last`.",
        "select_on_test": "The released codes' protocol (epochs picked on test), for comparison only (labelled).",
        "timelines": "Test streams drawn as timeline strips in the report.",
    },
}

_REQUIRED = object()


def _default(f: Field):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return _REQUIRED


def toml_value(value) -> str:
    """A default as TOML text (what a config file would hold)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise ZsarError(f"config_keys: cannot write the default {value!r} as TOML")


def _default_text(value) -> str:
    if value is _REQUIRED:
        return "required"
    if value is None:
        return "not set"
    return "`" + toml_value(value) + "`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def keys(cls: type) -> list[Field]:
    """The TOML keys of a config dataclass, in declaration order."""
    return [f for f in fields(cls) if f.name not in INTERNAL_FIELDS]


def sections(root: type) -> list[tuple[str, str, type]]:
    """(key, TOML header, dataclass) of the root config's tables, found from the defaults: a dataclass default is a
    `[key]` table, a default list of dataclass instances an array of `[[key]]` tables."""
    out = []
    for f in keys(root):
        value = _default(f)
        if is_dataclass(value) and not isinstance(value, type):
            out.append((f.name, f"[{f.name}]", type(value)))
        elif isinstance(value, list) and value and all(is_dataclass(v) for v in value):
            kinds = {type(v) for v in value}
            if len(kinds) != 1:
                raise ZsarError(f"config_keys: {root.__name__}.{f.name} mixes {sorted(k.__name__ for k in kinds)}")
            out.append((f.name, f"[[{f.name}]]", kinds.pop()))
    return out


def config_classes(root: type) -> list[type]:
    return [root] + [cls for _, _, cls in sections(root)]


def undocumented(root: type) -> list[str]:
    """`Class.key` of every key of the root config and its tables that has no description."""
    return [f"{cls.__name__}.{f.name}" for cls in config_classes(root) for f in keys(cls)
            if not DESCRIPTIONS.get(cls, {}).get(f.name, "").strip()]


def stale_descriptions() -> list[str]:
    """`Class.key` of descriptions whose key no longer exists."""
    return [f"{cls.__name__}.{name}" for cls, table in DESCRIPTIONS.items() for name in table
            if name not in {f.name for f in keys(cls)}]


def _table(cls: type, skip: set[str] = frozenset()) -> list[str]:
    lines = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for f in keys(cls):
        if f.name in skip:
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        lines.append(f"| `{f.name}` | `{_cell(kind)}` | {_cell(_default_text(_default(f)))} | "
                     f"{_cell(DESCRIPTIONS[cls][f.name])} |")
    return lines


def keys_markdown(root: type, source: str) -> str:
    """The key tables of one experiment config: its top-level keys, then one table per `[section]`."""
    missing = undocumented(root)
    if missing:
        raise ZsarError(f"config keys without a description in zsar/experiment/config_keys.py: {missing}")
    found = sections(root)
    lines = [f"<!-- generated from {source} by `python -m zsar.experiment.config_keys --write README.md`: "
             "edit the dataclasses or config_keys.py, not this block -->",
             f"Top-level keys (`{root.__name__}`):", ""]
    lines += _table(root, skip={key for key, _, _ in found})
    for key, header, cls in found:
        intro = DESCRIPTIONS[root][key]
        if header.startswith("[["):
            names = ", ".join(f"`{getattr(h, 'name', h)}`" for h in _default(next(f for f in keys(root)
                                                                                  if f.name == key)))
            intro += f" Without any: {names}."
        lines += ["", f"`{header}` (`{cls.__name__}`): {intro}", ""]
        lines += _table(cls)
    return "\n".join(lines)


def experiment_keys_markdown() -> str:
    return keys_markdown(ExperimentConfig, "zsar/experiment/config.py")


def stream_keys_markdown() -> str:
    return keys_markdown(StreamExperimentConfig, "zsar/experiment/streams.py")


def encoders_markdown() -> str:
    from zsar.extract.encoder_zoo import zoo_markdown

    return zoo_markdown()


def _mmaction_installed() -> bool:
    from zsar.extract.encoder_zoo import mmaction_package_dir

    return mmaction_package_dir() is not None


# name -> (generator, whether it can run here)
BLOCKS: dict[str, tuple[Callable[[], str], Callable[[], bool]]] = {
    "experiment-keys": (experiment_keys_markdown, lambda: True),
    "stream-keys": (stream_keys_markdown, lambda: True),
    "encoders": (encoders_markdown, _mmaction_installed),
}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {re.escape(name)}:begin -->)\n(.*?)\n?(<!-- {re.escape(name)}:end -->)", re.DOTALL)


def read_block(text: str, name: str) -> str:
    """The text between a block's markers; a missing or repeated block is an error."""
    matches = _pattern(name).findall(text)
    if len(matches) != 1:
        raise ZsarError(f"expected one `<!-- {name}:begin -->` ... `<!-- {name}:end -->` block, found {len(matches)}")
    return matches[0][1]


def replace_block(text: str, name: str, content: str) -> str:
    read_block(text, name)  # exactly one block, or an error
    return _pattern(name).sub(lambda m: f"{m.group(1)}\n{content.strip(chr(10))}\n{m.group(3)}", text)


def update_text(text: str, names: list[str] | None = None) -> tuple[str, list[str], list[str]]:
    """(new text, blocks changed, blocks skipped because their source is not installed here)."""
    changed, skipped = [], []
    for name in names or list(BLOCKS):
        generate, available = BLOCKS[name]
        if not available():
            skipped.append(name)
            continue
        new = replace_block(text, name, generate())
        if new != text:
            changed.append(name)
        text = new
    return text, changed, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zsar.experiment.config_keys",
                                     description="Regenerate (or check) the README's generated blocks.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="FILE", type=Path, help="rewrite the blocks of FILE in place")
    group.add_argument("--check", metavar="FILE", type=Path, help="exit 1 when a block of FILE is out of date")
    group.add_argument("--print", metavar="BLOCK", choices=sorted(BLOCKS), help="print one generated block")
    args = parser.parse_args(argv)
    try:
        if args.print:
            print(BLOCKS[args.print][0]())
            return 0
        path = args.write or args.check
        text = path.read_text(encoding="utf-8")
        new, changed, skipped = update_text(text)
    except (ZsarError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in skipped:
        print(f"{name}: skipped (mmaction2 is not installed)", file=sys.stderr)
    if args.check:
        print(f"{path}: out of date: {', '.join(changed)}" if changed else f"{path}: up to date")
        return 1 if changed else 0
    if changed:
        path.write_text(new, encoding="utf-8")
    print(f"{path}: rewrote {', '.join(changed)}" if changed else f"{path}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

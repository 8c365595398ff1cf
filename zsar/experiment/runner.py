"""`zsar run`: data -> embeddings cache -> text prototypes -> heads -> ZSL/GZSL report."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np

from zsar.atomic import atomic_target, writable_folder
from zsar.class_lists.class_text import class_text_for
from zsar.class_lists.splits import ZeroShotSplit, load_split, random_split
from zsar.class_lists.text_files import read_class_names, read_class_texts
from zsar.compute import use_threads
from zsar.datasets.skeleton_datasets import open_skeleton_dataset
from zsar.datasets.source import SampleSource
from zsar.datasets.synthetic import SyntheticConfig, synthetic_source
from zsar.errors import Interrupted, ZsarError
from zsar.evaluate.batched_protocol import ProtocolJob, run_protocol_group
from zsar.evaluate.comparison import compare_heads, zsl_correct
from zsar.evaluate.protocol import ProtocolOptions, run_protocol
from zsar.evaluate.report import run_figures, summarise_head, versions, write_report
from zsar.evaluate.semantics import semantics_figure, unseen_seen_similarity
from zsar.experiment.check import check_experiment
from zsar.experiment.config import EvaluateConfig, ExperimentConfig, load_config
from zsar.extract.encoder_training import EncoderTrainConfig, train_skeleton_encoder
from zsar.extract.skeleton import extract_skeleton_network, extract_skeleton_stats
from zsar.extract.skeleton_stats import ENCODER_NAME, SkeletonStatsConfig, SkeletonStatsEncoder
from zsar.extract.text import TextEncoder, TextSources, build_variants
from zsar.features.fingerprint import file_sha256
from zsar.features.prototypes import ClassPrototypes, load_prototypes, save_prototypes
from zsar.features.reader import FeatureCache
from zsar.heads.base import build_config
from zsar.heads.batched_runs import batched_heads
from zsar.heads.torch_device import training_device
from zsar.progress import RunProgress, tracking

log = logging.getLogger(__name__)


def builtin_config_path(name: str = "demo") -> Path:
    return Path(str(resources.files("zsar.experiment").joinpath("builtin", f"{name}.toml")))


def open_source(config: ExperimentConfig) -> SampleSource | None:
    """The raw samples the experiment encodes itself (None when it reads a given cache)."""
    if config.data.source == "synthetic":
        return synthetic_source(build_config(SyntheticConfig, config.data.synthetic, "[data.synthetic]"))
    if config.data.source == "skeleton":
        return open_skeleton_dataset(config.resolve(config.data.dataset), config.data.format,
                                     **config.loader_options(config.data.options))
    return None


def _stats_encoder(config: ExperimentConfig, source: SampleSource) -> SkeletonStatsEncoder:
    params = {"layout": source.layout, **config.encoder.params}
    return SkeletonStatsEncoder(build_config(SkeletonStatsConfig, params, "[encoder.params]"))


def prepare_features(config: ExperimentConfig, out: Path, split: ZeroShotSplit, source: SampleSource | None,
                     progress: bool = True) -> Path:
    """The feature cache for `split`: given ([data] cache), shared by all splits (an encoder not trained on
    labels, or a given checkpoint), or from an encoder trained here on the split's seen classes. Every
    step reuses finished work (caches resume, a finished training run is not repeated)."""
    if source is None:
        return config.resolve(config.data.cache)
    enc = config.encoder
    if enc.name == ENCODER_NAME:
        path = out / "cache" / f"{source.name}__{ENCODER_NAME}.h5"
        return extract_skeleton_stats(source, path, _stats_encoder(config, source), progress=progress)
    extract = {"batch_size": 16, **enc.extract}
    if enc.checkpoint:
        checkpoint = config.resolve(enc.checkpoint)
        path = out / "cache" / f"{source.name}__{_safe(checkpoint.stem)}.h5"
        mm_config = str(config.resolve(enc.mm_config)) if enc.mm_config else None
        return extract_skeleton_network(source, checkpoint, path, device=config.evaluate.device, progress=progress,
                                    config=mm_config, layout=source.layout, **extract)
    return _trained_encoder_features(config, out, split, source, split_tag(split), progress)


def _trained_encoder_features(config: ExperimentConfig, out: Path, split: ZeroShotSplit, source: SampleSource,
                              tag: str, progress: bool) -> Path:
    """Train an encoder on `split`'s seen classes (training samples only) and embed every sample with it."""
    enc = config.encoder
    extract = {"batch_size": 16, **enc.extract}
    train_config = build_config(EncoderTrainConfig, {"config": enc.name, **enc.params}, "[encoder.params]")
    checkpoint = train_skeleton_encoder(source, split, out / "encoders" / tag, train_config, config.data.train_split,
                                        progress)
    path = out / "cache" / f"{source.name}__{tag}__{_safe(Path(enc.name).stem)}.h5"
    return extract_skeleton_network(source, checkpoint, path, device=train_config.device, progress=progress, **extract)


def check_validation_encoder(config: ExperimentConfig, source: SampleSource | None) -> None:
    enc = config.encoder
    if enc.validation_encoder and (source is None or enc.name == ENCODER_NAME or enc.checkpoint):
        raise ZsarError("[encoder] validation_encoder needs an encoder trained here per split (an mmaction2 config "
                        "as `name`, no `checkpoint`); with [data] source = \"cache\" give [data] validation_cache")


def prepare_validation_features(config: ExperimentConfig, out: Path, split: ZeroShotSplit,
                                source: SampleSource | None, progress: bool = True) -> Path | None:
    """With `[encoder] validation_encoder`: features from an encoder trained on the split's validation-seen
    classes only, so the validation problem's unseen classes are as unseen to the encoder as the test's."""
    if not config.encoder.validation_encoder:
        return None
    check_validation_encoder(config, source)
    return _trained_encoder_features(config, out, split.validation_encoder_split(), source,
                                     split_tag(split) + "__validation", progress)


def prepare_prototypes(config: ExperimentConfig, class_names: list[str], out: Path
                       ) -> tuple[dict[str, ClassPrototypes], Path]:
    """Every text variant the experiment asks for, by name, and the one prototype file holding them."""
    t = config.text
    if t.prototypes:
        path = config.resolve(t.prototypes)
        texts = {variant: load_prototypes(path, variant) for variant in t.variants}
        for protos in texts.values():
            if len(protos.class_ids) != len(class_names):
                raise ZsarError(f"{len(protos.class_ids)} prototypes for {len(class_names)} classes", path)
        return texts, path
    sources = TextSources(
        templates=t.templates, class_text=class_text_for(class_names, config.resolve(t.class_text)),
        descriptions=read_class_texts(config.resolve(t.descriptions), class_names) if t.descriptions else None,
        parts=read_class_texts(config.resolve(t.parts), class_names) if t.parts else None,
        part_weights=t.part_weights)
    texts = build_variants(TextEncoder(t.model), range(len(class_names)), class_names, t.variants, sources,
                           t.ensemble)
    model = f"{_safe(Path(t.model).name)}__" if t.model else ""  # another model's file is another file
    path = save_prototypes(out / "cache" / f"prototypes__{model}{'+'.join(t.variants)}.h5", list(texts.values()))
    return texts, path


def resolve_splits(config: ExperimentConfig, num_classes: int) -> list[ZeroShotSplit]:
    splits = []
    for name in config.splits.names:
        resolved = config.resolve(name)
        spec = resolved if resolved is not None and resolved.exists() else name
        splits.append(load_split(spec, num_classes=num_classes))
    for seed in config.splits.random_seeds if config.splits.random_unseen else []:
        splits.append(random_split(num_classes, int(config.splits.random_unseen), int(seed)))
    return splits


def check_leakage(cache: FeatureCache, split: ZeroShotSplit, allow: bool) -> list[int]:
    """Unseen classes the encoder was trained on; refuses unless `allow` (then the report says so)."""
    trained = set(cache.header.trained_classes or ())
    leaked = sorted(set(split.unseen) & trained)
    if leaked and not allow:
        raise ZsarError(
            f"label leakage: the encoder was trained on classes {leaked} that split {split.name!r} calls unseen. "
            "Use an encoder trained on the seen classes only, or set [evaluate] allow_leakage = true "
            "(the report will say so)", cache.path)
    return leaked


def _prepare_split_features(config: ExperimentConfig, out: Path, splits: list[ZeroShotSplit],
                            source: SampleSource | None, progress: bool) -> tuple[dict, dict, dict]:
    """Per split: its feature cache, the leaked classes, and its validation-encoder cache (if any). Features come
    first (encoders train here), so a leak stops the run before any head."""
    caches, leakage, validation_caches = {}, {}, {}
    for split in splits:
        cache = FeatureCache(prepare_features(config, out, split, source, progress))
        caches[split.name] = cache
        leakage[split.name] = check_leakage(cache, split, config.evaluate.allow_leakage)
        validation_path = prepare_validation_features(config, out, split, source, progress)
        if validation_path is not None:
            validation_caches[split.name] = FeatureCache(validation_path)
            check_leakage(validation_caches[split.name], split.validation_encoder_split(), allow=False)
    return caches, leakage, validation_caches


def _given_validation(config: ExperimentConfig, splits: list[ZeroShotSplit]):
    """([data] validation_cache as a FeatureCache, its training features) or (None, None)."""
    if not config.data.validation_cache:
        return None, None
    validation_cache = FeatureCache(config.resolve(config.data.validation_cache))
    validation = validation_cache.load(config.data.train_split, dtype=np.float32)
    for split in splits:
        leaked = sorted(set(validation.labels.tolist()) & set(split.unseen))
        if leaked:
            raise ZsarError(f"validation features hold unseen classes {leaked} of split {split.name!r}",
                            validation_cache.path)
    return validation_cache, validation


def protocol_options(ev: EvaluateConfig) -> ProtocolOptions:
    """The protocol's options from an experiment's [evaluate] section."""
    return ProtocolOptions(gzsl=ev.gzsl, top_k=ev.top_k, backend=ev.search_backend, device=ev.device,
                           select_on_test=ev.select_on_test, epoch_rule=ev.epoch_choice,
                           leaderboard_columns=ev.leaderboard_columns)


class _HeadRuns:
    """Every head x split x seed through the protocol, collecting what the report needs. `sources`: the feature
    caches by split name, the validation-encoder caches by split name and the given validation features (or
    None). With `batched`, a head that trains batched runs all its splits and seeds as one group."""

    def __init__(self, config: ExperimentConfig, out: Path, class_names: list[str],
                 texts: dict[str, ClassPrototypes], sources: tuple[dict, dict, object], batched: bool = False):
        self.config, self.out, self.class_names, self.texts = config, out, class_names, texts
        self.caches, self.validation_caches, self.validation = sources
        self.options, self.batched = protocol_options(config.evaluate), batched
        self.runs, self.figures, self.correct, self.loaded = [], [], {}, {}

    def features(self, cache: FeatureCache, split: str):
        """`split`'s rows of `cache` as float32, read once per run."""
        if (cache.path, split) not in self.loaded:
            self.loaded[cache.path, split] = cache.load(split, dtype=np.float32)
        return self.loaded[cache.path, split]

    def groups(self, spec, splits: list[ZeroShotSplit]) -> list[list[tuple[ZeroShotSplit, int]]]:
        """The (split, seed) runs of `spec` in order: one group when batched and the head trains batched, else one
        group per run."""
        pairs = [(split, seed) for split in splits for seed in self.config.seeds]
        return [pairs] if self.batched and spec.name in batched_heads() else [[pair] for pair in pairs]

    def job(self, split: ZeroShotSplit, seed: int) -> ProtocolJob:
        cache, data = self.caches[split.name], self.config.data
        validation = self.features(self.validation_caches[split.name], data.train_split) \
            if split.name in self.validation_caches else self.validation
        return ProtocolJob(split, seed, self.features(cache, data.train_split), self.features(cache, data.test_split),
                           self.texts, validation)

    def run(self, spec, group: list[tuple[ZeroShotSplit, int]], tracker: RunProgress):
        jobs = [self.job(split, seed) for split, seed in group]
        if len(jobs) == 1:
            tracker.start_run(spec.name, jobs[0].split.name, jobs[0].seed)
        else:
            tracker.start_run(spec.name, ", ".join(dict.fromkeys(j.split.name for j in jobs)),
                              ", ".join(str(s) for s in dict.fromkeys(j.seed for j in jobs)))
        started = time.perf_counter()
        if len(jobs) == 1:
            j = jobs[0]
            results = [run_protocol(spec.name, spec.params, spec.search, j.train, j.test, j.split, self.texts, j.seed,
                                    self.options, validation=j.validation)]
        else:
            results = run_protocol_group(spec.name, spec.params, spec.search, jobs, self.options)
        seconds = (time.perf_counter() - started) / len(jobs)  # a group's time shared out among its runs
        for job, result in zip(jobs, results):
            self._record(spec, job.split, result, seconds, tracker)

    def _record(self, spec, split: ZeroShotSplit, result, seconds: float, tracker: RunProgress) -> None:
        seed = result.seed
        run_dir = self.out / "runs" / spec.name / f"{split_tag(split)}__seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_target(run_dir / "predictions.csv") as tmp:
            result.predictions.to_csv(tmp, index=False)
        self.correct.setdefault(spec.name, {})[(split.name, seed)] = zsl_correct(result.predictions)
        result.fitted.save(run_dir / "head")
        self.runs.append({**result.summary(), "seconds": round(seconds, 2),
                          "predictions": str(run_dir / "predictions.csv"),
                          "split_classes": split.to_dict(), "features": str(self.caches[split.name].path)})
        if not any(t.startswith(f"{spec.name}:") for t, _ in self.figures):
            names = [self.class_names[c] for c in split.unseen]
            per_class = {self.class_names[c]: a for c, a in result.zsl_per_class.items()}
            self.figures += run_figures(spec.name, split.name, names, result.zsl_confusion, per_class,
                                        result.zsl["chance_top1"])
        gzsl = f", GZSL H {result.gzsl['h']:.1f}" if result.gzsl else ""
        tracker.finish_run(f"ZSL top-1 {result.zsl['top1']:.1f}{gzsl}")


def run_experiment(config: ExperimentConfig, out_dir: str | Path | None = None, progress: bool = True,
                   batched: bool = False) -> dict:
    """Run the whole experiment and write the reports into `out_dir`; returns the report dict. On Ctrl-C the
    finished runs are kept: a report marked partial is written and `Interrupted` is raised. `batched`: every
    split and seed of a head that trains batched (zsar/heads/batched_runs.py) runs as one group, its fits trained
    together (zsar/evaluate/batched_protocol.py); the results are the same, a run's seconds the group's share."""
    check_experiment(config)  # every config problem at once, before any work
    training_device(config.evaluate.device, "[evaluate] device")  # a missing GPU stops the run before any work
    out = Path(out_dir or config.output_dir or Path("runs") / config.name)
    writable_folder(out)  # a read-only or full output folder stops the run before any work
    source = open_source(config)
    check_validation_encoder(config, source)  # before any encoder trains
    dataset_names = source.class_names if source is not None else FeatureCache(config.resolve(config.data.cache)
                                                                                ).class_names
    class_names = read_class_names(config.resolve(config.text.class_names)) if config.text.class_names \
        else list(dataset_names)
    if len(class_names) != len(dataset_names):
        raise ZsarError(f"{len(class_names)} class names for a dataset with {len(dataset_names)} classes",
                        config.resolve(config.text.class_names))
    prototypes, proto_path = prepare_prototypes(config, class_names, out)
    splits = resolve_splits(config, len(class_names))
    caches, leakage, validation_caches = _prepare_split_features(config, out, splits, source, progress)
    validation_cache, validation = _given_validation(config, splits)
    heads = _HeadRuns(config, out, class_names, prototypes, (caches, validation_caches, validation), batched)
    tracker = RunProgress(len(config.heads) * len(splits) * len(config.seeds), live=None if progress else False)
    interrupted = False
    try:
        with tracking(tracker):
            for spec in config.heads:
                use_threads(config.evaluate.threads)  # sized per head: other jobs on a shared machine come and go
                for group in heads.groups(spec, splits):
                    heads.run(spec, group, tracker)
    except KeyboardInterrupt:
        interrupted = True
    if interrupted and not heads.runs:
        raise Interrupted(0, tracker.total, None)
    report = _assemble_report(config, splits, heads, leakage, caches, validation_cache, validation_caches,
                              (prototypes, proto_path))
    if interrupted:
        report["partial"] = {"finished_runs": len(heads.runs), "total_runs": tracker.total,
                             "reason": "interrupted (Ctrl-C); heads, splits or seeds are missing"}
    first_split, semantics = next(iter(report["text_semantics"].items()))
    write_report(out, report, [*heads.figures, semantics_figure(first_split, semantics)])
    if interrupted:
        raise Interrupted(len(heads.runs), tracker.total, out / "report.html")
    return report


def _assemble_report(config: ExperimentConfig, splits: list[ZeroShotSplit], heads: _HeadRuns, leakage: dict,
                     caches: dict, validation_cache, validation_caches: dict, text: tuple) -> dict:
    ev, (prototypes, proto_path) = config.evaluate, text
    ran = [spec.name for spec in config.heads if any(r["head"] == spec.name for r in heads.runs)]
    summaries = {name: summarise_head([r for r in heads.runs if r["head"] == name]) for name in ran}
    primary = summaries[ran[0]]
    report = {
        "experiment": config.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "zsl": {k: v["mean"] for k, v in primary["zsl"].items()},
        "gzsl": {k: v["mean"] for k, v in primary["gzsl"].items()} if "gzsl" in primary else None,
        "primary_head": ran[0],
        "split": [s.name for s in splits],
        "seed": list(config.seeds),
        "heads": summaries,
        "comparisons": compare_heads(heads.correct, ran),
        "runs": heads.runs,
        "protocol": {
            "model_selection": ("TEST SET (--select-on-test: the papers' protocol, for comparison only; not an "
                                "honest estimate)") if ev.select_on_test else
            "validation zero-shot split (seen classes held out as unseen, training samples only)",
            "test_touched_once": not ev.select_on_test,
            "epoch_choice": "best (on test)" if ev.select_on_test else ev.epoch_choice,
            "validation_encoder": ("per split, trained on the validation-seen classes only" if validation_caches
                                   else "given ([data] validation_cache)" if validation_cache is not None
                                   else "the split's encoder (it was trained on the validation classes too)"),
            "selected_on_test": bool(ev.select_on_test),
            "transductive": False,
            "leakage_override": bool(ev.allow_leakage),
            "leaked_classes": {k: v for k, v in leakage.items() if v},
        },
        "config": config.to_dict(),
        "versions": versions(),
        "caches": {
            "features": _cache_record(caches[splits[0].name]),
            "features_by_split": {name: _cache_record(c) for name, c in caches.items()},
            "validation_features": _cache_record(validation_cache) if validation_cache is not None else None,
            "validation_features_by_split": {name: _cache_record(c) for name, c in validation_caches.items()},
            "prototypes": _prototype_record(prototypes, proto_path),
        },
    }
    if report["gzsl"] is None:
        del report["gzsl"]
    shown = next(iter(prototypes.values()))  # the first variant asked for
    report["text_semantics"] = {split.name: unseen_seen_similarity(shown, split) for split in splits}
    return report


def _prototype_record(texts: dict[str, ClassPrototypes], path: Path) -> dict:
    first = next(iter(texts.values()))
    return {"path": str(path), "fingerprint": file_sha256(path), "text_model": first.text_model,
            "text_model_sha256": first.text_model_sha256, "dim": first.dim, "variant": list(texts),
            "ensemble_views": {v: p.view_names for v, p in texts.items() if p.view_names}}


def _cache_record(cache: FeatureCache) -> dict:
    h = cache.header
    record = {"path": str(cache.path), "fingerprint": cache.fingerprint, "encoder": h.encoder,
              "config_hash": h.config_hash, "dataset": h.dataset, "checkpoint_sha256": h.checkpoint_sha256,
              "trained_classes": None if h.trained_classes is None else list(h.trained_classes)}
    training = h.encoder_config.get("training") if isinstance(h.encoder_config, dict) else None
    if training:
        record["encoder_training"] = {k: training.get(k) for k in ("seed", "best_epoch", "best_val_acc",
                                                                    "fit_samples", "val_samples", "options")}
    return record


def run_config_file(path: str | Path, out_dir: str | Path | None = None, progress: bool = True) -> dict:
    return run_experiment(load_config(path), out_dir, progress)


def run_demo(out_dir: str | Path = "runs/demo", progress: bool = True) -> dict:
    """The built-in experiment on the built-in synthetic data."""
    return run_config_file(builtin_config_path("demo"), out_dir, progress)


def split_tag(split: ZeroShotSplit) -> str:
    """A short folder-safe name: a split file's stem, or the split's name."""
    name = Path(split.name).stem if split.name.endswith((".toml", ".json")) else split.name
    return _safe(name)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)

"""Run a stream experiment (`streams.py` has the config): build or import the streams once into a per-frame cache,
embed the class text once, then every head on every held-out split and seed; the report is rewritten after each
run, so an interrupted experiment leaves the runs it finished."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from zsar.atomic import writable_folder
from zsar.datasets.source import SampleSource
from zsar.datasets.stream_builder import StreamRecipe, build_streams, stream_classes
from zsar.errors import Interrupted, ZsarError
from zsar.evaluate.report import versions
from zsar.evaluate.segmentation_metrics import background_note
from zsar.evaluate.stream_protocol import SELECTION_METRIC, StreamProtocol, run_stream_split, summarise_runs
from zsar.evaluate.stream_report import write_stream_report
from zsar.experiment.streams import StreamExperimentConfig, load_stream_config, resolve_held_out
from zsar.features.prototypes import ClassPrototypes, load_prototypes, save_prototypes
from zsar.features.streams import StreamCache, import_segmentation_release

log = logging.getLogger(__name__)


def trimmed_source(config: StreamExperimentConfig) -> SampleSource:
    """The trimmed samples, with a seeded fraction of the training samples set aside as validation."""
    d = config.data
    if d.source == "synthetic":
        from zsar.datasets.synthetic import SyntheticConfig, synthetic_source

        source = synthetic_source(SyntheticConfig(**d.synthetic))
    else:
        from zsar.datasets.skeleton_datasets import open_skeleton_dataset

        source = open_skeleton_dataset(config.resolve(d.dataset), d.format, **config.loader_options(d.options))
    meta = source.metadata.copy()
    train = np.flatnonzero((meta["split"] == "train").to_numpy())
    n_val = round(d.validation_fraction * len(train))
    picked = np.random.default_rng(d.validation_seed).permutation(train)[:n_val]
    meta.loc[picked, "split"] = "val"
    return SampleSource(source.name, source.class_names, meta, source.load, source.modality, source.layout,
                        source.class_ids, source.provenance)


def check_held_out_early(config: StreamExperimentConfig, source: SampleSource | None) -> None:
    """For streams built here (`source` given), the held-out lists checked against their classes before any work."""
    if source is not None:
        resolve_held_out(config.splits, *stream_classes(source, StreamRecipe(**config.streams)))


def prepare_stream_cache(config: StreamExperimentConfig, out: Path, source: SampleSource | None,
                         progress: bool = True) -> Path:
    """The per-frame cache the heads read: given, imported from a release, or built from `source` (the trimmed
    samples of a skeleton or synthetic experiment) and extracted (resumable; reused while its inputs are unchanged)."""
    d = config.data
    if d.source == "cache":
        return config.resolve(d.cache)
    if d.source == "release":
        background = d.background if isinstance(d.background, str) else tuple(d.background)
        target = out / "cache" / f"release_split{d.release_split}.h5"
        return import_segmentation_release(config.resolve(d.dataset), target, split=d.release_split,
                                           background=background, validation_fraction=d.validation_fraction,
                                           seed=d.validation_seed)
    from zsar.extract.stream_windows import extract_stream_windows

    streams = build_streams(source, StreamRecipe(**config.streams),
                            splits=("train", "val", "test") if d.validation_fraction else ("train", "test"))
    w = config.extract
    encoder, tag = _window_encoder(config, int(next(s.keypoints.shape[-1] for s in streams.streams)), source.layout)
    path = out / "cache" / f"streams__{tag}_w{w.window}_s{w.stride}.h5"
    return extract_stream_windows(streams, path, encoder, w.window, w.stride, progress=progress)


def _window_encoder(config: StreamExperimentConfig, channels: int, layout: str | None):
    """The per-frame encoder the config asks for, and a tag for its cache's file name."""
    from zsar.extract.stream_windows import network_temporal, network_windows, stats_windows

    w = config.extract
    if w.checkpoint is None:
        from zsar.extract.skeleton_stats import SkeletonStatsConfig, SkeletonStatsEncoder

        stats = SkeletonStatsEncoder(SkeletonStatsConfig(layout=layout or SkeletonStatsConfig.layout))
        return stats_windows(stats, channels=channels), "skeleton-stats"
    from zsar.extract.skeleton_encoder import SkeletonEncoder
    from zsar.features.fingerprint import file_sha256

    path = config.resolve(w.checkpoint)
    encoder, digest = SkeletonEncoder.load(path), file_sha256(path)
    if w.mode == "temporal":
        return network_temporal(encoder, digest), f"{path.stem}-temporal"
    return network_windows(encoder, digest), path.stem


def check_leakage(cache: StreamCache, splits) -> None:
    """A per-frame encoder trained on a held-out class would leak it: refused, naming the classes."""
    trained = set(cache.header.trained_classes or ())
    for split in splits:
        leaked = sorted(trained & set(split.classes))
        if leaked:
            names = [cache.class_names[c] for c in leaked]
            raise ZsarError(f"the per-frame encoder was trained on held-out classes {names} of split {split.name!r}; "
                            "train it without them (zsar encoder train with this split)", cache.path)


def stream_prototypes(config: StreamExperimentConfig, class_names: list[str], background: tuple[int, ...],
                      out: Path) -> ClassPrototypes:
    """Text prototypes of every class: the action classes from their class text (built-in where the names match),
    the background class from `[text] background`; or read from `[text] prototypes`, which must hold them all."""
    if config.text.prototypes:
        return prototypes_from_file(config.resolve(config.text.prototypes), config.text.variant, class_names)
    from zsar.class_lists.class_text import class_text_for
    from zsar.extract.text import TextEncoder, TextSources, build_prototypes, compose

    encoder = TextEncoder(config.text.model)
    actions = [i for i in range(len(class_names)) if i not in background]
    names = [class_names[i] for i in actions]
    protos = build_prototypes(encoder, actions, names, config.text.variant,
                              TextSources(class_text=class_text_for(names)))
    vectors = np.zeros((len(class_names), protos.dim), np.float32)
    texts: list[list[str]] = [[] for _ in class_names]
    for position, class_id in enumerate(actions):
        vectors[class_id], texts[class_id] = protos.vectors[position], protos.texts[position]
    for class_id in background:
        texts[class_id] = list(config.text.background)
        vectors[class_id] = compose(encoder.embed(texts[class_id]))
    result = ClassPrototypes(np.arange(len(class_names)), list(class_names), vectors, config.text.variant, texts,
                             protos.text_model, protos.text_model_sha256)
    save_prototypes(out / "cache" / f"stream_prototypes__{config.text.variant}.h5", [result])
    return result


def prototypes_from_file(path: Path, variant: str, class_names: list[str]) -> ClassPrototypes:
    """A prototype file's variant (its only one, else `variant`) for `class_names`, ids in their order; every
    class missing from it is named in one error."""
    try:
        loaded = load_prototypes(path, variant)
    except ZsarError as first:
        try:
            loaded = load_prototypes(path)  # a file of one variant, whatever its name
        except ZsarError:
            raise first from None
    ids = {name: int(i) for i, name in zip(loaded.class_ids, loaded.class_names, strict=True)}
    missing = [name for name in class_names if name not in ids]
    if missing:
        raise ZsarError(f"the prototype file has no prototype for classes {missing} (it has {loaded.class_names})",
                        path)
    picked = loaded.subset([ids[name] for name in class_names])
    return ClassPrototypes(np.arange(len(class_names)), list(class_names), picked.vectors, picked.variant,
                           picked.texts, picked.text_model, picked.text_model_sha256)


def _report(config, cache: StreamCache, splits, runs: list[dict], protocol: StreamProtocol) -> dict:
    names = cache.class_names
    chosen = "on test (the released codes' protocol)" if protocol.select_on_test else \
        f"on validation streams free of held-out classes ({SELECTION_METRIC}, rule {protocol.epoch_rule})"
    return {
        "name": config.name, "created": datetime.now(UTC).isoformat(timespec="seconds"), "versions": versions(),
        "config": config.to_dict(), "class_names": names, "background": list(cache.background),
        "background_note": background_note(cache.background, names),
        "protocol": "Training streams with any frame of a held-out class are removed; every test stream is labelled "
                    f"against all {len(names)} classes; epoch chosen {chosen}. Seeds {list(config.seeds)}.",
        "cache": {"path": str(cache.path), "fingerprint": cache.cache.fingerprint, "encoder": cache.header.encoder,
                  "frames": cache.header.frames, "streams": {str(k): int(v) for k, v in
                                                             cache.table["split"].value_counts().items()}},
        "splits": [{"name": s.name, "held_out": list(s.classes), "class_names": [names[c] for c in s.classes]}
                   for s in splits],
        "runs": runs, "summary": summarise_runs(runs),
    }


def run_stream_experiment(config: StreamExperimentConfig, out_dir: str | Path | None = None,
                          progress: bool = True) -> dict:
    if config.task == "anticipation":
        from zsar.experiment.anticipation_runner import run_anticipation_experiment

        return run_anticipation_experiment(config, out_dir, progress)
    out = writable_folder(Path(out_dir or config.output_dir or f"runs/{config.name}"))
    source = trimmed_source(config) if config.data.source in ("skeleton", "synthetic") else None
    check_held_out_early(config, source)
    cache = StreamCache(prepare_stream_cache(config, out, source, progress))
    splits = resolve_held_out(config.splits, cache.class_names, cache.background)
    check_leakage(cache, splits)
    prototypes = stream_prototypes(config, cache.class_names, cache.background, out)
    streams = cache.load_streams()
    ev = config.evaluate
    protocol = StreamProtocol(ev.epoch_choice, ev.select_on_test, ev.timelines)
    plan = [(h, s, seed) for h in config.heads for s in splits for seed in config.seeds]
    return run_plan(plan, lambda head, split, seed: run_stream_split(
        streams, prototypes, cache.background, head.name, head.params, split, seed, protocol),
        lambda runs: _report(config, cache, splits, runs, protocol), write_stream_report, out,
        _print_run if progress else None)


def run_plan(plan: list, run_one, report_of, write, out: Path, print_run=None) -> dict:
    """Every (head, split, seed) of `plan` through `run_one`; the report (`report_of(runs)`, written by `write`) is
    rewritten after each run, and an interruption writes the finished runs as a partial report."""
    runs: list[dict] = []
    started = time.perf_counter()
    try:
        for head, split, seed in plan:
            runs.append(run_one(head, split, seed))
            if print_run is not None:
                print_run(runs[-1], len(runs), len(plan), time.perf_counter() - started)
            write(out, report_of(runs))
    except KeyboardInterrupt:
        report = report_of(runs) | {"partial": f"{len(runs)} of {len(plan)} runs"}
        files = write(out, report) if runs else {}
        raise Interrupted(len(runs), len(plan), files.get("html")) from None
    report = report_of(runs)
    report["files"] = {k: str(v) for k, v in write(out, report).items()}
    return report


def _print_run(run: dict, done: int, total: int, seconds: float) -> None:
    m = run["metrics"]
    print(f"[{done}/{total} runs, {seconds:.0f} s] {run['head']} | {run['split']} | seed {run['seed']}: acc "
          f"{m['acc']:.1f}, edit {m['edit']:.1f}, F1@25 {m['f1@25']:.1f}, held-out acc "
          f"{m.get('acc_unseen', float('nan')):.1f} (epoch {run['chosen_epoch']}, {run['seconds']:.0f} s)", flush=True)


def run_stream_config_file(path: str | Path, out_dir: str | Path | None = None, progress: bool = True,
                           **overrides) -> dict:
    config = load_stream_config(path)
    if overrides:
        config = replace(config, evaluate=replace(config.evaluate, **overrides))
    return run_stream_experiment(config, out_dir, progress)


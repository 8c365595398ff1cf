"""`zsar run`: data -> embeddings cache -> text prototypes -> heads -> ZSL/GZSL report."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from zsar.class_lists.splits import ZeroShotSplit, load_split, random_split
from zsar.class_lists.text_files import read_class_names, read_class_texts
from zsar.datasets.synthetic import SyntheticConfig, synthetic_class_parts, synthetic_source
from zsar.errors import ZsarError
from zsar.evaluate.protocol import run_protocol
from zsar.evaluate.report import run_figures, summarise_head, versions, write_report
from zsar.experiment.config import ExperimentConfig, load_config
from zsar.extract.skeleton import extract_skeleton_stats
from zsar.extract.skeleton_stats import ENCODER_NAME, SkeletonStatsConfig, SkeletonStatsEncoder
from zsar.extract.text import TextEncoder, build_prototypes
from zsar.features.prototypes import ClassPrototypes, save_prototypes
from zsar.features.reader import FeatureCache
from zsar.heads.base import build_config

log = logging.getLogger(__name__)


def builtin_config_path(name: str = "demo") -> Path:
    return Path(str(resources.files("zsar.experiment").joinpath("builtin", f"{name}.toml")))


def prepare_features(config: ExperimentConfig, out: Path, progress: bool = True) -> Path:
    """The feature cache the experiment uses: extracted here for synthetic data (resumable), else given."""
    if config.data.source == "cache":
        return config.resolve(config.data.cache)
    if config.encoder.name != ENCODER_NAME:
        raise ZsarError(f"synthetic data is encoded with {ENCODER_NAME!r}; learned encoders write their own caches "
                        "(`zsar extract`) and are used with [data] source = 'cache'")
    synth = build_config(SyntheticConfig, config.data.synthetic, "[data.synthetic]")
    encoder = SkeletonStatsEncoder(build_config(SkeletonStatsConfig, {"layout": "kinect_v1_20" if synth.joints == 20
                                                                      else "ntu_25", **config.encoder.params},
                                                "[encoder.params]"))
    source = synthetic_source(synth)
    path = out / "cache" / f"{source.name}__{encoder.name}.h5"
    return extract_skeleton_stats(source, path, encoder, progress=progress)


def prepare_prototypes(config: ExperimentConfig, class_names: list[str], out: Path) -> tuple[ClassPrototypes, Path]:
    t = config.text
    descriptions = read_class_texts(config.resolve(t.descriptions), class_names) if t.descriptions else None
    parts = read_class_texts(config.resolve(t.parts), class_names) if t.parts else None
    if t.variant == "parts" and parts is None and config.data.source == "synthetic":
        parts = synthetic_class_parts()
    encoder = TextEncoder(t.model)
    protos = build_prototypes(encoder, range(len(class_names)), class_names, t.variant, t.templates, descriptions,
                              parts, t.part_weights)
    path = save_prototypes(out / "cache" / f"prototypes__{t.variant}.h5", [protos])
    return protos, path


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


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_experiment(config: ExperimentConfig, out_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Run the whole experiment and write the reports into `out_dir`; returns the report dict."""
    out = Path(out_dir or config.output_dir or Path("runs") / config.name)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = prepare_features(config, out, progress)
    cache = FeatureCache(cache_path)
    class_names = read_class_names(config.resolve(config.text.class_names)) if config.text.class_names \
        else cache.class_names
    if len(class_names) != len(cache.class_names):
        raise ZsarError(f"{len(class_names)} class names for a cache with {len(cache.class_names)} classes",
                        config.resolve(config.text.class_names))
    prototypes, proto_path = prepare_prototypes(config, class_names, out)
    splits = resolve_splits(config, len(class_names))
    leakage = {s.name: check_leakage(cache, s, config.evaluate.allow_leakage) for s in splits}
    train = cache.load(config.data.train_split)
    test = cache.load(config.data.test_split)
    ev = config.evaluate
    runs, figures = [], []
    for spec in config.heads:
        for split in splits:
            for seed in config.seeds:
                log.info("head %s, split %s, seed %d", spec.name, split.name, seed)
                result = run_protocol(spec.name, spec.params, spec.search, train, test, split, prototypes, seed,
                                      ev.gzsl, ev.top_k, ev.search_backend, ev.device)
                run_dir = out / "runs" / spec.name / f"{_safe(split.name)}__seed{seed}"
                run_dir.mkdir(parents=True, exist_ok=True)
                result.predictions.to_csv(run_dir / "predictions.csv", index=False)
                result.fitted.save(run_dir / "head")
                runs.append({**result.summary(), "predictions": str(run_dir / "predictions.csv"),
                             "split_classes": split.to_dict()})
                if not any(t.startswith(f"{spec.name}:") for t, _ in figures):
                    names = [class_names[c] for c in split.unseen]
                    per_class = {class_names[c]: a for c, a in result.zsl_per_class.items()}
                    figures += run_figures(spec.name, split.name, names, result.zsl_confusion, per_class,
                                           result.zsl["chance_top1"])
    heads = {spec.name: summarise_head([r for r in runs if r["head"] == spec.name]) for spec in config.heads}
    primary = heads[config.heads[0].name]
    report = {
        "experiment": config.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "zsl": {k: v["mean"] for k, v in primary["zsl"].items()},
        "gzsl": {k: v["mean"] for k, v in primary["gzsl"].items()} if "gzsl" in primary else None,
        "primary_head": config.heads[0].name,
        "split": [s.name for s in splits],
        "seed": list(config.seeds),
        "heads": heads,
        "runs": runs,
        "protocol": {
            "model_selection": "validation zero-shot split (seen classes held out as unseen, training samples only)",
            "test_touched_once": True,
            "transductive": False,
            "leakage_override": bool(ev.allow_leakage),
            "leaked_classes": {k: v for k, v in leakage.items() if v},
        },
        "config": config.to_dict(),
        "versions": versions(),
        "caches": {
            "features": {"path": str(cache.path), "fingerprint": cache.fingerprint, "encoder": cache.header.encoder,
                         "config_hash": cache.header.config_hash, "dataset": cache.header.dataset},
            "prototypes": {"path": str(proto_path), "fingerprint": _sha256_file(proto_path),
                           "text_model": prototypes.text_model, "variant": prototypes.variant},
        },
    }
    if report["gzsl"] is None:
        del report["gzsl"]
    write_report(out, report, figures)
    return report


def run_config_file(path: str | Path, out_dir: str | Path | None = None, progress: bool = True) -> dict:
    return run_experiment(load_config(path), out_dir, progress)


def run_demo(out_dir: str | Path = "runs/demo", progress: bool = True) -> dict:
    """The built-in experiment on the built-in synthetic data."""
    return run_config_file(builtin_config_path("demo"), out_dir, progress)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)

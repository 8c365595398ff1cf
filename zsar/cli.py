"""The `zsar` command line: parse arguments, call one library function, show the result."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from zsar.errors import ZsarError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Zero-shot action recognition on cached embeddings.")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect and create feature caches.")
text_app = typer.Typer(no_args_is_help=True, help="Class text prototypes.")
splits_app = typer.Typer(no_args_is_help=True, help="Zero-shot class splits.")
encoder_app = typer.Typer(no_args_is_help=True, help="Train skeleton encoders on seen classes.")
extract_app = typer.Typer(no_args_is_help=True, help="Run encoders over a dataset into a feature cache.")
import_app = typer.Typer(no_args_is_help=True, help="Import published feature releases as caches, splits and runs.")
streams_app = typer.Typer(no_args_is_help=True, help="Untrimmed streams: per-frame caches and zero-shot segmentation.")
app.add_typer(cache_app, name="cache")
app.add_typer(encoder_app, name="encoder")
app.add_typer(extract_app, name="extract")
app.add_typer(text_app, name="text")
app.add_typer(splits_app, name="splits")
app.add_typer(import_app, name="import")
app.add_typer(streams_app, name="streams")


def _show_version(value: bool) -> None:
    if value:
        from zsar import __version__

        typer.echo(f"zsar {__version__}")
        raise typer.Exit()


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logging."),
          version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not verbose:  # FAISS narrates which instruction-set build it tries at INFO, failures of the fallback included
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)


def _print_summary(report: dict, out: Path) -> None:
    typer.echo(f"report: {out / 'report.html'}")
    for name, s in report["heads"].items():
        zsl = s["zsl"]["top1"]
        line = f"{name:<20} ZSL top-1 {zsl['mean']:6.2f} ± {zsl['std']:.2f}"
        if "gzsl" in s:
            g = s["gzsl"]
            line += f"   GZSL H {g['h']['mean']:6.2f}   CS H {g['cs_h']['mean']:6.2f}"
            line += f"   gate H {g['gate_h']['mean']:6.2f}" if "gate_h" in g else ""
            line += f"   AUSUC {g['ausuc']['mean']:6.2f}"
        typer.echo(line + f"   (chance {s['chance_top1']['mean']:.2f})")
    for c in report.get("comparisons", []):
        d = c["top1_difference"]
        typer.echo(f"{c['head']} - {c['baseline']}: ZSL top-1 {d['mean']:+.2f} (se {d['stderr']:.2f} over {d['n']} "
                   f"runs, won {c['wins']}/{c['runs']}), McNemar p {c['mcnemar_p']:.3g}")


def _interruptible(work):
    """Ctrl-C: one line saying what was kept (finished runs in a partial report; caches resume), exit code 130."""
    from zsar.errors import Interrupted

    try:
        return work()
    except Interrupted as exc:
        typer.echo(f"\n{exc}", err=True)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted before any run finished; finished extraction is kept and resumes on the next run",
                   err=True)
    raise typer.Exit(130)


@app.command()
def run(config: Path = typer.Argument(..., help="Experiment TOML file."),
        out: Path = typer.Option(None, help="Output folder (default: config output_dir or runs/<name>)."),
        allow_leakage: bool = typer.Option(False, "--allow-leakage",
                                           help="Evaluate even if the encoder was trained on unseen classes "
                                                "(the report says so)."),
        select_on_test: bool = typer.Option(False, "--select-on-test",
                                            help="Choose hyper-parameters on the test set, as several papers do: "
                                                 "for comparison only; the report labels it."),
        device: str = typer.Option(None, help="Torch device for extraction, head training and search (cpu, cuda, "
                                              "cuda:1); overrides [evaluate] device."),
        check: bool = typer.Option(False, "--check", help="Only check the config (heads, parameters, splits, "
                                                          "paths) and say what would run; starts no work.")) -> None:
    """Run an experiment described in a TOML file and write its report."""
    from dataclasses import replace

    from zsar.experiment.check import check_experiment
    from zsar.experiment.config import load_config

    cfg = load_config(config)
    if device:
        cfg = replace(cfg, evaluate=replace(cfg.evaluate, device=device))
    if allow_leakage or select_on_test:
        cfg = replace(cfg, evaluate=replace(cfg.evaluate, allow_leakage=cfg.evaluate.allow_leakage or allow_leakage,
                                            select_on_test=cfg.evaluate.select_on_test or select_on_test))
    checked = check_experiment(cfg, config)  # before torch and the encoders are imported
    if check:
        typer.echo(f"{config}: OK, {checked.runs} runs ({len(cfg.heads)} heads x {checked.splits} splits x "
                   f"{len(cfg.seeds)} seeds)")
        return
    from zsar.experiment.runner import run_experiment

    out = out or Path(cfg.output_dir or Path("runs") / cfg.name)
    _print_summary(_interruptible(lambda: run_experiment(cfg, out)), out)


def _csv(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


@app.command()
def leaderboard(config: Path = typer.Argument(..., help="Experiment TOML file (its data, encoder, text, splits)."),
                out: Path = typer.Option(None, help="Output folder (default: the config's; its caches and encoders "
                                                    "are reused)."),
                heads: str = typer.Option(None, help="Comma-separated heads (default: the config's)."),
                random_seeds: str = typer.Option(None, help="Comma-separated seeds replacing the config's random "
                                                            "splits (development splits).")) -> None:
    """Every head on the same features and splits: ZSL top-1 with the whole schedule, selected on validation, and
    selected on test (the papers' protocol, labelled), GZSL H, paired comparisons and time per run."""
    from zsar.experiment.check import check_experiment
    from zsar.experiment.config import load_config
    from zsar.experiment.leaderboard import leaderboard_config, run_leaderboard

    cfg = load_config(config)
    head_list = _csv(heads)
    seeds = [int(s) for s in _csv(random_seeds) or []] or None
    check_experiment(leaderboard_config(cfg, head_list, seeds), config)
    out = out or Path(cfg.output_dir or Path("runs") / cfg.name)
    record = _interruptible(lambda: run_leaderboard(cfg, out, head_list, seeds))
    typer.echo((out / "leaderboard.md").read_text(encoding="utf-8"))
    typer.echo(f"leaderboard: {out / 'leaderboard.md'} ({record['seconds']:.0f} s)")


@app.command()
def demo(out: Path = typer.Option(Path("runs/demo"), help="Output folder.")) -> None:
    """Run the built-in experiments on built-in synthetic skeleton data: zero-shot recognition of trimmed samples,
    then zero-shot segmentation of untrimmed streams built from them (in OUT/streams)."""
    from zsar.experiment.runner import builtin_config_path, run_demo
    from zsar.experiment.stream_runner import run_stream_config_file

    _print_summary(_interruptible(lambda: run_demo(out)), out)
    report = _interruptible(lambda: run_stream_config_file(builtin_config_path("demo_streams"), out / "streams"))
    typer.echo(Path(report["files"]["markdown"]).read_text(encoding="utf-8"))
    typer.echo(f"stream report: {report['files']['html']}")


@streams_app.command("run")
def streams_run(config: Path = typer.Argument(..., help="Stream experiment TOML file."),
                out: Path = typer.Option(None, help="Output folder (default: the config's, else runs/NAME)."),
                select_on_test: bool = typer.Option(None, "--select-on-test/--select-on-validation",
                                                    help="Choose epochs on test (the released codes' protocol, "
                                                         "labelled in the report).")) -> None:
    """Zero-shot temporal action segmentation: streams, per-frame features, text, stream heads, report."""
    from zsar.experiment.stream_runner import run_stream_config_file

    overrides = {} if select_on_test is None else {"select_on_test": select_on_test}
    report = _interruptible(lambda: run_stream_config_file(config, out, **overrides))
    typer.echo(Path(report["files"]["markdown"]).read_text(encoding="utf-8"))
    typer.echo(f"report: {report['files']['html']}")


@streams_app.command("import")
def streams_import(
    release: Path = typer.Argument(..., help="Release folder: features/*.npy [D, T], groundTruth/*.txt, mapping.txt, "
                                             "splits/*.bundle."),
    out: Path = typer.Argument(..., help="The per-frame cache to write (.h5)."),
    split: int = typer.Option(1, help="Which splits/{train,test}.split<k>.bundle."),
    background: str = typer.Option("auto", help="Background class names, comma-separated; 'auto' (background, SIL, "
                                                "action_start, action_end) or 'none'."),
    val_fraction: float = typer.Option(0.0, help="Training videos set aside (seeded) as validation streams."),
    seed: int = typer.Option(0, help="Seed of the validation draw."),
    overwrite: bool = typer.Option(False, help="Replace an existing cache (kept until the new one is complete)."),
) -> None:
    """Import a temporal segmentation feature release (MS-TCN / FACT layout) as a per-frame cache."""
    from zsar.features.info import cache_summary, format_summary
    from zsar.features.streams import import_segmentation_release

    names = background if background == "auto" else [] if background == "none" else _csv(background)
    path = import_segmentation_release(release, out, split=split, background=names,
                                       validation_fraction=val_fraction, seed=seed, overwrite=overwrite)
    typer.echo(format_summary(cache_summary(path)))


@cache_app.command("info")
def cache_info(path: Path, as_json: bool = typer.Option(False, "--json", help="Print JSON."),
               verify: bool = typer.Option(True, help="Check every row against its checksum (fast).")) -> None:
    """Schema, identity, counts per split and class, fingerprint and failures of a cache."""
    from zsar.features.info import cache_summary, format_summary

    summary = cache_summary(path, verify=verify)
    typer.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@cache_app.command("verify")
def cache_verify(paths: list[Path] = typer.Argument(..., help="Cache files to check.")) -> None:
    """Check every row against its checksum and recompute the content fingerprint; exits non-zero on damage."""
    from zsar.features.reader import FeatureCache

    for path in paths:
        result = FeatureCache(path).verify_all(fingerprint=True)
        checked = f"{result['rows_checked']} rows match their checksums, " if result["checksums"] else \
            "no row checksums (schema version 1), "
        typer.echo(f"{path}: {checked}fingerprint matches")


@cache_app.command("import")
def cache_import(
    embeddings: Path = typer.Option(..., help=".npy file of [N, D] embeddings."),
    metadata: Path = typer.Option(..., help="CSV or Parquet: sample_id, label, split (+ class_name, source, ...)."),
    class_names: Path = typer.Option(..., help="Class names: .txt (one per line) or .csv (idx,label)."),
    out: Path = typer.Option(..., help="Cache file to write (.h5)."),
    dataset: str = typer.Option(..., help="Dataset name recorded in the cache."),
    encoder: str = typer.Option(..., help="Encoder name recorded in the cache."),
    modality: str = typer.Option("other", help="skeleton | video | text | other"),
    logits: Path = typer.Option(None, help="Optional .npy of [N, C] encoder logits."),
    logit_classes: str = typer.Option(None, help="Comma-separated class ids of the logit columns."),
    trained_classes: str = typer.Option(None, help="Comma-separated class ids the encoder was trained on."),
    dtype: str = typer.Option("float32", help="float16 or float32"),
    overwrite: bool = typer.Option(False, help="Replace an existing cache, e.g. after the features changed (the old "
                                   "file stays until the new one is complete)."),
) -> None:
    """Bring your own features: write embeddings computed elsewhere as a zsar cache."""
    from zsar.features.importer import import_arrays

    path = import_arrays(embeddings, metadata, class_names, out, dataset, encoder, modality, logits,
                         _ids(logit_classes), _ids(trained_classes), dtype, overwrite)
    typer.echo(f"wrote {path}")


@import_app.command("sadvae")
def import_sadvae(
    resources: Path = typer.Argument(..., help="The release's resources/ folder (label_splits, sk_feats, text_feats)."),
    out: Path = typer.Option(Path("imported"), help="Folder for the caches, splits, prototypes and experiments."),
) -> None:
    """SA-DVAE / SynSE feature releases -> zsar caches + split + prototypes + an experiment file for `zsar run`."""
    from zsar.features.release_import import import_sadvae_release

    for record in import_sadvae_release(resources, out):
        typer.echo(f"{record['cache']}: {record['train']} training / {record['test']} test rows, unseen "
                   f"{record['unseen']}" + (f", validation features {record['validation_cache']}"
                                            if "validation_cache" in record else ""))
        for path in record["experiments"]:
            typer.echo(f"  zsar run {path}")


def _ids(text: str | None) -> list[int] | None:
    return None if not text else [int(x) for x in text.split(",") if x.strip()]


@text_app.command("embed")
def text_embed(
    classes: str = typer.Argument(..., help="Class names: a built-in list (ntu60, ntu120, pku51, hri30, nw_ucla, "
                                  "synthetic), a .txt (one per line) or a .csv (idx,label)."),
    out: Path = typer.Option(..., help="Prototype file to write (.h5)."),
    variant: list[str] = typer.Option(["prompts"], help="name | prompts | description | motion | parts | "
                                      "paraphrases | ensemble (repeatable: one file holds them all)."),
    class_text: Path = typer.Option(None, help="Class text file (docs/class_text.md); built-in lists have theirs."),
    ensemble: list[str] = typer.Option([], help="ensemble component=weight, e.g. motion=2 (repeatable; default: "
                                       "prompts, description, motion, paraphrases equally)."),
    model: str = typer.Option(None, help="Local sentence-transformers folder (default: packaged all-MiniLM-L6-v2)."),
    descriptions: Path = typer.Option(None, help="Descriptions per class (.txt, .csv idx,text, or .json)."),
    parts: Path = typer.Option(None, help="Parts per class (.csv idx,part or .json name -> [parts])."),
) -> None:
    """Embed class texts into a prototype file (one entry per variant)."""
    from zsar.extract.text import embed_classes
    from zsar.features.prototypes import save_prototypes

    protos = embed_classes(classes, variant, class_text, model, descriptions, parts, _weights(ensemble))
    typer.echo(f"wrote {save_prototypes(out, protos)} ({len(protos[0].class_names)} classes, variants "
               f"{', '.join(variant)}; {protos[0].dim}-d, model {protos[0].text_model})")


def _weights(items: list[str]) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value) if sep else 1.0
        except ValueError as exc:
            raise ZsarError(f"--ensemble {item!r}: write component=weight, e.g. motion=2") from exc
    return out


@text_app.command("similarity")
def text_similarity(
    classes: str = typer.Argument(..., help="A built-in list (ntu60, ...), a class-names file, or a prototype file "
                                  "(.h5)."),
    out: Path = typer.Option(..., help="Output: .csv (with class names) or .npy (the [C, C] matrix)."),
    variant: str = typer.Option("prompts", help="The text variant to compare (see `text embed`)."),
    class_text: Path = typer.Option(None, help="Class text file (built-in lists have theirs)."),
    model: str = typer.Option(None, help="Local sentence-transformers folder (default: packaged MiniLM)."),
) -> None:
    """Write the classes' [C, C] cosine similarity matrix of one text variant."""
    from zsar.evaluate.semantics import write_similarity
    from zsar.extract.text import embed_classes
    from zsar.features.prototypes import load_prototypes

    if classes.endswith((".h5", ".hdf5")):
        if class_text or model:
            raise ZsarError("a prototype file is already embedded: --class-text and --model do not apply", classes)
        protos = load_prototypes(classes, variant)
    else:
        protos = embed_classes(classes, [variant], class_text, model)[0]
    typer.echo(f"wrote {write_similarity(protos, out)} ({len(protos.class_names)} x {len(protos.class_names)}, "
               f"variant {variant})")


@text_app.command("template")
def text_template(
    classes: str = typer.Argument(..., help="A class-names file (.txt or .csv) or a built-in list."),
    out: Path = typer.Option(..., help="Class text file to write (.toml); an existing file is not replaced."),
) -> None:
    """Start a class text file for your classes: every field to fill in (docs/class_text.md)."""
    from zsar.atomic import write_text_atomic
    from zsar.class_lists.class_text import class_text_template, resolve_classes

    if out.exists():
        raise ZsarError("exists; choose another name (a filled-in file is never replaced)", out)
    names, _ = resolve_classes(classes)
    write_text_atomic(out, class_text_template(names))
    typer.echo(f"wrote {out} ({len(names)} classes): fill in every field, then check it with "
               f"`zsar text check {classes} {out}`")


@text_app.command("check")
def text_check(
    classes: str = typer.Argument(..., help="A class-names file or a built-in list."),
    class_text: Path = typer.Argument(..., help="The class text file to check."),
) -> None:
    """Check a class text file against the class names (every class present, ids and names agreeing, no empty
    field); lists every problem."""
    from zsar.class_lists.class_text import TEXT_FIELDS, resolve_classes

    names, texts = resolve_classes(classes, class_text)
    fields = [k for k in TEXT_FIELDS if texts[0].field(k) is not None]
    typer.echo(f"{class_text}: ok, {len(names)} classes with {', '.join(fields) or 'names only'}")


@splits_app.command("list")
def splits_list() -> None:
    """Standard zero-shot splits known by name."""
    from zsar.class_lists.splits import builtin_split_names

    typer.echo("\n".join(builtin_split_names()))


@splits_app.command("show")
def splits_show(name: str, num_classes: int = typer.Option(None, help="Class count for files without one.")) -> None:
    """Seen, unseen and validation classes of a split (by name or file)."""
    from zsar.class_lists.splits import load_split

    typer.echo(json.dumps(load_split(name, num_classes).to_dict(), indent=2))


@splits_app.command("random")
def splits_random(num_classes: int, num_unseen: int, seed: int = typer.Option(0)) -> None:
    """A seeded random split with its validation classes, as JSON (save it to reuse it)."""
    from zsar.class_lists.splits import random_split

    split = random_split(num_classes, num_unseen, seed).to_dict()
    typer.echo(json.dumps({k: split[k] for k in ("name", "num_classes", "unseen", "validation_unseen")}, indent=2))


def _loader_options(items: list[str] | None) -> dict:
    """`key=value` pairs for a dataset loader; integers and true/false are converted."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ZsarError(f"loader option {item!r} must look like key=value")
        out[key.strip()] = int(value) if value.strip().isdigit() else \
            {"true": True, "false": False}.get(value.strip().lower(), value.strip())
    return out


def _trust(trust_pickle: bool, dataset: Path, format: str) -> dict:
    """The loader option that trusts a pose pickle (only pickles take it)."""
    is_pickle = format == "pickle" or (format == "auto" and Path(dataset).suffix in (".pkl", ".pickle"))
    return {"trust_pickle": True} if trust_pickle and is_pickle else {}


_DATASET_HELP = "Skeleton dataset: NW-UCLA JSON folder, NTU .skeleton folder, or mmaction2/pyskl pickle."
_FORMAT_HELP = "auto | nw_ucla | ntu | pickle"
_OPTION_HELP = "Loader option key=value (repeatable), e.g. benchmark=xview, class_names=ntu60, layout=coco_17."
_TRUST_HELP = ("Load pickles (pose pickle, checkpoint) with the full unpickler, which can run code: only for files "
               "you trust. Without it, anything but plain data is refused. Recorded in the cache header.")


@encoder_app.command("train")
def encoder_train(
    dataset: Path = typer.Argument(..., help=_DATASET_HELP),
    split: str = typer.Option(..., help="Zero-shot split (standard name or file): the encoder sees its seen classes."),
    out: Path = typer.Option(..., help="Folder for best.pth, last.pth (resume) and train_log.json."),
    config: str = typer.Option("stgcn", help="stgcn | stgcnpp | stgcn-2d | stgcnpp-2d | posec3d | a config file."),
    epochs: int = typer.Option(16),
    batch_size: int = typer.Option(16),
    lr: float = typer.Option(None, help="Default: 0.1 per 128 samples, scaled to the batch size."),
    frames: int = typer.Option(None, help="Frames per clip (default: the config's)."),
    num_person: int = typer.Option(None, help="Bodies per sample (default: as many as the data has, at most 2)."),
    val_fraction: float = typer.Option(0.1, help="Seen training samples held out to pick the best epoch."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, ..."),
    seed: int = typer.Option(0),
    train_split: str = typer.Option("train", help="Sample split to train on."),
    format: str = typer.Option("auto", help=_FORMAT_HELP),
    option: list[str] = typer.Option(None, help=_OPTION_HELP),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=_TRUST_HELP),
) -> None:
    """Train an mmaction2 skeleton recognizer on the seen classes of a zero-shot split only."""
    from zsar.class_lists.splits import load_split
    from zsar.datasets.skeleton_datasets import open_skeleton_dataset
    from zsar.extract.encoder_training import EncoderTrainConfig, train_skeleton_encoder

    source = open_skeleton_dataset(dataset, format, **_loader_options(option), **_trust(trust_pickle, dataset, format))
    zs = load_split(split, num_classes=len(source.class_names))
    options = EncoderTrainConfig(config=config, epochs=epochs, batch_size=batch_size, lr=lr, frames=frames,
                                 num_person=num_person, val_fraction=val_fraction, device=device, seed=seed)
    path = train_skeleton_encoder(source, zs, out, options, train_split)
    typer.echo(f"wrote {path} (trained on {len(zs.seen)} seen classes of {zs.name})")


@extract_app.command("skeleton")
def extract_skeleton_cmd(
    dataset: Path = typer.Argument(..., help=_DATASET_HELP),
    out: Path = typer.Option(..., help="Cache file to write (.h5); an interrupted run resumes."),
    checkpoint: Path = typer.Option(None, help="Trained encoder (zsar or mmaction2 checkpoint). "
                                    "Without it: the training-free skeleton statistics."),
    mm_config: str = typer.Option(None, help="mmaction2 config of a checkpoint not written by zsar."),
    batch_size: int = typer.Option(16),
    device: str = typer.Option("cpu"),
    temporal: bool = typer.Option(False, help="Also store per-time-step features."),
    num_clips: int = typer.Option(1, help="Clips per sample, averaged."),
    overwrite: bool = typer.Option(False, help="Replace an existing cache (kept until the new one is complete)."),
    format: str = typer.Option("auto", help=_FORMAT_HELP),
    option: list[str] = typer.Option(None, help=_OPTION_HELP),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=_TRUST_HELP),
) -> None:
    """Embeddings (+ seen-class logits) of every sample into a feature cache."""
    from zsar.datasets.skeleton_datasets import open_skeleton_dataset
    from zsar.extract.skeleton import extract_skeleton_network, extract_skeleton_stats
    from zsar.features.info import cache_summary, format_summary

    source = open_skeleton_dataset(dataset, format, **_loader_options(option), **_trust(trust_pickle, dataset, format))
    if checkpoint is None:
        path = extract_skeleton_stats(source, out, batch_size=batch_size, overwrite=overwrite)
    else:
        path = extract_skeleton_network(source, checkpoint, out, batch_size, device, temporal, num_clips, overwrite,
                                        trust_pickle=trust_pickle, config=mm_config, layout=source.layout)
    typer.echo(format_summary(cache_summary(path)))


_VIDEO_DATASET_HELP = ("Videos: a folder of class folders (optionally under train/val/test), a list file (.txt/.csv: "
                       "path [label [split]]), an HRI30 folder (classInd.txt + trainlist01.txt) or a folder of "
                       "course-style CIDxx_SIDxx_VIDxx videos, or a folder of unlabelled videos.")


@extract_app.command("video")
def extract_video_cmd(
    dataset: Path = typer.Argument(..., help=_VIDEO_DATASET_HELP),
    out: Path = typer.Option(..., help="Cache file to write (.h5); an interrupted run resumes."),
    config: str = typer.Option("slowonly", help="slowonly | slowonly-4x16 | videomae | videomae-large | videomaev2 | "
                               "videomaev2-small | a path under mmaction2's configs | a config file."),
    checkpoint: Path = typer.Option(None, help="mmaction2 checkpoint for the config (weights are never downloaded)."),
    random_weights: bool = typer.Option(False, "--random-weights", help="No checkpoint: seeded random weights "
                                        "(for testing the pipeline only)."),
    head_classes: Path = typer.Option(None, help="Class names of the checkpoint's head (.txt/.csv), so its logits "
                                      "map onto the dataset's classes."),
    format: str = typer.Option("auto", help="auto | folders | list | hri30 | hri30-course | unlabelled"),
    class_names: Path = typer.Option(None, help="The dataset's class names (.txt/.csv) when the layout lacks them."),
    option: list[str] = typer.Option(None, help="Dataset option key=value (repeatable), e.g. labels_csv=labels.csv "
                                     "(hri30-course), root=videos (list)."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, ... (under torchrun, cuda = this rank's GPU)."),
    precision: str = typer.Option("fp32", help="fp32 | bf16 | fp16 (GPU)."),
    batch_size: int = typer.Option(None, help="Videos per forward pass (default: 1 on a CPU, 8 on a GPU)."),
    num_workers: int = typer.Option(None, help="Decoding processes (default: spare CPU cores, at most 8)."),
    backend: str = typer.Option("auto", help="auto (decord, then PyAV) | decord | pyav"),
    pipeline: str = typer.Option("auto", help="The config's pipeline to follow: auto (val, else test) | val | test."),
    num_clips: int = typer.Option(None, help="Clips per video, averaged (default: the pipeline's)."),
    crop: str = typer.Option(None, help="centre | three | none (default: the pipeline's)."),
    per_clip: bool = typer.Option(False, "--per-clip", help="Also store each view's features."),
    no_logits: bool = typer.Option(False, "--no-logits", help="Do not store the head's logits."),
    shard: str = typer.Option(None, help="i/n: extract every n-th video from i into <out>.shardI-of-N.h5."),
    overwrite: bool = typer.Option(False, help="Replace an existing cache (kept until the new one is complete)."),
    seed: int = typer.Option(0, help="Seed of random weights."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=_TRUST_HELP),
) -> None:
    """Embeddings (+ the head's logits) of every video into a feature cache; resumable, shardable (also under
    torchrun: each rank extracts its shard and rank 0 merges)."""
    from zsar.class_lists.text_files import read_class_names
    from zsar.datasets.video_datasets import open_video_dataset
    from zsar.extract.sharding import Shard
    from zsar.extract.video import ExtractOptions, extract_video_dataset
    from zsar.features.info import cache_summary, format_summary

    if checkpoint is None and not random_weights:
        raise ZsarError("give --checkpoint (or --random-weights to test the pipeline with an untrained network)")
    source = open_video_dataset(dataset, format, class_names, **_loader_options(option))
    options = ExtractOptions(batch_size=batch_size, num_workers=num_workers, backend=backend, per_clip=per_clip,
                             store_logits=not no_logits, trust_pickle=trust_pickle)
    path = extract_video_dataset(source, out, config, checkpoint, device, precision,
                                 read_class_names(head_classes) if head_classes else (), options, pipeline,
                                 Shard.parse(shard) if shard else None, overwrite, seed=seed, num_clips=num_clips,
                                 crop=crop)
    typer.echo(format_summary(cache_summary(path)))


@cache_app.command("merge")
def cache_merge(shards: list[Path] = typer.Argument(..., help="The shard caches of one sharded extraction."),
                out: Path = typer.Option(..., help="Merged cache to write."),
                overwrite: bool = typer.Option(False, help="Replace an existing cache.")) -> None:
    """Join shard caches after checking fingerprints, identity and coverage (no duplicate, no missing sample)."""
    from zsar.features.info import cache_summary, format_summary
    from zsar.features.merge import merge_shards

    typer.echo(format_summary(cache_summary(merge_shards(shards, out, overwrite))))


@app.command()
def predict(cache: Path = typer.Argument(..., help="A cache with the encoder's logits."),
            out: Path = typer.Option(..., help="Folder for submission.csv and predictions.csv."),
            split: str = typer.Option(None, help="Only this sample split (e.g. test, unlabelled)."),
            top_k: int = typer.Option(5, help="Classes listed per video in predictions.csv.")) -> None:
    """Supervised predictions from the stored logits: the HRI30 submission format (video id, class name, class
    id) and a detailed CSV with confidence and top-k."""
    from zsar.evaluate.predictions import predict_from_cache, write_predictions

    table = predict_from_cache(cache, top_k, split)
    submission, detailed = write_predictions(table, out)
    line = f"wrote {submission} and {detailed} ({len(table)} videos)"
    if "true_class_id" in table:
        labelled = table["true_class_id"] >= 0
        accuracy = (table["class_id"][labelled] == table["true_class_id"][labelled]).mean() * 100
        line += f"; top-1 on the {int(labelled.sum())} labelled videos {accuracy:.2f}%"
    typer.echo(line)


def main() -> None:
    """Entry point: a ZsarError becomes one line on stderr and exit code 1."""
    try:
        app()
    except ZsarError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)

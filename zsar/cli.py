"""The `zsar` command line: parse arguments, call one library function, show the result.

Every help text is printed as written (no Rich markup: `[label [split]]` stays), every parameter has help and a
metavar that says what to give (`FILE`, `DIR`, `N`), and output is quiet unless `--verbose` (zsar/quiet.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from typer.core import TyperArgument, TyperCommand

from zsar.errors import ZsarError


class _Argument(TyperArgument):
    """An argument shown by its metavar alone (typer would add the Python type: `DATA <path>`)."""

    def display_type_rich(self, ctx):
        return None if self.metavar else super().display_type_rich(ctx)


class _Command(TyperCommand):
    """Every command: its arguments with metavars are shown without Python type names (typer builds a plain
    TyperArgument per parameter and takes no class for it, so the built ones are given the subclass)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument


def _typer(help: str) -> typer.Typer:
    """A command group whose help texts render literally (Rich markup would eat `[...]`)."""
    return typer.Typer(no_args_is_help=True, rich_markup_mode=None, help=help)


app = _typer("Zero-shot action recognition on cached embeddings.")
cache_app = _typer("Inspect and create feature caches.")
text_app = _typer("Class text prototypes.")
splits_app = _typer("Zero-shot class splits.")
encoder_app = _typer("Train skeleton encoders on seen classes; list the built-in encoder configs.")
extract_app = _typer("Run encoders over a dataset into a feature cache.")
import_app = _typer("Import published feature releases as caches, splits and runs.")
streams_app = _typer("Untrimmed streams: per-frame caches, zero-shot segmentation and anticipation.")
app.add_typer(cache_app, name="cache")
app.add_typer(encoder_app, name="encoder")
app.add_typer(extract_app, name="extract")
app.add_typer(text_app, name="text")
app.add_typer(splits_app, name="splits")
app.add_typer(import_app, name="import")
app.add_typer(streams_app, name="streams")

_DEVICE_HELP = "auto (cuda when torch sees a GPU, else cpu), cpu, cuda, cuda:1, ..."


def resolve_device(name: str | None) -> str | None:
    """`auto` -> `cuda` when torch sees a GPU, else `cpu`; any other name (or None) as given."""
    if name is None or name.strip().lower() != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _show_version(value: bool) -> None:
    if value:
        from zsar import __version__

        typer.echo(f"zsar {__version__}")
        raise typer.Exit()


@app.callback()
def _main(ctx: typer.Context,
          verbose: bool = typer.Option(False, "--verbose", "-v",
                                       help="Show everything: debug logging, third-party loading bars and warnings, "
                                            "FFmpeg/decord messages (hidden by default)."),
          version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    from zsar import quiet

    if not verbose:
        ctx.with_resource(quiet.filtered_stderr())
    quiet.configure(verbose)


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


_BATCHED_HELP = ("Train every split and seed of linear_projection and contrastive as one stacked model (the same "
                 "numbers; pays on a GPU).")


@app.command(cls=_Command)
def run(config: Path = typer.Argument(..., metavar="CONFIG", help="Experiment TOML file."),
        out: Path = typer.Option(None, metavar="DIR",
                                 help="Output folder (default: config output_dir or runs/<name>)."),
        allow_leakage: bool = typer.Option(False, "--allow-leakage",
                                           help="Evaluate even if the encoder was trained on unseen classes "
                                                "(the report says so)."),
        select_on_test: bool = typer.Option(False, "--select-on-test",
                                            help="Choose hyper-parameters on the test set, as several papers do: "
                                                 "for comparison only; the report labels it."),
        device: str = typer.Option(None, metavar="DEVICE",
                                   help=f"Torch device for extraction, head training and search: {_DEVICE_HELP}; "
                                        "overrides [evaluate] device."),
        check: bool = typer.Option(False, "--check", help="Only check the config (heads, parameters, splits, "
                                                          "paths) and say what would run; starts no work."),
        batched: bool = typer.Option(False, "--batched", help=_BATCHED_HELP)) -> None:
    """Run an experiment described in a TOML file and write its report."""
    from dataclasses import replace

    from zsar.experiment.check import check_experiment
    from zsar.experiment.config import load_config

    cfg = load_config(config)
    if device:
        cfg = replace(cfg, evaluate=replace(cfg.evaluate, device=resolve_device(device)))
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
    _print_summary(_interruptible(lambda: run_experiment(cfg, out, batched=batched)), out)


def _csv(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


@app.command(cls=_Command)
def leaderboard(config: Path = typer.Argument(..., metavar="CONFIG",
                                              help="Experiment TOML file (its data, encoder, text, splits)."),
                out: Path = typer.Option(None, metavar="DIR", help="Output folder (default: the config's; its caches "
                                                                   "and encoders are reused)."),
                heads: str = typer.Option(None, metavar="HEAD,...",
                                          help="Comma-separated heads (default: the config's)."),
                random_seeds: str = typer.Option(None, metavar="SEED,...",
                                                 help="Comma-separated seeds replacing the config's random splits "
                                                      "(development splits)."),
                batched: bool = typer.Option(False, "--batched", help=_BATCHED_HELP)) -> None:
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
    record = _interruptible(lambda: run_leaderboard(cfg, out, head_list, seeds, batched))
    typer.echo((out / "leaderboard.md").read_text(encoding="utf-8"))
    typer.echo(f"leaderboard: {out / 'leaderboard.md'} ({record['seconds']:.0f} s)")


@app.command(cls=_Command)
def demo(out: Path = typer.Option(Path("runs/demo"), metavar="DIR", help="Output folder.")) -> None:
    """Run the built-in experiments on built-in synthetic skeleton data: zero-shot recognition of trimmed samples,
    then zero-shot segmentation of untrimmed streams built from them (in OUT/streams) and anticipation of the next
    action in scripted streams (in OUT/anticipation)."""
    from zsar.experiment.runner import builtin_config_path, run_demo
    from zsar.experiment.stream_runner import run_stream_config_file

    _print_summary(_interruptible(lambda: run_demo(out)), out)
    for config, folder in (("demo_streams", "streams"), ("demo_anticipation", "anticipation")):
        report = _interruptible(lambda c=config, f=folder: run_stream_config_file(builtin_config_path(c), out / f))
        typer.echo(Path(report["files"]["markdown"]).read_text(encoding="utf-8"))
        typer.echo(f"{folder} report: {report['files']['html']}")


@streams_app.command("run", cls=_Command)
def streams_run(config: Path = typer.Argument(..., metavar="CONFIG", help="Stream experiment TOML file."),
                out: Path = typer.Option(None, metavar="DIR",
                                         help="Output folder (default: the config's, else runs/NAME)."),
                select_on_test: bool = typer.Option(None, "--select-on-test/--select-on-validation",
                                                    help="Choose epochs on test (the released codes' protocol, "
                                                         "labelled in the report).")) -> None:
    """Zero-shot segmentation or anticipation (the config's `task`): streams, features, text, heads, report."""
    from zsar.experiment.stream_runner import run_stream_config_file

    overrides = {} if select_on_test is None else {"select_on_test": select_on_test}
    report = _interruptible(lambda: run_stream_config_file(config, out, **overrides))
    typer.echo(Path(report["files"]["markdown"]).read_text(encoding="utf-8"))
    typer.echo(f"report: {report['files']['html']}")


_OVERWRITE_HELP = "Replace an existing cache (kept until the new one is complete)."


@streams_app.command("import", cls=_Command)
def streams_import(
    release: Path = typer.Argument(..., metavar="RELEASE", help="Release folder: features/*.npy [D, T], "
                                                                "groundTruth/*.txt, mapping.txt, splits/*.bundle."),
    out: Path = typer.Argument(..., metavar="CACHE", help="The per-frame cache to write (.h5)."),
    split: int = typer.Option(1, metavar="K", help="Which splits/{train,test}.split<k>.bundle."),
    background: str = typer.Option("auto", metavar="NAME,...",
                                   help="Background class names, comma-separated; 'auto' (background, SIL, "
                                        "action_start, action_end) or 'none'."),
    val_fraction: float = typer.Option(0.0, metavar="FRACTION",
                                       help="Training videos set aside (seeded) as validation streams."),
    seed: int = typer.Option(0, metavar="N", help="Seed of the validation draw."),
    overwrite: bool = typer.Option(False, help=_OVERWRITE_HELP),
) -> None:
    """Import a temporal segmentation feature release (MS-TCN / FACT layout) as a per-frame cache."""
    from zsar.features.streams import import_segmentation_release

    names = background if background == "auto" else [] if background == "none" else _csv(background)
    path = import_segmentation_release(release, out, split=split, background=names,
                                       validation_fraction=val_fraction, seed=seed, overwrite=overwrite)
    typer.echo(_cache_text(path))


def _cache_summary(path: Path, verify: bool = True) -> dict:
    """`cache_summary` plus the encoder's weights as recorded (`random`: an untrained network)."""
    from zsar.features.info import cache_summary
    from zsar.features.reader import FeatureCache

    summary = cache_summary(path, verify=verify)
    config = FeatureCache(path).header.encoder_config
    summary["weights"] = config.get("weights") if isinstance(config, dict) else None
    return summary


def _format_cache(summary: dict) -> str:
    from zsar.features.info import format_summary

    lines = format_summary(summary).split("\n")
    if summary.get("weights") == "random":
        at = next((i + 1 for i, line in enumerate(lines) if line.startswith("encoder ")), len(lines))
        lines.insert(at, "weights      RANDOM (seeded, untrained): embeddings for testing the pipeline, not results")
    return "\n".join(lines)


def _cache_text(path: Path) -> str:
    return _format_cache(_cache_summary(path))


def _prototype_summary(path: Path) -> dict | None:
    """A class prototype file's classes, variants, dimension and text model; None when `path` is not one."""
    import h5py

    from zsar.features.prototypes import load_prototypes

    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("kind") != "class_prototypes":
                return None
            names = list(h5["variants"]) if "variants" in h5 else []
    except OSError:  # missing or not HDF5: the cache reader says what is wrong
        return None
    variants = {name: load_prototypes(path, name) for name in names}
    first = next(iter(variants.values()), None)
    return {
        "path": str(path), "kind": "class_prototypes",
        "class_ids": [] if first is None else [int(i) for i in first.class_ids],
        "class_names": [] if first is None else list(first.class_names),
        "variants": {name: {"classes": len(p.class_names), "dim": p.dim, "text_model": p.text_model,
                            "text_model_sha256": p.text_model_sha256, "views": p.view_names,
                            "view_weights": p.view_weights} for name, p in variants.items()},
    }


def _format_prototypes(summary: dict) -> str:
    lines = [f"prototypes   {summary['path']} (class text vectors, not a feature cache)"]
    for name, v in summary["variants"].items():
        views = "" if not v["views"] else ", views " + ", ".join(
            f"{view}={weight:g}" for view, weight in zip(v["views"], v["view_weights"] or [1.0] * len(v["views"])))
        lines.append(f"variant      {name}: {v['classes']} x {v['dim']}, text model {v['text_model']}"
                     f" (weights sha256 {(v['text_model_sha256'] or '-')[:12]}){views}")
    classes = [f"  {i:<4} {name}" for i, name in zip(summary["class_ids"], summary["class_names"])]
    return "\n".join(lines + [f"classes ({len(classes)}):"] + classes)


@cache_app.command("info", cls=_Command)
def cache_info(path: Path = typer.Argument(..., metavar="FILE", help="A feature cache, or a class prototype file "
                                                                      "(`zsar text embed`)."),
               as_json: bool = typer.Option(False, "--json", help="Print JSON."),
               verify: bool = typer.Option(True, help="Check every row against its checksum (fast).")) -> None:
    """Schema, identity, counts per split and class, fingerprint and failures of a cache; the classes, variants,
    dimension and text model of a prototype file."""
    prototypes = _prototype_summary(path)
    if prototypes is not None:
        typer.echo(json.dumps(prototypes, indent=2) if as_json else _format_prototypes(prototypes))
        return
    summary = _cache_summary(path, verify=verify)
    typer.echo(json.dumps(summary, indent=2) if as_json else _format_cache(summary))


@cache_app.command("verify", cls=_Command)
def cache_verify(paths: list[Path] = typer.Argument(..., metavar="FILE...", help="Cache files to check.")) -> None:
    """Check every row against its checksum and recompute the content fingerprint; exits non-zero on damage."""
    from zsar.features.reader import FeatureCache

    for path in paths:
        result = FeatureCache(path).verify_all(fingerprint=True)
        checked = f"{result['rows_checked']} rows match their checksums, " if result["checksums"] else \
            "no row checksums (schema version 1), "
        typer.echo(f"{path}: {checked}fingerprint matches")


@cache_app.command("import", cls=_Command)
def cache_import(
    embeddings: Path = typer.Option(..., metavar="FILE", help=".npy file of [N, D] embeddings."),
    metadata: Path = typer.Option(..., metavar="FILE",
                                  help="CSV or Parquet: sample_id, label, split (+ class_name, source, ...)."),
    class_names: Path = typer.Option(..., metavar="FILE", help="Class names: .txt (one per line) or .csv "
                                                               "(idx,label)."),
    out: Path = typer.Option(..., metavar="FILE", help="Cache file to write (.h5)."),
    dataset: str = typer.Option(..., metavar="NAME", help="Dataset name recorded in the cache."),
    encoder: str = typer.Option(..., metavar="NAME", help="Encoder name recorded in the cache."),
    modality: str = typer.Option("other", metavar="MODALITY", help="skeleton | video | text | other"),
    logits: Path = typer.Option(None, metavar="FILE", help="Optional .npy of [N, C] encoder logits."),
    logit_classes: str = typer.Option(None, metavar="ID,...", help="Comma-separated class ids of the logit "
                                                                   "columns."),
    trained_classes: str = typer.Option(None, metavar="ID,...",
                                        help="Comma-separated class ids the encoder was trained on."),
    dtype: str = typer.Option("float32", metavar="DTYPE", help="float16 or float32"),
    overwrite: bool = typer.Option(False, help="Replace an existing cache, e.g. after the features changed (the old "
                                   "file stays until the new one is complete)."),
) -> None:
    """Bring your own features: write embeddings computed elsewhere as a zsar cache."""
    from zsar.features.importer import import_arrays

    path = import_arrays(embeddings, metadata, class_names, out, dataset, encoder, modality, logits,
                         _ids(logit_classes), _ids(trained_classes), dtype, overwrite)
    typer.echo(f"wrote {path}")


@import_app.command("sadvae", cls=_Command)
def import_sadvae(
    resources: Path = typer.Argument(..., metavar="RESOURCES",
                                     help="The release's resources/ folder (label_splits, sk_feats, text_feats)."),
    out: Path = typer.Option(Path("imported"), metavar="DIR",
                             help="Folder for the caches, splits, prototypes and experiments."),
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


_CLASSES_HELP = ("Class names: a built-in list (ntu60, ntu120, pku51, hri30, nw_ucla, synthetic), a .txt (one per "
                 "line) or a .csv (idx,label).")


@text_app.command("embed", cls=_Command)
def text_embed(
    classes: str = typer.Argument(..., metavar="CLASSES", help=_CLASSES_HELP),
    out: Path = typer.Option(..., metavar="FILE", help="Prototype file to write (.h5)."),
    variant: list[str] = typer.Option(["prompts"], metavar="VARIANT",
                                      help="name | prompts | description | motion | parts | paraphrases | ensemble "
                                           "(repeatable: one file holds them all)."),
    class_text: Path = typer.Option(None, metavar="FILE",
                                    help="Class text file (docs/class_text.md); built-in lists have theirs."),
    ensemble: list[str] = typer.Option([], metavar="COMPONENT=WEIGHT",
                                       help="ensemble component=weight, e.g. motion=2 (repeatable; default: "
                                            "prompts, description, motion, paraphrases equally)."),
    model: str = typer.Option(None, metavar="DIR",
                              help="Local sentence-transformers folder (default: packaged all-MiniLM-L6-v2)."),
    descriptions: Path = typer.Option(None, metavar="FILE",
                                      help="Descriptions per class (.txt, .csv idx,text, or .json)."),
    parts: Path = typer.Option(None, metavar="FILE", help="Parts per class (.csv idx,part or .json name -> [parts])."),
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


@text_app.command("similarity", cls=_Command)
def text_similarity(
    classes: str = typer.Argument(..., metavar="CLASSES", help="A built-in list (ntu60, ...), a class-names file, "
                                                               "or a prototype file (.h5)."),
    out: Path = typer.Option(..., metavar="FILE",
                             help="Output: .csv (with class names) or .npy (the [C, C] matrix)."),
    variant: str = typer.Option("prompts", metavar="VARIANT", help="The text variant to compare (see `text embed`)."),
    class_text: Path = typer.Option(None, metavar="FILE", help="Class text file (built-in lists have theirs)."),
    model: str = typer.Option(None, metavar="DIR",
                              help="Local sentence-transformers folder (default: packaged MiniLM)."),
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


@text_app.command("template", cls=_Command)
def text_template(
    classes: str = typer.Argument(..., metavar="CLASSES",
                                  help="A class-names file (.txt or .csv) or a built-in list."),
    out: Path = typer.Option(..., metavar="FILE",
                             help="Class text file to write (.toml); an existing file is not replaced."),
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


@text_app.command("check", cls=_Command)
def text_check(
    classes: str = typer.Argument(..., metavar="CLASSES", help="A class-names file or a built-in list."),
    class_text: Path = typer.Argument(..., metavar="CLASS_TEXT", help="The class text file to check."),
) -> None:
    """Check a class text file against the class names (every class present, ids and names agreeing, no empty
    field); lists every problem."""
    from zsar.class_lists.class_text import TEXT_FIELDS, resolve_classes

    names, texts = resolve_classes(classes, class_text)
    fields = [k for k in TEXT_FIELDS if texts[0].field(k) is not None]
    typer.echo(f"{class_text}: ok, {len(names)} classes with {', '.join(fields) or 'names only'}")


@splits_app.command("list", cls=_Command)
def splits_list() -> None:
    """Standard zero-shot splits known by name."""
    from zsar.class_lists.splits import builtin_split_names

    typer.echo("\n".join(builtin_split_names()))


def split_class_names(spec: str, num_classes: int) -> tuple[str, list[str]] | None:
    """(built-in class list, its names) when `spec` names a standard split of a built-in list; None for files."""
    from zsar.class_lists.names import BUILTIN_DATASETS, builtin_class_names, canonical_dataset

    if Path(spec).suffix.lower() in (".toml", ".json") or Path(spec).exists():
        return None
    dataset = canonical_dataset(spec.partition("/")[0])
    if dataset not in BUILTIN_DATASETS:
        return None
    names = builtin_class_names(dataset)
    return (dataset, names) if len(names) == num_classes else None


def _class_block(title: str, ids, names: list[str] | None, note: str = "") -> list[str]:
    if names is None:
        return [f"{title} ({len(ids)}{note}): " + ", ".join(str(c) for c in ids)]
    return [f"{title} ({len(ids)}{note}):"] + [f"  {c:<4} {names[c]}" for c in ids]


def format_split(split, named: tuple[str, list[str]] | None) -> str:
    """A split for reading: unseen, validation and seen classes, with their names when the split has them."""
    names = None if named is None else named[1]
    drawn = "" if split.validation_seed is None else f" drawn with seed {split.validation_seed}"
    lines = [f"{split.name}: {split.num_classes} classes, {len(split.seen)} seen, {len(split.unseen)} unseen"
             + (f" (class names: {named[0]})" if named else "")]
    lines += _class_block("unseen", split.unseen, names)
    lines += _class_block("validation unseen", split.validation_unseen, names, f", among the seen{drawn}")
    return "\n".join(lines + _class_block("seen", split.seen, names))


@splits_app.command("show", cls=_Command)
def splits_show(name: str = typer.Argument(..., metavar="SPLIT",
                                           help="A standard split (`zsar splits list`) or a split file."),
                num_classes: int = typer.Option(None, metavar="N", help="Class count for files without one."),
                as_json: bool = typer.Option(False, "--json", help="Print JSON (with `class_names` when the split "
                                                                   "belongs to a built-in class list).")) -> None:
    """Seen, unseen and validation classes of a split (by name or file), with class names for the standard
    splits of built-in class lists."""
    from zsar.class_lists.splits import load_split

    split = load_split(name, num_classes)
    named = split_class_names(name, split.num_classes)
    if as_json:
        typer.echo(json.dumps({**split.to_dict(), **({"class_names": named[1]} if named else {})}, indent=2))
    else:
        typer.echo(format_split(split, named))


@splits_app.command("random", cls=_Command)
def splits_random(num_classes: int = typer.Argument(..., metavar="NUM_CLASSES", help="Classes in the data."),
                  num_unseen: int = typer.Argument(..., metavar="NUM_UNSEEN", help="Classes to hold out as unseen."),
                  seed: int = typer.Option(0, metavar="N", help="Seed of the draw.")) -> None:
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


@encoder_app.command("train", cls=_Command)
def encoder_train(
    dataset: Path = typer.Argument(..., metavar="DATA", help=_DATASET_HELP),
    split: str = typer.Option(..., metavar="SPLIT", help="Zero-shot split (standard name or file): the encoder sees "
                                                         "its seen classes."),
    out: Path = typer.Option(..., metavar="DIR", help="Folder for best.pth, last.pth (resume) and train_log.json."),
    config: str = typer.Option("stgcn", metavar="CONFIG",
                               help="stgcn | stgcnpp | stgcn-2d | stgcnpp-2d | posec3d | a config file."),
    epochs: int = typer.Option(16, metavar="N", help="Training epochs."),
    batch_size: int = typer.Option(16, metavar="N", help="Samples per training step."),
    lr: float = typer.Option(None, metavar="RATE", help="Learning rate (default: 0.1 per 128 samples, scaled to the "
                                                        "batch size)."),
    frames: int = typer.Option(None, metavar="N", help="Frames per clip (default: the config's)."),
    num_person: int = typer.Option(None, metavar="N",
                                   help="Bodies per sample (default: as many as the data has, at most 2)."),
    val_fraction: float = typer.Option(0.1, metavar="FRACTION",
                                       help="Seen training samples held out to pick the best epoch."),
    device: str = typer.Option("cpu", metavar="DEVICE", help=_DEVICE_HELP),
    seed: int = typer.Option(0, metavar="N", help="Seed of initialisation, sampling and the held-out draw."),
    train_split: str = typer.Option("train", metavar="NAME", help="Sample split to train on."),
    format: str = typer.Option("auto", metavar="FORMAT", help=_FORMAT_HELP),
    option: list[str] = typer.Option(None, metavar="KEY=VALUE", help=_OPTION_HELP),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=_TRUST_HELP),
) -> None:
    """Train an mmaction2 skeleton recognizer on the seen classes of a zero-shot split only."""
    from zsar.class_lists.splits import load_split
    from zsar.datasets.skeleton_datasets import open_skeleton_dataset
    from zsar.extract.encoder_training import EncoderTrainConfig, train_skeleton_encoder

    source = open_skeleton_dataset(dataset, format, **_loader_options(option), **_trust(trust_pickle, dataset, format))
    zs = load_split(split, num_classes=len(source.class_names))
    options = EncoderTrainConfig(config=config, epochs=epochs, batch_size=batch_size, lr=lr, frames=frames,
                                 num_person=num_person, val_fraction=val_fraction, device=resolve_device(device),
                                 seed=seed)
    path = train_skeleton_encoder(source, zs, out, options, train_split)
    typer.echo(f"wrote {path} (trained on {len(zs.seen)} seen classes of {zs.name})")


@encoder_app.command("list", cls=_Command)
def encoder_list(as_json: bool = typer.Option(False, "--json", help="Print JSON."),
                 markdown: bool = typer.Option(False, "--markdown", help="Print the README's Markdown table.")) -> None:
    """The config short names with their official checkpoints: training data, reported accuracy and where the
    weights are published (from mmaction2's model-zoo metadata; nothing is downloaded)."""
    from zsar.extract.encoder_zoo import encoder_zoo, zoo_markdown, zoo_text

    entries = encoder_zoo()
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], indent=2))
    else:
        typer.echo(zoo_markdown(entries) if markdown else zoo_text(entries))


@extract_app.command("skeleton", cls=_Command)
def extract_skeleton_cmd(
    dataset: Path = typer.Argument(..., metavar="DATA", help=_DATASET_HELP),
    out: Path = typer.Option(..., metavar="FILE", help="Cache file to write (.h5); an interrupted run resumes."),
    checkpoint: Path = typer.Option(None, metavar="FILE", help="Trained encoder (zsar or mmaction2 checkpoint). "
                                    "Without it: the training-free skeleton statistics."),
    mm_config: str = typer.Option(None, metavar="FILE",
                                  help="mmaction2 config of a checkpoint not written by zsar."),
    batch_size: int = typer.Option(16, metavar="N", help="Samples per forward pass."),
    device: str = typer.Option("cpu", metavar="DEVICE", help=_DEVICE_HELP),
    temporal: bool = typer.Option(False, help="Also store per-time-step features."),
    num_clips: int = typer.Option(1, metavar="N", help="Clips per sample, averaged."),
    overwrite: bool = typer.Option(False, help=_OVERWRITE_HELP),
    format: str = typer.Option("auto", metavar="FORMAT", help=_FORMAT_HELP),
    option: list[str] = typer.Option(None, metavar="KEY=VALUE", help=_OPTION_HELP),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=_TRUST_HELP),
) -> None:
    """Embeddings (+ seen-class logits) of every sample into a feature cache."""
    from zsar.datasets.skeleton_datasets import open_skeleton_dataset
    from zsar.extract.skeleton import extract_skeleton_network, extract_skeleton_stats

    source = open_skeleton_dataset(dataset, format, **_loader_options(option), **_trust(trust_pickle, dataset, format))
    if checkpoint is None:
        path = extract_skeleton_stats(source, out, batch_size=batch_size, overwrite=overwrite)
    else:
        path = extract_skeleton_network(source, checkpoint, out, batch_size, resolve_device(device), temporal,
                                        num_clips, overwrite, trust_pickle=trust_pickle, config=mm_config,
                                        layout=source.layout)
    typer.echo(_cache_text(path))


_VIDEO_DATASET_HELP = ("Videos: a folder of class folders (optionally under train/val/test), a list file (.txt/.csv: "
                       "path [label [split]]), an HRI30 folder (classInd.txt + trainlist01.txt) or a folder of "
                       "course-style CIDxx_SIDxx_VIDxx videos, or a folder of unlabelled videos.")


@extract_app.command("video", cls=_Command)
def extract_video_cmd(
    dataset: Path = typer.Argument(..., metavar="DATA", help=_VIDEO_DATASET_HELP),
    out: Path = typer.Option(..., metavar="FILE", help="Cache file to write (.h5); an interrupted run resumes."),
    config: str = typer.Option("slowonly", metavar="CONFIG",
                               help="slowonly | slowonly-4x16 | videomae | videomae-large | videomaev2 | "
                                    "videomaev2-small | a path under mmaction2's configs | a config file."),
    checkpoint: Path = typer.Option(None, metavar="FILE", help="mmaction2 checkpoint for the config (weights are "
                                                               "never downloaded)."),
    random_weights: bool = typer.Option(False, "--random-weights", help="No checkpoint: seeded random weights "
                                        "(for testing the pipeline only)."),
    head_classes: Path = typer.Option(None, metavar="FILE", help="Class names of the checkpoint's head (.txt/.csv), "
                                                                 "so its logits map onto the dataset's classes."),
    format: str = typer.Option("auto", metavar="FORMAT",
                               help="auto | folders | list | hri30 | hri30-course | unlabelled"),
    class_names: Path = typer.Option(None, metavar="FILE",
                                     help="The dataset's class names (.txt/.csv) when the layout lacks them."),
    option: list[str] = typer.Option(None, metavar="KEY=VALUE",
                                     help="Dataset option key=value (repeatable), e.g. labels_csv=labels.csv "
                                          "(hri30-course), root=videos (list)."),
    device: str = typer.Option("cpu", metavar="DEVICE", help=f"{_DEVICE_HELP} (under torchrun, cuda = this rank's "
                                                             "GPU)."),
    precision: str = typer.Option("fp32", metavar="PRECISION", help="fp32 | bf16 | fp16 (GPU)."),
    batch_size: int = typer.Option(None, metavar="N",
                                   help="Videos per forward pass (default: 1 on a CPU, 8 on a GPU)."),
    num_workers: int = typer.Option(None, metavar="N",
                                    help="Decoding processes (default: spare CPU cores, at most 8)."),
    backend: str = typer.Option("auto", metavar="BACKEND", help="auto (decord, then PyAV) | decord | pyav"),
    pipeline: str = typer.Option("auto", metavar="NAME",
                                 help="The config's pipeline to follow: auto (val, else test) | val | test."),
    num_clips: int = typer.Option(None, metavar="N", help="Clips per video, averaged (default: the pipeline's)."),
    crop: str = typer.Option(None, metavar="CROP", help="centre | three | none (default: the pipeline's)."),
    per_clip: bool = typer.Option(False, "--per-clip", help="Also store each view's features."),
    no_logits: bool = typer.Option(False, "--no-logits", help="Do not store the head's logits."),
    shard: str = typer.Option(None, metavar="I/N",
                              help="i/n: extract every n-th video from i into <out>.shardI-of-N.h5."),
    overwrite: bool = typer.Option(False, help=_OVERWRITE_HELP),
    seed: int = typer.Option(0, metavar="N", help="Seed of random weights."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=_TRUST_HELP),
) -> None:
    """Embeddings (+ the head's logits) of every video into a feature cache; resumable, shardable (also under
    torchrun: each rank extracts its shard and rank 0 merges)."""
    from zsar.class_lists.text_files import read_class_names
    from zsar.datasets.video_datasets import open_video_dataset
    from zsar.extract.sharding import Shard
    from zsar.extract.video import ExtractOptions, extract_video_dataset

    if checkpoint is None and not random_weights:
        raise ZsarError("give --checkpoint (or --random-weights to test the pipeline with an untrained network)")
    source = open_video_dataset(dataset, format, class_names, **_loader_options(option))
    options = ExtractOptions(batch_size=batch_size, num_workers=num_workers, backend=backend, per_clip=per_clip,
                             store_logits=not no_logits, trust_pickle=trust_pickle)
    path = extract_video_dataset(source, out, config, checkpoint, resolve_device(device), precision,
                                 read_class_names(head_classes) if head_classes else (), options, pipeline,
                                 Shard.parse(shard) if shard else None, overwrite, seed=seed, num_clips=num_clips,
                                 crop=crop)
    typer.echo(_cache_text(path))


@cache_app.command("merge", cls=_Command)
def cache_merge(shards: list[Path] = typer.Argument(..., metavar="SHARD...",
                                                    help="The shard caches of one sharded extraction."),
                out: Path = typer.Option(..., metavar="FILE", help="Merged cache to write."),
                overwrite: bool = typer.Option(False, help="Replace an existing cache.")) -> None:
    """Join shard caches after checking fingerprints, identity and coverage (no duplicate, no missing sample)."""
    from zsar.features.merge import merge_shards

    typer.echo(_cache_text(merge_shards(shards, out, overwrite)))


@app.command(cls=_Command)
def predict(cache: Path = typer.Argument(..., metavar="CACHE", help="A cache with the encoder's logits."),
            out: Path = typer.Option(..., metavar="DIR", help="Folder for submission.csv and predictions.csv."),
            split: str = typer.Option(None, metavar="NAME", help="Only this sample split (e.g. test, unlabelled)."),
            top_k: int = typer.Option(5, metavar="K", help="Classes listed per video in predictions.csv.")) -> None:
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

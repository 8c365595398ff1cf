"""Run an anticipation experiment (`task = "anticipation"` in a stream config): the same streams, per-frame cache,
text prototypes and held-out splits as segmentation (`stream_runner`), then every anticipation head on every split
and seed; the report is rewritten after each run, so an interrupted experiment leaves the runs it finished."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from zsar.atomic import writable_folder
from zsar.datasets.anticipation import AnticipationWindow, RowGeometry
from zsar.errors import ZsarError
from zsar.evaluate.anticipation_protocol import (
    SELECTION_METRIC,
    AnticipationProtocol,
    run_anticipation_split,
    summarise_anticipation,
)
from zsar.evaluate.anticipation_report import paired_comparisons, write_anticipation_report
from zsar.evaluate.report import versions
from zsar.experiment.stream_runner import (
    check_held_out_early,
    check_leakage,
    prepare_stream_cache,
    run_plan,
    stream_prototypes,
    trimmed_source,
)
from zsar.experiment.streams import StreamExperimentConfig, resolve_held_out
from zsar.features.streams import StreamCache


def row_geometry(cache: StreamCache, lookahead: int | None = None) -> RowGeometry:
    """How the cache's rows map to input frames. A network's per-step output over whole streams is refused (its
    temporal convolutions read frames after each step), and a cache that records no encoder window (an imported
    release) needs `lookahead`, the frames after its own each row's features read: without them a window could
    see the action it should anticipate."""
    frames = cache.header.frames
    if cache.header.encoder.endswith(":temporal"):
        raise ZsarError("anticipation needs per-frame features that see only the past and present: this cache holds "
                        "a network's per-step output over whole streams; extract windows instead "
                        "([extract] mode = \"windows\")", cache.path)
    stride, window = int(frames.get("stride") or 1), frames.get("window")
    if window is not None:
        if lookahead is not None:
            raise ZsarError(f"the cache records its encoder's window ({window} frames), so the frames each row reads "
                            "ahead are known: leave [anticipation] lookahead out", cache.path)
        return RowGeometry(stride, int(window))
    if lookahead is None:
        raise ZsarError("the cache records no encoder window, so how far ahead each row's features read is unknown; "
                        "give [anticipation] lookahead = frames read after the row's own (0 for causal features, "
                        "10 for a centred 21-frame I3D window)", cache.path)
    return RowGeometry(stride, None, int(lookahead))


def anticipation_protocol(config: StreamExperimentConfig, cache: StreamCache) -> AnticipationProtocol:
    a, ev = config.anticipation, config.evaluate
    return AnticipationProtocol(AnticipationWindow(a.tau_a, a.observe, a.unit, a.min_observed),
                                row_geometry(cache, a.lookahead),
                                cache.header.frames.get("frame_rate"), ev.epoch_choice, ev.select_on_test,
                                examples=a.examples)


def _report(config, cache: StreamCache, splits, runs: list[dict], protocol: AnticipationProtocol) -> dict:
    names, w = cache.class_names, protocol.window
    chosen = "on test (the released codes' protocol)" if protocol.select_on_test else \
        f"on validation samples free of held-out classes ({SELECTION_METRIC}, rule {protocol.epoch_rule})"
    skipped = runs[-1]["skipped"] if runs else {}
    return {
        "name": config.name, "task": "anticipation", "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(), "config": config.to_dict(), "class_names": names, "background": list(cache.background),
        "protocol": f"The next action is anticipated from at most {w.observe} {w.unit} observed up to tau_a = "
                    f"{w.tau_a} {w.unit} before it starts (the encoder's window included: rows of "
                    f"{protocol.geometry.stride} frames, window {protocol.geometry.window or 'none'}, look-ahead "
                    f"{protocol.geometry.lookahead}). Training "
                    "streams with any frame of a held-out class are removed; every test sample is scored against "
                    f"all {len(names) - len(cache.background)} action classes; epoch chosen {chosen}. Seeds "
                    f"{list(config.seeds)}.",
        "samples_note": "; ".join(f"{role}: {n} samples" for role, n in (runs[-1]["samples"] if runs else {}).items())
                        + (f". Skipped in the last run: {skipped}" if skipped else ""),
        "chance": runs[-1]["chance"] if runs else {"top1": float("nan"), "top5": float("nan")},
        "cache": {"path": str(cache.path), "fingerprint": cache.cache.fingerprint, "encoder": cache.header.encoder,
                  "frames": cache.header.frames},
        "splits": [{"name": s.name, "held_out": list(s.classes), "class_names": [names[c] for c in s.classes]}
                   for s in splits],
        "runs": runs, "summary": summarise_anticipation(runs), "comparisons": paired_comparisons(runs),
    }


def run_anticipation_experiment(config: StreamExperimentConfig, out_dir: str | Path | None = None,
                                progress: bool = True) -> dict:
    out = writable_folder(Path(out_dir or config.output_dir or f"runs/{config.name}"))
    source = trimmed_source(config) if config.data.source in ("skeleton", "synthetic") else None
    check_held_out_early(config, source)
    cache = StreamCache(prepare_stream_cache(config, out, source, progress))
    protocol = anticipation_protocol(config, cache)
    splits = resolve_held_out(config.splits, cache.class_names, cache.background)
    check_leakage(cache, splits)
    prototypes = stream_prototypes(config, cache.class_names, cache.background, out)
    streams = cache.load_streams()
    plan = [(h, s, seed) for h in config.heads for s in splits for seed in config.seeds]
    return run_plan(plan, lambda head, split, seed: run_anticipation_split(
        streams, prototypes, cache.background, head.name, head.params, split, seed, protocol, label=head.title),
        lambda runs: _report(config, cache, splits, runs, protocol), write_anticipation_report, out,
        _print_run if progress else None)


def _print_run(run: dict, done: int, total: int, seconds: float) -> None:
    m = run["metrics"]

    def value(key: str) -> str:
        return "-" if m.get(key) is None else f"{m[key]:.1f}"

    print(f"[{done}/{total} runs, {seconds:.0f} s] {run['head']} | {run['split']} | seed {run['seed']}: top-1 "
          f"{value('top1')}, top-5 {value('top5')}, mean top-5 recall {value('recall5')}, held-out top-1 "
          f"{value('top1_unseen')} (epoch {run['chosen_epoch']}, {run['seconds']:.0f} s)", flush=True)

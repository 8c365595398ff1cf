"""One leaderboard: every head on the same cached features, splits, seeds and test samples, with three model
selections side by side, paired comparisons and wall time.

Columns per head (ZSL top-1, mean ± standard error over runs):
- `last`: the settings chosen on validation, trained for the whole schedule (no choice of its length);
- `validation`: the honest default, everything chosen on the validation problem (the run's reported result);
- `test`: every grid setting and training length ranked on the test split (the papers' protocol), labelled as
  such: an optimistic bound, not an estimate.
The three come from one run of the experiment (`[evaluate] leaderboard_columns`, see
`zsar.evaluate.protocol.selection_columns`). GZSL: H of calibrated stacking and of the seen/unseen gate, and
AUSUC. Paired comparisons: every head against each baseline head on the same test samples. Feature caches and
encoders live in OUT/cache and OUT/encoders, so a leaderboard run into an experiment's output folder reuses them
(`zsar leaderboard CONFIG --out runs/<name>`).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from zsar.atomic import write_text_atomic
from zsar.errors import ZsarError
from zsar.evaluate.comparison import compare_pair, zsl_correct
from zsar.experiment.config import ExperimentConfig, HeadSpec
from zsar.heads.configs import HEAD_CLASSES

COLUMNS = {"last": "top1_last", "validation": "top1", "test": "top1_test_selected"}
BASELINES = ("nearest_prototype", "linear_projection", "sadvae")
GZSL_KEYS = ("h", "cs_h", "gate_h", "ausuc")


def leaderboard_config(config: ExperimentConfig, heads: list[str] | None,
                       random_seeds: list[int] | None = None) -> ExperimentConfig:
    """`config` with the leaderboard columns on, with `heads` (each with the config's params where it lists that
    head, else defaults) and `random_seeds` replacing its random split seeds."""
    if heads:
        unknown = sorted(set(heads) - set(HEAD_CLASSES))
        if unknown:
            raise ZsarError(f"unknown heads {unknown}; known: {sorted(HEAD_CLASSES)}")
        listed = {spec.name: spec for spec in config.heads}
        config = replace(config, heads=[listed.get(name, HeadSpec(name)) for name in heads])
    if random_seeds:
        config = replace(config, splits=replace(config.splits, random_seeds=list(random_seeds)))
    if config.evaluate.select_on_test:
        raise ZsarError("the leaderboard selects on validation and shows the test-selected column beside it: "
                        "turn select_on_test off")
    return replace(config, name=f"{config.name}__leaderboard",
                   evaluate=replace(config.evaluate, leaderboard_columns=True))


def head_runs(report: dict) -> dict[str, list]:
    """Per head its runs: the three top-1 columns, GZSL, seconds and per-sample correctness."""
    runs: dict[str, list] = {}
    for r in report["runs"]:
        g = r["gzsl"] or {}
        runs.setdefault(r["head"], []).append({
            "split": r["split"], "seed": r["seed"], "seconds": r.get("seconds"),
            **{column: r["zsl"].get(key) for column, key in COLUMNS.items()},
            **{key: g.get(key) for key in GZSL_KEYS}, "correct": zsl_correct(pd.read_csv(r["predictions"]))})
    return runs


def _stats(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"mean": round(float(np.mean(values)), 2), "se": round(se, 2), "n": len(values)}


def summarise(runs: dict[str, list]) -> dict:
    """Per head: the three top-1 columns, GZSL, seconds per run, and paired comparisons with the baselines."""
    table = {}
    for head, mine in runs.items():
        row: dict = {column: _stats([r[column] for r in mine]) for column in COLUMNS}
        row["gzsl"] = {key: _stats([r[key] for r in mine]) for key in GZSL_KEYS}
        row["seconds_per_run"] = _stats([r["seconds"] for r in mine])
        row["vs"] = {}
        for base in BASELINES:
            if base != head and base in runs:
                stats = compare_pair({(r["split"], r["seed"]): r["correct"] for r in mine},
                                     {(r["split"], r["seed"]): r["correct"] for r in runs[base]})
                if stats is not None:
                    row["vs"][base] = {"difference": round(stats["top1_difference"]["mean"], 2),
                                       "se": round(stats["top1_difference"]["stderr"], 2), "wins": stats["wins"],
                                       "ties": stats["ties"], "losses": stats["losses"],
                                       "mcnemar_p": stats["mcnemar_p"]}
        table[head] = row
    return table


def _cell(stats: dict | None) -> str:
    return "-" if stats is None else f"{stats['mean']:.1f} ± {stats['se']:.1f}"


def _paired(v: dict) -> str:
    return f"{v['difference']:+.1f} ± {v['se']:.1f}, {v['wins']}/{v['ties']}/{v['losses']}, p {v['mcnemar_p']:.2g}"


def markdown(summary: dict, runs: int) -> str:
    """The leaderboard table and the paired comparisons, in Markdown."""
    lines = [f"ZSL top-1 (mean ± se over {runs} runs); GZSL H of calibrated stacking / gate (validation mode); "
             "`test` selects on the test split (the papers' protocol), an optimistic bound", "",
             "| head | last | validation | test (papers') | CS H | gate H | AUSUC | s / run |",
             "|---|---|---|---|---|---|---|---|"]
    for head, row in summary.items():
        g, sec = row["gzsl"], row["seconds_per_run"]
        per_run = "-" if sec is None else f"{sec['mean']:.1f}"
        lines.append(f"| {head} | {_cell(row.get('last'))} | {_cell(row.get('validation'))} | "
                     f"{_cell(row.get('test'))} | {_cell(g['cs_h'])} | {_cell(g['gate_h'])} | {_cell(g['ausuc'])} | "
                     f"{per_run} |")
    lines += ["", "Paired, validation mode: difference in ZSL top-1 (mean ± se over runs), runs won/tied/lost, "
              "McNemar p on the pooled test samples", "", "| head | " + " | ".join(f"vs {b}" for b in BASELINES)
              + " |", "|---" * (len(BASELINES) + 1) + "|"]
    for head, row in summary.items():
        cells = [_paired(row["vs"][b]) if b in row["vs"] else "-" for b in BASELINES]
        lines.append(f"| {head} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_leaderboard(config: ExperimentConfig, out: str | Path, heads: list[str] | None = None,
                    random_seeds: list[int] | None = None, batched: bool = False) -> dict:
    """Run the leaderboard of `heads` (default the config's) into `out` (the experiment's reports go there too);
    writes OUT/leaderboard.json and OUT/leaderboard.md and returns the record. `random_seeds` replaces the
    config's random split seeds (development splits). `batched`: the heads that train batched train all their
    splits and seeds together (`run_experiment`'s option; the same numbers, less time on a GPU)."""
    from zsar.experiment.runner import run_experiment

    out = Path(out)
    started = time.perf_counter()
    report = run_experiment(leaderboard_config(config, heads, random_seeds), out, progress=False, batched=batched)
    runs = head_runs(report)
    summary = summarise(runs)
    count = max((len(r) for r in runs.values()), default=0)
    record = {"config": config.name, "random_seeds": random_seeds, "batched": batched, "summary": summary,
              "seconds": round(time.perf_counter() - started, 1), "runs_per_head": count}
    write_text_atomic(out / "leaderboard.json", json.dumps(record, indent=2))
    write_text_atomic(out / "leaderboard.md", markdown(summary, count))
    return record

"""Text variants: ZSL top-1 and GZSL H of every head of an experiment per text variant (and multi-semantic
training mode), each paired with `prompts` on the same splits, seeds and test samples.

    python benchmarks/text_variants.py CONFIG --out DIR [--labels name,prompts,...] [--random-seeds 4,5,6]
                                       [--text-model FOLDER --tag mpnet]

Every label runs the whole experiment (selection on validation, test touched once) into
DIR/text_variants[_TAG]/<label>, with the
feature caches and trained encoders shared through DIR/cache and DIR/encoders (a finished encoder or cache is
reused, so `--out` may be the experiment's own output folder). `--text-model` embeds the class text with another
local sentence-transformers folder. Prints JSON; writes DIR/text_variants[_TAG].json and a Markdown table
DIR/text_variants[_TAG].md.

Labels: a plain variant (`name`, `prompts`, `description`, `motion`, `parts`, `paraphrases`, `ensemble`);
`ensemble+augment` / `ensemble+fused` (the torch heads train on every view, zsar/heads/text_views.py; SA-DVAE has
no `fused` and stays `mean` there); `chosen` (the variant chosen per head, split and seed on validation among
prompts, description, motion, paraphrases and ensemble).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd

from zsar.evaluate.comparison import compare_pair, zsl_correct
from zsar.experiment.config import ExperimentConfig, load_config
from zsar.experiment.runner import run_experiment
from zsar.heads import head_class

CHOICES = ["prompts", "description", "motion", "paraphrases", "ensemble"]
LABELS = {
    **{v: {"variant": v} for v in ("name", "prompts", "description", "motion", "parts", "paraphrases", "ensemble")},
    "ensemble+augment": {"variant": "ensemble", "text_views": "augment"},
    "ensemble+fused": {"variant": "ensemble", "text_views": "fused"},
    "chosen": {"variant": CHOICES},
}
BASELINE = "prompts"


def labelled_config(config: ExperimentConfig, label: str, random_seeds: list[int] | None,
                    text_model: str | None = None) -> ExperimentConfig:
    spec = LABELS[label]
    heads = []
    for head in config.heads:
        params = dict(head.params)
        mode = spec.get("text_views")
        accepts = {f.name for f in fields(head_class(head.name).Config)}
        if mode and "text_views" in accepts and not (head.name == "sadvae" and mode == "fused"):
            params["text_views"] = mode
        heads.append(replace(head, params=params))
    splits = replace(config.splits, random_seeds=random_seeds) if random_seeds else config.splits
    text = replace(config.text, variant=spec["variant"], model=text_model or config.text.model)
    return replace(config, text=text, heads=heads, splits=splits,
                   name=f"{config.name}__{label.replace('+', '_')}")


def share_features(out: Path, target: Path) -> None:
    """`target` uses `out`'s cache and encoder folders (made when missing)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("cache", "encoders"):
        (out / name).mkdir(parents=True, exist_ok=True)
        link = target / name
        if not link.exists():
            link.symlink_to((out / name).resolve(), target_is_directory=True)


def run_label(config: ExperimentConfig, label: str, out: Path, random_seeds: list[int] | None, tag: str = "",
              text_model: str | None = None) -> dict:
    target = out / f"text_variants{tag}" / label.replace("+", "_")
    share_features(out, target)
    started = time.perf_counter()
    report = run_experiment(labelled_config(config, label, random_seeds, text_model), target, progress=False)
    seconds = time.perf_counter() - started
    runs = {}
    for r in report["runs"]:
        g = r["gzsl"] or {}
        runs.setdefault(r["head"], []).append({
            "split": r["split"], "seed": r["seed"], "top1": r["zsl"]["top1"], "text_variant": r.get("text_variant"),
            "h": g.get("h"), "cs_h": g.get("cs_h"), "gate_h": g.get("gate_h"),
            "correct": zsl_correct(pd.read_csv(r["predictions"]))})
    return {"seconds": round(seconds, 1), "runs": runs}


def summarise(results: dict) -> dict:
    out = {}
    for label, result in results.items():
        for head, runs in result["runs"].items():
            row = {"top1": _mean([r["top1"] for r in runs]), "n": len(runs)}
            for key in ("h", "cs_h", "gate_h"):
                values = [r[key] for r in runs if r[key] is not None]
                row[key] = _mean(values) if values else None
            if label == "chosen":
                chosen = [r["text_variant"] for r in runs]
                row["chosen_variants"] = {v: chosen.count(v) for v in sorted(set(chosen))}
            if label != BASELINE and BASELINE in results and head in results[BASELINE]["runs"]:
                base = {(r["split"], r["seed"]): r["correct"] for r in results[BASELINE]["runs"][head]}
                mine = {(r["split"], r["seed"]): r["correct"] for r in runs}
                stats = compare_pair(mine, base)
                row["vs_prompts"] = {"top1_difference": stats["top1_difference"], "wins": stats["wins"],
                                     "ties": stats["ties"], "losses": stats["losses"],
                                     "mcnemar_p": stats["mcnemar_p"]}
            out.setdefault(head, {})[label] = row
    return out


def markdown(summary: dict, seconds: dict) -> str:
    """Two tables: ZSL top-1 per head and label (with the paired difference to `prompts`: mean ± standard error
    over runs, runs won/tied/lost, McNemar p), and calibrated-stacking GZSL H."""
    labels = list(seconds)
    head = ["| head | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    top1, gzsl = list(head), list(head)
    for name, rows in summary.items():
        cells, h_cells = [], []
        for label in labels:
            row = rows.get(label)
            cells.append("-" if row is None else f"{row['top1']:.1f}" + _paired(row))
            h_cells.append("-" if row is None or row["cs_h"] is None else f"{row['cs_h']:.1f}")
        top1.append(f"| {name} | " + " | ".join(cells) + " |")
        gzsl.append(f"| {name} | " + " | ".join(h_cells) + " |")
    times = "| wall time (s) | " + " | ".join(f"{seconds[label]:.0f}" for label in labels) + " |"
    return "\n".join(["ZSL top-1 (difference to prompts: mean ± se over runs, won/tied/lost, McNemar p)", "",
                      *top1, times, "", "GZSL H, calibrated stacking", "", *gzsl]) + "\n"


def _paired(row: dict) -> str:
    if "vs_prompts" not in row:
        return ""
    d = row["vs_prompts"]
    diff = d["top1_difference"]
    return (f" ({diff['mean']:+.1f} ± {diff['stderr']:.1f}, {d['wins']}/{d['ties']}/{d['losses']}, "
            f"p {d['mcnemar_p']:.2g})")


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--labels", default=",".join(LABELS))
    parser.add_argument("--random-seeds", default="", help="replace the config's random split seeds (development)")
    parser.add_argument("--text-model", default=None, help="a local sentence-transformers folder")
    parser.add_argument("--tag", default="", help="suffix of the output names (e.g. the text model)")
    args = parser.parse_args()
    config = load_config(args.config)
    seeds = [int(s) for s in args.random_seeds.split(",") if s.strip()] or None
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        sys.exit(f"unknown labels {unknown}; known: {list(LABELS)}")
    tag = f"_{args.tag}" if args.tag else ""
    results = {}
    for label in labels:
        results[label] = run_label(config, label, args.out, seeds, tag, args.text_model)
        print(f"{label}: {results[label]['seconds']:.0f} s", file=sys.stderr, flush=True)
    summary = summarise(results)
    record = {"config": str(args.config), "random_seeds": seeds, "labels": labels, "text_model": args.text_model,
              "summary": summary, "seconds": {label: results[label]["seconds"] for label in labels}}
    (args.out / f"text_variants{tag}.json").write_text(json.dumps(record, indent=2))
    (args.out / f"text_variants{tag}.md").write_text(markdown(summary, record["seconds"]))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()

"""The anticipation report: report.json, report.md, report.html and runs.csv.

Tables: per head, top-1, top-5 and class-mean top-5 recall on all, seen and held-out next actions (mean ± standard
error over runs), the same at the last epoch and without calibrated stacking; paired comparisons of every head
with the heads listed before it (per-run top-1 differences and McNemar's test on the test samples); and, for a few
test samples, the recent observed actions, the true next action and the five best predictions.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from zsar.evaluate.comparison import COMPARISON_HEADER, compare_heads, comparison_rows
from zsar.evaluate.stream_report import html_table, stat_cell, write_report_files

COLUMNS = ("top1", "top5", "recall5", "top1_seen", "recall5_seen", "top1_unseen", "top5_unseen", "recall5_unseen")


def paired_comparisons(runs: list[dict]) -> list[dict]:
    """Every head against the heads before it, on the test samples of the runs they share."""
    correct: dict[str, dict] = {}
    for run in runs:
        correct.setdefault(run["head"], {})[(run["split"], run["seed"])] = pd.Series(run["top1_correct"])
    return compare_heads(correct, list(correct))


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def summary_rows(report: dict, suffix: str = "") -> list[list[str]]:
    return [[row["head"], str(row["runs"]), *(stat_cell(row, k + suffix) for k in COLUMNS), str(row["seconds"])]
            for row in report["summary"]]


def example_rows(report: dict) -> list[list[str]]:
    """Recent actions, target and top-5 of each head's first run's example samples."""
    names, rows, shown = report["class_names"], [], set()
    for run in report["runs"]:
        if run["head"] in shown:
            continue
        shown.add(run["head"])
        held = set(run["held_out"])

        def mark(c: int, held=held) -> str:
            return names[c] + (" *" if c in held else "")

        for ex in run["examples"]:
            rows.append([run["head"], f"{ex['stream_id']} rows {ex['rows'][0]}-{ex['rows'][1]}",
                         " > ".join(mark(c) for c in ex["recent"]) or "-", mark(ex["target"]),
                         ", ".join(("[" + mark(c) + "]" if c == ex["target"] else mark(c)) for c in ex["predicted"])])
    return rows


HEADER = ["head", "runs", *COLUMNS, "s/run"]
EXAMPLE_HEADER = ["head", "observed", "recent actions", "next action", "top-5 (true one in brackets)"]


def markdown(report: dict) -> str:
    chance = report["chance"]
    lines = [f"# Zero-shot action anticipation: {report['name']}", "",
             *([f"**PARTIAL: {report['partial']} finished (interrupted).**", ""] if report.get("partial") else []),
             f"Created {report['created']} with zsar {report['versions']['zsar']}. Cache `{report['cache']['path']}` "
             f"(fingerprint {report['cache']['fingerprint'][:16]}).", "", f"Protocol: {report['protocol']}", "",
             f"Samples: {report['samples_note']}", "",
             f"Chance: top-1 {chance['top1']:.1f}, top-5 {chance['top5']:.1f}. `_unseen`: next actions of held-out "
             "classes (scored through their text); `_seen`: the others.", "",
             *_md_table(HEADER, summary_rows(report))]
    for title, suffix in (("Last epoch (no choice), same runs and calibration:", "_last"),
                          ("Chosen epoch without calibrated stacking (zero-shot heads), same runs:", "_plain")):
        lines += ["", title, "", *_md_table(HEADER, summary_rows(report, suffix))]
    lines += ["", "Paired comparisons (top-1 on the same test samples):", "",
              *_md_table(COMPARISON_HEADER, comparison_rows(report["comparisons"])),
              "", "Examples (first run of each head; * held out):", "",
              *_md_table(EXAMPLE_HEADER, example_rows(report)), "",
              "Held-out splits: " + "; ".join(f"{s['name']}: {', '.join(s['class_names'])}"
                                              for s in report["splits"]), ""]
    return "\n".join(lines)


def html_report(report: dict) -> str:
    body = [f"<h1>Zero-shot action anticipation: {html.escape(report['name'])}</h1>",
            *([f"<p><b>PARTIAL: {html.escape(report['partial'])} finished (interrupted).</b></p>"]
              if report.get("partial") else []),
            f"<p>{html.escape(report['protocol'])}</p>", f"<p>{html.escape(report['samples_note'])}</p>",
            html_table(HEADER, summary_rows(report)), "<h2>Last epoch</h2>",
            html_table(HEADER, summary_rows(report, "_last")), "<h2>Without calibrated stacking</h2>",
            html_table(HEADER, summary_rows(report, "_plain")), "<h2>Paired comparisons (top-1)</h2>",
            html_table(COMPARISON_HEADER, comparison_rows(report["comparisons"])),
            "<h2>Examples (* held out)</h2>", html_table(EXAMPLE_HEADER, example_rows(report)), "<h2>Config</h2>",
            f"<pre>{html.escape(json.dumps(report['config'], indent=2, default=str))}</pre>",
            f"<p>Versions: {html.escape(', '.join(f'{k} {v}' for k, v in report['versions'].items()))}</p>"]
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:2px 8px;text-align:right}"
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head><body>" \
        + "".join(body) + "</body></html>"


def write_anticipation_report(out_dir: str | Path, report: dict) -> dict[str, Path]:
    return write_report_files(out_dir, report, markdown, html_report)

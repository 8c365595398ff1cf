"""The segmentation report: report.json, report.md, report.html (results, timeline strips, per-class F1), runs.csv.

Timeline strips are inline SVG: for a few test streams, the ground truth above the prediction, one colour per
class, held-out classes outlined in red and marked with a star in the legend, background in grey.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from zsar.atomic import write_text_atomic
from zsar.evaluate.segmentation_metrics import segments

COLUMNS = ("acc", "edit", "f1@10", "f1@25", "f1@50", "acc_seen", "acc_unseen", "f1@25_seen", "f1@25_unseen")
_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7", "#9c755f", "#e15759",
            "#8cd17d", "#499894", "#d37295", "#86bcb6", "#f1ce63", "#a0cbe8", "#ffbe7d")


def class_colour(class_id: int, background: tuple[int, ...]) -> str:
    return "#c8c8c8" if class_id in background else _PALETTE[class_id % len(_PALETTE)]


def stat_cell(row: dict, key: str) -> str:
    value, se = row.get(key), row.get(key + "_se")
    if value is None:
        return "-"
    return f"{value:.1f}" + (f" ± {se:.1f}" if se is not None else " (n = 1)")


def markdown(report: dict) -> str:
    lines = [f"# Zero-shot temporal action segmentation: {report['name']}", "",
             *([f"**PARTIAL: {report['partial']} finished (interrupted).**", ""] if report.get("partial") else []),
             f"Created {report['created']} with zsar {report['versions']['zsar']}. Cache `{report['cache']['path']}` "
             f"(fingerprint {report['cache']['fingerprint'][:16]}).", "", f"Protocol: {report['protocol']}", "",
             f"Background: {report['background_note']}.", "",
             "| head | runs | " + " | ".join(COLUMNS) + " | s/run |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for row in report["summary"]:
        lines.append(f"| {row['head']} | {row['runs']} | " + " | ".join(stat_cell(row, k) for k in COLUMNS)
                     + f" | {row['seconds']} |")
    for title, suffix in (("Last epoch (no choice), same runs and calibration:", "_last"),
                          ("Chosen epoch without calibrated stacking (zero-shot heads), same runs:", "_plain")):
        lines += ["", title, "", "| head | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
        for row in report["summary"]:
            lines.append(f"| {row['head']} | " + " | ".join(stat_cell(row, k + suffix) for k in COLUMNS) + " |")
    lines += ["", "Held-out splits: " + "; ".join(f"{s['name']}: {', '.join(s['class_names'])}"
                                                  for s in report["splits"]), ""]
    return "\n".join(lines)


def timeline_svg(truth: list[int], predicted: list[int], names: list[str], held_out: set[int],
                 background: tuple[int, ...], width: int = 900) -> str:
    """Two strips (truth above prediction) of one stream as an SVG element."""
    scale = width / max(len(truth), 1)
    rects = []
    for row, labels in enumerate((truth, predicted)):
        for label, start, end in segments(np.asarray(labels, dtype=np.int64)):
            outline = ' stroke="#d00000" stroke-width="2"' if label in held_out else ""
            rects.append(f'<rect x="{start * scale:.1f}" y="{row * 22}" width="{(end - start) * scale:.1f}" '
                         f'height="18" fill="{class_colour(label, background)}"{outline}>'
                         f"<title>{html.escape(names[label])} [{start}, {end})</title></rect>")
    return f'<svg width="{width}" height="42" xmlns="http://www.w3.org/2000/svg">{"".join(rects)}</svg>'


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _timelines(report: dict) -> list[str]:
    names, background = report["class_names"], tuple(report["background"])
    parts = ["<h2>Timelines (ground truth above prediction; red outline: held-out class)</h2>"]
    shown = set()
    for run in report["runs"]:
        key = (run["head"], run["split"])
        if key in shown or not run["timelines"]:
            continue
        shown.add(key)
        parts.append(f"<h3>{html.escape(run['head'])}, split {html.escape(run['split'])}, seed {run['seed']}</h3>")
        for strip in run["timelines"]:
            parts.append(f"<p>{html.escape(strip['stream_id'])}</p>"
                         + timeline_svg(strip["truth"], strip["predicted"], names, set(run["held_out"]), background))
    legend = "".join(f'<span style="background:{class_colour(i, background)};padding:2px 6px;margin:2px">'
                     f"{html.escape(n)}</span>" for i, n in enumerate(names))
    return parts + [f"<p>{legend}</p>"]


def _per_class(report: dict) -> str:
    names = report["class_names"]
    heads = list(dict.fromkeys(r["head"] for r in report["runs"]))
    rows = []
    for class_id, name in enumerate(names):
        values = []
        for head in heads:
            scores = [r["per_class_f1"][class_id] for r in report["runs"]
                      if r["head"] == head and class_id in r["per_class_f1"]]
            values.append(f"{np.mean(scores):.1f}" if scores else "-")
        held = any(class_id in r["held_out"] for r in report["runs"])
        rows.append([name + (" *" if held else ""), *values])
    return "<h2>Per-class F1@50 on test (mean over runs where the class occurs; * held out in some split)</h2>" \
        + html_table(["class", *heads], rows)


def html_report(report: dict) -> str:
    summary = html_table(["head", "runs", *COLUMNS, "s/run"],
                     [[r["head"], str(r["runs"]), *(stat_cell(r, k) for k in COLUMNS), str(r["seconds"])]
                      for r in report["summary"]])
    body = [f"<h1>Zero-shot temporal action segmentation: {html.escape(report['name'])}</h1>",
            *([f"<p><b>PARTIAL: {html.escape(report['partial'])} finished (interrupted).</b></p>"]
              if report.get("partial") else []),
            f"<p>{html.escape(report['protocol'])}</p>",
            f"<p>Background: {html.escape(report['background_note'])}.</p>", summary, *_timelines(report),
            _per_class(report), "<h2>Config</h2>",
            f"<pre>{html.escape(json.dumps(report['config'], indent=2, default=str))}</pre>",
            f"<p>Versions: {html.escape(', '.join(f'{k} {v}' for k, v in report['versions'].items()))}</p>"]
    style = "body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px;text-align:right}"
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head><body>" \
        + "".join(body) + "</body></html>"


def runs_csv(runs: list[dict]) -> str:
    keys = sorted({k for r in runs for k in r["metrics"]})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["head", "split", "seed", "chosen_epoch", "seconds", *keys, *(k + "_last" for k in keys)])
    for r in runs:
        writer.writerow([r["head"], r["split"], r["seed"], r["chosen_epoch"], r["seconds"],
                         *(r["metrics"].get(k) for k in keys), *(r["metrics_last"].get(k) for k in keys)])
    return out.getvalue()


def write_report_files(out_dir: str | Path, report: dict, to_markdown=None, to_html=None) -> dict[str, Path]:
    """report.json, report.md, report.html and runs.csv of a stream report (segmentation unless the Markdown and
    HTML writers are given)."""
    out = Path(out_dir)
    return {
        "json": write_text_atomic(out / "report.json", json.dumps(report, indent=2, default=json_default)),
        "markdown": write_text_atomic(out / "report.md", (to_markdown or markdown)(report)),
        "html": write_text_atomic(out / "report.html", (to_html or html_report)(report)),
        "runs": write_text_atomic(out / "runs.csv", runs_csv(report["runs"])),
    }


def write_stream_report(out_dir: str | Path, report: dict) -> dict[str, Path]:
    return write_report_files(out_dir, report)


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)

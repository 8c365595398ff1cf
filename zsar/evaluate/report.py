"""Experiment reports: `report.json`, `report.md`, a self-contained `report.html`, and per-run
`predictions.csv`. Every report records seeds, config, versions and cache fingerprints."""

from __future__ import annotations

import html
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from zsar import __version__
from zsar.atomic import write_text_atomic
from zsar.evaluate.comparison import COMPARISON_HEADER, comparison_rows
from zsar.evaluate.plots import confusion_png, per_class_png
from zsar.evaluate.semantics import semantics_rows

ZSL_KEYS = ("top1", "top5", "per_class_mean")
SEMANTICS_HEADER = ["split", "unseen class", "nearest seen classes by text (cosine)"]
RUN_HEADER = ["head", "split", "seed", "text", "params", "ZSL top-1", "GZSL H"]
COMPARISON_NOTE = ("A difference is within noise when it is small against its standard error over runs, or when "
                   "McNemar's p (samples pooled over runs, no correction for the number of pairs) is large.")
GZSL_KEYS = ("seen", "unseen", "h", "cs_seen", "cs_unseen", "cs_h", "gate_seen", "gate_unseen", "gate_h", "ausuc")


def versions() -> dict:
    out = {"zsar": __version__, "python": platform.python_version()}
    for package in ("numpy", "torch", "h5py", "pandas", "pyarrow", "sentence-transformers", "faiss-cpu", "faiss-gpu"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def mean_std(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=0)), "n": int(arr.size)}


def summarise_head(runs: list[dict]) -> dict:
    """Mean and std over the runs (splits x seeds) of one head."""
    out = {"zsl": {k: mean_std([r["zsl"][k] for r in runs]) for k in ZSL_KEYS}, "runs": len(runs)}
    if all(r["gzsl"] for r in runs):
        out["gzsl"] = {k: mean_std([r["gzsl"][k] for r in runs]) for k in GZSL_KEYS
                       if all(k in r["gzsl"] for r in runs)}  # no gate without validation classes
    out["chance_top1"] = mean_std([r["zsl"]["chance_top1"] for r in runs])
    return out


def _fmt(stat: dict) -> str:
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}" if stat["n"] > 1 else f"{stat['mean']:.2f}"


def warnings(report: dict) -> list[str]:
    """What a reader must see before the numbers: test-set selection, a partial report."""
    out = []
    if report.get("partial"):
        p = report["partial"]
        out.append(f"PARTIAL REPORT: {p['finished_runs']} of {p['total_runs']} runs finished ({p['reason']}).")
    if report["protocol"].get("selected_on_test"):
        out.append("Model selection on the TEST set (--select-on-test): for comparison with papers only; these "
                   "numbers are not an honest estimate.")
    return out


def markdown(report: dict) -> str:
    warning = [line for w in warnings(report) for line in (f"**{w}**", "")]
    lines = [f"# zsar report: {report['experiment']}", "", *warning,
             f"Created {report['created']} with zsar {report['versions']['zsar']}. "
             f"Splits: {', '.join(report['split'])}. Seeds: {report['seed']}.", "",
             "## Results (accuracy %, mean ± std over splits x seeds)", "",
             "| head | ZSL top-1 | ZSL top-5 | ZSL per-class | GZSL S | GZSL U | GZSL H | CS S | CS U | CS H | gate S "
             "| gate U | gate H | AUSUC | chance top-1 |", "|---" * 15 + "|"]
    for name, s in report["heads"].items():
        g = s.get("gzsl")
        gz = [_fmt(g[k]) if k in g else "-" for k in GZSL_KEYS] if g else ["-"] * len(GZSL_KEYS)
        lines.append(f"| {name} | {' | '.join(_fmt(s['zsl'][k]) for k in ZSL_KEYS)} | {' | '.join(gz)} | "
                     f"{s['chance_top1']['mean']:.2f} |")
    comparisons = comparison_rows(report.get("comparisons", []))
    if comparisons:
        lines += ["", "## Paired comparisons (ZSL top-1, same splits, seeds and test samples)", "",
                  "| " + " | ".join(COMPARISON_HEADER) + " |", "|---" * len(COMPARISON_HEADER) + "|",
                  *("| " + " | ".join(row) + " |" for row in comparisons), "", COMPARISON_NOTE]
    p = report["protocol"]
    lines += ["", "## Protocol", "",
              f"- Model selection: {p['model_selection']}", f"- Test split touched once: {p['test_touched_once']}",
              f"- Transductive: {p['transductive']}", f"- Leakage override: {p['leakage_override']}",
              "- GZSL S/U are per-class mean accuracies; H is their harmonic mean. GZSL = plain arg-max over all "
              "classes; CS = calibrated stacking, its seen-class penalty chosen on the validation problem; "
              "gate = seen/unseen domain classifier fitted on the validation problem; "
              "AUSUC = area under the seen-unseen curve (threshold-free).", ""]
    semantics = semantics_rows(report.get("text_semantics", {}))
    if semantics:
        lines += ["## Class text: what each unseen class borrows from", "", "| " + " | ".join(SEMANTICS_HEADER) + " |",
                  "|---" * len(SEMANTICS_HEADER) + "|", *("| " + " | ".join(row) + " |" for row in semantics), ""]
    lines += ["## Runs", "", "| " + " | ".join(RUN_HEADER) + " |", "|---" * len(RUN_HEADER) + "|"]
    lines += ["| " + " | ".join(row[:4]) + f" | `{row[4]}` | " + " | ".join(row[5:]) + " |" for row in run_rows(report)]
    lines += ["", "## Caches", ""]
    for role, c in cache_entries(report):
        trained = c.get("trained_classes")
        lines.append(f"- {role}: `{c['path']}` fingerprint `{c['fingerprint']}`"
                     + (f", encoder trained on classes {trained}" if trained is not None else ""))
    lines += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(lines)


def run_rows(report: dict) -> list[list[str]]:
    """One row per run: head, split, seed, text variant, params, ZSL top-1, GZSL H."""
    return [[r["head"], r["split"], str(r["seed"]), str(r.get("text_variant") or "-"), json.dumps(r["params"]),
             f"{r['zsl']['top1']:.2f}", f"{r['gzsl']['h']:.2f}" if r["gzsl"] else "-"] for r in report["runs"]]


def cache_entries(report: dict) -> list[tuple[str, dict]]:
    """(role, record) of every cache the report used; one line per split when splits had their own caches."""
    caches = dict(report["caches"])
    by_split = caches.pop("features_by_split", None)
    if by_split and len({c["path"] for c in by_split.values()}) > 1:
        caches.pop("features")
        caches.update({f"features ({split})": c for split, c in by_split.items()})
    validation_by_split = caches.pop("validation_features_by_split", None) or {}
    caches.update({f"validation features ({split})": c for split, c in validation_by_split.items()})
    return [(role, record) for role, record in caches.items() if record is not None]


def html_report(report: dict, figures: list[tuple[str, str]]) -> str:
    """Self-contained HTML: the Markdown tables as HTML plus embedded PNG figures."""
    def table(header, rows):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    results = []
    for name, s in report["heads"].items():
        g = s.get("gzsl")
        results.append([name, *(_fmt(s["zsl"][k]) for k in ZSL_KEYS),
                        *((_fmt(g[k]) if k in g else "-" for k in GZSL_KEYS) if g else ["-"] * len(GZSL_KEYS)),
                        f"{s['chance_top1']['mean']:.2f}"])
    comparisons = report.get("comparisons", [])
    semantics = semantics_rows(report.get("text_semantics", {}))
    p = report["protocol"]
    protocol = "".join(f"<li>{html.escape(k.replace('_', ' '))}: {html.escape(str(v))}</li>" for k, v in p.items())
    caches = "".join(f"<li>{html.escape(role)}: <code>{html.escape(c['path'])}</code> fingerprint "
                     f"<code>{html.escape(c['fingerprint'])}</code></li>" for role, c in cache_entries(report))
    figs = "".join(f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>"
                   f"<figcaption>{html.escape(t)}</figcaption></figure>" for t, b in figures)
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
             "th{background:#f0f4fa}figure{display:inline-block;margin:1em}img{max-width:520px}code{font-size:90%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>zsar report: {html.escape(report['experiment'])}"
            f"</title><style>{style}</style></head><body><h1>zsar report: {html.escape(report['experiment'])}</h1>"
            f"<p>Created {html.escape(report['created'])}; splits {html.escape(', '.join(report['split']))}; "
            f"seeds {html.escape(str(report['seed']))}.</p><h2>Results (accuracy %, mean ± std)</h2>"
            + "".join(f"<p><strong>{html.escape(w)}</strong></p>" for w in warnings(report))
            + table(["head", "ZSL top-1", "ZSL top-5", "ZSL per-class", "GZSL S", "GZSL U", "GZSL H", "CS S", "CS U",
                     "CS H", "gate S", "gate U", "gate H", "AUSUC", "chance"], results)
            + (f"<h2>Paired comparisons (ZSL top-1)</h2>{table(COMPARISON_HEADER, comparison_rows(comparisons))}"
               f"<p>{html.escape(COMPARISON_NOTE)}</p>" if comparisons else "")
            + f"<h2>Protocol</h2><ul>{protocol}</ul>"
            + (f"<h2>Class text: what each unseen class borrows from</h2>{table(SEMANTICS_HEADER, semantics)}"
               if semantics else "")
            + f"<h2>Figures</h2>{figs}<h2>Runs</h2>" + table(RUN_HEADER, run_rows(report))
            + f"<h2>Caches</h2><ul>{caches}</ul><h2>Versions</h2><p>"
            + html.escape(", ".join(f"{k} {v}" for k, v in report["versions"].items()))
            + "</p><h2>Config</h2><pre>" + html.escape(json.dumps(report["config"], indent=2)) + "</pre></body></html>")


def run_figures(head: str, split: str, names: list[str], confusion: np.ndarray, per_class: dict[str, float],
                chance: float) -> list[tuple[str, str]]:
    return [
        (f"{head}: ZSL confusion ({split})", confusion_png(confusion, names, f"{head} ZSL confusion, {split}")),
        (f"{head}: ZSL per-class accuracy ({split})", per_class_png(per_class, f"{head} per-class ZSL, {split}",
                                                                   chance)),
    ]


def write_report(out_dir: str | Path, report: dict, figures: list[tuple[str, str]]) -> dict[str, Path]:
    out = Path(out_dir)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    write_text_atomic(paths["json"], json.dumps(report, indent=2, default=_json_default))
    write_text_atomic(paths["md"], markdown(report))
    write_text_atomic(paths["html"], html_report(report, figures))
    return paths


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")

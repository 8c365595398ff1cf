"""Experiment reports: `report.json`, `report.md`, a self-contained `report.html`, `runs.csv` (one row per run with
every scalar metric), `predictions.csv` (every run's test predictions in one tidy table) and the figures as PNG
files in `figures/`. Every report records seeds, config (shown as TOML), versions and cache fingerprints.

The results table is short (mean ± std over a head's runs, the other metrics in a details table below it). A ZSL
top-1 below chance (100 / the split's unseen classes) is marked; a ZSL top-5 among at most 5 unseen classes (100 by
construction) is left out; the protocol section says what held for the caches at hand."""

from __future__ import annotations

import base64
import html
import json
import numbers
import platform
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from zsar import __version__
from zsar.atomic import atomic_target, write_text_atomic
from zsar.evaluate.comparison import COMPARISON_HEADER, comparison_rows
from zsar.evaluate.gzsl import curve_points
from zsar.evaluate.metrics import confusion_matrix
from zsar.evaluate.plots import confusion_png, head_bars_png, per_class_png, seen_unseen_png
from zsar.evaluate.predictions import experiment_predictions, write_table
from zsar.evaluate.semantics import semantics_rows
from zsar.extract.skeleton_stats import ENCODER_NAME

ZSL_KEYS = ("top1", "top5", "per_class_mean")
GZSL_KEYS = ("seen", "unseen", "h", "cs_seen", "cs_unseen", "cs_h", "gate_seen", "gate_unseen", "gate_h", "ausuc")
MAIN_COLUMNS = (("ZSL top-1", "zsl", "top1"), ("ZSL per-class", "zsl", "per_class_mean"), ("GZSL H", "gzsl", "h"),
                ("CS H", "gzsl", "cs_h"), ("gate H", "gzsl", "gate_h"), ("AUSUC", "gzsl", "ausuc"))
DETAIL_COLUMNS = (("ZSL top-5", "zsl", "top5"), ("GZSL S", "gzsl", "seen"), ("GZSL U", "gzsl", "unseen"),
                  ("CS S", "gzsl", "cs_seen"), ("CS U", "gzsl", "cs_unseen"), ("gate S", "gzsl", "gate_seen"),
                  ("gate U", "gzsl", "gate_unseen"))
SPLIT_KEYS = (("zsl", "top1"), ("gzsl", "h"), ("gzsl", "cs_h"), ("gzsl", "gate_h"), ("gzsl", "ausuc"))
OPERATING_POINTS = (("GZSL", ""), ("CS", "cs_"), ("gate", "gate_"))  # name on the curve figure, metric prefix
BELOW = "▼"
TRIVIAL = "†"
SEMANTICS_HEADER = ["split", "unseen class", "nearest seen classes by text (cosine)"]
RUN_HEADER = ["head", "split", "seed", "text", "params", "ZSL top-1", "chance", "GZSL H"]
COMPARISON_NOTE = ("A difference is within noise when it is small against its standard error over runs, or when "
                   "McNemar's p (samples pooled over runs, no correction for the number of pairs) is large.")
RESULTS_NOTE = (f"Accuracy in %, mean ± std over the head's runs (splits × seeds); n = 1: a single run, no spread. "
                f"{BELOW}: below chance (chance top-1 = 100 / the split's unseen classes; its mean is in the details).")
TRIVIAL_NOTE = (f"{TRIVIAL} ZSL top-5 among at most 5 unseen classes is 100 by construction: such runs are left out "
                "of the top-5 mean (trivial: every run is).")


class Code(str):
    """Text shown as code (a path, a fingerprint, parameters)."""


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


# ---- what the numbers mean: chance, trivial top-5, per split


def unseen_count(zsl: dict) -> int:
    """The number of classes a run's ZSL ranked among (its split's unseen classes)."""
    return int(zsl.get("num_classes") or round(100.0 / zsl["chance_top1"]))


def top5_trivial(zsl: dict) -> bool:
    """Top-5 among at most 5 candidate classes is 100 by construction."""
    return unseen_count(zsl) <= 5


def below_chance(zsl: dict) -> bool:
    return zsl["top1"] < zsl["chance_top1"]


def head_runs(report: dict, head: str) -> list[dict]:
    return [r for r in report["runs"] if r["head"] == head]


def head_below_chance(report: dict, head: str) -> bool:
    """The head's mean ZSL top-1 below its mean chance (each run against its own split's chance)."""
    runs = head_runs(report, head)
    return bool(runs) and float(np.mean([r["zsl"]["top1"] - r["zsl"]["chance_top1"] for r in runs])) < 0


def below_chance_runs(report: dict) -> list[dict]:
    return [{"head": r["head"], "split": r["split"], "seed": r["seed"], "top1": r["zsl"]["top1"],
             "chance_top1": r["zsl"]["chance_top1"]} for r in report["runs"] if below_chance(r["zsl"])]


def split_summaries(report: dict) -> dict[str, dict[str, dict]]:
    """Per head and split, over its seeds: ZSL top-1, the GZSL H's and AUSUC (mean, std, n), the chance top-1,
    the number of unseen classes, and whether the mean top-1 is below chance."""
    grouped: dict[str, dict[str, list]] = {}
    for r in report["runs"]:
        grouped.setdefault(r["head"], {}).setdefault(r["split"], []).append(r)
    return {head: {split: _split_summary(runs) for split, runs in splits.items()} for head, splits in grouped.items()}


def _split_summary(runs: list[dict]) -> dict:
    out = {"unseen_classes": unseen_count(runs[0]["zsl"]), "chance_top1": runs[0]["zsl"]["chance_top1"]}
    for section, key in SPLIT_KEYS:
        values = [(r.get(section) or {}).get(key) for r in runs]
        if all(v is not None for v in values):
            out[f"{section}_{key}"] = mean_std(values)
    out["below_chance"] = out["zsl_top1"]["mean"] < out["chance_top1"]
    return out


# ---- the protocol as it held for the caches at hand


def _validation_unseen_by_split(report: dict) -> dict[str, set[int]]:
    return {r["split"]: set(r["split_classes"].get("validation_unseen", ())) for r in report["runs"]
            if r.get("split_classes")}


def _encoder_note(record: dict | None, validation_unseen: set[int]) -> str:
    """What a cache record says about its encoder having seen the validation-unseen classes."""
    trained = None if record is None else record.get("trained_classes")
    if trained is None:
        if record is not None and record.get("encoder") == ENCODER_NAME:
            return "a training-free encoder (skeleton statistics) made them: no class was seen in training"
        return ("the cache does not record which classes its encoder was trained on, so whether it saw the "
                "validation-unseen classes is unknown")
    leaked = sorted(set(trained) & validation_unseen)
    if leaked:
        return (f"their encoder was trained on the validation-unseen classes {leaked} too, so validation scores are "
                "optimistic")
    return "their encoder was not trained on the validation-unseen classes"


def validation_features_text(report: dict) -> str:
    """What the validation problem (model selection, GZSL calibration) was scored on, as far as the caches tell."""
    caches, by_split = report["caches"], _validation_unseen_by_split(report)
    if by_split and not any(by_split.values()):
        return "none: no split has validation classes"
    if caches.get("validation_features_by_split"):
        return "per split, from an encoder trained on the validation-seen classes only"
    given = caches.get("validation_features")
    if given:
        return f"given ([data] validation_cache); {_encoder_note(given, set().union(*by_split.values()))}"
    records = caches.get("features_by_split") or {}
    notes = [_encoder_note(records.get(split, caches.get("features")), unseen) for split, unseen in by_split.items()]
    notes = list(dict.fromkeys(notes or [_encoder_note(caches.get("features"), set())]))
    return "the training samples of the test features (no separate validation encoder); " + "; ".join(notes)


def _model_selection(report: dict) -> str:
    p, by_split = report["protocol"], _validation_unseen_by_split(report)
    if not p.get("selected_on_test") and by_split and not any(by_split.values()):
        return "none (no split has validation classes): each head's default parameters"
    return p["model_selection"]


def protocol_record(report: dict) -> dict:
    """The runner's protocol record with the model selection and validation features as they held."""
    return {**report["protocol"], "model_selection": _model_selection(report),
            "validation_encoder": validation_features_text(report)}


def gzsl_note(report: dict) -> str:
    gzsl = [r["gzsl"] for r in report["runs"] if r.get("gzsl")]
    if not gzsl:
        return "GZSL: not evaluated."
    uncalibrated = sum("note" in g.get("cs_selection", {}) for g in gzsl)
    cs = ("its seen-class penalty chosen on the validation problem" if not uncalibrated else
          "with no penalty (no validation classes to choose it on: the same as GZSL)" if uncalibrated == len(gzsl)
          else f"its seen-class penalty chosen on the validation problem (none in the {uncalibrated} runs without "
               "validation classes)")
    gate = "; gate = seen/unseen domain classifier fitted on the validation problem" \
        if any("gate_h" in g for g in gzsl) else ""
    return ("GZSL S/U are per-class mean accuracies; H is their harmonic mean. GZSL = plain arg-max over all "
            f"classes; CS = calibrated stacking, {cs}{gate}; AUSUC = area under the seen-unseen curve "
            "(threshold-free).")


def protocol_items(report: dict) -> list[str]:
    p = protocol_record(report)
    items = [f"Model selection: {p['model_selection']}", f"Test split touched once: {p['test_touched_once']}"]
    if "epoch_choice" in p:
        items.append(f"Training length (heads trained in epochs): {p['epoch_choice']}")
    items += [f"Validation features: {p['validation_encoder']}", f"Transductive: {p['transductive']}",
              f"Leakage override: {p['leakage_override']}"]
    if p.get("leaked_classes"):
        items.append(f"Classes the encoder was trained on but evaluated as unseen: {p['leaked_classes']}")
    return [*items, gzsl_note(report)]


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


# ---- the GZSL seen-unseen curves


def gzsl_curves(report: dict) -> dict[str, list[dict]]:
    """Per head, every run's seen-unseen curve points (from a run's `gzsl.curve`) with its AUSUC and operating
    points (plain arg-max, calibrated stacking, gate) as [unseen, seen]; empty when the runs hold no curves."""
    if "gzsl_curves" in report:
        return report["gzsl_curves"]
    out: dict[str, list[dict]] = {}
    for r in report["runs"]:
        g = r.get("gzsl") or {}
        if "curve" in g:
            points = {name: [g[f"{p}unseen"], g[f"{p}seen"]] for name, p in OPERATING_POINTS if f"{p}seen" in g}
            out.setdefault(r["head"], []).append({"split": r["split"], "seed": r["seed"], "ausuc": g.get("ausuc"),
                                                  **curve_points(g["curve"]), "points": points})
    return out


# ---- tables


def _fmt(stat: dict, single: str = " (n = 1)") -> str:
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if stat["n"] > 1 else f"{stat['mean']:.1f}{single}"


def _top5_cell(report: dict, head: str, stat: dict) -> str:
    runs = head_runs(report, head)
    informative = [r["zsl"]["top5"] for r in runs if not top5_trivial(r["zsl"])]
    if not runs or len(informative) == len(runs):
        return _fmt(stat)
    if not informative:
        return f"trivial {TRIVIAL}"
    return f"{_fmt(mean_std(informative), '')} ({len(informative)} of {len(runs)} runs) {TRIVIAL}"


def _result_cell(report: dict, head: str, section: str, key: str) -> str:
    stat = (report["heads"][head].get(section) or {}).get(key)
    if stat is None:
        return "-"
    if (section, key) == ("zsl", "top5"):
        return _top5_cell(report, head, stat)
    below = (section, key) == ("zsl", "top1") and head_below_chance(report, head)
    return _fmt(stat) + (f" {BELOW}" if below else "")


def _chance_cell(report: dict, head: str) -> str:
    """The head's chance top-1: one value, or the mean and range when its splits differ in unseen classes."""
    runs = head_runs(report, head)
    chances = [r["zsl"]["chance_top1"] for r in runs] if runs else [report["heads"][head]["chance_top1"]["mean"]]
    low, high = min(chances), max(chances)
    return f"{low:.1f}" if np.isclose(low, high) else f"{np.mean(chances):.1f} ({low:.1f}–{high:.1f})"


def _present(report: dict, columns: tuple) -> list[tuple]:
    return [c for c in columns if any(c[2] in (s.get(c[1]) or {}) for s in report["heads"].values())]


def results_tables(report: dict) -> tuple[tuple[list, list], tuple[list, list]]:
    """(header, rows) of the main results table and of the details table; columns no head has are left out."""
    main, details = _present(report, MAIN_COLUMNS), _present(report, DETAIL_COLUMNS)
    rows = [[head, str(s["runs"]), *(_result_cell(report, head, section, key) for _, section, key in main)]
            for head, s in report["heads"].items()]
    detail_rows = [[head, *(_result_cell(report, head, section, key) for _, section, key in details),
                    _chance_cell(report, head)] for head in report["heads"]]
    return ((["head", "runs", *(label for label, _, _ in main)], rows),
            (["head", *(label for label, _, _ in details), "chance top-1"], detail_rows))


def split_table(report: dict) -> tuple[list, list]:
    """ZSL top-1 per head (rows) and split (columns), mean ± std over seeds, and each split's chance."""
    summaries = split_summaries(report)
    splits = [s for s in report["split"] if any(s in by_split for by_split in summaries.values())]
    rows = [[head, *(_fmt(by_split[s]["zsl_top1"], "") + (f" {BELOW}" if by_split[s]["below_chance"] else "")
                     if s in by_split else "-" for s in splits)] for head, by_split in summaries.items()]
    first = {s: next(by_split[s] for by_split in summaries.values() if s in by_split) for s in splits}
    rows.append(["chance", *(f"{first[s]['chance_top1']:.1f} ({first[s]['unseen_classes']} unseen)" for s in splits)])
    return ["head", *splits], rows


def run_rows(report: dict) -> list[list[str]]:
    """One row per run: head, split, seed, text variant, params, ZSL top-1, chance, GZSL H."""
    return [[r["head"], r["split"], str(r["seed"]), str(r.get("text_variant") or "-"), Code(json.dumps(r["params"])),
             f"{r['zsl']['top1']:.2f}" + (f" {BELOW}" if below_chance(r["zsl"]) else ""),
             f"{r['zsl']['chance_top1']:.2f}", f"{r['gzsl']['h']:.2f}" if r["gzsl"] else "-"] for r in report["runs"]]


def _scalars(prefix: str, values: dict) -> dict:
    """Every number (or flag) in a nested metrics dict, keys joined with '_'."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_scalars(f"{prefix}_{key}", value))
        elif isinstance(value, (numbers.Number, np.bool_)):
            out[f"{prefix}_{key}"] = value
    return out


def runs_table(report: dict) -> pd.DataFrame:
    """One row per run: head, split, seed, text variant, parameters, the number of unseen classes, whether ZSL
    top-1 is below chance and top-5 trivial, and every scalar ZSL and GZSL metric (`zsl_*`, `gzsl_*`)."""
    rows = []
    for r in report["runs"]:
        rows.append({"head": r["head"], "split": r["split"], "seed": r["seed"], "text_variant": r.get("text_variant"),
                     "params": json.dumps(r["params"], sort_keys=True), "unseen_classes": unseen_count(r["zsl"]),
                     "below_chance": below_chance(r["zsl"]), "top5_trivial": top5_trivial(r["zsl"]),
                     "seconds": r.get("seconds"), **_scalars("zsl", r["zsl"]), **_scalars("gzsl", r["gzsl"] or {})})
    return pd.DataFrame(rows)


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


def _cache_items(report: dict) -> list[list[str]]:
    items = []
    for role, c in cache_entries(report):
        trained = c.get("trained_classes")
        items.append([f"{role}: ", Code(c["path"]), " fingerprint ", Code(c["fingerprint"]),
                      f", encoder trained on classes {trained}" if trained is not None else ""])
    return items


# ---- config as TOML

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key) -> str:
    key = str(key)
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")  # a JSON string is a TOML basic string


def _toml_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))  # 0.1, 1e-05, inf, -inf, nan: all TOML floats
    if isinstance(value, (str, Path)):
        return _toml_string(str(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        entries = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + entries + " }" if entries else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__} (None is only allowed as a table value)")


def toml_dumps(data: dict) -> str:
    """A config dict as TOML: plain values first, then a [table] per dict and an [[array]] entry per dict of a
    list of dicts, with deeper dicts inline. None values are left out (TOML has no null; in a config None is
    a field's default)."""
    def entries(table: dict, nested: bool) -> list[str]:
        return [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()
                if v is not None and not (nested and (isinstance(v, dict) or _table_list(v)))]

    lines = entries(data, nested=True)
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{_toml_key(key)}]", *entries(value, nested=False)]
        elif _table_list(value):
            for item in value:
                lines += ["", f"[[{_toml_key(key)}]]", *entries(item, nested=False)]
    return "\n".join(lines).lstrip("\n") + "\n"


def _table_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


# ---- the document, rendered as Markdown and HTML


def _document(report: dict) -> list[tuple]:
    """The report as blocks: (h1|h2|h3|p|strong, text), (table, header, rows), (list, items), (pre, language, text)
    and (figures,). Text and cells are strings or lists of strings and `Code`."""
    (main, rows), (details, detail_rows) = results_tables(report)
    doc = [("h1", f"zsar report: {report['experiment']}"), *(("strong", w) for w in warnings(report)),
           ("p", f"Created {report['created']} with zsar {report['versions']['zsar']}. "
                 f"Splits: {', '.join(report['split'])}. Seeds: {report['seed']}."),
           ("h2", "Results"), ("table", main, rows), ("p", RESULTS_NOTE),
           ("h3", "Details"), ("table", details, detail_rows)]
    if any(TRIVIAL in cell for row in detail_rows for cell in row):
        doc.append(("p", TRIVIAL_NOTE))
    if len({r["split"] for r in report["runs"]}) > 1:
        doc += [("h2", "ZSL top-1 by split"), ("table", *split_table(report)),
                ("p", f"Mean ± std over seeds. {BELOW}: below the split's chance.")]
    below = below_chance_runs(report)
    if below:
        doc += [("h3", "Below chance"), ("list", [f"{b['head']} on {b['split']}, seed {b['seed']}: ZSL top-1 "
                                                  f"{b['top1']:.1f} < chance {b['chance_top1']:.1f}" for b in below])]
    doc.append(("figures",))
    comparisons = comparison_rows(report.get("comparisons", []))
    if comparisons:
        doc += [("h2", "Paired comparisons (ZSL top-1, same splits, seeds and test samples)"),
                ("table", COMPARISON_HEADER, comparisons), ("p", COMPARISON_NOTE)]
    doc += [("h2", "Protocol"), ("list", protocol_items(report))]
    semantics = semantics_rows(report.get("text_semantics", {}))
    if semantics:
        doc += [("h2", "Class text: what each unseen class borrows from"), ("table", SEMANTICS_HEADER, semantics)]
    doc += [("h2", "Runs"), ("table", RUN_HEADER, run_rows(report)), ("h2", "Caches"), ("list", _cache_items(report))]
    if report.get("files"):
        doc += [("h2", "Files"), ("list", [[Code(name), f": {what}"] for name, what in report["files"].items()])]
    return doc + [("h2", "Versions"), ("p", ", ".join(f"{k} {v}" for k, v in report["versions"].items())),
                  ("h2", "Config"), ("pre", "toml", toml_dumps(report["config"]))]


def _parts(content) -> list[str]:
    return [content] if isinstance(content, str) else list(content)


def _md(content) -> str:
    return "".join(f"`{p}`" if isinstance(p, Code) else str(p).replace("|", "\\|") for p in _parts(content))


def markdown(report: dict, figure_files: list[tuple[str, str]] = ()) -> str:
    """The report as Markdown; `figure_files` (title, path relative to the report) are shown as images."""
    out = []
    for kind, *body in _document(report):
        if kind in ("h1", "h2", "h3"):
            out += ["#" * int(kind[1]) + " " + body[0], ""]
        elif kind in ("p", "strong"):
            out += [f"**{_md(body[0])}**" if kind == "strong" else _md(body[0]), ""]
        elif kind == "table":
            header, rows = body
            out += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|",
                    *("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows), ""]
        elif kind == "list":
            out += [*(f"- {_md(item)}" for item in body[0]), ""]
        elif kind == "pre":
            out += [f"```{body[0]}", body[1].rstrip("\n"), "```", ""]
        elif kind == "figures" and figure_files:
            out += ["## Figures", "", *(f"![{title}]({path})\n" for title, path in figure_files)]
    return "\n".join(out)


def _html(content) -> str:
    return "".join(f"<code>{html.escape(p)}</code>" if isinstance(p, Code) else
                   html.escape(str(p)).replace(" ± ", "\u00a0±\u00a0") for p in _parts(content))


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
         ".scroll{overflow-x:auto}table{border-collapse:collapse;margin:.5em 0}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f0f4fa}"
         "figure{display:inline-block;margin:1em;max-width:100%}img{max-width:100%;max-height:640px}code{font-size:90%}"
         "pre{background:#f6f8fa;padding:1em;overflow-x:auto}")


def html_report(report: dict, figures: list[tuple[str, str]]) -> str:
    """Self-contained HTML: the report's tables and lists, and `figures` (title, base64 PNG) embedded."""
    body = []
    for kind, *content in _document(report):
        if kind in ("h1", "h2", "h3", "p", "strong"):
            text = _html(content[0])
            body.append(f"<p><strong>{text}</strong></p>" if kind == "strong" else f"<{kind}>{text}</{kind}>")
        elif kind == "table":
            header, rows = content
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            cells = "".join("<tr>" + "".join(f"<td>{_html(c)}</td>" for c in row) + "</tr>" for row in rows)
            body.append(f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody>"
                        "</table></div>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_html(item)}</li>" for item in content[0]) + "</ul>")
        elif kind == "pre":
            body.append(f"<pre><code class='language-{content[0]}'>{html.escape(content[1])}</code></pre>")
        elif kind == "figures" and figures:
            body.append("<h2>Figures</h2>" + "".join(
                f"<figure><img alt='{html.escape(t, quote=True)}' src='data:image/png;base64,{b}'>"
                f"<figcaption>{html.escape(t)}</figcaption></figure>" for t, b in figures))
    title = html.escape(f"zsar report: {report['experiment']}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>")


# ---- figures


def run_figures(head: str, split: str, names: list[str], confusion: np.ndarray, per_class: dict[str, float],
                chance: float) -> list[tuple[str, str]]:
    """No figures of a single run: `write_report` draws every head's confusion and per-class accuracy pooled over
    all its runs (from their predictions). Kept while the runner calls it."""
    return []


def _bar_panels(report: dict) -> list[dict]:
    """The head comparison chart's panels: ZSL top-1 against chance, and the GZSL H's and AUSUC."""
    heads, splits = report["heads"], split_summaries(report)

    def series(section: str, key: str) -> dict:
        return {head: (s[section][key]["mean"], [v[f"{section}_{key}"]["mean"] for v in splits.get(head, {}).values()
                                                 if f"{section}_{key}" in v])
                for head, s in heads.items() if key in (s.get(section) or {})}

    chances = [r["zsl"]["chance_top1"] for r in report["runs"]]
    same = len({round(c, 6) for c in chances}) == 1
    panels = [{"title": "ZSL top-1", "series": {"ZSL top-1": series("zsl", "top1")},
               "reference": (float(np.mean(chances)), "chance" if same else "chance (mean over splits)")}]
    gzsl = {label: series("gzsl", key) for label, key in (("GZSL H", "h"), ("CS H", "cs_h"), ("gate H", "gate_h"),
                                                           ("AUSUC", "ausuc"))}
    gzsl = {label: values for label, values in gzsl.items() if values}
    return panels + ([{"title": "GZSL", "series": gzsl, "reference": None}] if gzsl else [])


def summary_figures(report: dict) -> list[tuple[str, str]]:
    """The heads compared over splits, and the GZSL seen-unseen curves when the runs hold them."""
    if not report["runs"]:
        return []
    figures = [("heads compared: mean over runs (bars) and each split (points)",
                head_bars_png(_bar_panels(report), "heads compared (%): bars = mean over runs, points = splits"))]
    curves = gzsl_curves(report)
    if curves:
        runs = {head: [{**c, "label": f"{c['split']} s{c['seed']}"} for c in runs] for head, runs in curves.items()}
        figures.append(("GZSL seen-unseen curves", seen_unseen_png(runs, "GZSL seen-unseen curves (test)")))
    return figures


def pooled_figures(report: dict, predictions: pd.DataFrame) -> list[tuple[str, str]]:
    """Per head: the ZSL confusion matrix over all its runs' test samples (classes of every split), and each unseen
    class's accuracy averaged over the runs it is unseen in."""
    figures = []
    zsl = predictions[predictions["task"] == "zsl"]
    for head, rows in zsl.groupby("head", sort=False):
        truth, predicted = rows["true_label"].to_numpy(), rows["predicted_label"].to_numpy()
        classes = sorted(set(truth.tolist()))
        names = dict(zip(rows["true_label"], rows["true_class"].astype(str)))
        correct = pd.Series(truth == predicted, index=rows.index)
        per_run = correct.groupby([rows["split"], rows["seed"], rows["true_label"]]).mean()
        per_class = per_run.groupby(level=2).mean() * 100.0
        runs = rows.groupby(["split", "seed"]).ngroups
        what = f"pooled over {runs} run{'s' if runs > 1 else ''}"
        chance = report["heads"][head]["chance_top1"]["mean"] if head in report["heads"] else None
        figures += [(f"{head}: ZSL confusion, {what}", confusion_png(confusion_matrix(truth, predicted, classes),
                                                                     [names[c] for c in classes],
                                                                     f"{head} ZSL confusion, {what}")),
                    (f"{head}: ZSL per-class accuracy, {what}",
                     per_class_png({names[c]: float(per_class[c]) for c in classes},
                                   f"{head} per-class ZSL, mean over runs", chance))]
    return figures


def write_figures(folder: Path, figures: list[tuple[str, str]]) -> list[Path]:
    """Every figure as `NN_title.png` in `folder`; PNGs of an earlier report there are removed."""
    paths = []
    for i, (title, png) in enumerate(figures, start=1):
        path = folder / f"{i:02d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', title).strip('_')[:80]}.png"
        with atomic_target(path) as tmp:
            tmp.write_bytes(base64.b64decode(png))
        paths.append(path)
    for stale in set(folder.glob("*.png")) - set(paths):
        stale.unlink()
    return paths


# ---- writing


def enrich_report(report: dict) -> dict:
    """The report as written to report.json: the protocol as it held for the caches at hand, per-split summaries,
    the runs below chance, and each head's GZSL curves (moved out of the runs into `gzsl_curves`)."""
    curves = gzsl_curves(report)
    runs = [{**r, "gzsl": {k: v for k, v in r["gzsl"].items() if k != "curve"}} if r.get("gzsl") else r
            for r in report["runs"]]
    return {**report, "runs": runs, "protocol": protocol_record(report), "by_split": split_summaries(report),
            "below_chance": below_chance_runs(report), "gzsl_curves": curves}


def write_report(out_dir: str | Path, report: dict, figures: list[tuple[str, str]]) -> dict[str, Path]:
    """report.json / .md / .html, runs.csv, predictions.csv (when the runs' prediction files exist) and figures/;
    `figures` (title, base64 PNG) are the caller's, shown after the report's own."""
    out = Path(out_dir)
    full = enrich_report(report)
    predictions = experiment_predictions(report["runs"])
    drawn = [*summary_figures(full), *(pooled_figures(full, predictions) if predictions is not None else []),
             *figures]
    files = write_figures(out / "figures", drawn)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html",
             "runs": write_table(runs_table(full), out / "runs.csv")}
    full["files"] = {"runs.csv": "one row per run: head, split, seed, parameters and every scalar metric"}
    if predictions is not None:
        paths["predictions"] = write_table(predictions, out / "predictions.csv")
        full["files"]["predictions.csv"] = ("every run's test predictions: head, split, seed, task, true and "
                                            "predicted class with seen/unseen domain, top-k")
    full["files"]["figures/"] = f"the {len(files)} figures as PNG"
    write_text_atomic(paths["json"], json.dumps(full, indent=2, default=_json_default))
    write_text_atomic(paths["md"], markdown(full, [(t, str(p.relative_to(out))) for (t, _), p in zip(drawn, files)]))
    write_text_atomic(paths["html"], html_report(full, drawn))
    return paths


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")

"""The clip-level ZSL/GZSL report: tables, flags, protocol text, curves, TOML config and the files it writes."""

from __future__ import annotations

import json
import math
import tomllib

import numpy as np
import pandas as pd
import pytest

from zsar.evaluate.gzsl import ausuc, seen_unseen_curve
from zsar.evaluate.report import (
    curve_points,
    enrich_report,
    html_report,
    markdown,
    results_tables,
    runs_table,
    summarise_head,
    toml_dumps,
    validation_features_text,
    write_report,
)
from zsar.experiment.config import load_config
from zsar.experiment.runner import builtin_config_path

IMPORTED = {"path": "imported.h5", "fingerprint": "ab12", "encoder": "external", "trained_classes": None}


def make_run(head: str, split: str, top1: float, unseen: int = 10, seed: int = 0, gzsl: bool = True,
             validation_unseen=(0, 1)) -> dict:
    seen = list(range(unseen, unseen + 6))
    zsl = {"top1": top1, "top5": 100.0 if unseen <= 5 else 80.0, "per_class_mean": top1,
           "top5_k_effective": min(5, unseen), "num_samples": 40, "num_classes": unseen, "chance_top1": 100.0 / unseen}
    g = {"seen": 80.0, "unseen": 20.0, "h": 32.0, "cs_seen": 60.0, "cs_unseen": 40.0, "cs_h": 48.0, "cs_gamma": 0.5,
         "cs_selection": {"gamma": 0.5, "validation_h": 30.0}, "gate_seen": 70.0, "gate_unseen": 30.0, "gate_h": 42.0,
         "gate_seen_scores": "softmax classifier", "ausuc": 35.0}
    return {"head": head, "split": split, "seed": seed, "params": {"lr": 0.1}, "text_variant": "name",
            "selection": [], "zsl": zsl, "gzsl": g if gzsl else None, "fit": {}, "seconds": 0.5,
            "split_classes": {"name": split, "num_classes": unseen + 6, "unseen": list(range(unseen)), "seen": seen,
                              "validation_unseen": [seen[i] for i in validation_unseen]}}


def make_report(runs: list[dict], caches: dict | None = None) -> dict:
    by_head: dict[str, list] = {}
    for r in runs:
        by_head.setdefault(r["head"], []).append(r)
    return {
        "experiment": "t", "created": "2024-01-01T00:00:00+00:00",
        "split": list(dict.fromkeys(r["split"] for r in runs)),
        "seed": sorted({r["seed"] for r in runs}), "heads": {h: summarise_head(rs) for h, rs in by_head.items()},
        "comparisons": [], "runs": runs,
        "protocol": {"model_selection": "validation zero-shot split", "test_touched_once": True,
                     "epoch_choice": "smoothed", "selected_on_test": False, "transductive": False,
                     "validation_encoder": "the split's encoder (it was trained on the validation classes too)",
                     "leakage_override": False, "leaked_classes": {}},
        "config": {"name": "t", "seeds": [0], "output_dir": None, "evaluate": {"gzsl": True, "top_k": 5}},
        "versions": {"zsar": "0.0"},
        "caches": caches or {"features": IMPORTED, "validation_features": None, "validation_features_by_split": {}},
        "text_semantics": {},
    }


def row_of(text: str, head: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {head} |"))


def test_single_run_says_n_1_not_a_zero_spread():
    report = make_report([make_run("one", "a", 40.0), make_run("two", "a", 40.0, seed=0),
                          make_run("two", "a", 50.0, seed=1)])
    text = markdown(report)
    assert "40.0 (n = 1)" in row_of(text, "one") and "±" not in row_of(text, "one")
    assert "45.0 ± 5.0" in row_of(text, "two")


def test_results_table_is_short_with_the_details_below():
    (main, rows), (details, _) = results_tables(make_report([make_run("h", "a", 40.0)]))
    assert main == ["head", "runs", "ZSL top-1", "ZSL per-class", "GZSL H", "CS H", "gate H", "AUSUC"]
    assert {"GZSL S", "GZSL U", "CS S", "gate U", "ZSL top-5", "chance top-1"} <= set(details)
    no_gzsl = make_report([make_run("h", "a", 40.0, gzsl=False)])
    assert results_tables(no_gzsl)[0][0] == ["head", "runs", "ZSL top-1", "ZSL per-class"]  # no empty columns


def test_below_chance_is_flagged_against_each_splits_chance():
    # 20 % is below chance among 4 unseen classes (25 %) but above it among 10 (10 %)
    report = make_report([make_run("h", "few", 20.0, unseen=4), make_run("h", "many", 20.0, unseen=10)])
    text = markdown(report)
    assert "h on few, seed 0: ZSL top-1 20.0 < chance 25.0" in text
    assert "on many" not in text
    by_split = row_of(text.split("## ZSL top-1 by split")[1], "h")
    assert by_split == "| h | 20.0 ▼ | 20.0 |"
    assert "▼" not in row_of(text, "h")  # the mean (20) is above the mean chance (17.5)
    assert "▼" in row_of(markdown(make_report([make_run("h", "few", 20.0, unseen=4)])), "h")
    above = markdown(make_report([make_run("h", "few", 30.0, unseen=4)]))
    assert "▼" not in row_of(above, "h") and "Below chance" not in above
    table = runs_table(report)
    assert table["below_chance"].tolist() == [True, False]
    assert enrich_report(report)["below_chance"] == [{"head": "h", "split": "few", "seed": 0, "top1": 20.0,
                                                       "chance_top1": 25.0}]


def test_top5_among_five_or_fewer_unseen_classes_is_not_reported_as_a_result():
    details = lambda report: results_tables(report)[1][1][0]  # noqa: E731
    trivial = make_report([make_run("h", "a", 40.0, unseen=5)])
    assert details(trivial)[1] == "trivial †" and "100.0" not in details(trivial)[1]
    assert "100 by construction" in markdown(trivial)
    mixed = make_report([make_run("h", "a", 40.0, unseen=5), make_run("h", "b", 40.0, unseen=6)])
    assert details(mixed)[1] == "80.0 (1 of 2 runs) †"
    informative = make_report([make_run("h", "a", 40.0, unseen=6)])
    assert details(informative)[1] == "80.0 (n = 1)" and "100 by construction" not in markdown(informative)
    assert runs_table(mixed)["top5_trivial"].tolist() == [True, False]


def test_protocol_says_what_held_for_the_cache():
    imported = make_report([make_run("h", "a", 40.0)])
    text = validation_features_text(imported)
    assert "does not record" in text and "trained on the validation" not in text
    assert "does not record" in markdown(imported)
    assert "does not record" in enrich_report(imported)["protocol"]["validation_encoder"]
    trained = dict(IMPORTED, trained_classes=list(range(10, 16)))  # the split's seen classes, validation ones too
    leaky = make_report([make_run("h", "a", 40.0)], {"features": trained, "features_by_split": {"a": trained}})
    assert "optimistic" in validation_features_text(leaky)
    stats = make_report([make_run("h", "a", 40.0)], {"features": dict(IMPORTED, encoder="skeleton-stats")})
    assert "training-free" in validation_features_text(stats)
    per_split = make_report([make_run("h", "a", 40.0)], {"features": trained,
                                                         "validation_features_by_split": {"a": IMPORTED}})
    assert "validation-seen classes only" in validation_features_text(per_split)
    none = make_report([make_run("h", "a", 40.0, validation_unseen=())])
    assert validation_features_text(none).startswith("none")
    assert "default parameters" in enrich_report(none)["protocol"]["model_selection"]


def test_gzsl_note_does_not_claim_a_gate_or_calibration_that_did_not_run():
    run = make_run("h", "a", 40.0)
    for key in ("gate_seen", "gate_unseen", "gate_h"):
        del run["gzsl"][key]
    run["gzsl"]["cs_selection"] = {"gamma": 0.0, "gate": None, "note": "no validation classes; gamma = 0 and no gate"}
    text = markdown(make_report([run]))
    assert "gate =" not in text and "with no penalty" in text
    assert "gate =" in markdown(make_report([make_run("h", "a", 40.0)]))


CONFIG = {
    "name": "t \"quoted\" \\ back",
    "seeds": [0, 1],
    "output_dir": None,
    "ratio": 1e-05,
    "big": float("inf"),
    "data": {"source": "cache", "cache": "C:\\data\\x.h5", "options": {}, "synthetic": {"joints": 20, "a b": [1, 2]},
             "validation_cache": None, "text": "line\nbreak\ttab é"},
    "heads": [{"name": "linear_projection", "params": {"epochs": 20, "lr": 0.5}, "search": None},
              {"name": "sadvae", "params": {}, "search": {"weight_decay": [1e-3, 1e-2], "nested": {"x": True}}}],
    "evaluate": {"gzsl": True, "top_k": 5, "names": [], "mixed": [1, "a", [2.5]]},
}


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def test_toml_writer_round_trips_through_tomllib():
    assert tomllib.loads(toml_dumps(CONFIG)) == _without_none(CONFIG)
    assert toml_dumps(CONFIG).index("[data]") > toml_dumps(CONFIG).index("ratio =")  # plain values before tables
    with pytest.raises(TypeError):
        toml_dumps({"x": [None]})


def test_toml_of_a_config_loads_back_as_the_same_config(tmp_path):
    config = load_config(builtin_config_path("demo"))
    (tmp_path / "again.toml").write_text(toml_dumps(config.to_dict()))
    assert load_config(tmp_path / "again.toml").to_dict() == config.to_dict()


def test_html_shows_the_config_as_toml():
    page = html_report(make_report([make_run("h", "a", 40.0)]), [])
    assert "<pre><code class='language-toml'>" in page
    assert "[evaluate]\ngzsl = true\ntop_k = 5" in page and "output_dir" not in page


def _scores(rng, n_seen=6, n_unseen=4, per_class=8):
    labels = np.repeat(np.arange(n_seen + n_unseen), per_class)
    scores = rng.normal(size=(len(labels), n_seen + n_unseen))
    scores[np.arange(len(labels)), labels] += 1.0
    return scores, labels, list(range(n_seen)), list(range(n_seen, n_seen + n_unseen))


def test_curve_points_keep_the_area_with_fewer_points():
    rng = np.random.default_rng(0)
    scores, labels, seen, unseen = _scores(rng)
    curve = seen_unseen_curve(scores, labels, seen + unseen, seen, unseen)
    points = curve_points(curve)
    assert len(points["seen"]) < len(curve["seen"])
    assert ausuc({k: np.asarray(v) for k, v in points.items()}) == pytest.approx(ausuc(curve), abs=1e-3)
    assert points["unseen"] == sorted(points["unseen"]) and points["seen"] == sorted(points["seen"], reverse=True)
    # a repeated corner must stay: (0, 100) -> (0, 50) twice -> (10, 50) is not the straight line (0, 100)-(10, 50)
    corner = curve_points({"unseen": [0, 0, 0, 10], "seen": [100, 50, 50, 50]})
    assert corner == {"unseen": [0.0, 0.0, 10.0], "seen": [100.0, 50.0, 50.0]}


def test_gzsl_curves_are_drawn_and_kept_in_report_json(tmp_path):
    rng = np.random.default_rng(1)
    runs = []
    for split in ("a", "b"):
        run = make_run("h", split, 40.0)
        scores, labels, seen, unseen = _scores(rng)
        run["gzsl"]["curve"] = {k: v.tolist() for k, v in seen_unseen_curve(scores, labels, seen + unseen, seen,
                                                                              unseen).items()}
        runs.append(run)
    write_report(tmp_path, make_report(runs), [])
    report = json.loads((tmp_path / "report.json").read_text())
    (first, second) = report["gzsl_curves"]["h"]
    assert (first["split"], second["split"]) == ("a", "b") and first["points"]["CS"] == [40.0, 60.0]
    assert len(first["seen"]) == len(first["unseen"]) > 2
    assert all("curve" not in r["gzsl"] for r in report["runs"])  # kept once, under gzsl_curves
    assert any("seen-unseen" in p.name for p in (tmp_path / "figures").iterdir())
    assert "GZSL seen-unseen curves" in (tmp_path / "report.html").read_text()
    write_report(tmp_path / "plain", make_report([make_run("h", "a", 40.0)]), [])
    assert json.loads((tmp_path / "plain" / "report.json").read_text())["gzsl_curves"] == {}
    assert not any("seen-unseen" in p.name for p in (tmp_path / "plain" / "figures").iterdir())


def _predictions(path, run: dict) -> None:
    unseen, seen = run["split_classes"]["unseen"], run["split_classes"]["seen"]
    rows = [{"task": "zsl", "sample_id": f"0{i}", "true_class": f"c{c}", "predicted_class": f"c{unseen[0]}",
             "confidence": 0.5, "true_label": c, "predicted_label": unseen[0]} for i, c in enumerate(unseen)]
    rows += [{"task": "gzsl", "sample_id": f"1{i}", "true_class": f"c{c}", "predicted_class": f"c{seen[0]}",
              "confidence": 0.5, "true_label": c, "predicted_label": seen[0]} for i, c in enumerate(unseen + seen)]
    pd.DataFrame(rows).to_csv(path, index=False)
    run["predictions"] = str(path)


def test_write_report_writes_runs_csv_predictions_and_figure_files(tmp_path):
    runs = [make_run("h", "a", 40.0), make_run("h", "b", 10.0, unseen=4), make_run("g", "a", 60.0)]
    for i, run in enumerate(runs):
        _predictions(tmp_path / f"p{i}.csv", run)
    (tmp_path / "out" / "figures").mkdir(parents=True)
    (tmp_path / "out" / "figures" / "99_stale.png").write_bytes(b"old")
    paths = write_report(tmp_path / "out", make_report(runs), [("extra figure", "iVBORw0KGgo=")])
    table = pd.read_csv(paths["runs"])
    assert len(table) == 3 and table.columns[:3].tolist() == ["head", "split", "seed"]
    assert {"zsl_top1", "zsl_chance_top1", "gzsl_cs_h", "gzsl_cs_selection_gamma", "gzsl_ausuc", "unseen_classes",
            "below_chance", "params"} <= set(table.columns)
    assert "gzsl_gate_seen_scores" not in table  # text, not a metric
    predictions = pd.read_csv(paths["predictions"], dtype={"sample_id": str})
    assert predictions.columns[:9].tolist() == ["head", "split", "seed", "task", "sample_id", "true_class",
                                                "true_domain", "predicted_class", "predicted_domain"]
    assert len(predictions) == sum(len(r["split_classes"]["unseen"]) * 2 + 6 for r in runs)
    assert predictions["sample_id"].str.startswith(("0", "1")).all()
    figures = sorted(p.name for p in (tmp_path / "out" / "figures").iterdir())
    assert not any("stale" in name for name in figures)
    assert [name for name in figures if "confusion" in name] == ["02_h_ZSL_confusion_pooled_over_2_runs.png",
                                                                   "04_g_ZSL_confusion_pooled_over_1_run.png"]
    assert figures[0].startswith("01_heads_compared") and figures[-1] == "06_extra_figure.png"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "![extra figure](figures/06_extra_figure.png)" in md and "`runs.csv`" in md
    assert (tmp_path / "out" / "report.html").read_text().count("data:image/png;base64,") == 6


def test_report_json_keeps_what_the_runner_gave():
    report = make_report([make_run("h", "a", 40.0)])
    full = enrich_report(report)
    added = ("by_split", "below_chance", "gzsl_curves")
    assert {k: v for k, v in full.items() if k not in added and k != "protocol"} == \
        {k: v for k, v in report.items() if k != "protocol"}
    assert full["protocol"].keys() == report["protocol"].keys()
    assert full["by_split"]["h"]["a"]["unseen_classes"] == 10
    assert math.isclose(full["by_split"]["h"]["a"]["chance_top1"], 10.0)

"""Report figures render to PNG (base64) for every shape of input the report gives them."""

import base64

import pytest

from zsar.evaluate.plots import head_bars_png, seen_unseen_png


def is_png(encoded: str) -> bool:
    return base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")


def test_head_bars_with_missing_series_and_a_reference_line():
    panels = [{"title": "ZSL top-1", "series": {"ZSL top-1": {"a": (50.0, [40.0, 60.0]), "b": (20.0, [20.0])}},
               "reference": (25.0, "chance")},
              {"title": "GZSL", "series": {"H": {"a": (30.0, [30.0]), "b": (10.0, [5.0, 15.0])},
                                           "gate H": {"b": (12.0, [12.0])}}, "reference": None}]
    assert is_png(head_bars_png(panels, "heads"))


@pytest.mark.parametrize("heads", [1, 4])
def test_seen_unseen_curves_one_panel_per_head(heads):
    run = {"label": "split s0", "unseen": [0.0, 40.0, 100.0], "seen": [100.0, 60.0, 0.0], "ausuc": 55.0,
           "points": {"GZSL": [10.0, 90.0], "CS": [40.0, 60.0], "gate": [50.0, 45.0]}}
    curves = {f"head{i}": [run, {**run, "points": {}}] for i in range(heads)}
    assert is_png(seen_unseen_png(curves, "curves"))

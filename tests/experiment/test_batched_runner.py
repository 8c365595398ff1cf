"""`run_leaderboard(..., batched=True)` (through `run_experiment`): the same numbers as run by run."""

from __future__ import annotations

import json

import pytest

from zsar.evaluate import batched_fits
from zsar.experiment.config import config_from_dict
from zsar.experiment.leaderboard import run_leaderboard
from zsar.heads.batched_runs import train_batched

CONFIG = {"name": "batched", "data": {"synthetic": {"num_subjects": 4, "repetitions": 2, "test_subjects": 1}},
          "text": {"variant": "name"}, "splits": {"random_unseen": 4, "random_seeds": [1, 2]}, "seeds": [0, 1],
          "heads": [{"name": "contrastive", "params": {"epochs": 4}}, {"name": "nearest_prototype"},
                    {"name": "linear_projection", "params": {"epochs": 3}}]}
EXACT = ("head", "split", "seed", "params", "text_variant", "selection", "zsl")  # counts of correct samples
GZSL = ("seen", "unseen", "h", "cs_seen", "cs_unseen", "cs_h", "gate_h", "ausuc")


@pytest.mark.slow
def test_a_batched_leaderboard_reports_the_plain_numbers(tmp_path, monkeypatch):
    config = config_from_dict(CONFIG)
    plain = run_leaderboard(config, tmp_path / "plain")
    trained = []
    monkeypatch.setattr(batched_fits, "train_batched", lambda head, members: trained.append(
        (head, len(members))) or train_batched(head, members))
    batched = run_leaderboard(config, tmp_path / "batched", batched=True)
    assert batched["batched"] and not plain["batched"]
    # two splits x two seeds per head, two batched trainings each; contrastive: selection, then final + test-ranked
    # + calibration fits; linear_projection: two temperatures each, the final fit one of the test-ranked ones
    assert trained == [("contrastive", 4), ("contrastive", 12), ("linear_projection", 8), ("linear_projection", 12)]
    runs = {name: json.loads((tmp_path / name / "report.json").read_text())["runs"] for name in ("plain", "batched")}
    assert [r["head"] for r in runs["batched"]] == [r["head"] for r in runs["plain"]] == \
        [h["name"] for h in CONFIG["heads"] for _ in range(4)]
    for mine, theirs in zip(runs["batched"], runs["plain"]):
        assert {k: mine[k] for k in EXACT} == {k: theirs[k] for k in EXACT}
        assert {k: mine["gzsl"][k] for k in GZSL} == pytest.approx({k: theirs["gzsl"][k] for k in GZSL}, rel=1e-5)
    for head, row in plain["summary"].items():
        assert {k: v for k, v in batched["summary"][head].items() if k != "seconds_per_run"} == \
            {k: v for k, v in row.items() if k != "seconds_per_run"}, head

from __future__ import annotations

import json

import pytest

from zsar.errors import ZsarError
from zsar.experiment.config import config_from_dict
from zsar.experiment.leaderboard import leaderboard_config, run_leaderboard
from zsar.experiment.runner import run_experiment

CONFIG = {"name": "board", "data": {"synthetic": {"num_subjects": 4, "repetitions": 2, "test_subjects": 1}},
          "text": {"variant": "name"}, "splits": {"random_unseen": 4, "random_seeds": [1, 2]},
          "heads": [{"name": "nearest_prototype"}, {"name": "contrastive", "params": {"epochs": 6}}]}


@pytest.mark.slow
def test_leaderboard_columns_and_comparisons(tmp_path):
    config = config_from_dict(CONFIG)
    record = run_leaderboard(config, tmp_path / "board", heads=["nearest_prototype", "contrastive",
                                                                "linear_projection"], random_seeds=[3, 4])
    summary = record["summary"]
    assert list(summary) == ["nearest_prototype", "contrastive", "linear_projection"]
    for row in summary.values():
        assert all(row[column]["n"] == 2 for column in ("last", "validation", "test"))
        assert row["gzsl"]["cs_h"]["n"] == 2 and row["seconds_per_run"]["mean"] > 0
        # the test column ranks what validation picked among its candidates on test: never below it
        assert row["test"]["mean"] >= row["validation"]["mean"] - 1e-9
    assert summary["nearest_prototype"]["last"] == summary["nearest_prototype"]["validation"]  # nothing to choose
    assert set(summary["contrastive"]["vs"]) == {"nearest_prototype", "linear_projection"}
    assert json.loads((tmp_path / "board" / "leaderboard.json").read_text())["random_seeds"] == [3, 4]
    assert "papers' protocol" in (tmp_path / "board" / "leaderboard.md").read_text()
    # the columns are what separate runs give: the validation column is the plain experiment's result, the last
    # column an experiment that takes the last epoch, the test column one that selects on test
    plain = {**CONFIG, "splits": {"random_unseen": 4, "random_seeds": [3, 4]},
             "heads": [{"name": "contrastive", "params": {"epochs": 6}}]}
    modes = {"validation": {}, "last": {"epoch_choice": "last"}, "test": {"select_on_test": True}}
    for column, evaluate in modes.items():
        report = run_experiment(config_from_dict({**plain, "evaluate": evaluate}), tmp_path / column, progress=False)
        assert report["heads"]["contrastive"]["zsl"]["top1"]["mean"] == pytest.approx(
            summary["contrastive"][column]["mean"], abs=0.01), column


def test_leaderboard_config():
    config = config_from_dict(CONFIG)
    with pytest.raises(ZsarError, match="unknown heads"):
        leaderboard_config(config, ["magic"])
    with pytest.raises(ZsarError, match="select_on_test"):
        leaderboard_config(config_from_dict({**CONFIG, "evaluate": {"select_on_test": True}}), None)
    board = leaderboard_config(config, ["sadvae", "contrastive"], [7])
    assert board.evaluate.leaderboard_columns and board.splits.random_seeds == [7]
    assert [h.name for h in board.heads] == ["sadvae", "contrastive"] and board.heads[1].params == {"epochs": 6}

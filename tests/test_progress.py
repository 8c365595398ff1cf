"""The run progress display, and Ctrl-C keeping the finished runs in a partial report."""

from __future__ import annotations

import io
import json

import pytest

from zsar import progress
from zsar.errors import Interrupted
from zsar.experiment import runner
from zsar.experiment.config import config_from_dict
from zsar.progress import RunProgress, tracking


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_status_line_counts_runs_and_estimates_what_is_left():
    clock, stream = Clock(), io.StringIO()
    tracker = RunProgress(4, stream=stream, live=True, clock=clock)
    assert "ETA after the first run" in tracker.status()
    with tracking(tracker):
        tracker.start_run("sadvae", "ntu60/55-5", 0)
        progress.stage("choosing among 1 setting(s) on validation")
        clock.now = 1.0
        progress.epoch(3, 60)
        progress.chosen("epochs=3 (validation top-1 50.0)")
        assert tracker.status() == ("[0/4 runs, 0:01, ETA after the first run] | sadvae | ntu60/55-5 | seed 0 | "
                                    "choosing among 1 setting(s) on validation | epoch 3/60 | "
                                    "chosen: epochs=3 (validation top-1 50.0)")
        clock.now = 30.0
        tracker.finish_run("ZSL top-1 50.0")
        assert tracker.status().startswith("[1/4 runs, 0:30, ETA 1:30]")
    assert "\r\033[K[1/4 runs" in stream.getvalue()  # the line is rewritten in place on a terminal
    quiet = io.StringIO()
    RunProgress(2, stream=quiet, live=False).start_run("a", "b", 0)
    assert quiet.getvalue() == ""  # not a terminal: only the per-run log lines


def test_reports_outside_a_tracked_run_are_ignored():
    progress.stage("nothing listens")
    progress.epoch(1, 2)
    progress.chosen("x")


def test_ctrl_c_keeps_finished_runs_in_a_partial_report(tmp_path, monkeypatch):
    config = config_from_dict({"name": "tiny", "data": {"source": "synthetic", "synthetic": {
        "num_subjects": 4, "repetitions": 2, "test_subjects": 1}}, "text": {"variant": "name"},
        "splits": {"random_unseen": 4, "random_seeds": [1, 2]}, "heads": [{"name": "nearest_prototype"}],
        "seeds": [0, 1]})
    real, calls = runner.run_protocol, []

    def interrupted_third_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_protocol", interrupted_third_run)
    with pytest.raises(Interrupted) as info:
        runner.run_experiment(config, tmp_path / "out", progress=False)
    assert (info.value.finished, info.value.total) == (2, 4)
    assert "2 of 4 runs finished" in str(info.value) and str(tmp_path / "out" / "report.html") in str(info.value)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["partial"]["finished_runs"] == 2 and len(report["runs"]) == 2
    assert "PARTIAL REPORT: 2 of 4 runs" in (tmp_path / "out" / "report.md").read_text()
    assert "PARTIAL REPORT" in (tmp_path / "out" / "report.html").read_text()


def test_suspended_clears_the_status_line_and_draws_it_again():
    stream = io.StringIO()
    tracker = RunProgress(2, stream=stream, live=True)
    with tracking(tracker):
        tracker.start_run("a", "b", 0)
        stream.seek(0), stream.truncate()
        with progress.suspended():
            stream.write("a log line\n")
    assert stream.getvalue().startswith("\r\033[Ka log line\n\r\033[K[0/2 runs")
    with progress.suspended():  # no run tracked: nothing to clear
        pass
    quiet = io.StringIO()
    with tracking(RunProgress(2, stream=quiet, live=False)), progress.suspended():
        quiet.write("x\n")
    assert quiet.getvalue() == "x\n"  # not a terminal: no control characters

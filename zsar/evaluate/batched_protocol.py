"""The protocol for many splits and seeds of one head at once, with the fits of a head that trains batched
(`zsar.heads.batched_runs`: linear_projection, contrastive) trained together, stage by stage:

1. every run's selection fits (each grid setting on its validation problem, watching every epoch when the head
   chooses its epochs; on test in the papers' mode) as one batched training; then each run chooses its settings
   exactly as `run_protocol` does, from these fits;
2. every run's remaining fits (the final fit with its chosen settings, the leaderboard's test-ranked fits, the
   GZSL calibration fit on its seeded hold-out) as another; then each run finishes as `run_protocol` does.

Each member ends as its separate fit would (tests/evaluate/test_batched_protocol.py checks the reports agree), so
the results are `run_protocol`'s for every run. A fit the batched model cannot hold (another head, a setting it
does not support) is fitted alone when the run asks for it. Scoring (every snapshot on validation, the test split,
GZSL) still runs run by run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from zsar.class_lists.splits import ZeroShotSplit
from zsar.evaluate.batched_fits import BatchedFits, FitRequest
from zsar.evaluate.protocol import (
    HeadRun,
    ProtocolOptions,
    RunData,
    RunResult,
    calibration_request,
    calibration_sets,
    check_samples,
    choose_settings,
    final_request,
    finish_run,
    problem_on_test,
    problem_requests,
    protocol_run,
    ranks_settings,
    validation_problem,
)
from zsar.features.prototypes import ClassPrototypes
from zsar.features.reader import FeatureSet


@dataclass(frozen=True)
class ProtocolJob:
    """One split and seed with the samples it reads (`RunData.of` arguments)."""

    split: ZeroShotSplit
    seed: int
    train: FeatureSet
    test: FeatureSet
    prototypes: ClassPrototypes | Mapping[str, ClassPrototypes]
    validation: FeatureSet | None = None

    def data(self) -> RunData:
        return RunData.of(self.train, self.test, self.prototypes, self.validation)


def choice_requests(run: HeadRun, data: RunData) -> list[FitRequest]:
    """The fits `choose_settings` makes: every grid setting on the ranking problem of every text variant."""
    several, requests = len(data.texts) > 1, []
    for prototypes in data.texts.values():
        if run.options.select_on_test:
            problem = problem_on_test(run, data.train, data.test)
        elif ranks_settings(run, several) and run.split.validation_unseen:
            problem = validation_problem(run, data.validation)
        else:
            continue
        requests += problem_requests(run, run.combos(), problem, prototypes)
    return requests


def finish_requests(run: HeadRun, data: RunData, choice: tuple[str, dict, list]) -> list[FitRequest]:
    """The fits `finish_run` makes: the final fit, the leaderboard's test-ranked fits, the GZSL calibration fit."""
    variant, params, _ = choice
    prototypes, options = data.texts[variant], run.options
    requests = [final_request(run, data, params, prototypes)]
    if options.leaderboard_columns and not options.select_on_test:
        requests += problem_requests(run, run.combos(), problem_on_test(run, data.train, data.test),
                                     prototypes)
    if options.gzsl and run.split.validation_unseen:
        requests.append(calibration_request(run, params, calibration_sets(run, data.validation)[0], prototypes))
    return requests


def run_protocol_group(head_name: str, base_params: dict, grid: dict | None, jobs: list[ProtocolJob],
                       options: ProtocolOptions | None = None, fits: BatchedFits | None = None) -> list[RunResult]:
    """`run_protocol` of every job, in order, with their fits trained in two batched trainings (see the module
    docstring); `fits` (default a new store) keeps the count of fits made alone."""
    options, fits = options or ProtocolOptions(), fits if fits is not None else BatchedFits()
    runs = [protocol_run(head_name, base_params, grid, job.split, job.seed, options, fits) for job in jobs]
    data = [job.data() for job in jobs]
    for run, run_data in zip(runs, data):
        check_samples(run, run_data)
    fits.train([request for run, run_data in zip(runs, data) for request in choice_requests(run, run_data)])
    choices = [choose_settings(run, run_data) for run, run_data in zip(runs, data)]
    fits.train([request for run, run_data, choice in zip(runs, data, choices)
                for request in finish_requests(run, run_data, choice)])
    return [finish_run(run, run_data, choice) for run, run_data, choice in zip(runs, data, choices)]

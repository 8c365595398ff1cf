"""Several splits and seeds through the protocol with their fits trained batched: the same reports as run by run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zsar.class_lists import random_split
from zsar.evaluate.batched_fits import BatchedFits
from zsar.evaluate.batched_protocol import ProtocolJob, run_protocol_group
from zsar.evaluate.protocol import ProtocolOptions, run_protocol
from zsar.features.prototypes import ClassPrototypes
from zsar.features.reader import FeatureSet

CLASSES, FEATURES, TEXT = 16, 32, 24


def _feature_set(features: np.ndarray, labels: np.ndarray, prefix: str) -> FeatureSet:
    meta = pd.DataFrame({"sample_id": [f"{prefix}{i}" for i in range(len(labels))], "label": labels})
    return FeatureSet(embeddings=features, labels=labels.astype(np.int64), metadata=meta, rows=np.arange(len(labels)))


@pytest.fixture(scope="module")
def problem():
    """16 classes whose features are a noisy linear map of their text: zero-shot transfer is learnable."""
    rng = np.random.default_rng(0)
    text = rng.standard_normal((CLASSES, TEXT)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    mapping = rng.standard_normal((TEXT, FEATURES)).astype(np.float32)

    def samples(per_class: int, prefix: str) -> FeatureSet:
        labels = np.repeat(np.arange(CLASSES), per_class)
        noise = 0.7 * rng.standard_normal((len(labels), FEATURES)).astype(np.float32)
        return _feature_set((text[labels] @ mapping + noise).astype(np.float32), labels, prefix)

    names = [f"class {c}" for c in range(CLASSES)]
    protos = ClassPrototypes(np.arange(CLASSES), names, text, "name", [[n] for n in names], "none")
    return samples(24, "train"), samples(6, "test"), protos


def _jobs(problem, prototypes=None) -> list[ProtocolJob]:
    train, test, protos = problem
    return [ProtocolJob(random_split(CLASSES, 4, seed=split), seed, train, test, prototypes or protos)
            for split in (1, 2) for seed in (0, 3)]


def _assert_same(a, b, path="result"):
    """Equal, floats up to the last digits (a member's loss is a masked mean of the same terms)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7), path
    else:
        assert a == b, path


def _assert_group_equals_separate_runs(head, params, grid, jobs, options, fits):
    results = run_protocol_group(head, params, grid, jobs, options, fits)
    assert [(r.split, r.seed) for r in results] == [(j.split.name, j.seed) for j in jobs]
    for job, result in zip(jobs, results):
        alone = run_protocol(head, params, grid, job.train, job.test, job.split, job.prototypes, job.seed, options)
        _assert_same(result.summary(), alone.summary())
        pd.testing.assert_frame_equal(result.predictions, alone.predictions, rtol=1e-5, atol=1e-5)
        for key, value in alone.fitted.state.items():
            np.testing.assert_allclose(result.fitted.state[key], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("head", "params", "grid"), [
    ("linear_projection", {"epochs": 3, "batch_size": 32}, None),
    ("contrastive", {"epochs": 5, "batch_size": 32}, {"lr": [1e-3, 3e-3]}),
])
def test_a_group_reports_what_its_runs_report_one_by_one(problem, head, params, grid):
    """Two splits x two seeds, GZSL and the leaderboard's columns: two batched trainings, nothing fitted alone."""
    fits = BatchedFits()
    _assert_group_equals_separate_runs(head, params, grid, _jobs(problem), ProtocolOptions(leaderboard_columns=True),
                                       fits)
    assert fits.alone == 0 and len(fits.batches) == 2 and fits.ready == {}


def test_text_variants_and_test_selection_batch_too(problem):
    train, test, protos = problem
    texts = {"name": protos, "again": ClassPrototypes(protos.class_ids, protos.class_names, protos.vectors[::-1].copy(),
                                                       "again", protos.texts, "none")}
    fits = BatchedFits()
    options = ProtocolOptions(gzsl=False, select_on_test=True)
    _assert_group_equals_separate_runs("linear_projection", {"epochs": 2, "batch_size": 32}, None,
                                       _jobs(problem, texts), options, fits)
    assert fits.alone == 0 and fits.batches[0] == 4 * 2 * 2  # runs x variants x temperatures


def test_a_head_that_cannot_train_batched_is_fitted_run_by_run(problem):
    fits = BatchedFits()
    jobs = _jobs(problem)[:2]
    _assert_group_equals_separate_runs("nearest_prototype", {}, None, jobs, ProtocolOptions(), fits)
    # per run: its four grid settings on validation, the final fit and the GZSL calibration fit
    assert fits.batches == [] and fits.alone == (4 + 2) * len(jobs)

from __future__ import annotations

import numpy as np
import pytest

from zsar.class_lists import random_split
from zsar.errors import ZsarError
from zsar.extract.text import build_prototypes
from zsar.features import FeatureCache
from zsar.heads import HEADS, build_head, load_head


@pytest.fixture(scope="module")
def problem(synthetic_cache, text_encoder):
    cache = FeatureCache(synthetic_cache)
    protos = build_prototypes(text_encoder, range(len(cache.class_names)), cache.class_names, "prompts")
    return cache.load("train"), cache.load("test"), protos


# settings for the fixture's 144 training samples (SA-DVAE's default batch gives 4 steps per epoch)
FIXTURE_PARAMS = {"sadvae": {"batch_size": 8},
                  # CADA-VAE's narrow preset, 40 epochs; FS-VAE: 3 cycles of 150 iterations, standardised features
                  "cada_vae": {"preset": "small", "epochs": 40, "threads": 1},
                  "fs_vae": {"cycle": 150, "cycles": 3, "batch_size": 32, "lr": 1e-3, "feature_scaling": "standardise",
                             "threads": 1},
                  # a one-block denoiser, 300 steps (~2 s on one thread), the triplet term weighted up (12 seen classes)
                  "tdsm": {"hidden": 32, "depth": 1, "heads": 2, "iterations": 300, "batch_size": 32, "lr": 2e-3,
                           "warmup": 10, "feature_scaling": "standardise", "triplet_weight": 3.0, "threads": 1}}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_head_contract(name, problem, tmp_path):
    train, test, protos = problem
    split = random_split(len(protos.class_ids), 4, seed=2)
    seen = train.with_classes(split.seen)
    head = build_head(name, FIXTURE_PARAMS.get(name))
    head.fit(seen.embeddings, seen.labels, protos.subset(split.seen), seed=0)
    queries = test.with_classes(split.unseen)
    scores = head.score(queries.embeddings, protos.subset(split.unseen))
    assert scores.shape == (len(queries), 4) and np.isfinite(scores).all()
    # zero-shot transfer on the synthetic data: above chance (25 %)
    accuracy = np.mean(np.asarray(split.unseen)[scores.argmax(1)] == queries.labels) * 100
    assert accuracy > 40
    # save / load gives identical scores, on any class set
    loaded = load_head(head.save(tmp_path / name))
    all_protos = protos.subset(sorted(split.seen + split.unseen))
    np.testing.assert_array_equal(loaded.score(test.embeddings, all_protos), head.score(test.embeddings, all_protos))
    # the FAISS and numpy search backends agree
    np.testing.assert_allclose(head.score(test.embeddings, all_protos, backend="numpy"),
                               head.score(test.embeddings, all_protos), atol=1e-4)
    with pytest.raises(ZsarError, match="fitted on"):
        head.score(test.embeddings[:, :10], all_protos)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_head_is_deterministic_for_a_seed(name, problem):
    train, test, protos = problem
    split = random_split(len(protos.class_ids), 4, seed=3)
    seen = train.with_classes(split.seen)
    runs = []
    for _ in range(2):
        head = build_head(name, FIXTURE_PARAMS.get(name))
        head.fit(seen.embeddings, seen.labels, protos.subset(split.seen), seed=7)
        runs.append(head.score(test.embeddings, protos))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_unknown_head_and_parameters():
    with pytest.raises(ZsarError, match="unknown head"):
        build_head("magic")
    with pytest.raises(ZsarError, match=r"unknown parameters \['epoch'\]"):
        build_head("linear_projection", {"epoch": 3})


def test_text_prototypes_need_matching_dims(problem):
    train, _, protos = problem
    head = build_head("nearest_prototype", {"prototypes": "text"})
    with pytest.raises(ZsarError, match="text space"):
        head.fit(train.embeddings, train.labels, protos, seed=0)

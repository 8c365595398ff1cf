"""Heads train on any torch device: a GPU gives the same model as the CPU (same seeded draws, float32 rounding
apart). The GPU half runs where torch sees one (the project's own GPU checks); everywhere else it is skipped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head
from zsar.heads.torch_device import training_device

HAS_CUDA = torch.cuda.is_available()
TORCH_HEADS = {"linear_projection": {}, "dual_head": {}, "sadvae": {"epochs": 8}}


def zero_shot_problem(classes: int = 12, unseen: int = 4, per_class: int = 40, seed: int = 0):
    """Features that are a fixed random map of the class text plus noise: learnable zero-shot structure."""
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((classes, 48)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    mapping = rng.standard_normal((48, 32)).astype(np.float32)
    labels = np.repeat(np.arange(classes), per_class)
    features = np.maximum(text[labels] @ mapping + 0.5 * rng.standard_normal((len(labels), 32)), 0)
    names = [f"class {c}" for c in range(classes)]
    protos = ClassPrototypes(np.arange(classes), names, text, "synthetic", [[n] for n in names], "synthetic")
    split = classes - unseen
    return features.astype(np.float32), labels, protos, list(range(split)), list(range(split, classes))


def test_training_device_names_the_problem():
    assert training_device("cpu", "sadvae").type == "cpu"
    with pytest.raises(ZsarError, match="dual_head: device 'tpu' is not a torch device name; use cpu, cuda"):
        training_device("tpu", "dual_head")
    with pytest.raises(ZsarError, match="sadvae: device 'xla' is not supported"):
        training_device("xla", "sadvae")
    with pytest.raises(ZsarError, match="not a torch device name"):
        training_device("gpu please", "sadvae")
    with pytest.raises(ZsarError, match="CUDA GPU"):
        training_device("cuda:99", "sadvae")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("name", sorted(TORCH_HEADS))
def test_fit_on_a_missing_gpu_is_a_clear_error(name):
    features, labels, protos, seen, _ = zero_shot_problem()
    head = build_head(name, {**TORCH_HEADS[name], "device": "cuda"})
    mask = np.isin(labels, seen)
    with pytest.raises(ZsarError, match=f"{name}: device 'cuda' asked for, but torch sees no CUDA GPU"):
        head.fit(features[mask], labels[mask], protos.subset(seen), seed=0)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", sorted(TORCH_HEADS))
def test_gpu_training_matches_cpu_training(name):
    features, labels, protos, seen, unseen = zero_shot_problem()
    mask = np.isin(labels, seen)
    scores = {}
    for device in ("cpu", "cuda"):
        head = build_head(name, {**TORCH_HEADS[name], "device": device})
        head.fit(features[mask], labels[mask], protos.subset(seen), seed=3)
        scores[device] = head.score(features[~mask], protos.subset(unseen))
    agree = np.mean(scores["cpu"].argmax(1) == scores["cuda"].argmax(1))
    assert agree >= 0.95, f"{name}: CPU and GPU training agree on {agree:.0%} of zero-shot predictions"
    np.testing.assert_allclose(scores["cuda"], scores["cpu"], rtol=0.05, atol=0.05 * np.abs(scores["cpu"]).max())

"""Multi-semantic training (several texts per class): the modes against naive versions and plain training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsar.class_lists import random_split
from zsar.class_lists.class_text import builtin_class_text
from zsar.errors import ZsarError
from zsar.extract.text import TextSources, build_prototypes
from zsar.features import FeatureCache
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head, load_head
from zsar.heads.sadvae_model import EagerIterations, LoopSettings, SADVAENetwork
from zsar.heads.text_views import TrainingText, draw_views, scoring_vectors, view_probabilities

TORCH_TEXT_HEADS = {"linear_projection": {"epochs": 40}, "dual_head": {"epochs": 40},
                    "sadvae": {"batch_size": 8, "epochs": 6}}


@pytest.fixture(scope="module")
def problem(synthetic_cache, text_encoder):
    cache = FeatureCache(synthetic_cache)
    texts = builtin_class_text("synthetic")
    ensemble = build_prototypes(text_encoder, range(16), cache.class_names, "ensemble", TextSources(class_text=texts))
    return cache.load("train"), cache.load("test"), ensemble


def without_views(protos: ClassPrototypes) -> ClassPrototypes:
    return ClassPrototypes(protos.class_ids, protos.class_names, protos.vectors, protos.variant, protos.texts,
                           protos.text_model)


def test_augment_logits_equal_a_per_sample_loop():
    rng = np.random.default_rng(0)
    views = rng.normal(size=(3, 5, 8)).astype(np.float32)
    views /= np.linalg.norm(views, axis=2, keepdims=True)
    mean = views.mean(0) / np.linalg.norm(views.mean(0), axis=1, keepdims=True)
    protos = ClassPrototypes(np.arange(5), list("abcde"), mean, "ensemble", [[]] * 5, "m", views=views,
                             view_names=["p", "d", "m"], view_weights=[1.0, 1.0, 2.0])
    text = TrainingText(protos, "augment", "cpu", seed=1)
    queries = torch.nn.functional.normalize(torch.randn(7, 8), dim=1)
    reference = TrainingText(protos, "augment", "cpu", seed=1)  # the same generator state as `text`
    drawn = draw_views(reference.probabilities, 7, reference.generator)
    logits = text.logits(queries)
    naive = torch.stack([queries[b] @ torch.from_numpy(views[int(drawn[b])]).T for b in range(7)])
    torch.testing.assert_close(logits, naive)
    # views are drawn with the ensemble's weights
    np.testing.assert_allclose(view_probabilities(protos), [0.25, 0.25, 0.5])
    many = draw_views(text.probabilities, 20000, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(np.bincount(many.numpy(), minlength=3) / 20000, [0.25, 0.25, 0.5], atol=0.02)
    # mean: the prototypes' vectors; fused starts from the ensemble's weights
    torch.testing.assert_close(TrainingText(protos, "mean", "cpu", 0).class_matrix(), torch.from_numpy(protos.vectors))
    fused = TrainingText(protos, "fused", "cpu", 0).class_matrix().detach().numpy()
    np.testing.assert_allclose(fused, scoring_vectors(protos, np.array([0.25, 0.25, 0.5], dtype=np.float32)),
                               atol=1e-6)


def test_sadvae_augment_rows_equal_a_per_sample_loop():
    text = torch.randn(3, 4, 6)
    probabilities = torch.tensor([0.2, 0.3, 0.5])
    loop = EagerIterations(SADVAENetwork(5, 6, 4, 2), torch.randn(9, 5), text, torch.zeros(9, dtype=torch.long),
                           LoopSettings(1, 3, 1e-3, 1, False), (probabilities, torch.Generator().manual_seed(4)))
    positions = torch.tensor([0, 3, 2, 2, 1])
    rows = loop._text_rows(positions)
    drawn = draw_views(probabilities, 5, torch.Generator().manual_seed(4))
    torch.testing.assert_close(rows, torch.stack([text[int(drawn[b]), int(positions[b])] for b in range(5)]))


def test_a_fused_head_needs_the_views_it_learned(problem):
    train, test, protos = problem
    split = random_split(16, 4, seed=2)
    seen = train.with_classes(split.seen)
    head = build_head("linear_projection", {"epochs": 5, "text_views": "fused"})
    head.fit(seen.embeddings, seen.labels, protos.subset(split.seen), seed=0)
    with pytest.raises(ZsarError, match="mixture of 4 text views"):
        head.score(test.embeddings, without_views(protos))


@pytest.mark.parametrize("name", sorted(TORCH_TEXT_HEADS))
def test_mean_mode_with_views_is_plain_training(name, problem):
    train, test, protos = problem
    split = random_split(16, 4, seed=2)
    seen = train.with_classes(split.seen)
    scores = []
    for p in (protos, without_views(protos)):
        head = build_head(name, {**TORCH_TEXT_HEADS[name], "text_views": "mean"})
        head.fit(seen.embeddings, seen.labels, p.subset(split.seen), seed=0)
        scores.append(head.score(test.embeddings, protos.subset(split.unseen)))
    np.testing.assert_array_equal(scores[0], scores[1])


@pytest.mark.parametrize("name, mode", [("linear_projection", "augment"), ("linear_projection", "fused"),
                                        ("dual_head", "augment"), ("dual_head", "fused"), ("sadvae", "augment")])
def test_multi_view_heads_fit_save_and_load(name, mode, problem, tmp_path):
    train, test, protos = problem
    split = random_split(16, 4, seed=2)
    seen = train.with_classes(split.seen)
    head = build_head(name, {**TORCH_TEXT_HEADS[name], "text_views": mode})
    info = head.fit(seen.embeddings, seen.labels, protos.subset(split.seen), seed=0)
    assert info["text_views"] == 4
    unseen = protos.subset(split.unseen)
    scores = head.score(test.embeddings, unseen)
    assert np.isfinite(scores).all()
    plain = build_head(name, {**TORCH_TEXT_HEADS[name], "text_views": "mean"})
    plain.fit(seen.embeddings, seen.labels, protos.subset(split.seen), seed=0)
    assert not np.array_equal(scores, plain.score(test.embeddings, unseen))  # the views changed training
    if mode == "fused":
        weights = head.state["view_weights"]
        assert weights.shape == (4,) and abs(weights.sum() - 1) < 1e-5 and info["view_weights"]
        np.testing.assert_allclose(head.class_vectors(unseen), scoring_vectors(unseen, weights))
    loaded = load_head(head.save(tmp_path / name))
    np.testing.assert_array_equal(loaded.score(test.embeddings, unseen), scores)

import numpy as np
import pytest
import torch

from zsar.class_lists import random_split
from zsar.extract.text import build_prototypes
from zsar.features import FeatureCache
from zsar.heads import build_head


@pytest.mark.parametrize("hidden", [0, 64])
def test_dual_head_supervised_and_zero_shot_paths(synthetic_cache, text_encoder, hidden):
    cache = FeatureCache(synthetic_cache)
    protos = build_prototypes(text_encoder, range(len(cache.class_names)), cache.class_names, "prompts")
    split = random_split(len(protos.class_ids), 4, seed=2)
    train, test = cache.load("train").with_classes(split.seen), cache.load("test").with_classes(split.seen)
    head = build_head("dual_head", {"epochs": 60, "hidden": hidden})
    info = head.fit(train.embeddings, train.labels, protos.subset(split.seen), seed=0)
    assert info["learned_temperature"] != 0.07  # the scale is learned
    fused = head.seen_logits(test.embeddings)
    # supervised accuracy over the seen classes is far above chance (1/12)
    assert np.mean(np.asarray(split.seen)[fused.argmax(1)] == test.labels) > 0.6
    # the fused logits equal a direct torch computation of both heads (the naive path)
    s = head.state
    x = torch.from_numpy((test.embeddings - s["feature_mean"]) / s["feature_std"]).float()
    assert ("trunk_weight" in s) == bool(hidden)
    if hidden:  # the shared trunk, without dropout at inference
        x = torch.nn.functional.gelu(x @ torch.from_numpy(s["trunk_weight"]).T + torch.from_numpy(s["trunk_bias"]))
    cls = x @ torch.from_numpy(s["cls_weight"]).T + torch.from_numpy(s["cls_bias"])
    sem = torch.nn.functional.normalize(x @ torch.from_numpy(s["sem_weight"]).T + torch.from_numpy(s["sem_bias"]))
    sem = sem @ torch.from_numpy(protos.subset(split.seen).vectors).T * float(np.exp(s["log_scale"][0]))
    np.testing.assert_allclose(fused, (0.8 * cls + 0.2 * sem).numpy(), rtol=1e-4, atol=1e-4)
    # zero-shot scores are the semantic head alone, against the unseen classes' prototypes
    unseen = protos.subset(split.unseen)
    zs = head.score(test.embeddings, unseen)
    proj = torch.nn.functional.normalize(x @ torch.from_numpy(s["sem_weight"]).T + torch.from_numpy(s["sem_bias"]))
    expected = proj @ torch.from_numpy(unseen.vectors).T * float(np.exp(s["log_scale"][0]))
    np.testing.assert_allclose(zs, expected.numpy(), rtol=1e-4, atol=1e-4)

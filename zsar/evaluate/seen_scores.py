"""Seen-class scores for GZSL gating: the encoder's own logits stored in the cache when they cover the
classes, otherwise a softmax classifier over those classes trained on the cached training features."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from zsar.features.reader import FeatureSet
from zsar.heads.minibatch import train_minibatches
from zsar.scoring import label_positions


def _from_cache(data: FeatureSet, classes) -> np.ndarray | None:
    if data.logits is None or data.logit_classes is None or not set(classes) <= set(data.logit_classes):
        return None
    cols = [list(data.logit_classes).index(c) for c in classes]
    stored = data.logits[:, cols]
    return stored if np.isfinite(stored).all() else None  # some rows were stored without logits


def seen_class_logits(fit: FeatureSet, query: FeatureSet, classes, seed: int = 0, epochs: int = 100
                      ) -> tuple[np.ndarray, str]:
    """Logits [len(query), len(classes)] and where they came from."""
    stored = _from_cache(query, classes)
    if stored is not None:
        return stored.astype(np.float32), "encoder logits (cache)"
    mean, std = fit.embeddings.mean(0), fit.embeddings.std(0) + 1e-6
    x = torch.from_numpy(((fit.embeddings - mean) / std).astype(np.float32))
    y = torch.from_numpy(label_positions(fit.labels, classes))
    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], len(classes))
    train_minibatches([{"params": list(layer.parameters()), "weight_decay": 1e-3}],
                      lambda batch: F.cross_entropy(layer(x[batch]), y[batch]), len(x), epochs, 256, 3e-3, seed)
    with torch.no_grad():
        q = torch.from_numpy(((query.embeddings - mean) / std).astype(np.float32))
        return layer(q).numpy(), "softmax classifier trained on the cache"

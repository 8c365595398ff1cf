"""Seen-class scores for GZSL gating: the encoder's own logits stored in the cache when they cover the
classes, otherwise a softmax classifier over those classes trained on the cached training features."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from zsar.compute import keeps_torch_state
from zsar.features.reader import FeatureSet
from zsar.heads.minibatch import train_minibatches
from zsar.scoring import label_positions


def _from_cache(data: FeatureSet, classes) -> np.ndarray | None:
    if data.logits is None or data.logit_classes is None or not set(classes) <= set(data.logit_classes):
        return None
    cols = [list(data.logit_classes).index(c) for c in classes]
    stored = data.logits[:, cols]
    return stored if np.isfinite(stored).all() else None  # some rows were stored without logits


_TRAINED: OrderedDict[str, np.ndarray] = OrderedDict()  # recent classifier outputs, by what they were trained on
_KEEP = 8


def _key(fit: FeatureSet, query: FeatureSet, classes, seed: int, epochs: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for array in (fit.embeddings, fit.labels, query.embeddings):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr((list(classes), seed, epochs, fit.embeddings.shape, query.embeddings.shape)).encode())
    return digest.hexdigest()


def seen_class_logits(fit: FeatureSet, query: FeatureSet, classes, seed: int = 0, epochs: int = 100
                      ) -> tuple[np.ndarray, str]:
    """Logits [len(query), len(classes)] and where they came from. A trained classifier's logits are kept for
    the next call with the same data, classes and seed (every head of a run asks the same on each split)."""
    stored = _from_cache(query, classes)
    if stored is not None:
        return stored.astype(np.float32), "encoder logits (cache)"
    key = _key(fit, query, classes, seed, epochs)
    if key not in _TRAINED:
        _TRAINED[key] = _train_and_score(fit, query, classes, seed, epochs)
        while len(_TRAINED) > _KEEP:
            _TRAINED.popitem(last=False)
    _TRAINED.move_to_end(key)
    return _TRAINED[key].copy(), "softmax classifier trained on the cache"


@keeps_torch_state
def _train_and_score(fit: FeatureSet, query: FeatureSet, classes, seed: int, epochs: int) -> np.ndarray:
    mean, std = fit.embeddings.mean(0), fit.embeddings.std(0) + 1e-6
    x = torch.from_numpy(((fit.embeddings - mean) / std).astype(np.float32))
    y = torch.from_numpy(label_positions(fit.labels, classes))
    torch.manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], len(classes))
    train_minibatches([{"params": list(layer.parameters()), "weight_decay": 1e-3}],
                      lambda batch: F.cross_entropy(layer(x[batch]), y[batch]), len(x), epochs, 256, 3e-3, seed)
    with torch.no_grad():
        q = torch.from_numpy(((query.embeddings - mean) / std).astype(np.float32))
        return layer(q).numpy()

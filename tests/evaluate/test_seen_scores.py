from __future__ import annotations

import numpy as np
import pandas as pd

from zsar.evaluate import seen_scores
from zsar.features.reader import FeatureSet


def _set(x: np.ndarray, labels: np.ndarray) -> FeatureSet:
    meta = pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(x))], "label": labels})
    return FeatureSet(embeddings=x, labels=labels, metadata=meta, rows=np.arange(len(x)))


def test_trained_seen_classifier_is_reused_for_the_same_question(monkeypatch):
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 4
    fit = _set(rng.normal(size=(40, 6)).astype(np.float32) + labels[:, None], labels)
    query = _set(rng.normal(size=(10, 6)).astype(np.float32), np.zeros(10, np.int64))
    calls = []
    real = seen_scores._train_and_score
    monkeypatch.setattr(seen_scores, "_train_and_score", lambda *a: calls.append(a) or real(*a))
    first, source = seen_scores.seen_class_logits(fit, query, [0, 1, 2, 3], seed=1, epochs=5)
    again, _ = seen_scores.seen_class_logits(_set(fit.embeddings.copy(), labels), query, [0, 1, 2, 3], seed=1,
                                             epochs=5)
    assert len(calls) == 1 and source == "softmax classifier trained on the cache"
    np.testing.assert_array_equal(first, again)
    first[0, 0] = 1e9  # callers get copies
    assert seen_scores.seen_class_logits(fit, query, [0, 1, 2, 3], seed=1, epochs=5)[0][0, 0] != 1e9
    other, _ = seen_scores.seen_class_logits(fit, query, [0, 1, 2, 3], seed=2, epochs=5)
    assert len(calls) == 2  # another seed is another classifier
    np.testing.assert_array_equal(other, real(fit, query, [0, 1, 2, 3], 2, 5))  # the kept one equals a fresh one

from __future__ import annotations

import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.scoring import PrototypeIndex, faiss_available, numpy_topk


def _data(c=60, d=32, n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(c, d)).astype(np.float32)


@pytest.mark.parametrize("c", [5, 60, 120])
def test_numpy_topk_matches_naive_cosine(c):
    q, p = _data(c)
    scores, idx = numpy_topk(q, p, 5)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    pn = p / np.linalg.norm(p, axis=1, keepdims=True)
    naive = qn @ pn.T
    np.testing.assert_array_equal(idx, np.argsort(-naive, axis=1)[:, :5])
    np.testing.assert_allclose(scores, np.sort(naive, axis=1)[:, ::-1][:, :5], atol=1e-6)


@pytest.mark.skipif(not faiss_available(), reason="faiss not installed")
@pytest.mark.parametrize("c", [60, 120, 1000])
def test_faiss_equals_numpy(c):
    q, p = _data(c)
    fast = PrototypeIndex(p, backend="faiss")
    assert fast.backend == "faiss-cpu"
    f_scores, f_idx = fast.search(q, 5)
    n_scores, n_idx = PrototypeIndex(p, backend="numpy").search(q, 5)
    np.testing.assert_array_equal(f_idx, n_idx)
    np.testing.assert_allclose(f_scores, n_scores, atol=1e-5)


def test_similarities_is_the_full_cosine_matrix():
    q, p = _data(12)
    sims = PrototypeIndex(p).similarities(q)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    pn = p / np.linalg.norm(p, axis=1, keepdims=True)
    np.testing.assert_allclose(sims, qn @ pn.T, atol=1e-5)


def test_bad_inputs():
    q, p = _data(4)
    p[1] = 0
    with pytest.raises(ZsarError, match="zero length"):
        PrototypeIndex(p)
    with pytest.raises(ZsarError, match="32-d"):
        PrototypeIndex(_data(4)[1]).search(np.ones((2, 8), dtype=np.float32), 2)
    with pytest.raises(ZsarError, match="backend"):
        PrototypeIndex(_data(4)[1], backend="annoy")

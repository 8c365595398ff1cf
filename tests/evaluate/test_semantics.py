from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zsar.class_lists import make_split
from zsar.errors import ZsarError
from zsar.evaluate.semantics import class_similarity, semantics_rows, unseen_seen_similarity, write_similarity
from zsar.features.prototypes import ClassPrototypes


@pytest.fixture()
def prototypes():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(6, 5)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return ClassPrototypes(np.arange(6), [f"c{i}" for i in range(6)], vectors, "prompts", [["t"]] * 6, "m")


def test_unseen_seen_similarity_against_a_naive_loop(prototypes):
    split = make_split("s", 6, [1, 4])
    entry = unseen_seen_similarity(prototypes, split, nearest=2)
    v = prototypes.vectors
    for row, u in zip(entry["nearest"], [1, 4]):
        cosines = {f"c{s}": float(np.dot(v[u], v[s])) for s in split.seen}
        best = sorted(cosines, key=lambda name: -cosines[name])[:2]
        assert [name for name, _ in row["nearest_seen"]] == best
        assert [sim for _, sim in row["nearest_seen"]] == pytest.approx([cosines[b] for b in best], abs=1e-4)
    assert np.asarray(entry["matrix"]).shape == (2, 4) and entry["seen"] == ["c0", "c2", "c3", "c5"]
    rows = semantics_rows({"s": entry})
    assert rows[0][:2] == ["s", "c1"] and rows[0][2].count("(") == 2


def test_similarity_export(prototypes, tmp_path):
    matrix = class_similarity(prototypes)
    np.testing.assert_allclose(matrix, prototypes.vectors @ prototypes.vectors.T, atol=1e-6)
    table = pd.read_csv(write_similarity(prototypes, tmp_path / "s.csv"), index_col="class")
    assert list(table.index) == prototypes.class_names == list(table.columns)
    np.testing.assert_allclose(table.to_numpy(), matrix, atol=1e-6)
    np.testing.assert_array_equal(np.load(write_similarity(prototypes, tmp_path / "s.npy")), matrix)
    with pytest.raises(ZsarError, match=".csv or .npy"):
        write_similarity(prototypes, tmp_path / "s.txt")

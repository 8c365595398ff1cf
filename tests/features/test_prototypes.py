from __future__ import annotations

import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.features import ClassPrototypes, load_prototypes, save_prototypes


def protos(variant="name") -> ClassPrototypes:
    v = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return ClassPrototypes([0, 1, 2], ["a", "b", "c"], v, variant, [["a"], ["b"], ["c", "cc"]], "model")


def test_round_trip_and_variants(tmp_path):
    path = save_prototypes(tmp_path / "p.h5", [protos("name"), protos("prompts")])
    back = load_prototypes(path, "prompts")
    np.testing.assert_array_equal(back.vectors, protos().vectors)
    assert back.texts == [["a"], ["b"], ["c", "cc"]] and back.text_model == "model"
    with pytest.raises(ZsarError, match="name one"):
        load_prototypes(path)
    with pytest.raises(ZsarError, match="no variant"):
        load_prototypes(path, "parts")


def test_subset_orders_and_rejects_missing_classes():
    p = protos()
    sub = p.subset([2, 0])
    assert sub.class_names == ["c", "a"]
    np.testing.assert_array_equal(sub.vectors, p.vectors[[2, 0]])
    with pytest.raises(ZsarError, match=r"no text prototype for classes \[7\]"):
        p.subset([0, 7])


def test_inconsistent_prototypes_are_rejected():
    with pytest.raises(ZsarError, match="do not agree"):
        ClassPrototypes([0, 1], ["a"], np.ones((2, 3)), "name", [["a"], ["b"]], "m")

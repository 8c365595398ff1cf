"""Bring-your-own-features import: what it is given is checked, and every error names the input file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zsar.errors import ZsarError
from zsar.features import CacheHeader, FeatureCache, write_cache
from zsar.features.importer import import_arrays


@pytest.fixture()
def inputs(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "names.txt").write_text("walk\nrun\nsit\n")
    return tmp_path, x


def meta(tmp_path, labels, splits):
    table = pd.DataFrame({"sample_id": [f"s{i}" for i in range(6)], "label": labels, "split": splits})
    table.to_csv(tmp_path / "meta.csv", index=False)
    return tmp_path / "meta.csv"


def run(tmp_path, metadata, **kw):
    return import_arrays(tmp_path / "x.npy", metadata, tmp_path / "names.txt", tmp_path / "c.h5", "d", "e", **kw)


def test_class_names_in_the_label_column_are_mapped(inputs):
    tmp_path, x = inputs
    path = run(tmp_path, meta(tmp_path, ["walk", "run", "sit", "walk", 1, "2"],
                              ["train", "Train", "TEST", "validation", "dev", "test"]))
    cache = FeatureCache(path)
    train = cache.load("train")
    assert train.labels.tolist() == [0, 1] and cache.load("val").labels.tolist() == [0, 1]
    assert cache.metadata["class_name"].tolist() == ["walk", "run", "sit", "walk", "run", "sit"]
    np.testing.assert_array_equal(cache.load("test").embeddings, x[[2, 5]])


@pytest.mark.parametrize("labels, splits, message", [
    (["walk", "jump", 0, 1, 2, 0], ["train"] * 6, r"labels \['jump'\] are neither class indices nor names"),
    ([0, 1, 2, 0, 1, 2], ["train", "tst", "test", "train", "Trn", "test"], r"split values \['Trn', 'tst'\]"),
    ([0, 1, 2, 0, 1, 7], ["train"] * 6, r"labels \[7\] are outside"),
    ([0, 1, 2, 0, 1, 1.5], ["train"] * 6, r"integer class indices"),
])
def test_bad_metadata_names_the_metadata_file(inputs, labels, splits, message):
    tmp_path, _ = inputs
    path = meta(tmp_path, labels, splits)
    with pytest.raises(ZsarError, match=message) as info:
        run(tmp_path, path)
    assert str(path) in str(info.value)
    assert not (tmp_path / "c.h5").exists()


def test_trained_classes_outside_the_class_list_and_unused_classes(inputs, caplog):
    tmp_path, _ = inputs
    path = meta(tmp_path, [0, 1, 0, 1, 0, 1], ["train"] * 3 + ["test"] * 3)
    with pytest.raises(ZsarError, match=r"--trained-classes \[5\] are outside the 3 classes") as info:
        run(tmp_path, path, trained_classes=[0, 5])
    assert "names.txt" in str(info.value)
    with caplog.at_level("WARNING"):
        run(tmp_path, path)
    assert "no sample is labelled with 1 of the 3 classes" in caplog.text and "sit" in caplog.text


def test_write_cache_fills_class_name_and_source(tmp_path):
    table = pd.DataFrame({"sample_id": ["a", "b"], "label": [0, 1], "split": ["train", "test"]})
    header = CacheHeader(dataset="mine", modality="video", encoder="x", embedding_dim=3, class_names=("walk", "run"))
    write_cache(tmp_path / "mine.h5", header, table, np.ones((2, 3), dtype=np.float32))
    cache = FeatureCache(tmp_path / "mine.h5")
    assert cache.metadata["class_name"].tolist() == ["walk", "run"] and cache.load(split="train", classes=[0]).labels \
        .tolist() == [0]

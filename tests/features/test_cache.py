from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from zsar.errors import ZsarError
from zsar.features import CacheHeader, CacheWriter, FeatureCache, cache_summary, format_summary, write_cache
from zsar.features.schema import READABLE_SCHEMA_VERSIONS
from zsar.features.writer import partial_path

CLASSES = ("a", "b", "c", "d")


def header(**kw) -> CacheHeader:
    base = dict(dataset="toy", modality="skeleton", encoder="enc", embedding_dim=8, class_names=CLASSES,
                encoder_config={"x": 1})
    return CacheHeader(**{**base, **kw})


def table(n: int = 20) -> pd.DataFrame:
    labels = np.arange(n) % 4
    splits = ["train"] * (n // 2) + ["test"] * (n - n // 2)
    return pd.DataFrame({"sample_id": [f"s{i:03d}" for i in range(n)], "label": labels,
                         "class_name": [CLASSES[c] for c in labels], "split": splits,
                         "source": "gen", "subject": np.arange(n) // 4})


def data(n: int = 20, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_round_trip_with_logits_temporal_and_extra_columns(tmp_path):
    x, lg = data(), data(20, 3, 1)
    tmp = data(20 * 5 * 8, 1, 2).reshape(20, 5, 8)
    path = write_cache(tmp_path / "c.h5", header(logit_classes=(0, 1, 2), temporal_length=5), table(), x, lg, tmp,
                       batch_rows=7)
    cache = FeatureCache(path)
    full = cache.load(with_temporal=True)
    np.testing.assert_array_equal(full.embeddings, x)
    np.testing.assert_array_equal(full.logits, lg)
    np.testing.assert_array_equal(full.temporal, tmp)
    assert full.metadata["subject"].tolist() == table()["subject"].tolist()
    assert (tmp_path / "c.parquet").exists()
    assert pd.read_parquet(tmp_path / "c.parquet")["sample_id"].tolist() == table()["sample_id"].tolist()
    assert len(cache.fingerprint) == 64
    assert not partial_path(path).exists()


def test_select_by_split_and_classes_reads_only_those_rows(tmp_path):
    x = data()
    cache = FeatureCache(write_cache(tmp_path / "c.h5", header(), table(), x))
    part = cache.load(split="test", classes=[1, 3])
    expected = [i for i in range(10, 20) if i % 4 in (1, 3)]
    assert part.rows.tolist() == expected
    np.testing.assert_array_equal(part.embeddings, x[expected])
    assert set(part.labels.tolist()) == {1, 3}
    with pytest.raises(ZsarError, match="no samples in split"):
        cache.load(split="validation")


def test_float16_storage(tmp_path):
    x = data()
    cache = FeatureCache(write_cache(tmp_path / "c.h5", header(dtype="float16"), table(), x))
    loaded = cache.load()
    assert loaded.embeddings.dtype == np.float16  # the stored dtype until the caller asks for another
    np.testing.assert_array_equal(loaded.embeddings, x.astype(np.float16))
    as_float = cache.load(dtype=np.float32)
    assert as_float.embeddings.dtype == np.float32
    np.testing.assert_array_equal(as_float.embeddings, x.astype(np.float16).astype(np.float32))


def test_failed_rows_are_kept_with_reason_and_excluded_from_loads(tmp_path):
    meta = table()
    meta["status"] = ["failed" if i == 3 else "ok" for i in range(20)]
    meta["error"] = ["corrupt file" if i == 3 else "" for i in range(20)]
    cache = FeatureCache(write_cache(tmp_path / "c.h5", header(), meta, data()))
    assert cache.metadata.loc[3, "status"] == "failed" and cache.metadata.loc[3, "error"] == "corrupt file"
    assert 3 not in cache.load().rows
    summary = cache_summary(cache.path)
    assert summary["failed"] == 1 and summary["failures"][0]["sample_id"] == "s003"
    assert "s003: corrupt file" in format_summary(summary)


def test_resume_after_interrupted_write_equals_uninterrupted(tmp_path):
    x = data()
    whole = FeatureCache(write_cache(tmp_path / "whole.h5", header(), table(), x))
    path = tmp_path / "resumed.h5"
    writer = CacheWriter(path, header(), table())
    writer.write(range(0, 7), x[:7])
    writer.write([12, 9], x[[12, 9]])
    writer.close()  # the run dies here
    assert not path.exists() and partial_path(path).exists()
    with CacheWriter(path, header(), table()) as again:
        pending = again.pending_rows()
        assert pending.tolist() == [r for r in range(20) if r not in {0, 1, 2, 3, 4, 5, 6, 9, 12}]
        again.write(pending, x[pending])
        again.finalize()
    resumed = FeatureCache(path)
    assert resumed.fingerprint == whole.fingerprint
    np.testing.assert_array_equal(resumed.load().embeddings, x)


def test_resume_refuses_another_encoder_config(tmp_path):
    path = tmp_path / "c.h5"
    writer = CacheWriter(path, header(), table())
    writer.write([0], data()[:1])
    writer.close()
    with pytest.raises(ZsarError, match="refusing to resume.*config_hash"):
        CacheWriter(path, header(encoder_config={"x": 2}), table())
    with pytest.raises(ZsarError, match="samples differ"):
        CacheWriter(path, header(), table(21))


def test_finished_cache_is_reused_and_protected(tmp_path):
    path = write_cache(tmp_path / "c.h5", header(), table(), data())
    before = FeatureCache(path).fingerprint
    writer = CacheWriter(path, header(), table())
    assert writer.finished and writer.pending_rows().size == 0
    with pytest.raises(ZsarError, match="another encoder or config"):
        CacheWriter(path, header(encoder="other"), table())
    # overwrite: the old file stays readable until the new one is finalized
    replacing = CacheWriter(path, header(encoder="other"), table(), overwrite=True)
    replacing.write(range(20), data(seed=5))
    assert FeatureCache(path).fingerprint == before
    replacing.finalize()
    assert FeatureCache(path).header.encoder == "other"


def test_finalize_refuses_missing_rows(tmp_path):
    writer = CacheWriter(tmp_path / "c.h5", header(), table())
    writer.write(range(10), data()[:10])
    with pytest.raises(ZsarError, match="10 rows were never written"):
        writer.finalize()
    writer.close()


def test_writes_reject_nan_and_wrong_shapes(tmp_path):
    writer = CacheWriter(tmp_path / "c.h5", header(), table())
    bad = data()[:2].copy()
    bad[1, 0] = np.nan
    with pytest.raises(ZsarError, match=r"NaN or inf \(as float32\) for samples \[.s001.\]"):
        writer.write([0, 1], bad)
    with pytest.raises(ZsarError, match="expected"):
        writer.write([0, 1], data()[:2, :4])
    with pytest.raises(ZsarError, match="row indices"):
        writer.write([25], data()[:1])
    writer.close()


def test_invalid_metadata_is_reported(tmp_path):
    with pytest.raises(ZsarError, match="missing columns"):
        CacheWriter(tmp_path / "c.h5", header(), table().drop(columns=["split"]))
    dup = table()
    dup.loc[1, "sample_id"] = "s000"
    with pytest.raises(ZsarError, match="repeat"):
        CacheWriter(tmp_path / "c.h5", header(), dup)
    out_of_range = table()
    out_of_range.loc[0, "label"] = 9
    with pytest.raises(ZsarError, match="outside"):
        CacheWriter(tmp_path / "c.h5", header(), out_of_range)


def test_reading_rejects_bad_files(tmp_path):
    with pytest.raises(ZsarError, match="not found"):
        FeatureCache(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(ZsarError, match="not a readable HDF5"):
        FeatureCache(junk)
    path = write_cache(tmp_path / "c.h5", header(), table(), data())
    with h5py.File(path, "r+") as h5:
        h5.attrs["zsar_schema_version"] = max(READABLE_SCHEMA_VERSIONS) + 1
    with pytest.raises(ZsarError, match=f"schema version {max(READABLE_SCHEMA_VERSIONS) + 1}"):
        FeatureCache(path)


def test_nan_in_stored_embeddings_is_an_error_on_load(tmp_path):
    path = write_cache(tmp_path / "c.h5", header(), table(), data())
    with h5py.File(path, "r+") as h5:
        h5["embeddings"][4, 2] = np.nan
    with pytest.raises(ZsarError, match="s004"):
        FeatureCache(path).load()


def test_unreadable_partial_file_is_set_aside_and_the_run_starts_over(tmp_path, caplog):
    path = tmp_path / "c.h5"
    partial_path(path).write_bytes(b"\x00" * 100)
    with caplog.at_level("WARNING"):
        write_cache(path, header(), table(), data())
    aside = list(tmp_path.glob("c.h5.partial.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"\x00" * 100
    assert aside[0].name in caplog.text and "set aside" in caplog.text
    np.testing.assert_array_equal(FeatureCache(path).load().embeddings, data())

"""Per-frame stream caches: layout without padding, selection by split and class, failed streams, resume."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from zsar.datasets.streams import Stream, StreamSet
from zsar.errors import ZsarError
from zsar.features.info import cache_summary, format_summary
from zsar.features.reader import FeatureCache
from zsar.features.schema import FRAME_SCHEMA_VERSION, SCHEMA_VERSION, CacheHeader
from zsar.features.streams import (
    StreamCache,
    StreamCacheWriter,
    StreamRows,
    frames_entry,
    write_stream_set,
)
from zsar.features.writer import write_cache

CLASSES = ["walk", "sit", "wave", "background"]


def _streams(seed: int = 0) -> StreamSet:
    rng = np.random.default_rng(seed)
    streams = []
    for k, (split, labels) in enumerate([
        ("train", [0] * 5 + [3] * 2 + [1] * 4),
        ("train", [1] * 3 + [2] * 6),
        ("val", [0] * 7),
        ("test", [2] * 2 + [0] * 3 + [1] * 5 + [3]),
    ]):
        streams.append(Stream(f"s{k}", split, np.array(labels), rng.normal(size=(len(labels), 6)).astype(np.float32),
                              source=f"video{k}.npy"))
    return StreamSet("toy", CLASSES, streams, background=(3,), frame_rate=15.0)


def _header(**frames) -> CacheHeader:
    return CacheHeader(dataset="toy", modality="other", encoder="given", embedding_dim=6, class_names=tuple(CLASSES),
                       frames=frames_entry(**({"background": (3,)} | frames)))


def test_round_trip_keeps_every_stream_unpadded(tmp_path):
    data = _streams()
    path = write_stream_set(tmp_path / "s.h5", data, encoder="given", content_digest="x")
    cache = StreamCache(path)
    assert cache.cache.schema_version == FRAME_SCHEMA_VERSION
    assert cache.cache.num_rows == sum(len(s) for s in data.streams)  # no padding
    assert cache.background == (3,)
    assert cache.table["frames"].tolist() == [len(s) for s in data.streams]
    for got, want in zip(cache.load_streams(), data.streams, strict=True):
        assert (got.stream_id, got.split) == (want.stream_id, want.split)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.features, want.features)


def test_selection_by_split_and_held_out_class_reads_only_those_streams(tmp_path):
    cache = StreamCache(write_stream_set(tmp_path / "s.h5", _streams(), encoder="given", content_digest="x"))
    assert cache.select_streams("train")["stream_id"].tolist() == ["s0", "s1"]
    assert cache.select_streams(["train", "val"], without_classes=[2])["stream_id"].tolist() == ["s0", "s2"]
    picked = cache.load_streams(cache.select_streams("test"))
    assert [s.stream_id for s in picked] == ["s3"]
    with pytest.raises(ZsarError, match="no streams in split"):
        cache.select_streams("dev")


def test_failed_stream_is_kept_with_its_reason_and_left_out(tmp_path):
    data = _streams()
    rows = [StreamRows(s.stream_id, s.split, s.labels, s.source) for s in data.streams]
    with StreamCacheWriter(tmp_path / "f.h5", _header(), rows, content_digest="x") as writer:
        for index in writer.pending_streams():
            if index == 1:
                writer.fail_stream(index, "decoder gave up")
            else:
                writer.write_stream(index, data.streams[index].features)
        path = writer.finalize()
    cache = StreamCache(path)
    assert cache.table["failed"].tolist() == [False, True, False, False]
    assert cache.table["error"].iloc[1] == "decoder gave up"
    assert "s1" not in cache.select_streams()["stream_id"].tolist()
    with pytest.raises(ZsarError, match="failed at extraction"):
        cache.cache.load(rows=np.array([cache.table["first_row"].iloc[1]]))


def test_killed_write_resumes_with_only_the_missing_streams(tmp_path):
    data = _streams()
    rows = [StreamRows(s.stream_id, s.split, s.labels, s.source) for s in data.streams]
    path = tmp_path / "r.h5"
    writer = StreamCacheWriter(path, _header(), rows, content_digest="x")
    writer.write_stream(0, data.streams[0].features)
    writer.write_stream(2, data.streams[2].features)
    writer.close()  # a crash: no finalize
    with StreamCacheWriter(path, _header(), rows, content_digest="x") as again:
        assert again.pending_streams() == [1, 3]
        for index in again.pending_streams():
            again.write_stream(index, data.streams[index].features)
        again.finalize()
    for got, want in zip(StreamCache(path).load_streams(), data.streams, strict=True):
        np.testing.assert_array_equal(got.features, want.features)


def test_a_stream_torn_by_a_crash_is_computed_again(tmp_path):
    data = _streams()
    rows = [StreamRows(s.stream_id, s.split, s.labels, s.source) for s in data.streams]
    path = tmp_path / "t.h5"
    writer = StreamCacheWriter(path, _header(), rows, content_digest="x")
    writer.write_stream(1, data.streams[1].features)
    writer.close()
    with h5py.File(str(path) + ".partial", "r+") as h5:  # the data changed after it was marked done
        h5["embeddings"][writer.offsets[1] + 2] = 0.0
    with StreamCacheWriter(path, _header(), rows, content_digest="x") as again:
        assert again.pending_streams() == [0, 1, 2, 3]


def test_write_checks_the_stream_length(tmp_path):
    data = _streams()
    rows = [StreamRows(s.stream_id, s.split, s.labels, s.source) for s in data.streams]
    with StreamCacheWriter(tmp_path / "w.h5", _header(), rows, content_digest="x") as writer:
        with pytest.raises(ZsarError, match="features of shape"):
            writer.write_stream(0, np.zeros((3, 6), np.float32))


def test_header_frames_entry_is_checked():
    with pytest.raises(ZsarError, match="outside"):
        _header(background=(7,))
    with pytest.raises(ZsarError, match="keys"):
        CacheHeader(dataset="toy", modality="other", encoder="e", embedding_dim=2, class_names=("a",),
                    frames={"background": []})


def test_clip_caches_stay_version_2_and_are_refused_as_streams(tmp_path):
    import pandas as pd

    header = CacheHeader(dataset="toy", modality="other", encoder="e", embedding_dim=2, class_names=("a", "b"))
    meta = pd.DataFrame({"sample_id": ["x", "y"], "label": [0, 1], "split": ["train", "test"]})
    path = write_cache(tmp_path / "c.h5", header, meta, np.zeros((2, 2), np.float32), content_digest="x")
    assert FeatureCache(path).schema_version == SCHEMA_VERSION
    with pytest.raises(ZsarError, match="clip cache"):
        StreamCache(path)


def test_frame_rows_must_be_consecutive_and_in_order(tmp_path):
    import pandas as pd

    from zsar.features.schema import check_frame_rows

    check_frame_rows(pd.DataFrame({"stream_id": ["a", "a", "b"], "frame": [0, 1, 0]}))
    with pytest.raises(ZsarError, match="not consecutive"):
        check_frame_rows(pd.DataFrame({"stream_id": ["a", "b", "a"], "frame": [0, 0, 1]}))
    with pytest.raises(ZsarError, match="frame 2 is in row 1"):
        check_frame_rows(pd.DataFrame({"stream_id": ["a", "a"], "frame": [0, 2]}))
    with pytest.raises(ZsarError, match="missing columns"):
        check_frame_rows(pd.DataFrame({"stream_id": ["a"]}))
    rows = [StreamRows("a", "train", np.array([0, 0])), StreamRows("a", "test", np.array([2]))]
    with pytest.raises(ZsarError, match="repeat"):
        StreamCacheWriter(tmp_path / "bad.h5", _header(), rows, content_digest="x")
    assert not (tmp_path / "bad.h5.partial").exists()


def test_cache_info_shows_the_streams(tmp_path):
    path = write_stream_set(tmp_path / "s.h5", _streams(), encoder="given", content_digest="x")
    summary = cache_summary(path)
    assert summary["streams"]["count"] == 4
    assert summary["streams"]["frames"] == {"test": 11, "train": 20, "val": 7}
    assert summary["streams"]["background"] == ["background"]
    text = format_summary(summary)
    assert "streams      4" in text and "background" in text


def test_a_segmentation_release_imports_as_a_stream_cache(tmp_path):
    from zsar.features.streams import import_segmentation_release

    root = tmp_path / "mini"
    for folder in ("features", "groundTruth", "splits"):
        (root / folder).mkdir(parents=True)
    (root / "mapping.txt").write_text("0 take\n1 pour\n2 background\n")
    rng = np.random.default_rng(0)
    names = {"v1": ["take"] * 4 + ["background"] * 2 + ["pour"] * 3, "v2": ["pour"] * 5 + ["take"] * 2,
             "v3": ["take"] * 6}
    for stem, labels in names.items():
        np.save(root / "features" / f"{stem}.npy", rng.normal(size=(5, len(labels))).astype(np.float32))
        (root / "groundTruth" / f"{stem}.txt").write_text("\n".join(labels) + "\n")
    (root / "splits" / "train.split1.bundle").write_text("v1.txt\nv2.txt\n")
    (root / "splits" / "test.split1.bundle").write_text("v3.txt\n")
    cache = StreamCache(import_segmentation_release(root, tmp_path / "mini.h5", validation_fraction=0.5, seed=0))
    assert cache.background == (2,)
    assert sorted(cache.table["split"]) == ["test", "train", "val"]
    for stream in cache.load_streams():
        raw = np.load(root / "features" / f"{stream.stream_id}.npy")
        np.testing.assert_array_equal(stream.features, raw.T)
        assert [CLASSES_MINI[c] for c in stream.labels] == names[stream.stream_id]


CLASSES_MINI = ["take", "pour", "background"]

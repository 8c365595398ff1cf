"""Sliding-window per-frame features: each row equals the encoder run on its window; resume gives the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.datasets.stream_builder import StreamRecipe, build_streams
from zsar.datasets.synthetic import SyntheticConfig, synthetic_source
from zsar.errors import ZsarError
from zsar.extract.skeleton_stats import SkeletonStatsEncoder
from zsar.extract.stream_windows import extract_stream_windows, stats_windows, window_bounds
from zsar.features.streams import StreamCache


@pytest.fixture(scope="module")
def streams():
    source = synthetic_source(SyntheticConfig(num_subjects=2, repetitions=1, test_subjects=1, min_frames=20,
                                              max_frames=30))
    return build_streams(source, StreamRecipe(actions_per_stream=(2, 3), background_gap=(2, 4), seed=3),
                         splits=("train", "test"))


def test_window_bounds_are_centred_and_cut_at_the_ends():
    centres, starts, ends = window_bounds(10, window=4, stride=3)
    assert centres.tolist() == [1, 4, 7, 9]
    assert starts.tolist() == [0, 2, 5, 6] and ends.tolist() == [4, 6, 9, 10]
    with pytest.raises(ZsarError, match="positive"):
        window_bounds(10, window=0, stride=1)


def test_every_row_is_the_encoder_on_its_window_with_the_centre_label(tmp_path, streams):
    path = extract_stream_windows(streams, tmp_path / "f.h5", stats_windows(), window=8, stride=4, progress=False)
    cache = StreamCache(path)
    assert cache.header.frames == {"background": list(streams.background), "frame_rate": None, "window": 8,
                                   "stride": 4}
    encoder = SkeletonStatsEncoder()
    loaded = {s.stream_id: s for s in cache.load_streams()}
    for stream in streams.streams[:3]:  # the naive loop: one window at a time
        centres, starts, ends = window_bounds(len(stream), 8, 4)
        got = loaded[stream.stream_id]
        assert len(got) == len(centres) == -(-len(stream) // 4)
        np.testing.assert_array_equal(got.labels, stream.labels[centres])
        for k in (0, len(centres) // 2, len(centres) - 1):
            np.testing.assert_allclose(got.features[k], encoder.encode(stream.keypoints[:, starts[k]:ends[k]]),
                                       rtol=0, atol=0)


def test_a_killed_extraction_resumes_to_identical_features(tmp_path, streams):
    whole = StreamCache(extract_stream_windows(streams, tmp_path / "a.h5", stats_windows(), window=6, stride=3,
                                               progress=False)).load_streams()
    calls = {"n": 0}
    plain = stats_windows()

    def dying(windows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed while encoding the third stream
        return plain.encode(windows)

    killer = stats_windows()
    killer.encode = dying
    with pytest.raises(KeyboardInterrupt):
        extract_stream_windows(streams, tmp_path / "b.h5", killer, window=6, stride=3, progress=False)
    assert (tmp_path / "b.h5.partial").exists()
    counted = {"n": 0}

    def counting(windows):
        counted["n"] += 1
        return plain.encode(windows)

    resumed = stats_windows()
    resumed.encode = counting
    again = StreamCache(extract_stream_windows(streams, tmp_path / "b.h5", resumed, window=6, stride=3,
                                               progress=False)).load_streams()
    assert counted["n"] == len(streams.streams) - 2  # the two finished streams were not computed again
    for a, b in zip(whole, again, strict=True):
        np.testing.assert_array_equal(a.features, b.features)


def test_a_window_longer_than_a_stream_fails_that_stream_by_name(tmp_path, streams):
    longest = max(len(s) for s in streams.streams)
    shortest = min(streams.streams, key=len)
    window = len(shortest) + 1
    assert window <= longest
    cache = StreamCache(extract_stream_windows(streams, tmp_path / "w.h5", stats_windows(), window=window, stride=5,
                                               progress=False))
    failed = cache.table[cache.table["failed"]]
    assert shortest.stream_id in failed["stream_id"].tolist()
    assert "fewer than the window" in failed["error"].iloc[0]


def test_a_graph_networks_temporal_output_gives_one_row_per_stride(tmp_path, ucla_small, tiny_stgcn_config):
    """Real NW-UCLA streams through a randomly initialised ST-GCN: each stream's rows equal the network run on the
    whole stream alone (the naive path), one row per temporal stride, labelled at the stride block's centre."""
    import torch

    from zsar.extract.gcn_input import whole_clip
    from zsar.extract.skeleton_encoder import SkeletonEncoder, make_spec
    from zsar.extract.stream_windows import network_temporal

    torch.manual_seed(0)
    encoder = SkeletonEncoder(make_spec(str(tiny_stgcn_config), "kinect_v1_20", 3, ucla_small.class_names,
                                        range(10)))
    encoder.init_weights()
    streams = build_streams(ucla_small, StreamRecipe(actions_per_stream=(2, 3), seed=0), splits=("test",))
    temporal = network_temporal(encoder)
    stride = temporal.stride
    assert stride == 2  # the tiny config halves time once
    cache = StreamCache(extract_stream_windows(streams, tmp_path / "g.h5", temporal, window=None, progress=False))
    assert cache.header.frames["window"] is None and cache.header.frames["stride"] == stride
    for got, stream in list(zip(cache.load_streams(), streams.streams, strict=True))[:2]:
        centres, _, _ = window_bounds(len(stream), 1, stride)
        np.testing.assert_array_equal(got.labels, stream.labels[centres])
        alone = encoder.features(whole_clip(encoder.prepare(stream.keypoints), encoder.spec.input)[None])[2][0]
        np.testing.assert_allclose(got.features, alone, rtol=1e-5, atol=1e-6)

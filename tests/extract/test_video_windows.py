"""Sliding-window per-frame features of real videos: each row equals the encoder on its clip; labels checked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_VIDEO_CONFIG

from zsar.errors import ZsarError

pytest.importorskip("mmaction")
pytest.importorskip("av")
from zsar.extract.video_decode import open_video, read_frames  # noqa: E402
from zsar.extract.video_encoder import VideoEncoder  # noqa: E402
from zsar.extract.video_input import clip_views  # noqa: E402
from zsar.extract.video_windows import VideoStream, extract_video_windows, window_frame_indices  # noqa: E402
from zsar.features.streams import StreamCache  # noqa: E402


def test_window_indices_are_centred_on_each_stride_block_and_cut_at_the_ends():
    idx = window_frame_indices(10, clip_len=3, frame_interval=2, stride=4)
    assert idx.tolist() == [[0, 1, 3], [3, 5, 7], [6, 8, 9]]  # centres 2, 6, 9 (the last cut at the end)
    with pytest.raises(ZsarError, match="positive"):
        window_frame_indices(10, 0, 1, 1)


def test_each_row_is_the_encoder_on_its_clip(tmp_path, shared):
    encoder = VideoEncoder.from_config(TINY_VIDEO_CONFIG, seed=0)
    path = shared / "datasets" / "videos" / "pyskl_ntu_sample.avi"
    frames = open_video(path).num_frames
    labels = np.r_[np.zeros(frames // 2, int), np.ones(frames - frames // 2, int)]
    videos = [VideoStream("ntu", "test", path, labels)]
    cache = StreamCache(extract_video_windows(videos, ["drink", "other"], tmp_path / "v.h5", encoder, stride=8,
                                              batch_rows=3, progress=False))
    inp = encoder.spec.input
    assert cache.header.frames["stride"] == 8 and cache.header.frames["window"] == inp.clip_len * inp.frame_interval
    assert cache.header.encoder_config["weights"] == "random" and cache.header.checkpoint_sha256 is None
    (stream,) = cache.load_streams()
    indices = window_frame_indices(frames, inp.clip_len, inp.frame_interval, 8)
    assert len(stream) == len(indices) == -(-frames // 8)
    np.testing.assert_array_equal(stream.labels, labels[np.minimum(np.arange(0, frames, 8) + 4, frames - 1)])
    spec = replace(inp, num_clips=1, crop="centre")
    for k in (0, len(indices) - 1):  # the naive path: one clip decoded and encoded alone
        clip = read_frames(path, lambda n, k=k: indices[k]).frames
        alone = encoder.features(clip_views(clip, spec)[None])[0][0]
        np.testing.assert_allclose(stream.features[k], alone, rtol=1e-4, atol=1e-5)


def test_unreadable_videos_and_wrong_label_lengths_are_named_before_any_work(tmp_path, shared):
    encoder = VideoEncoder.from_config(TINY_VIDEO_CONFIG, seed=0)
    path = shared / "datasets" / "videos" / "pyskl_ntu_sample.avi"
    with pytest.raises(ZsarError, match="frame labels for a video of"):
        extract_video_windows([VideoStream("a", "test", path, np.zeros(5, int))], ["x"], tmp_path / "l.h5", encoder,
                              stride=8, progress=False)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(ZsarError, match=str(junk.name)):
        extract_video_windows([VideoStream("j", "test", Path(junk))], ["x"], tmp_path / "j.h5", encoder, stride=8,
                              progress=False)

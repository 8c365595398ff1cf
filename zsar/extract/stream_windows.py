"""Per-frame features of skeleton streams: a clip encoder run over sliding windows, into a per-frame cache.

Output row k of a stream stands for input frames [k * stride, (k + 1) * stride); its window of `window` input
frames is centred on the middle of that block (cut at the stream's ends) and its label is the input label
there. With stride 1 every input frame gets a row. Any clip encoder plugs in as a `WindowEncoder`: the
training-free statistics encoder (`stats_windows`) or a trained graph network (`network_windows`, its clip
embedding per window). A stream shorter than the window is failed with that reason, not padded; every other
stream is written whole, so a killed extraction resumes at the first stream not yet written and gives the
same features (the windows are deterministic).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from zsar.datasets.streams import StreamSet
from zsar.errors import ZsarError
from zsar.extract.gcn_input import whole_clip
from zsar.extract.skeleton_encoder import SkeletonEncoder
from zsar.extract.skeleton_stats import SkeletonStatsEncoder
from zsar.features.schema import CacheHeader
from zsar.features.streams import StreamCacheWriter, StreamRows, frames_entry, row_centres

log = logging.getLogger(__name__)


@dataclass
class WindowEncoder:
    """`encode(list of keypoint windows [M, W, V, C]) -> [N, dim]`; `name` and `config` go into the header.
    An encoder of whole streams sets `encode_stream(keypoints [M, T, V, C]) -> [ceil(T / stride), dim]` instead
    (a network's own temporal output), with its `stride`."""

    name: str
    dim: int
    config: dict
    encode: Callable[[list[np.ndarray]], np.ndarray] | None = None
    trained_classes: tuple[int, ...] | None = None
    encode_stream: Callable[[np.ndarray], np.ndarray] | None = None
    stride: int | None = None


def window_bounds(length: int, window: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a stream of `length` input frames: each output row's centre frame and its window [start, end)."""
    if window < 1 or stride < 1:
        raise ZsarError(f"window and stride must be positive, not {window} and {stride}")
    centres = row_centres(length, stride)
    starts = np.clip(centres - window // 2, 0, max(length - window, 0))
    return centres, starts, np.minimum(starts + window, length)


def stats_windows(encoder: SkeletonStatsEncoder | None = None, channels: int = 3) -> WindowEncoder:
    encoder = encoder or SkeletonStatsEncoder()
    return WindowEncoder(encoder.name, encoder.dim(channels), encoder.config.to_dict(),
                         lambda windows: np.stack([encoder.encode(w) for w in windows]))


def network_windows(encoder: SkeletonEncoder, checkpoint_sha256: str | None = None) -> WindowEncoder:
    """A trained graph network's clip embedding of each window (its input pipeline resamples the window)."""
    def encode(windows: list[np.ndarray]) -> np.ndarray:
        clips = np.concatenate([encoder.test_clips(encoder.prepare(w)) for w in windows])
        return encoder.features(clips)[0]

    spec = encoder.spec
    return WindowEncoder(spec.name, encoder.embedding_dim, spec.to_dict() | {"checkpoint": checkpoint_sha256}, encode,
                         tuple(spec.trained_classes) if spec.trained_classes is not None else None)


def network_temporal(encoder: SkeletonEncoder, checkpoint_sha256: str | None = None) -> WindowEncoder:
    """A trained graph network run over each whole stream (no resampling): its per-time-step output (bodies and
    joints pooled) is the per-frame feature, one row per `stride` input frames (the network's temporal stride)."""
    if encoder.spec.family == "heatmap":
        raise ZsarError("per-time-step stream features need a graph network (ST-GCN family); a heatmap network "
                        "(PoseC3D) works through sliding windows (network_windows)")

    def encode_stream(keypoints: np.ndarray) -> np.ndarray:
        return encoder.features(whole_clip(encoder.prepare(keypoints), encoder.spec.input)[None])[2][0]

    probe = encoder.features(np.zeros((1, 1, encoder.spec.input.num_person, 64, encoder.layout.num_joints,
                                       encoder.spec.input.channels(encoder.spec.data_channels)), np.float32))[2]
    stride = 64 // probe.shape[1]
    spec = encoder.spec
    return WindowEncoder(spec.name + ":temporal", encoder.embedding_dim, spec.to_dict() | {
        "checkpoint": checkpoint_sha256, "features": "per-time-step output"}, None,
        tuple(spec.trained_classes) if spec.trained_classes is not None else None, encode_stream, stride)


def stream_content_digest(streams: StreamSet) -> str:
    """What the rows are computed from: every stream's keypoints and labels (mtimes of copies do not matter)."""
    digest = hashlib.sha256()
    for stream in streams.streams:
        digest.update(stream.stream_id.encode())
        for array in (stream.keypoints, stream.labels):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def extract_stream_windows(streams: StreamSet, cache_path: str | Path, encoder: WindowEncoder, window: int | None,
                           stride: int = 1, batch_windows: int = 256, overwrite: bool = False,
                           progress: bool = True) -> Path:
    """Per-frame features of every stream of `streams` (keypoints [M, T, V, C] each) into a per-frame cache: the
    encoder over sliding windows, or over whole streams (`encode_stream`: window None, the encoder's stride)."""
    missing = [s.stream_id for s in streams.streams if s.keypoints is None]
    if missing:
        raise ZsarError(f"streams without keypoints cannot be encoded: {missing[:5]}")
    if encoder.encode_stream is not None:
        window, stride = None, encoder.stride
    bounds = [window_bounds(len(s), window or 1, stride) for s in streams.streams]
    rows = [StreamRows(s.stream_id, s.split, s.labels[b[0]], s.source) for s, b in zip(streams.streams, bounds,
                                                                                      strict=True)]
    header = CacheHeader(
        dataset=streams.name, modality="skeleton", encoder=encoder.name, embedding_dim=encoder.dim,
        class_names=tuple(streams.class_names), dtype="float32", encoder_config=encoder.config,
        trained_classes=encoder.trained_classes, preprocessing=dict(streams.provenance),
        frames=frames_entry(streams.background, streams.frame_rate, window, stride))
    with StreamCacheWriter(cache_path, header, rows, overwrite=overwrite,
                           content_digest=stream_content_digest(streams)) as writer:
        todo = writer.pending_streams()
        bar = tqdm(total=len(todo), desc=f"per-frame {streams.name}", unit="stream", disable=not progress or not todo)
        for index in todo:
            stream = streams.streams[index]
            if window is not None and len(stream) < window:
                writer.fail_stream(index, f"stream has {len(stream)} frames, fewer than the window of {window}")
                log.warning("stream %s failed: shorter than the window", stream.stream_id)
            else:
                writer.write_stream(index, _stream_features(encoder, stream, bounds[index], batch_windows))
            bar.update(1)
        bar.close()
        return writer.finalize()


def _stream_features(encoder: WindowEncoder, stream, bounds, batch_windows: int) -> np.ndarray:
    if encoder.encode_stream is not None:
        features = encoder.encode_stream(stream.keypoints)
        if len(features) != len(bounds[0]):
            raise ZsarError(f"{encoder.name} gave {len(features)} time steps for {len(stream)} frames, expected "
                            f"{len(bounds[0])} (stride {encoder.stride})")
        return features
    _, starts, ends = bounds
    windows = [stream.keypoints[:, a:b] for a, b in zip(starts, ends, strict=True)]
    return np.concatenate([encoder.encode(windows[i:i + batch_windows]) for i in range(0, len(windows),
                                                                                      batch_windows)])

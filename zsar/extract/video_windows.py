"""Per-frame features of untrimmed videos: a video encoder's clip feature over sliding windows, into a per-frame cache.

Row k of a video stands for frames [k * stride, (k + 1) * stride); its clip has the encoder's `clip_len` frames,
`frame_interval` apart, centred on the middle of that block (indices cut at the video's ends), so the window is
clip_len x frame_interval frames. The clip is resized and cropped as the encoder's test pipeline says (one crop
for sliding windows: the centre). Frames are decoded per batch of rows, never the whole video at once. Per-frame
labels, when given, must have one label per video frame; a wrong length or an unreadable video is one error naming
the file before any work. The row's label is the label at its centre. Resumable by video, like every cache; a video
that breaks while decoding is a failed stream with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from zsar.errors import ZsarError
from zsar.extract.isolation import problem_text
from zsar.extract.video_decode import open_video, read_frames
from zsar.extract.video_encoder import VideoEncoder
from zsar.extract.video_input import clip_views
from zsar.features.fingerprint import file_sha256
from zsar.features.inputs import source_files_digest
from zsar.features.schema import CacheHeader
from zsar.features.streams import StreamCacheWriter, StreamRows, frames_entry, row_centres

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoStream:
    """One untrimmed video: its id, split, file and per-frame labels (None: unlabelled, every row -1)."""

    stream_id: str
    split: str
    path: Path
    labels: np.ndarray | None = None


def window_frame_indices(num_frames: int, clip_len: int, frame_interval: int, stride: int) -> np.ndarray:
    """[rows, clip_len] frame indices: one clip per `stride` frames, centred on the stride block's middle."""
    if min(num_frames, clip_len, frame_interval, stride) < 1:
        raise ZsarError(f"frames, clip_len, frame_interval and stride must be positive, not {num_frames}, "
                        f"{clip_len}, {frame_interval}, {stride}")
    centres = row_centres(num_frames, stride)
    offsets = np.arange(clip_len) * frame_interval - (clip_len * frame_interval) // 2
    return np.clip(centres[:, None] + offsets[None, :], 0, num_frames - 1)


def _rows(videos: list[VideoStream], stride: int) -> tuple[list[StreamRows], list[int]]:
    """Each video's rows (labels at the stride blocks' centres) and its frame count, read from the file's header."""
    rows, counts = [], []
    for video in videos:
        frames = open_video(video.path).num_frames
        centres = row_centres(frames, stride)
        if video.labels is not None and len(video.labels) != frames:
            raise ZsarError(f"stream {video.stream_id!r}: {len(video.labels)} frame labels for a video of {frames} "
                            "frames", video.path)
        labels = np.full(len(centres), -1) if video.labels is None else np.asarray(video.labels)[centres]
        rows.append(StreamRows(video.stream_id, video.split, labels, str(video.path)))
        counts.append(frames)
    return rows, counts


def _video_features(encoder: VideoEncoder, path: Path, indices: np.ndarray, batch: int) -> np.ndarray:
    spec = replace(encoder.spec.input, num_clips=1, crop="centre")
    out = []
    for start in range(0, len(indices), batch):
        chunk = indices[start:start + batch]
        frames = read_frames(path, lambda n, c=chunk: c.reshape(-1)).frames  # noqa: B023 - bound per chunk
        clips = frames.reshape((len(chunk), chunk.shape[1]) + frames.shape[1:])
        views = np.stack([clip_views(clip, spec) for clip in clips])  # [B, 1, 1, T, h, w, 3]
        out.append(encoder.features(views)[0])
    return np.concatenate(out)


def extract_video_windows(videos: list[VideoStream], class_names: list[str], cache_path: str | Path,
                          encoder: VideoEncoder, stride: int, background: tuple[int, ...] = (), dataset: str = "videos",
                          checkpoint: str | Path | None = None, batch_rows: int = 16, overwrite: bool = False,
                          progress: bool = True) -> Path:
    """Per-frame clip features of every video into a per-frame cache (see the module docstring). `checkpoint`: the
    weights file the encoder was loaded from (recorded with its sha256; None records random weights)."""
    if not videos:
        raise ZsarError("no videos to encode")
    if encoder.two_d:
        raise ZsarError(f"{encoder.spec.name} is a 2-D (segment) recognizer; sliding windows need a 3-D clip "
                        "encoder (SlowOnly, X3D, I3D, ...)")
    inp = encoder.spec.input
    rows, counts = _rows(videos, stride)
    header = CacheHeader(
        dataset=dataset, modality="video", encoder=encoder.spec.name, embedding_dim=encoder.embedding_dim,
        class_names=tuple(class_names), dtype="float32",
        encoder_config=encoder.spec.to_dict() | {"weights": "checkpoint" if checkpoint else "random"},
        checkpoint_sha256=file_sha256(checkpoint) if checkpoint else None,
        preprocessing={"clip": "sliding window", "crop": "centre"},
        frames=frames_entry(background, None, inp.clip_len * inp.frame_interval, stride))
    digest = source_files_digest([str(v.path) for v in videos])
    with StreamCacheWriter(cache_path, header, rows, overwrite=overwrite, content_digest=digest) as writer:
        todo = writer.pending_streams()
        bar = tqdm(total=len(todo), desc=f"per-frame {dataset}", unit="video", disable=not progress or not todo)
        for index in todo:
            video = videos[index]
            indices = window_frame_indices(counts[index], inp.clip_len, inp.frame_interval, stride)
            try:
                features = _video_features(encoder, video.path, indices, batch_rows)
            except (ZsarError, OSError, RuntimeError, ValueError) as exc:
                writer.fail_stream(index, problem_text(exc))
                log.warning("video %s failed: %s", video.path, problem_text(exc))
            else:
                writer.write_stream(index, features)
            bar.update(1)
        bar.close()
        return writer.finalize()

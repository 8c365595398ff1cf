"""Which frames of a video make up its clips: mmaction2's test-mode `SampleFrames`, as plain numpy.

`num_clips` clips of `clip_len` frames, `frame_interval` apart. A 3-D network's clips are spread evenly
from the first to the last possible start (one clip: centred); a 2-D network's (`clip_len == 1`) are the
centres of `num_clips` equal segments. Indices past the end wrap around ("loop", mmaction2's default), so a
video shorter than one clip is padded by repeating it and never gives an empty clip; "repeat_last" holds
the last frame instead.
"""

from __future__ import annotations

import numpy as np

from zsar.errors import ZsarError

OUT_OF_BOUND = ("loop", "repeat_last")


def clip_offsets(num_frames: int, clip_len: int, frame_interval: int, num_clips: int) -> np.ndarray:
    """First frame of each test clip."""
    if clip_len == 1:  # 2-D recognizers: segment centres
        avg_interval = num_frames / float(num_clips)
        return np.arange(num_clips) * avg_interval + avg_interval / 2.0
    span = (clip_len - 1) * frame_interval + 1
    max_offset = max(num_frames - span, 0)
    if num_clips == 1:
        return np.array([max_offset // 2])
    return np.round(np.arange(num_clips) * (max_offset / float(num_clips - 1)))


def sample_frame_indices(num_frames: int, clip_len: int, frame_interval: int = 1, num_clips: int = 1,
                         out_of_bound: str = "loop") -> np.ndarray:
    """Frame indices [num_clips, clip_len] into a video of `num_frames` frames."""
    if num_frames < 1:
        raise ZsarError("the video has no frames")
    if clip_len < 1 or frame_interval < 1 or num_clips < 1:
        raise ZsarError(f"clip_len, frame_interval and num_clips must be positive (got {clip_len}, "
                        f"{frame_interval}, {num_clips})")
    if out_of_bound not in OUT_OF_BOUND:
        raise ZsarError(f"out_of_bound must be one of {OUT_OF_BOUND}, not {out_of_bound!r}")
    offsets = clip_offsets(num_frames, clip_len, frame_interval, num_clips)
    inds = (offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval).astype(np.int64)
    if out_of_bound == "loop":
        return np.mod(inds, num_frames)
    inside = inds < num_frames
    last = np.max(inside * inds, axis=1, keepdims=True)
    return np.where(inside, inds, last)

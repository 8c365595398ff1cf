"""Heatmap-volume input for PoseC3D-style recognizers, made by mmaction2's own pose transforms.

PoseC3D turns 2-D keypoints into per-joint Gaussian heatmaps over time (GeneratePoseTarget) after
cropping around the person (PoseCompact) and resizing. Those steps are taken from the config's own
pipelines and run through mmaction2's transforms, so the input is exactly what the checkpoint expects.
mmaction2's random steps draw from numpy's global generator; each call here seeds it from zsar's
generator, so training stays reproducible.
"""

from __future__ import annotations

import copy

import numpy as np

from zsar.datasets.layouts import SkeletonLayout
from zsar.errors import ZsarError

_DROP = ("PackActionInputs",)


def pipeline_steps(steps: list[dict], clip_len: int | None, num_clips: int | None = None) -> list[dict]:
    """The config's steps without packing, with the clip length / clip count overridden."""
    out = []
    for step in steps:
        if step.get("type") in _DROP:
            continue
        step = copy.deepcopy(dict(step))
        if step.get("type") == "UniformSampleFrames":
            if clip_len is not None:
                step["clip_len"] = clip_len
            if num_clips is not None:
                step["num_clips"] = num_clips
        out.append(step)
    return out


def heatmap_sample(kp: np.ndarray, layout: SkeletonLayout, img_shape=None) -> dict:
    """The results dict mmaction2's pose transforms start from: 2-D keypoints, scores and the image size."""
    if layout.dims != 2:
        raise ZsarError(f"heatmap recognizers (PoseC3D) take 2-D keypoints; layout {layout.name!r} is 3-D")
    coords = kp[..., :2]
    score = kp[..., 2] if kp.shape[-1] >= 3 else np.ones(kp.shape[:3], np.float32)
    if img_shape is None:
        top = coords.reshape(-1, 2).max(axis=0)
        img_shape = (int(top[1]) + 1, int(top[0]) + 1)
    h, w = (int(v) for v in img_shape)
    return {"keypoint": coords.astype(np.float32), "keypoint_score": score.astype(np.float32),
            "img_shape": (h, w), "ori_shape": (h, w), "total_frames": kp.shape[1], "start_index": 0,
            "modality": "Pose", "label": -1}


class HeatmapPipeline:
    """Compose of mmaction2 transforms for one mode; returns [clips, C, T, H, W]."""

    def __init__(self, steps: list[dict]):
        from mmcv.transforms import Compose

        from zsar.extract.mmaction_compat import import_mmaction

        import_mmaction()
        from mmaction.registry import TRANSFORMS

        self.compose = Compose([TRANSFORMS.build(step) for step in steps])

    def __call__(self, sample: dict, rng: np.random.RandomState | None = None) -> np.ndarray:
        if rng is not None:
            np.random.seed(rng.randint(0, 2**31 - 1))
        out = self.compose(copy.deepcopy(sample))
        return np.ascontiguousarray(out["imgs"], dtype=np.float32)

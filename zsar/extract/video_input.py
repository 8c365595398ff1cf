"""What a video network is fed: the sampling and spatial steps of an mmaction2 test pipeline, as code.

`VideoInput` is read from a config's `val_pipeline` / `test_pipeline` (SampleFrames, Resize, CenterCrop /
ThreeCrop, FormatShape) and the model's data preprocessor (mean, std). `clip_views` turns decoded frames
into uint8 views [crops, clips, T, H, W, 3] exactly as those mmaction2 steps do (same resize arithmetic and
OpenCV bilinear interpolation, same crop offsets, crop-major order); the float conversion and
normalisation happen on the encoder's device, as mmaction2's data preprocessor does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from zsar.errors import ZsarError
from zsar.extract.video_sampling import sample_frame_indices

CROPS = ("centre", "three", "none")
FORMATS = ("NCTHW", "NCHW")


@dataclass(frozen=True)
class VideoInput:
    clip_len: int = 8
    frame_interval: int = 8
    num_clips: int = 1
    out_of_bound: str = "loop"
    short_side: int | None = 256  # Resize(scale=(-1, s)); None: no keep-ratio resize
    fixed_size: tuple[int, int] | None = None  # Resize(scale=(w, h), keep_ratio=False), applied after short_side
    crop: str = "centre"
    crop_size: int = 224
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    input_format: str = "NCTHW"

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise ZsarError(f"crop must be one of {CROPS}, not {self.crop!r}")
        if self.input_format not in FORMATS:
            raise ZsarError(f"zsar feeds {FORMATS} networks, not {self.input_format!r}")

    @property
    def num_crops(self) -> int:
        return 3 if self.crop == "three" else 1

    def frame_indices(self, num_frames: int) -> np.ndarray:
        return sample_frame_indices(num_frames, self.clip_len, self.frame_interval, self.num_clips,
                                    self.out_of_bound)

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("mean", "std", "fixed_size"):
            data[key] = None if data[key] is None else list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> VideoInput:
        data = dict(data)
        for key in ("mean", "std", "fixed_size"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def _step(steps, kind: str) -> dict | None:
    found = [s for s in steps if s.get("type") == kind]
    return dict(found[0]) if found else None


def input_from_config(cfg, pipeline: str = "auto", **overrides) -> VideoInput:
    """The input a config tests with. `pipeline`: "val" (usually one centre view), "test" (usually
    several clips x three crops) or "auto" (val when the config has one, else test)."""
    names = {"auto": ("val_pipeline", "test_pipeline"), "val": ("val_pipeline",), "test": ("test_pipeline",)}
    if pipeline not in names:
        raise ZsarError(f"pipeline must be auto, val or test, not {pipeline!r}")
    steps = next((cfg.get(n) for n in names[pipeline] if cfg.get(n)), None)
    if not steps:
        raise ZsarError(f"the config has no {' / '.join(names[pipeline])}")
    steps = [dict(s) for s in steps]
    sample = _step(steps, "SampleFrames")
    if sample is None:
        raise ZsarError("the config's pipeline has no SampleFrames step; zsar samples video frames with it")
    fields: dict = {"clip_len": int(sample["clip_len"]), "frame_interval": int(sample.get("frame_interval", 1)),
                    "num_clips": int(sample.get("num_clips", 1)),
                    "out_of_bound": sample.get("out_of_bound_opt", "loop"),
                    "short_side": None, "crop": "none"}
    for step in steps:
        kind = step.get("type")
        if kind == "Resize":
            scale = tuple(step["scale"])
            if step.get("keep_ratio", True) and -1 in scale:
                fields["short_side"] = int(max(scale))
            elif not step.get("keep_ratio", True):
                fields["fixed_size"] = (int(scale[0]), int(scale[1]))
            else:
                raise ZsarError(f"Resize(scale={scale}, keep_ratio=True) is not supported; use (-1, short side)")
        elif kind in ("CenterCrop", "ThreeCrop"):
            size = step["crop_size"]
            if isinstance(size, (tuple, list)):
                if size[0] != size[1]:
                    raise ZsarError(f"{kind} with a non-square crop {size} is not supported")
                size = size[0]
            fields["crop"], fields["crop_size"] = ("centre" if kind == "CenterCrop" else "three"), int(size)
        elif kind in ("TenCrop", "MultiScaleCrop", "RandomResizedCrop", "RandomCrop", "Flip"):
            raise ZsarError(f"the {kind} step of the config's pipeline is not a test-time step zsar supports")
        elif kind == "FormatShape":
            fields["input_format"] = step["input_format"]
    pre = cfg.model.get("data_preprocessor") or {}
    if pre.get("mean") is not None:
        fields["mean"], fields["std"] = tuple(float(v) for v in pre["mean"]), tuple(float(v) for v in pre["std"])
    base = VideoInput(**fields)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """mmcv's keep-ratio rescale to a short side (rounded half up): (new_height, new_width)."""
    factor = short_side / min(height, width)
    return int(height * factor + 0.5), int(width * factor + 0.5)


def _resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames])


def crop_offsets(height: int, width: int, crop: str, size: int) -> list[tuple[int, int]]:
    """(top, left) of each crop, in mmaction2's order (three crops: left/top, right/bottom, middle)."""
    if crop == "none":
        return [(0, 0)]
    if size > height or size > width:
        raise ZsarError(f"crop {size} is larger than the resized frame {height}x{width}")
    if crop == "centre":
        return [((height - size) // 2, (width - size) // 2)]
    if size == height:
        step = (width - size) // 2
        return [(0, 0), (0, 2 * step), (0, step)]
    if size == width:
        step = (height - size) // 2
        return [(0, 0), (2 * step, 0), (step, 0)]
    raise ZsarError(f"three crops of {size} need the frame's short side resized to {size} (it is {height}x{width})")


def clip_views(frames: np.ndarray, spec: VideoInput) -> np.ndarray:
    """Frames [num_clips * clip_len, H, W, 3] uint8 -> views [crops, clips, T, h, w, 3] uint8."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ZsarError(f"expected RGB frames [T, H, W, 3], got shape {frames.shape}")
    height, width = frames.shape[1:3]
    if spec.short_side is not None:
        height, width = resized_shape(height, width, spec.short_side)
        frames = _resize(frames, height, width)
    if spec.fixed_size is not None:
        width, height = spec.fixed_size
        frames = _resize(frames, height, width)
    size = spec.crop_size if spec.crop != "none" else None
    views = []
    for top, left in crop_offsets(height, width, spec.crop, spec.crop_size):
        views.append(frames[:, top : top + size, left : left + size] if size else frames)
    stacked = np.stack(views)  # [crops, clips*T, h, w, 3]
    return stacked.reshape((stacked.shape[0], spec.num_clips, spec.clip_len) + stacked.shape[2:])

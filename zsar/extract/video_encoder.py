"""A video encoder from mmaction2: a 3-D recognizer (SlowOnly, VideoMAE / V2 ViT, I3D, X3D, SlowFast, ...) or a
2-D one (TSN, TSM), built from a config, with a user's checkpoint or seeded random weights.

Embedding = the backbone output pooled over everything but channels (the feature the classification head
pools: 2048-d for SlowOnly R50, 768-d for ViT-B; SlowFast concatenates its two pathways), averaged over the
views. A 3-D network's views are clips x crops; a 2-D network sees all sampled frames of a crop as the
segments of one view (its head averages over them, and so does the embedding). Logits = the recognizer's
own head on the backbone output, averaged over views, kept when the checkpoint's classes are the dataset's.
Inputs arrive as uint8 views and are normalised on the device, as mmaction2's data preprocessor does.
Precision: fp32, or bf16 / fp16 autocast (fp16 on GPU only).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zsar.errors import ZsarError
from zsar.extract.checkpoint_file import read_checkpoint
from zsar.extract.mmaction_compat import build_model, load_config
from zsar.extract.video_input import VideoInput, input_from_config

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
RECOGNIZERS = ("Recognizer3D", "Recognizer2D")


@dataclass(frozen=True)
class VideoEncoderSpec:
    config: str  # short name or path, for the record
    model: dict  # the mmaction2 `model` config after zsar's overrides
    input: VideoInput
    head_classes: tuple[str, ...] = field(default_factory=tuple)  # names of the head's classes, when known

    @property
    def name(self) -> str:
        return f"mmaction2:{self.model['backbone']['type'].lower()}"

    def to_dict(self) -> dict:
        return {"config": self.config, "model": self.model, "input": self.input.to_dict(),
                "head_classes": list(self.head_classes)}


def _drop_pretrained(model: dict) -> dict:
    """Never download: remove `pretrained` weights references (a checkpoint or random init replaces them)."""
    backbone = dict(model["backbone"])
    for key in ("pretrained", "pretrained2d"):
        if key in backbone:
            backbone[key] = None if key == "pretrained" else False
    if isinstance(backbone.get("init_cfg"), dict) and backbone["init_cfg"].get("type") == "Pretrained":
        backbone["init_cfg"] = None
    return {**model, "backbone": backbone}


def make_video_spec(config: str | Path, num_classes: int | None = None, head_classes=(), pipeline: str = "auto",
                    **input_overrides) -> VideoEncoderSpec:
    cfg = load_config(config)
    model = _drop_pretrained(cfg.model.to_dict())
    if model.get("type") not in RECOGNIZERS:
        raise ZsarError(f"config {config!r} builds a {model.get('type')}; zsar's video encoders are "
                        f"{', '.join(RECOGNIZERS)} networks (SlowOnly, I3D, X3D, SlowFast, VideoMAE, ...; TSN, TSM)")
    if num_classes is not None:
        model["cls_head"] = {**model["cls_head"], "num_classes": int(num_classes)}
    return VideoEncoderSpec(config=str(config), model=model, input=input_from_config(cfg, pipeline, **input_overrides),
                            head_classes=tuple(head_classes))


def _pool(features) -> torch.Tensor:
    """Backbone output -> [N, D]: spatio-temporal average; pathways (tuples) concatenated."""
    if isinstance(features, (tuple, list)):
        return torch.cat([_pool(f) for f in features], dim=1)
    if features.ndim == 2:
        return features
    if features.ndim == 3:  # tokens [N, L, D]
        return features.mean(dim=1)
    return features.flatten(2).mean(dim=2)  # [N, D, T, H, W] (or [N, D, H, W])


def head_size(state: dict) -> int | None:
    weight = state.get("cls_head.fc_cls.weight")
    return None if weight is None else int(weight.shape[0])


class VideoEncoder:
    def __init__(self, spec: VideoEncoderSpec, device: str = "cpu", precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ZsarError(f"precision must be one of {sorted(PRECISIONS)}, not {precision!r}")
        self.device = torch.device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise ZsarError("fp16 runs on a GPU only; use fp32 or bf16 on the CPU")
        self.spec = spec
        self.precision = precision
        self.network = build_model(spec.model).to(self.device).eval()
        self._mean = torch.tensor(spec.input.mean, device=self.device).view(1, 3, 1, 1, 1)
        self._std = torch.tensor(spec.input.std, device=self.device).view(1, 3, 1, 1, 1)
        self.embedding_dim = self._probe_dim()

    @classmethod
    def from_config(cls, config: str | Path, checkpoint: str | Path | None = None, device: str = "cpu",
                    precision: str = "fp32", head_classes=(), num_classes: int | None = None, seed: int = 0,
                    pipeline: str = "auto", trust_pickle: bool = False, **input_overrides) -> VideoEncoder:
        """A checkpoint's network (its head size read from it), or seeded random weights without one."""
        state = read_checkpoint(checkpoint, trust_pickle)[0] if checkpoint is not None else None
        if state is not None:
            num_classes = head_size(state) or num_classes
        if head_classes and num_classes is not None and len(head_classes) != num_classes:
            raise ZsarError(f"{len(head_classes)} head class names given, but the head has {num_classes} classes")
        spec = make_video_spec(config, num_classes or (len(head_classes) or None), head_classes, pipeline,
                               **input_overrides)
        torch.manual_seed(seed)
        encoder = cls(spec, device, precision)
        if state is not None:
            try:
                encoder.network.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ZsarError(f"the checkpoint does not fit the config {spec.config!r}: "
                                f"{str(exc).splitlines()[0]} ({str(exc).count(chr(10))} mismatches)",
                                checkpoint) from exc
        return encoder

    @property
    def two_d(self) -> bool:
        return self.spec.model.get("type") == "Recognizer2D"

    @property
    def views_per_video(self) -> int:
        inp = self.spec.input
        return inp.num_crops if self.two_d else inp.num_crops * inp.num_clips

    @property
    def num_classes(self) -> int:
        return int(self.spec.model["cls_head"]["num_classes"])

    def _probe_dim(self) -> int:
        inp = self.spec.input
        size = inp.crop_size if inp.crop != "none" else (inp.fixed_size[1] if inp.fixed_size else inp.short_side)
        probe = np.zeros((1, 1, inp.num_clips if self.two_d else 1, inp.clip_len, size, size, 3), np.uint8)
        return int(self.features(probe)[0].shape[1])

    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def to_input(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 [B, crops, clips, T, H, W, 3] -> normalised float [B * views, 3, T, H, W] on the device."""
        views = views.to(self.device, non_blocking=True)
        b, crops, clips, t, h, w, c = views.shape
        x = views.reshape(b * crops * clips, t, h, w, c).permute(0, 4, 1, 2, 3).float()
        x = (x - self._mean) / self._std
        if self.two_d:  # frames as images, a view's frames consecutive: [B * crops * clips * T, 3, H, W]
            x = x.transpose(1, 2).reshape(-1, c, h, w)
        return x

    @torch.no_grad()
    def features(self, views) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 views [B, crops, clips, T, H, W, 3] -> embeddings [B, D], logits [B, K], per-view [B, V, D]."""
        views = torch.as_tensor(views)
        batch = views.shape[0]
        num_views = views.shape[1] if self.two_d else views.shape[1] * views.shape[2]
        segments = views.shape[2] * views.shape[3]
        x = self.to_input(views)
        with self._autocast():
            raw = self.network.backbone(x)
            if getattr(self.network, "with_neck", False):
                raw, _ = self.network.neck(raw)
            pooled = _pool(raw).float()
            if self.two_d:  # per frame -> per view: the average the head's consensus takes
                pooled = pooled.reshape(batch * num_views, segments, -1).mean(dim=1)
                logits = self.network.cls_head(raw, num_segs=segments).float()
            else:
                logits = self.network.cls_head(raw).float()
        per_view = pooled.reshape(batch, num_views, -1)
        scores = logits.reshape(batch, num_views, -1).mean(dim=1)
        return per_view.mean(dim=1).cpu().numpy(), scores.cpu().numpy(), per_view.cpu().numpy()

"""A skeleton encoder from mmaction2 with what it needs to run: graph networks (ST-GCN, ST-GCN++) and
heatmap-volume 3-D CNNs (PoseC3D).

The network is an mmaction2 recognizer built from a config shipped with mmaction2 (or a user's), with the
graph / input channels and class count set for the data. Embedding = the backbone output averaged over
everything but channels (the input of the classification layer: 256-d for ST-GCN, 512-d for PoseC3D);
logits = the classification layer's scores for the classes it was trained on; temporal features = the
backbone output averaged over joints/space and bodies, one vector per (down-sampled) time step.

Checkpoints are mmengine-style dicts (`state_dict`, `meta`), so mmaction2 tools can load the weights;
`meta["zsar"]` records the config, layout, input, class set, split and seed the encoder was trained with.
A checkpoint without that record (trained elsewhere) is loaded with a config and layout given by the user,
and is assumed to have been trained on every class its head scores, which the leakage audit then enforces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from zsar.atomic import atomic_target
from zsar.datasets.layouts import get_layout
from zsar.errors import ZsarError
from zsar.extract.checkpoint_file import read_checkpoint
from zsar.extract.gcn_input import GCNInputConfig, prepare, sample_clips
from zsar.extract.heatmap_input import HeatmapPipeline, heatmap_sample, pipeline_steps
from zsar.extract.mmaction_compat import build_model, load_config

GCN_RECOGNIZERS = ("RecognizerGCN",)
HEATMAP_RECOGNIZERS = ("Recognizer3D",)


@dataclass(frozen=True)
class SkeletonEncoderSpec:
    """Everything needed to rebuild the network and feed it."""

    config: str  # the config it was built from (short name or path), for the record
    model: dict  # the mmaction2 `model` config after zsar's overrides
    layout: str
    data_channels: int  # channels per joint of the loaded data (3 for x, y, z; 3 for x, y, score)
    input: GCNInputConfig
    class_names: tuple[str, ...]  # the dataset's whole label space
    trained_classes: tuple[int, ...]  # global labels of the logits, in order: the classes seen in training
    training: dict = field(default_factory=dict)  # split, seed, options, validation accuracy
    pipelines: dict | None = None  # heatmap recognizers: mmaction2 steps {"train": [...], "test": [...]}

    @property
    def family(self) -> str:
        return "heatmap" if self.pipelines is not None else "gcn"

    @property
    def name(self) -> str:
        return f"mmaction2:{self.model['backbone']['type'].lower()}"

    def to_dict(self) -> dict:
        return {"config": self.config, "model": self.model, "layout": self.layout,
                "data_channels": self.data_channels, "input": self.input.to_dict(),
                "class_names": list(self.class_names), "trained_classes": list(self.trained_classes),
                "training": self.training, "pipelines": self.pipelines}

    @classmethod
    def from_dict(cls, data: dict) -> SkeletonEncoderSpec:
        return cls(config=data["config"], model=data["model"], layout=data["layout"],
                   data_channels=int(data["data_channels"]), input=GCNInputConfig.from_dict(data["input"]),
                   class_names=tuple(data["class_names"]), trained_classes=tuple(data["trained_classes"]),
                   training=data.get("training", {}), pipelines=data.get("pipelines"))


def _pipeline_step(cfg, step_type: str) -> dict | None:
    for key in ("val_pipeline", "test_pipeline", "train_pipeline"):
        for step in cfg.get(key, []) or []:
            if step.get("type") == step_type:
                return step
    return None


def input_from_config(cfg, **overrides) -> GCNInputConfig:
    """The input settings a config's pipeline uses (features, frames, bodies), with overrides applied."""
    feats = _pipeline_step(cfg, "GenSkeFeat")
    frames = _pipeline_step(cfg, "UniformSampleFrames")
    persons = _pipeline_step(cfg, "FormatGCNInput")
    normalise = (_pipeline_step(cfg, "PreNormalize3D") or _pipeline_step(cfg, "PreNormalize2D")) is not None
    base = GCNInputConfig(clip_len=frames["clip_len"] if frames else 64,
                          num_person=persons.get("num_person", 2) if persons else 2,
                          feats=tuple(feats.get("feats", ["j"])) if feats else ("j",), normalise=normalise)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def make_spec(config: str, layout: str, data_channels: int, class_names, trained_classes, **input_overrides
              ) -> SkeletonEncoderSpec:
    """A spec for a new network: the config's model with the graph, channels and classes set for the data."""
    cfg = load_config(config)
    model = cfg.model.to_dict()
    lay = get_layout(layout)
    inp = input_from_config(cfg, **input_overrides)
    model["backbone"].pop("pretrained", None)
    model["cls_head"]["num_classes"] = len(trained_classes)
    pipelines = None
    if model.get("type") in GCN_RECOGNIZERS:
        model["backbone"]["graph_cfg"] = {**model["backbone"].get("graph_cfg", {}), "layout": lay.mmaction_graph()}
        model["backbone"]["in_channels"] = inp.channels(data_channels)
    elif model.get("type") in HEATMAP_RECOGNIZERS and _pipeline_step(cfg, "GeneratePoseTarget") is not None:
        target = _pipeline_step(cfg, "GeneratePoseTarget")
        if target.get("with_limb") or not target.get("with_kp", True):
            raise ZsarError(f"config {config!r} builds limb heatmaps; zsar builds joint heatmaps (with_kp only)")
        model["backbone"]["in_channels"] = lay.num_joints
        pipelines = {"train": [dict(s) for s in cfg.train_pipeline], "test": [dict(s) for s in cfg.val_pipeline]}
    else:
        raise ZsarError(f"config {config!r} builds a {model.get('type')}; zsar's skeleton encoders are graph networks "
                        f"({', '.join(GCN_RECOGNIZERS)}: ST-GCN, ST-GCN++) and pose heatmap 3-D CNNs "
                        f"({', '.join(HEATMAP_RECOGNIZERS)} with GeneratePoseTarget: PoseC3D)")
    return SkeletonEncoderSpec(config=str(config), model=model, layout=layout, data_channels=data_channels, input=inp,
                               class_names=tuple(class_names), trained_classes=tuple(int(c) for c in trained_classes),
                               pipelines=pipelines)


class SkeletonEncoder:
    """The network plus its spec; `features` gives embeddings, logits and temporal features."""

    def __init__(self, spec: SkeletonEncoderSpec, device: str = "cpu"):
        self.spec = spec
        self.device = torch.device(device)
        self.network = build_model(spec.model).to(self.device)
        self.layout = get_layout(spec.layout)
        self._pipelines: dict = {}

    # -- input -------------------------------------------------------------------------------------
    def prepare(self, kp: np.ndarray, img_shape=None):
        """The once-per-sample stage (normalised feature streams, or the pose transforms' start dict)."""
        if kp.shape[-1] != self.spec.data_channels:
            raise ZsarError(f"{kp.shape[-1]} channels per joint; the encoder takes {self.spec.data_channels}")
        if self.spec.family == "heatmap":
            return heatmap_sample(kp, self.layout, img_shape)
        return prepare(kp, self.layout, self.spec.input, img_shape)

    def _heatmaps(self, mode: str, num_clips: int | None) -> HeatmapPipeline:
        key = (mode, num_clips)
        if key not in self._pipelines:
            steps = pipeline_steps(self.spec.pipelines[mode], self.spec.input.clip_len, num_clips)
            self._pipelines[key] = HeatmapPipeline(steps)
        return self._pipelines[key]

    def train_clip(self, prepared, rng: np.random.RandomState) -> np.ndarray:
        """One randomly sampled (and, for heatmaps, augmented) training clip."""
        if self.spec.family == "heatmap":
            return self._heatmaps("train", None)(prepared, rng)[0]
        return sample_clips(prepared, self.spec.input, rng)[0]

    def test_clips(self, prepared, num_clips: int = 1) -> np.ndarray:
        """Deterministic test-mode clips [num_clips, ...]."""
        if self.spec.family == "heatmap":
            return self._heatmaps("test", num_clips)(prepared)
        return sample_clips(prepared, self.spec.input, num_clips=num_clips)

    def init_weights(self) -> None:
        """mmengine's weight initialisation (what its Runner does before training), without its log lines."""
        from mmengine.logging import MMLogger

        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            self.network.init_weights()
        finally:
            logger.setLevel(level)

    @property
    def embedding_dim(self) -> int:
        return int(self.network.cls_head.in_channels)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Training forward: a batch of clips -> [N, classes]."""
        return self.network.cls_head(self.network.backbone(x))

    @torch.no_grad()
    def features(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """clips [N, clips, ...] -> embeddings [N, D], logits [N, K], temporal [N, T', D]; clips averaged."""
        self.network.eval()
        n, k = clips.shape[:2]
        x = torch.from_numpy(clips.reshape((n * k,) + clips.shape[2:])).to(self.device)
        maps = self.network.backbone(x)
        if self.spec.family == "heatmap":  # [N*k, D, T', H', W']
            temporal = maps.mean(dim=(3, 4)).transpose(1, 2)
            fc = self.network.cls_head.fc_cls
        else:  # [N*k, M, D, T', V]
            temporal = maps.mean(dim=(1, 4)).transpose(1, 2)  # [N*k, T', D]
            fc = self.network.cls_head.fc
        pooled = temporal.mean(dim=1)
        logits = fc(pooled)
        shape = lambda t: t.reshape((n, k) + t.shape[1:]).mean(dim=1).float().cpu().numpy()  # noqa: E731
        return shape(pooled), shape(logits), shape(temporal)

    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        path = Path(path)
        payload = {"state_dict": self.network.state_dict(),
                   "meta": {"zsar": self.spec.to_dict(), **(extra or {})}}
        with atomic_target(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", config: str | None = None, layout: str | None = None,
             class_names=None, data_channels: int = 3, trust_pickle: bool = False,
             **input_overrides) -> SkeletonEncoder:
        """A zsar checkpoint, or an mmaction2 checkpoint with its config and layout."""
        path = Path(path)
        state, meta = read_checkpoint(path, trust_pickle)
        if "zsar" in meta:
            spec = SkeletonEncoderSpec.from_dict(meta["zsar"])
            if input_overrides:
                spec = replace(spec, input=replace(spec.input, **{k: v for k, v in input_overrides.items()
                                                                   if v is not None}))
        else:
            if config is None or layout is None or class_names is None:
                raise ZsarError("this checkpoint was not written by zsar: give its mmaction2 config, the skeleton "
                                "layout and the class names of its classification head", path)
            num = state.get("cls_head.fc.weight", state.get("cls_head.fc_cls.weight"))
            if num is None:
                raise ZsarError("no classification layer (`cls_head.fc` / `cls_head.fc_cls`) in the checkpoint", path)
            spec = make_spec(config, layout, data_channels, class_names, range(num.shape[0]), **input_overrides)
        encoder = cls(spec, device)
        try:
            encoder.network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ZsarError(f"the checkpoint does not fit the config {spec.config!r}: {str(exc).splitlines()[0]} "
                            f"({str(exc).count(chr(10))} mismatches)", path) from exc
        return encoder


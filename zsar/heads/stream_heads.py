"""Heads on untrimmed streams: label every frame of a per-frame feature stream, one interface for all.

- `mstcn`: MS-TCN, the supervised baseline. It learns the classes it is trained on; a class it never saw
  (a held-out class) can never win, so its held-out scores show what zero-shot heads must beat from zero.
- `text_segmentation`: zero-shot segmentation after FACT-CLIP. A light MS-TCN-style temporal model whose frame
  features are projected into the text space and scored against the class prototypes of any classes, seen or
  held out; trained with the symmetric frame/text InfoNCE on the seen classes' text only, plus smoothing.

Interface (`StreamHead`): `fit(streams, prototypes, after_epoch=None)` trains on the streams' labelled frames
(every label must be a class with a prototype; the protocol removes held-out streams before), `scores(features,
classes)` gives [T, len(classes)] log-scores, `predict` the argmax class ids; `state()` / `load_state()` are
the snapshots the protocol's epoch choice uses, `save` / `load` write and read a head file atomically.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from zsar.atomic import atomic_target
from zsar.compute import keeps_torch_state
from zsar.datasets.streams import Stream
from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.base import build_config
from zsar.heads.segmentation_models import (
    IGNORE_INDEX,
    MSTCN,
    TextSegmentationModel,
    frame_text_scores,
    mstcn_loss,
    smoothing_loss,
    symmetric_frame_text_loss,
)
from zsar.heads.torch_device import torch_threads, training_device


@dataclass(frozen=True)
class StreamHeadConfig:
    """Training settings shared by the stream heads (MS-TCN's defaults, made lighter for cached features)."""

    epochs: int = 30
    lr: float = 5e-4
    batch_streams: int = 1  # streams per step (padded and masked when more than one); MS-TCN uses 1
    stages: int = 2
    layers: int = 8  # dilated layers per stage: receptive field 2 * 2^layers - 1 rows
    channels: int = 64
    dropout: float = 0.5
    smooth_weight: float = 0.15
    standardise: bool = True  # z-score the features with the training frames' mean and spread
    seed: int = 0
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_streams", "stages", "channels", "threads"):
            if getattr(self, key) < 1:
                raise ZsarError(f"stream head setting {key} must be at least 1, not {getattr(self, key)}")
        if self.layers < 0 or not 0 <= self.dropout < 1 or self.lr <= 0 or self.smooth_weight < 0:
            raise ZsarError(f"stream head settings out of range: {asdict(self)}")


def feature_statistics(streams: Sequence[Stream]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread (at least 1e-6) of every feature over all frames of `streams`."""
    total = sum(np.asarray(s.features, np.float64).sum(axis=0) for s in streams)
    count = sum(len(s) for s in streams)
    mean = total / count
    spread = np.sqrt(sum(((np.asarray(s.features, np.float64) - mean) ** 2).sum(axis=0) for s in streams) / count)
    return mean.astype(np.float32), np.maximum(spread, 1e-6).astype(np.float32)


def standardised(features: np.ndarray, scaling: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """`features` z-scored by `scaling` = (mean, spread), or as they are when there is none."""
    return features if scaling is None else (features - scaling[0]) / scaling[1]


def padded_batch(streams: Sequence[Stream], positions: dict[int, int],
                 scaling: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[torch.Tensor, ...]:
    """Features [B, D, T_max] (standardised by `scaling` = (mean, spread) when given), mask [B, 1, T_max] and
    labels [B, T_max] (positions into the trained classes, IGNORE_INDEX on padding and unlabelled frames)."""
    longest = max(len(s) for s in streams)
    dim = streams[0].features.shape[1]
    x = np.zeros((len(streams), dim, longest), np.float32)
    mask = np.zeros((len(streams), 1, longest), np.float32)
    labels = np.full((len(streams), longest), IGNORE_INDEX, np.int64)
    for i, stream in enumerate(streams):
        n = len(stream)
        x[i, :, :n] = standardised(stream.features, scaling).T
        mask[i, 0, :n] = 1.0
        labels[i, :n] = [positions.get(int(c), IGNORE_INDEX) for c in stream.labels]
    return torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(labels)


def restricted_scores(scores: torch.Tensor, trained: np.ndarray, classes: Sequence[int]) -> torch.Tensor:
    """[N, len(classes)] from `scores` [N, len(trained)] over the trained classes; the others score -inf."""
    out = torch.full((scores.shape[0], len(classes)), -torch.inf, device=scores.device, dtype=scores.dtype)
    position = {int(c): i for i, c in enumerate(trained)}
    for j, c in enumerate(classes):
        if int(c) in position:
            out[:, j] = scores[:, position[int(c)]]
    return out


def read_head_file(path: str | Path, cls: type, base: type, registry: dict, kind: str) -> tuple[dict, type]:
    """A saved head file's payload and the registered class it names; an unreadable file, or one of another head
    than `cls` (any head of `registry` when `cls` is `base`), is one clear error naming the file."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
        raise ZsarError(f"cannot read the {kind} head file: {exc}", path) from exc
    head_cls = registry.get(payload.get("head") if isinstance(payload, dict) else None)
    if head_cls is None or (cls is not base and head_cls is not cls):
        raise ZsarError(f"not a {cls.name} head file", path)
    return payload, head_cls


class StreamHead:
    """Base of the stream heads: the training loop, snapshots, scoring and files."""

    name = "stream_head"
    zero_shot = False  # True when untrained classes can win a frame (scored from their prototypes)

    def __init__(self, config: StreamHeadConfig | None = None, **params):
        self.config = config or build_config(StreamHeadConfig, params, self.name)
        self.model: torch.nn.Module | None = None
        self.classes: np.ndarray | None = None  # the trained classes, in the order of the model's outputs
        self.text: torch.Tensor | None = None
        self.in_dim: int | None = None
        self.scaling: tuple[np.ndarray, np.ndarray] | None = None

    # -- what each head defines -------------------------------------------------------------
    def _build(self, in_dim: int, prototypes: ClassPrototypes) -> torch.nn.Module:
        raise NotImplementedError

    def _loss(self, x, mask, labels) -> torch.Tensor:
        raise NotImplementedError

    def _class_scores(self, x: torch.Tensor, mask: torch.Tensor, classes: np.ndarray,
                      prototypes: ClassPrototypes | None) -> torch.Tensor:
        """[T, len(classes)] log-scores for one stream."""
        raise NotImplementedError

    # -- training ------------------------------------------------------------------------------
    def _checked(self, streams: Sequence[Stream], prototypes: ClassPrototypes) -> np.ndarray:
        if not streams:
            raise ZsarError(f"{self.name}: no training streams")
        dims = {s.features.shape[1] for s in streams if s.features is not None}
        if len(dims) != 1 or any(s.features is None for s in streams):
            raise ZsarError(f"{self.name}: training streams need per-frame features of one dimension, got {dims}")
        if any(not np.isfinite(s.features).all() for s in streams):
            raise ZsarError(f"{self.name}: training features contain NaN or inf")
        classes = np.unique(np.concatenate([s.labels[s.labels >= 0] for s in streams]))
        missing = sorted(set(classes.tolist()) - set(prototypes.class_ids.tolist()))
        if missing:
            raise ZsarError(f"{self.name}: no class prototype for trained classes {missing}")
        return classes

    @keeps_torch_state
    def fit(self, streams: Sequence[Stream], prototypes: ClassPrototypes,
            after_epoch: Callable[[int, StreamHead], None] | None = None) -> StreamHead:
        """Train on every labelled frame of `streams`; `after_epoch(epoch, self)` runs after each epoch (1-based)."""
        cfg = self.config
        self.classes = self._checked(streams, prototypes)
        self.in_dim = int(streams[0].features.shape[1])
        self.scaling = feature_statistics(streams) if cfg.standardise else None
        device = training_device(cfg.device, self.name)
        positions = {int(c): i for i, c in enumerate(self.classes)}
        with torch_threads(cfg.threads):
            torch.manual_seed(cfg.seed)
            self.model = self._build(self.in_dim, prototypes).to(device)
            optimiser = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
            order_rng = np.random.default_rng(cfg.seed)
            for epoch in range(1, cfg.epochs + 1):
                self.model.train()
                order = order_rng.permutation(len(streams))
                for start in range(0, len(order), cfg.batch_streams):
                    batch = [streams[i] for i in order[start:start + cfg.batch_streams]]
                    x, mask, labels = (t.to(device) for t in padded_batch(batch, positions, self.scaling))
                    loss = self._loss(x, mask, labels)
                    if not torch.isfinite(loss):
                        raise ZsarError(f"{self.name}: the training loss became {loss.item()} at epoch {epoch}; "
                                        "lower lr")
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                if after_epoch is not None:
                    after_epoch(epoch, self)
        return self

    # -- scoring -------------------------------------------------------------------------------
    def _trained(self) -> torch.nn.Module:
        if self.model is None:
            raise ZsarError(f"{self.name}: fit or load the head before scoring")
        return self.model

    def scores(self, features: np.ndarray, classes: Sequence[int],
               prototypes: ClassPrototypes | None = None) -> np.ndarray:
        """[T, len(classes)] log-scores of one stream's frames for `classes` (global ids)."""
        model = self._trained()
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.in_dim:
            raise ZsarError(f"{self.name}: features of shape {features.shape}, the head was fitted on {self.in_dim}-d")
        features = standardised(features, self.scaling)
        device = next(model.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(features.T))[None].to(device)
        mask = torch.ones((1, 1, features.shape[0]), device=device)
        model.eval()
        with torch.no_grad(), torch_threads(self.config.threads):
            out = self._class_scores(x, mask, np.asarray(list(classes), dtype=np.int64), prototypes)
        return out.cpu().numpy()

    def predict(self, features: np.ndarray, classes: Sequence[int],
                prototypes: ClassPrototypes | None = None) -> np.ndarray:
        classes = np.asarray(list(classes), dtype=np.int64)
        return classes[self.scores(features, classes, prototypes).argmax(axis=1)]

    # -- snapshots and files -----------------------------------------------------------------
    def state(self) -> dict:
        return copy.deepcopy(self._trained().state_dict())

    def load_state(self, state: dict) -> None:
        self._trained().load_state_dict(state)

    def save(self, path: str | Path) -> Path:
        payload = {"head": self.name, "config": asdict(self.config), "classes": self.classes.tolist(),
                   "in_dim": self.in_dim, "scaling": self.scaling, "state": self._trained().state_dict(),
                   "text": None if self.text is None else self.text.cpu()}
        with atomic_target(path) as tmp:
            torch.save(payload, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> StreamHead:
        payload, head_cls = read_head_file(path, cls, StreamHead, STREAM_HEADS, "stream")
        head = head_cls(StreamHeadConfig(**payload["config"]))
        head.classes, head.in_dim, head.text = np.asarray(payload["classes"], np.int64), payload["in_dim"], \
            payload["text"]
        head.scaling = payload["scaling"]
        head.model = head._build_for_load()
        head.model.load_state_dict(payload["state"])
        return head

    def _build_for_load(self) -> torch.nn.Module:
        raise NotImplementedError


class MSTCNHead(StreamHead):
    """MS-TCN over the trained classes; classes it was not trained on score -inf."""

    name = "mstcn"
    zero_shot = False

    def _build(self, in_dim: int, prototypes: ClassPrototypes) -> torch.nn.Module:
        return self._build_for_load()

    def _build_for_load(self) -> torch.nn.Module:
        cfg = self.config
        return MSTCN(self.in_dim, len(self.classes), cfg.stages, cfg.layers, cfg.channels, cfg.dropout)

    def _loss(self, x, mask, labels) -> torch.Tensor:
        return mstcn_loss(self.model(x, mask), labels, mask, self.config.smooth_weight)

    def _class_scores(self, x, mask, classes, prototypes) -> torch.Tensor:
        log_p = torch.log_softmax(self.model(x, mask)[-1][0].T, dim=1)  # [T, C_trained]
        return restricted_scores(log_p, self.classes, classes)


class TextSegmentationHead(StreamHead):
    """Frames projected into the text space, scored against any classes' prototypes (zero-shot)."""

    name = "text_segmentation"
    zero_shot = True

    def _build(self, in_dim: int, prototypes: ClassPrototypes) -> torch.nn.Module:
        self.text = torch.from_numpy(prototypes.subset(self.classes).vectors)
        return self._build_for_load()

    def _build_for_load(self) -> torch.nn.Module:
        cfg = self.config
        return TextSegmentationModel(self.in_dim, int(self.text.shape[1]), cfg.stages, cfg.layers, cfg.channels,
                                     cfg.dropout)

    def _loss(self, x, mask, labels) -> torch.Tensor:
        text = self.text.to(x.device)
        scale = self.model.scale()
        loss = x.new_zeros(())
        for embeddings in self.model(x, mask):
            loss = loss + symmetric_frame_text_loss(embeddings, labels, text, scale)
            scores = frame_text_scores(embeddings, text, scale)
            loss = loss + self.config.smooth_weight * smoothing_loss(scores, mask)
        return loss

    def _class_scores(self, x, mask, classes, prototypes) -> torch.Tensor:
        if prototypes is None:
            raise ZsarError(f"{self.name}: scoring needs the class prototypes of the classes to score")
        text = torch.from_numpy(prototypes.subset(classes).vectors).to(x.device)
        embeddings = self.model(x, mask)[-1][0]  # [T, E]
        return torch.log_softmax(frame_text_scores(embeddings[None], text, self.model.scale())[0], dim=1)


STREAM_HEADS: dict[str, type[StreamHead]] = {"mstcn": MSTCNHead, "text_segmentation": TextSegmentationHead}


def make_stream_head(name: str, params: dict | None = None) -> StreamHead:
    if name not in STREAM_HEADS:
        raise ZsarError(f"unknown stream head {name!r}; choose from {sorted(STREAM_HEADS)}")
    return STREAM_HEADS[name](build_config(StreamHeadConfig, params or {}, f"stream head {name}"))

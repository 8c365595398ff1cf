"""Anticipation heads: from the rows observed before an action, score which action comes next. One interface:

- `last_segment` (baseline): the class of the last action observed before the window's end comes again; the
  other classes follow in order of how often they were a training target. It reads the observed frames' labels
  (the annotated past), not their features.
- `successor` (baseline): the training targets' class counts after each last observed class (add-`smoothing`),
  i.e. the script of the training streams; an unknown last class falls back to the target frequencies.
- `pooled_linear` (baseline): a linear softmax classifier on the mean of the observed rows' features.
- `sgear`: after S-GEAR, a causal temporal model with visual prototypes guided by language prototypes, scoring
  next actions against class text, so held-out next actions can win (zero-shot); `anticipation_models.py`.

The baselines score only the classes they were trained on (untrained classes score -inf), except that
`last_segment` repeats whatever class was observed last. `fit(streams, samples, prototypes, after_epoch)` trains
on the samples' windows (their targets must have prototypes; the protocol removes held-out streams first);
`scores(streams, samples, classes, prototypes)` gives [N, len(classes)] scores (log-probabilities for the
learned heads); `state` / `load_state` are the snapshots of the epoch choice; `save` / `load` a head file.
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
from zsar.datasets.anticipation import AnticipationSample, observed_features
from zsar.datasets.streams import Stream
from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.anticipation_models import PrototypeAnticipator, anticipation_loss, unit
from zsar.heads.base import build_config
from zsar.heads.stream_heads import feature_statistics, read_head_file, restricted_scores, standardised
from zsar.heads.torch_device import torch_threads, training_device


@dataclass(frozen=True)
class AnticipationHeadConfig:
    epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    width: int = 128  # sgear: model width, transformer layers and heads (on NW-UCLA development pairs, by the
    layers: int = 2  # validation selection score, 60.8 against 58.4 for 64 x 1 layer x 2 heads)
    heads: int = 4
    dropout: float = 0.2
    prototypes: bool = True  # sgear: False leaves the visual prototypes out (the ablation)
    feature_weight: float = 1.0  # sgear: next-step feature prediction
    semantic_weight: float = 1.0  # sgear: language structure of the visual prototypes (L_sem)
    regulariser_weight: float = 1.0  # sgear: z near its class's initial prototype (L_reg)
    readout_temperature: float | None = None  # sgear: None = sqrt(input dimension), as S-GEAR
    smoothing: float = 1.0  # successor: add-alpha counts
    standardise: bool = True
    seed: int = 0
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "width", "layers", "heads", "threads"):
            if getattr(self, key) < 1:
                raise ZsarError(f"anticipation head setting {key} must be at least 1, not {getattr(self, key)}")
        if self.width % self.heads:
            raise ZsarError(f"anticipation head width {self.width} must be a multiple of heads {self.heads}")
        weights = (self.feature_weight, self.semantic_weight, self.regulariser_weight, self.smoothing)
        bad_temperature = self.readout_temperature is not None and not self.readout_temperature > 0
        if self.lr <= 0 or not 0 <= self.dropout < 1 or min(weights) < 0 or self.weight_decay < 0 or bad_temperature:
            raise ZsarError(f"anticipation head settings out of range: {asdict(self)}")


def window_batch(streams: Sequence[Stream], samples: Sequence[AnticipationSample], length: int,
                 scaling: tuple[np.ndarray, np.ndarray] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows [B, length, D] right-aligned (the latest row last; longer windows keep their last `length` rows,
    shorter ones are padded on the left) and the mask of real rows [B, length]."""
    dim = streams[samples[0].stream].features.shape[1]
    x = np.zeros((len(samples), length, dim), np.float32)
    valid = np.zeros((len(samples), length), dtype=bool)
    for i, sample in enumerate(samples):
        rows = observed_features(streams, sample)[-length:]
        x[i, length - len(rows):] = standardised(rows, scaling)
        valid[i, length - len(rows):] = True
    return torch.from_numpy(x), torch.from_numpy(valid)


def target_positions(samples: Sequence[AnticipationSample], classes: np.ndarray) -> torch.Tensor:
    position = {int(c): i for i, c in enumerate(classes)}
    return torch.tensor([position[s.target] for s in samples], dtype=torch.int64)


def restricted(scores: torch.Tensor, trained: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """`restricted_scores` as a float32 array."""
    return restricted_scores(scores, trained, classes).float().cpu().numpy()


class AnticipationHead:
    """Base of the anticipation heads: checks, the training loop of the torch heads, snapshots and files."""

    name = "anticipation_head"
    zero_shot = False  # True when untrained classes can win (scored from their text)

    def __init__(self, config: AnticipationHeadConfig | None = None, **params):
        self.config = config or build_config(AnticipationHeadConfig, params, self.name)
        self.classes: np.ndarray | None = None  # the trained target classes
        self.in_dim: int | None = None
        self.length: int | None = None  # the longest training window (rows)
        self.scaling: tuple[np.ndarray, np.ndarray] | None = None
        self.model: torch.nn.Module | None = None
        self.extra: dict = {}  # what a head keeps beside its weights (counts, text, similarities)

    def _checked(self, streams, samples, prototypes: ClassPrototypes) -> None:
        if not samples:
            raise ZsarError(f"{self.name}: no training samples")
        used = sorted({s.stream for s in samples})
        if any(streams[i].features is None for i in used):
            raise ZsarError(f"{self.name}: the streams need per-frame features")
        dims = {streams[i].features.shape[1] for i in used}
        if len(dims) != 1:
            raise ZsarError(f"{self.name}: the streams' features have different dimensions {sorted(dims)}")
        if any(not np.isfinite(streams[i].features).all() for i in used):
            raise ZsarError(f"{self.name}: training features contain NaN or inf")
        self.classes = np.unique([s.target for s in samples]).astype(np.int64)
        missing = sorted(set(self.classes.tolist()) - set(prototypes.class_ids.tolist()))
        if missing:
            raise ZsarError(f"{self.name}: no class prototype for target classes {missing}")
        self.in_dim = dims.pop()
        self.length = max(s.end - s.start for s in samples)
        self.scaling = feature_statistics([streams[i] for i in used]) if self.config.standardise else None

    def _check_scoring(self, streams, samples) -> None:
        if self.classes is None:
            raise ZsarError(f"{self.name}: fit or load the head before scoring")
        dims = {streams[s.stream].features.shape[1] for s in samples}
        if self.in_dim is not None and dims - {self.in_dim}:
            raise ZsarError(f"{self.name}: features of dimension {sorted(dims)}; the head was fitted on "
                            f"{self.in_dim}-d features")

    @keeps_torch_state
    def fit(self, streams: Sequence[Stream], samples: Sequence[AnticipationSample], prototypes: ClassPrototypes,
            after_epoch: Callable[[int, AnticipationHead], None] | None = None) -> AnticipationHead:
        """Train on `samples` (their windows in `streams`); `after_epoch(epoch, self)` after each epoch."""
        self._checked(streams, samples, prototypes)
        self._fit(streams, list(samples), prototypes, after_epoch)
        return self

    def _fit(self, streams, samples, prototypes, after_epoch) -> None:
        raise NotImplementedError

    def scores(self, streams: Sequence[Stream], samples: Sequence[AnticipationSample], classes: Sequence[int],
               prototypes: ClassPrototypes | None = None) -> np.ndarray:
        """[len(samples), len(classes)] scores of the next action for each sample."""
        classes = np.asarray(list(classes), dtype=np.int64)
        if not len(samples):
            return np.zeros((0, len(classes)), np.float32)
        self._check_scoring(streams, samples)
        return self._scores(streams, list(samples), classes, prototypes)

    def _scores(self, streams, samples, classes, prototypes) -> np.ndarray:
        raise NotImplementedError

    # -- snapshots and files -------------------------------------------------------------------
    def state(self) -> dict:
        return copy.deepcopy(self.model.state_dict() if self.model is not None else self.extra)

    def load_state(self, state: dict) -> None:
        if self.model is not None:
            self.model.load_state_dict(state)
        else:
            self.extra = copy.deepcopy(state)

    def save(self, path: str | Path) -> Path:
        if self.classes is None:
            raise ZsarError(f"{self.name}: fit the head before saving it")
        payload = {"head": self.name, "config": asdict(self.config), "classes": self.classes.tolist(),
                   "in_dim": self.in_dim, "length": self.length, "scaling": self.scaling, "extra": self.extra,
                   "state": None if self.model is None else self.model.state_dict()}
        with atomic_target(path) as tmp:
            torch.save(payload, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> AnticipationHead:
        payload, head_cls = read_head_file(path, cls, AnticipationHead, ANTICIPATION_HEADS, "anticipation")
        head = head_cls(AnticipationHeadConfig(**payload["config"]))
        head.classes = np.asarray(payload["classes"], np.int64)
        head.in_dim, head.length, head.scaling, head.extra = (payload["in_dim"], payload["length"],
                                                              payload["scaling"], payload["extra"])
        if payload["state"] is not None:
            head.model = head._network()
            head.model.load_state_dict(payload["state"])
        return head

    def _network(self) -> torch.nn.Module:
        raise NotImplementedError

    # -- the torch heads' loop -----------------------------------------------------------------
    def _train(self, streams, samples, loss_of: Callable, after_epoch) -> None:
        cfg = self.config
        device = training_device(cfg.device, self.name)
        self.model.to(device)
        optimiser = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        order_rng = np.random.default_rng(cfg.seed)
        for epoch in range(1, cfg.epochs + 1):
            self.model.train()
            order = order_rng.permutation(len(samples))
            for start in range(0, len(order), cfg.batch_size):
                batch = [samples[i] for i in order[start:start + cfg.batch_size]]
                x, valid = (t.to(device) for t in window_batch(streams, batch, self.length, self.scaling))
                loss = loss_of(x, valid, target_positions(batch, self.classes).to(device))
                if not torch.isfinite(loss):
                    raise ZsarError(f"{self.name}: the training loss became {loss.item()} at epoch {epoch}; lower lr")
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            if after_epoch is not None:
                after_epoch(epoch, self)

    def _eval_batches(self, streams, samples, forward: Callable) -> torch.Tensor:
        self.model.eval()
        device = next(self.model.parameters()).device
        outs = []
        with torch.no_grad(), torch_threads(self.config.threads):
            for start in range(0, len(samples), 256):
                x, valid = window_batch(streams, samples[start:start + 256], self.length, self.scaling)
                outs.append(forward(x.to(device), valid.to(device)))
        return torch.cat(outs)


class LastSegmentHead(AnticipationHead):
    name = "last_segment"

    def _fit(self, streams, samples, prototypes, after_epoch) -> None:
        counts = np.bincount([s.target for s in samples], minlength=int(self.classes.max()) + 1)
        self.extra = {"frequency": counts[self.classes].astype(np.float64) / len(samples)}
        if after_epoch is not None:
            after_epoch(1, self)

    def _scores(self, streams, samples, classes, prototypes) -> np.ndarray:
        prior = dict(zip(self.classes.tolist(), self.extra["frequency"].tolist(), strict=True))
        out = np.array([[prior.get(int(c), 0.0) for c in classes]] * len(samples), dtype=np.float32)
        last = np.array([s.last_observed for s in samples])
        out += 2.0 * (classes[None, :] == last[:, None])  # the repeated class ranks first, then the frequencies
        return out


class SuccessorHead(AnticipationHead):
    name = "successor"

    def _fit(self, streams, samples, prototypes, after_epoch) -> None:
        position = {int(c): i for i, c in enumerate(self.classes)}
        counts: dict[int, np.ndarray] = {}
        for s in samples:
            counts.setdefault(s.last_observed, np.zeros(len(self.classes)))[position[s.target]] += 1
        self.extra = {"counts": counts, "total": sum(counts.values())}
        if after_epoch is not None:
            after_epoch(1, self)

    def _scores(self, streams, samples, classes, prototypes) -> np.ndarray:
        alpha = self.config.smoothing
        prior = np.log((self.extra["total"] + alpha) / (self.extra["total"] + alpha).sum())
        rows = []
        for s in samples:
            counts = self.extra["counts"].get(s.last_observed)
            rows.append(prior if counts is None else np.log((counts + alpha) / (counts + alpha).sum()))
        return restricted(torch.from_numpy(np.array(rows)), self.classes, classes)


class PooledLinearHead(AnticipationHead):
    name = "pooled_linear"

    def _network(self) -> torch.nn.Module:
        return torch.nn.Linear(self.in_dim, len(self.classes))

    @staticmethod
    def _pooled(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        weights = valid.float().unsqueeze(-1)
        return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def _fit(self, streams, samples, prototypes, after_epoch) -> None:
        with torch_threads(self.config.threads):
            torch.manual_seed(self.config.seed)
            self.model = self._network()
            self._train(streams, samples, lambda x, valid, y: torch.nn.functional.cross_entropy(
                self.model(self._pooled(x, valid)), y), after_epoch)

    def _scores(self, streams, samples, classes, prototypes) -> np.ndarray:
        logits = self._eval_batches(streams, samples, lambda x, valid: self.model(self._pooled(x, valid)))
        return restricted(torch.log_softmax(logits, dim=1), self.classes, classes)


class SGEARHead(AnticipationHead):
    name = "sgear"
    zero_shot = True

    def _network(self, initial: torch.Tensor | None = None) -> PrototypeAnticipator:
        cfg = self.config
        initial = initial if initial is not None else torch.zeros(len(self.classes), self.in_dim)
        return PrototypeAnticipator(self.in_dim, int(self.extra["text"].shape[1]), initial, cfg.width, cfg.layers,
                                    cfg.heads, cfg.dropout, self.length, cfg.prototypes, cfg.readout_temperature)

    def _class_means(self, streams, samples) -> torch.Tensor:
        """Initial visual prototypes: each trained class's mean (standardised) feature over its training rows."""
        total, count = np.zeros((len(self.classes), self.in_dim)), np.zeros(len(self.classes))
        position = {int(c): i for i, c in enumerate(self.classes)}
        for index in sorted({s.stream for s in samples}):
            stream = streams[index]
            rows = standardised(stream.features, self.scaling)
            for c, i in position.items():
                here = stream.labels == c
                total[i] += rows[here].sum(axis=0)
                count[i] += here.sum()
        return torch.from_numpy((total / np.maximum(count, 1)[:, None]).astype(np.float32))

    def _fit(self, streams, samples, prototypes, after_epoch) -> None:
        cfg = self.config
        text = unit(torch.from_numpy(prototypes.subset(self.classes).vectors).float())
        self.extra = {"text": text, "similarity": text @ text.T}
        weights = {"feature": cfg.feature_weight, "semantic": cfg.semantic_weight,
                   "regulariser": cfg.regulariser_weight}
        with torch_threads(cfg.threads):
            torch.manual_seed(cfg.seed)
            self.model = self._network(self._class_means(streams, samples))

            def loss_of(x, valid, y):
                out = self.model(x, valid)
                return anticipation_loss(self.model, out, y, text.to(x.device), self.extra["similarity"].to(x.device),
                                         valid, weights)

            self._train(streams, samples, loss_of, after_epoch)

    def _scores(self, streams, samples, classes, prototypes) -> np.ndarray:
        if prototypes is None:
            raise ZsarError(f"{self.name}: scoring needs the class prototypes of the classes to score")
        missing = sorted(set(classes.tolist()) - set(prototypes.class_ids.tolist()))
        if missing:
            raise ZsarError(f"{self.name}: no class prototype for scored classes {missing}")
        text = unit(torch.from_numpy(prototypes.subset(classes).vectors).float())
        if text.shape[1] != self.extra["text"].shape[1]:
            raise ZsarError(f"{self.name}: class prototypes of dimension {text.shape[1]}; the head was fitted on "
                            f"{self.extra['text'].shape[1]}-d text")
        logits = self._eval_batches(streams, samples, lambda x, valid: self.model.scale()
                                    * self.model(x, valid)["query"] @ text.to(x.device).T)
        return torch.log_softmax(logits, dim=1).cpu().numpy()


ANTICIPATION_HEADS: dict[str, type[AnticipationHead]] = {
    h.name: h for h in (LastSegmentHead, SuccessorHead, PooledLinearHead, SGEARHead)}


def make_anticipation_head(name: str, params: dict | None = None) -> AnticipationHead:
    if name not in ANTICIPATION_HEADS:
        raise ZsarError(f"unknown anticipation head {name!r}; choose from {sorted(ANTICIPATION_HEADS)}")
    return ANTICIPATION_HEADS[name](build_config(AnticipationHeadConfig, params or {}, f"anticipation head {name}"))

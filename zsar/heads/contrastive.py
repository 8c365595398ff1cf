"""Contrastive head: a projection of the cached feature into text space trained with InfoNCE against class text,
the shared core of SMIE, PURLS and STAR on frozen features.

On a standardised feature v: q = normalise(P(v)), P a linear map (or one hidden GELU layer with dropout,
`hidden > 0`) into the text space. Logits are exp(s) * cos(q, t) with a learnable log-scale s (CLIP's learnable
temperature, starting at 1 / `init_temperature`, clamped at 100). The loss, over each mini-batch:
- feature -> text: with `views_as_positives`, every text view of the sample's class (prompts, description,
  motion, paraphrases: the views of an ensemble prototype) is a positive among all views of all seen classes
  (multi-positive InfoNCE, -log sum_pos exp / sum_all exp); otherwise cross-entropy against the class vectors;
- text -> feature (`symmetric`): every seen class present in the batch, through each of its text anchors, picks
  its own samples out of the batch's samples (the CLIP direction; several positives when the batch holds several
  samples of the class).
Zero-shot scoring compares q with the class vectors (the views' weighted mean) at the learned temperature.
Only seen-class features and text are used in training. The protocol chooses the number of epochs on the
validation problem (`epoch_selection`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.base import Head
from zsar.heads.configs import ContrastiveConfig
from zsar.heads.minibatch import train_minibatches
from zsar.heads.torch_device import training_device

MAX_LOG_SCALE = math.log(100)


def nce_terms(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Per row (the last axis) -log(sum of exp over the row's positives / sum of exp over the row); `positive` is a
    boolean mask of the logits' shape with at least one positive per row."""
    every = torch.logsumexp(logits, dim=-1)
    positives = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=-1)
    return every - positives


def multi_positive_nce(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """The mean of `nce_terms` over the rows of [rows, K] logits."""
    return nce_terms(logits, positive).mean()


def contrastive_loss(queries: torch.Tensor, labels: torch.Tensor, views: torch.Tensor, scale: torch.Tensor,
                     views_as_positives: bool, symmetric: bool) -> torch.Tensor:
    """InfoNCE of unit queries [B, D] with class positions `labels` [B] against unit text `views` [V, C, D]
    (V = 1: the class vectors), logits scaled by `scale`."""
    v, c, _ = views.shape
    logits = scale * torch.einsum("bd,vcd->bvc", queries, views)  # [B, V, C]
    own = F.one_hot(labels, c).bool()  # [B, C]
    if views_as_positives:
        loss = multi_positive_nce(logits.reshape(len(queries), v * c), own[:, None, :].expand(-1, v, -1).reshape(
            len(queries), v * c))
    else:
        loss = F.cross_entropy(logits.mean(1), labels)
    if not symmetric:
        return loss
    present = torch.unique(labels)
    anchors = logits[:, :, present].permute(1, 2, 0).reshape(-1, len(queries))  # [V * classes, B]
    owners = (labels[None, :] == present[:, None]).expand(v, -1, -1).reshape(-1, len(queries))
    return (loss + multi_positive_nce(anchors, owners)) / 2


class ContrastiveHead(Head):
    name = "contrastive"
    Config = ContrastiveConfig
    epoch_selection = True  # fit() reports every epoch to a monitor; the protocol picks `epochs` on validation
    search_space: dict = {}  # the temperature is learned; the epoch count is chosen on validation

    def fit(self, features, labels, prototypes: ClassPrototypes, seed: int = 0,
            monitor: Callable[[Head], object] | None = None) -> dict:
        cfg = self.config
        device = training_device(cfg.device, self.name)
        x, y = self._training_tensors(features, labels, prototypes, device)
        net, log_scale = self.initial_model(x.shape[1], prototypes.dim, seed)
        net, log_scale = net.to(device), torch.nn.Parameter(log_scale.detach().to(device))
        views = torch.from_numpy(self.training_views(prototypes)).to(device)

        def batch_loss(batch):
            hidden = net["trunk"](x[batch])
            if cfg.hidden:
                hidden = F.dropout(hidden, cfg.dropout, training=True)
            queries = F.normalize(net["out"](hidden), dim=1)
            return contrastive_loss(queries, y[batch], views, log_scale.clamp(max=MAX_LOG_SCALE).exp(),
                                    cfg.views_as_positives, cfg.symmetric)

        def after_epoch(epoch: int) -> None:
            if monitor is not None:
                self._store(net, log_scale)
                monitor(self)

        groups = [{"params": list(net.parameters()), "weight_decay": cfg.weight_decay},
                  {"params": [log_scale], "weight_decay": 0.0}]
        loss_value = train_minibatches(groups, batch_loss, x.shape[0], cfg.epochs, cfg.batch_size, cfg.lr, seed,
                                       device, after_epoch)
        if not np.isfinite(loss_value):
            raise ZsarError("contrastive: training diverged (loss is NaN); lower lr")
        self._store(net, log_scale)
        return {"final_loss": loss_value, "learned_temperature": self.temperature, "text_views": int(views.shape[0])}

    def initial_model(self, feature_dim: int, text_dim: int, seed: int) -> tuple[torch.nn.ModuleDict, torch.Tensor]:
        """The network and log-scale a fit with `seed` starts from (torch's global generator seeded with `seed`, on
        the CPU): `trunk` (a hidden GELU layer, or the identity) then `out`, the projection into text space."""
        torch.manual_seed(seed)
        width = self.config.hidden or feature_dim
        trunk = torch.nn.Sequential(torch.nn.Linear(feature_dim, width), torch.nn.GELU()) if self.config.hidden \
            else torch.nn.Identity()
        net = torch.nn.ModuleDict({"trunk": trunk, "out": torch.nn.Linear(width, text_dim)})
        return net, torch.tensor(math.log(1 / self.config.init_temperature))

    def training_views(self, prototypes: ClassPrototypes) -> np.ndarray:
        """[V, C, D_t] the text training contrasts with: every view of the classes (`views_as_positives`), else the
        class vectors as one view."""
        return np.ascontiguousarray(prototypes.text_views() if self.config.views_as_positives
                                    else prototypes.vectors[None])

    def _store(self, net: torch.nn.ModuleDict, log_scale: torch.Tensor) -> None:
        weights = {"weight": net["out"].weight, "bias": net["out"].bias, "log_scale": log_scale}
        if self.config.hidden:
            weights.update(hidden_weight=net["trunk"][0].weight, hidden_bias=net["trunk"][0].bias)
        self.set_trained(weights)

    def set_trained(self, weights: dict[str, torch.Tensor]) -> None:
        """Keep trained weights (`weight`, `bias`, `log_scale`, with a hidden layer `hidden_weight` and `hidden_bias`)
        in the state beside the standardiser; the log-scale is kept clamped, as training used it."""
        as_np = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
        kept = {k: v for k, v in self.state.items() if k.startswith("feature_")}
        self.state = {**kept, **{k: as_np(v) for k, v in weights.items() if k != "log_scale"},
                      "log_scale": as_np(weights["log_scale"].clamp(max=MAX_LOG_SCALE)).reshape(1)}

    @property
    def temperature(self) -> float:
        return float(np.exp(-self.state["log_scale"][0]))

    def project(self, features: np.ndarray) -> np.ndarray:
        x = self._standardise(features)
        if "hidden_weight" in self.state:
            x = F.gelu(torch.from_numpy(x @ self.state["hidden_weight"].T + self.state["hidden_bias"])).numpy()
        return x @ self.state["weight"].T + self.state["bias"]

    def class_vectors(self, prototypes: ClassPrototypes) -> np.ndarray:
        if prototypes.dim != self.state["weight"].shape[0]:
            raise ZsarError(f"text prototypes are {prototypes.dim}-d; the head projects to "
                            f"{self.state['weight'].shape[0]}-d")
        return prototypes.vectors

"""The small torch heads as stacked models: M members' parameters on a leading axis, with the loss of every member
in one pass (batched matrix products), for `zsar.heads.batched_runs`.

Each member starts from its head's own initialisation with its seed (`initial_projection`,
`ContrastiveHead.initial_model`), trains against its own classes' text (members may have different class sets:
the classes are padded and masked) and ends as an ordinary fitted head of its class (`member_head`). A batch is
[M, W] samples, W the widest member batch, with a mask of the real samples: a member's loss is the mean over its
real samples, as the head's own loss is over its batch.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from zsar.features.prototypes import ClassPrototypes
from zsar.heads.base import Head
from zsar.heads.contrastive import MAX_LOG_SCALE, ContrastiveHead, nce_terms
from zsar.heads.linear_projection import LinearProjectionHead, initial_projection
from zsar.heads.text_views import TrainingText


def stack_classes(arrays: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member class text [..., C_m, D_t] (classes on the second-to-last axis) padded with zero vectors to the
    most classes, stacked [M, ..., C_max, D_t], and the mask of real classes [M, C_max]."""
    most = max(a.shape[-2] for a in arrays)
    padded = [np.concatenate([a, np.zeros((*a.shape[:-2], most - a.shape[-2], a.shape[-1]), a.dtype)], axis=-2)
              for a in arrays]
    mask = np.array([[c < a.shape[-2] for c in range(most)] for a in arrays])
    return torch.from_numpy(np.stack(padded).astype(np.float32)).to(device), torch.from_numpy(mask).to(device)


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[M] the mean of each row of `values` [M, W] over its `valid` entries (0 for a row without one)."""
    return torch.where(valid, values, 0).sum(1) / valid.sum(1).clamp(min=1)


class StackedModel:
    """Base. A subclass is built from the members' heads (their configs), prototypes and seeds, the feature width
    and the device, and sets `params` (leaf tensors [M, ...]) and `decayed` (the ones that get the member's weight
    decay); `losses(x, y, valid)` gives the [M] losses of a batch of standardised features x [M, W, D] with label
    positions y [M, W]."""

    head_cls: ClassVar[type[Head]]
    shared_settings: ClassVar[tuple[str, ...]] = ("device",)  # settings that shape the model: equal in every member

    def __init__(self):
        self.params: dict[str, torch.Tensor] = {}
        self.decayed: dict[str, bool] = {}

    @classmethod
    def unsupported(cls, head: Head, prototypes: ClassPrototypes) -> str | None:
        """Why a member with these settings cannot train stacked (None: it can)."""
        return None

    def _stack(self, name: str, tensors: list[torch.Tensor], device, decayed: bool) -> None:
        self.params[name] = torch.stack([t.detach() for t in tensors]).to(device).requires_grad_()
        self.decayed[name] = decayed

    def losses(self, x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def member_head(self, head: Head, m: int) -> Head:
        """A fitted head of member `m` in the present state (`head`: the member's head, holding its standardiser)."""
        raise NotImplementedError

    def fit_info(self, head: Head, prototypes: ClassPrototypes, seed: int, final_loss: float) -> dict:
        """What the head's own `fit` returns."""
        raise NotImplementedError

    def _fresh(self, head: Head) -> Head:
        copy = type(head)(head.config)
        copy.state = {k: v for k, v in head.state.items() if k.startswith("feature_")}
        return copy


class StackedLinearProjection(StackedModel):
    head_cls = LinearProjectionHead

    def __init__(self, heads: list[Head], prototypes: list[ClassPrototypes], seeds: list[int], feature_dim: int,
                 device):
        super().__init__()
        layers = [initial_projection(feature_dim, p.dim, seed) for p, seed in zip(prototypes, seeds)]
        self._stack("weight", [layer.weight for layer in layers], device, decayed=True)
        self._stack("bias", [layer.bias for layer in layers], device, decayed=True)
        texts = [TrainingText(p, h.config.text_views, "cpu", seed).class_matrix().numpy()
                 for h, p, seed in zip(heads, prototypes, seeds)]
        self.classes, self.class_mask = stack_classes(texts, device)  # [M, C, D_t]
        self.temperature = torch.tensor([h.config.temperature for h in heads], device=device).view(-1, 1, 1)

    @classmethod
    def unsupported(cls, head, prototypes):
        mode = TrainingText(prototypes, head.config.text_views, "cpu", 0).mode
        return None if mode == "mean" else f"text_views = {mode!r} (batched training trains 'mean' only)"

    def losses(self, x, y, valid):
        p = self.params
        queries = F.normalize(torch.baddbmm(p["bias"][:, None, :], x, p["weight"].transpose(1, 2)), dim=-1)
        logits = (torch.bmm(queries, self.classes.transpose(1, 2)) / self.temperature).masked_fill(
            ~self.class_mask[:, None, :], float("-inf"))
        per_sample = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)
        return masked_mean(per_sample, valid)

    def member_head(self, head, m):
        copy = self._fresh(head)
        copy.set_projection(self.params["weight"][m], self.params["bias"][m])
        return copy

    def fit_info(self, head, prototypes, seed, final_loss):
        return {"final_loss": final_loss,
                **head._keep_view_weights(TrainingText(prototypes, head.config.text_views, "cpu", seed))}


class StackedContrastive(StackedModel):
    head_cls = ContrastiveHead
    shared_settings = ("device", "hidden", "symmetric", "views_as_positives")

    def __init__(self, heads: list[Head], prototypes: list[ClassPrototypes], seeds: list[int], feature_dim: int,
                 device):
        super().__init__()
        nets = [h.initial_model(feature_dim, p.dim, seed) for h, p, seed in zip(heads, prototypes, seeds)]
        if heads[0].config.hidden:
            self._stack("hidden_weight", [net["trunk"][0].weight for net, _ in nets], device, decayed=True)
            self._stack("hidden_bias", [net["trunk"][0].bias for net, _ in nets], device, decayed=True)
        self._stack("weight", [net["out"].weight for net, _ in nets], device, decayed=True)
        self._stack("bias", [net["out"].bias for net, _ in nets], device, decayed=True)
        self._stack("log_scale", [scale for _, scale in nets], device, decayed=False)
        self.views, self.class_mask = stack_classes([h.training_views(p) for h, p in zip(heads, prototypes)], device)
        self.config = heads[0].config

    @classmethod
    def unsupported(cls, head, prototypes):
        if head.config.hidden and head.config.dropout:
            return "a hidden layer with dropout (its masks come from torch's global generator, run by run)"
        return None

    def losses(self, x, y, valid):
        p = self.params
        if "hidden_weight" in p:
            x = F.gelu(torch.baddbmm(p["hidden_bias"][:, None, :], x, p["hidden_weight"].transpose(1, 2)))
        queries = F.normalize(torch.baddbmm(p["bias"][:, None, :], x, p["weight"].transpose(1, 2)), dim=-1)
        scale = p["log_scale"].clamp(max=MAX_LOG_SCALE).exp().view(-1, 1, 1, 1)
        logits = scale * torch.einsum("mbd,mvcd->mbvc", queries, self.views)  # [M, W, V, C]
        return stacked_contrastive_loss(logits, y, valid, self.class_mask, self.config.views_as_positives,
                                        self.config.symmetric)

    def member_head(self, head, m):
        copy = self._fresh(head)
        copy.set_trained({name: value[m] for name, value in self.params.items()})
        return copy

    def fit_info(self, head, prototypes, seed, final_loss):
        return {"final_loss": final_loss, "learned_temperature": head.temperature,
                "text_views": int(head.training_views(prototypes).shape[0])}


def stacked_contrastive_loss(logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, class_mask: torch.Tensor,
                             views_as_positives: bool, symmetric: bool) -> torch.Tensor:
    """[M] `contrastive_loss` of every member from its scaled logits [M, W, V, C], over the member's real samples
    (`valid` [M, W]) and real classes (`class_mask` [M, C])."""
    m, w, v, c = logits.shape
    own = F.one_hot(labels, c).bool()  # [M, W, C]
    forward = logits.masked_fill(~class_mask[:, None, None, :], float("-inf"))
    if views_as_positives:
        terms = nce_terms(forward.reshape(m, w, v * c), own[:, :, None, :].expand(-1, -1, v, -1).reshape(m, w, v * c))
    else:
        terms = F.cross_entropy(forward.mean(2).flatten(0, 1), labels.flatten(), reduction="none").view(m, w)
    loss = masked_mean(terms, valid)
    if not symmetric:
        return loss
    # text -> features: each present class, through each view, picks its samples among the member's real samples
    lowest = torch.finfo(logits.dtype).min  # finite: a member without samples this step keeps finite gradients
    anchors = logits.permute(0, 2, 3, 1).masked_fill(~valid[:, None, None, :], lowest)  # [M, V, C, W]
    owners = (own & valid[:, :, None]).transpose(1, 2)  # [M, C, W]
    present = owners.any(-1)  # [M, C]
    positive = torch.where(present[:, :, None], owners, True)[:, None].expand(-1, v, -1, -1)
    back = torch.where(present[:, None, :], nce_terms(anchors, positive), 0).sum((1, 2))
    return (loss + back / (v * present.sum(1)).clamp(min=1)) / 2

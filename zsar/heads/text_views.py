"""Multi-semantic training: heads that train against class text can use several text vectors per class (the
views of an ensemble prototype, e.g. prompts, description, motion and paraphrases).

Modes (the heads' `text_views` setting):
- `mean`: the class vector only (the views' weighted mean, as the prototype file stores it); one view is the
  same as no views;
- `augment`: every sample, at every step, is trained against one view drawn for it with the ensemble's
  weights (text augmentation: the head must fit every description of its class, not one vector);
- `fused`: the views are separate channels mixed by learned softmax weights, starting from the ensemble's
  (MSF's fusion of label, action and motion descriptions); the learned weights are kept and make the class
  vectors at scoring time, from prototypes with the same views.
Scoring uses the class's mean vector, except `fused`, which uses its learned mixture of the same views.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes

VIEW_SEED_OFFSET = 0x5EED  # the view draws use their own generator: the mini-batch order stays that of `mean`


def view_probabilities(prototypes: ClassPrototypes) -> np.ndarray:
    """[V] the ensemble's weights of its views, normalised (equal when the file gives none)."""
    views = prototypes.text_views()
    weights = np.ones(len(views)) if prototypes.view_weights is None else np.asarray(prototypes.view_weights, float)
    return (weights / weights.sum()).astype(np.float32)


def draw_views(probabilities: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """[n] view indices drawn with the ensemble's weights (CPU generator: the same draws on every device)."""
    return torch.multinomial(probabilities, n, replacement=True, generator=generator)


class TrainingText(torch.nn.Module):
    """The seen classes' text during training: `class_matrix()` [C, D] for a whole-batch softmax, `logits(q)` for
    unit queries (in `augment` mode against each sample's drawn view)."""

    def __init__(self, prototypes: ClassPrototypes, mode: str, device, seed: int):
        super().__init__()
        views = prototypes.text_views()
        self.mode = mode if len(views) > 1 else "mean"
        self.register_buffer("views", torch.from_numpy(np.ascontiguousarray(views)).to(device))
        self.register_buffer("mean", torch.from_numpy(prototypes.vectors).to(device))
        self.probabilities = torch.from_numpy(view_probabilities(prototypes))
        # `fused` starts from the ensemble's own mixture
        self.view_logits = torch.nn.Parameter(torch.log(self.probabilities).to(device)) if self.mode == "fused" \
            else None
        self.generator = torch.Generator().manual_seed(seed + VIEW_SEED_OFFSET)

    @property
    def num_views(self) -> int:
        return int(self.views.shape[0])

    def class_matrix(self) -> torch.Tensor:
        """[C, D] unit class vectors: the mean, or the learned mixture (`fused`)."""
        if self.mode != "fused":
            return self.mean
        weights = torch.softmax(self.view_logits, dim=0)
        return F.normalize(torch.einsum("v,vcd->cd", weights, self.views), dim=1)

    def logits(self, queries: torch.Tensor) -> torch.Tensor:
        """[B, C] dot products of unit queries with the class text (`augment`: each sample's drawn view)."""
        if self.mode != "augment":
            return queries @ self.class_matrix().T
        every = (queries @ self.views.reshape(-1, self.views.shape[2]).T).view(len(queries), self.num_views, -1)
        drawn = draw_views(self.probabilities, len(queries), self.generator).to(queries.device)
        return every[torch.arange(len(queries), device=queries.device), drawn]

    def learned_weights(self) -> np.ndarray | None:
        """The `fused` mixture weights over the views, to keep with the head (None otherwise)."""
        if self.view_logits is None:
            return None
        return torch.softmax(self.view_logits.detach(), dim=0).cpu().numpy().astype(np.float32)


def scoring_vectors(prototypes: ClassPrototypes, view_weights: np.ndarray | None) -> np.ndarray:
    """The class vectors a head scores with: the prototypes' vectors, or (a head trained `fused`) its learned
    mixture of their views, which the scoring prototypes must then have (the same ensemble)."""
    if view_weights is None:
        return prototypes.vectors
    if prototypes.views is None or len(prototypes.views) != len(view_weights):
        have = "no views" if prototypes.views is None else f"{len(prototypes.views)} views"
        raise ZsarError(f"the head learned a mixture of {len(view_weights)} text views (text_views = 'fused'), but "
                        f"prototype variant {prototypes.variant!r} has {have}: score it with prototypes of the "
                        "ensemble it was trained with")
    mixed = np.einsum("v,vcd->cd", view_weights, prototypes.views)
    return (mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)).astype(np.float32)

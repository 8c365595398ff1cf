"""Linear projection head: a learned map from feature space to text space, trained on seen classes.

logits = cos(W x + b, t_c) / temperature, trained with cross-entropy over the seen classes'
text prototypes (features standardised with training statistics). Zero-shot inference compares
projected features with any classes' prototypes. The simplest learned zero-shot head: the bar
the later heads must beat.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.base import Head
from zsar.heads.configs import LinearProjectionConfig
from zsar.heads.minibatch import train_minibatches
from zsar.heads.text_views import TrainingText, scoring_vectors
from zsar.heads.torch_device import training_device


def initial_projection(feature_dim: int, text_dim: int, seed: int) -> torch.nn.Linear:
    """The projection a fit with `seed` starts from (torch's global generator seeded with `seed`, on the CPU)."""
    torch.manual_seed(seed)
    return torch.nn.Linear(feature_dim, text_dim)


class LinearProjectionHead(Head):
    name = "linear_projection"
    Config = LinearProjectionConfig
    # cosine logits do not change when W and b are scaled together, so AdamW's decay (at most 1.3 % shrink over the
    # default 150 epochs) barely moves the model: searching it gave the same choice and the same test top-1 on
    # the demo's development splits (seeds 4-10) at three times the cost. The temperature is what matters.
    search_space = {"temperature": [0.05, 0.1]}

    def fit(self, features, labels, prototypes: ClassPrototypes, seed: int = 0) -> dict:
        cfg = self.config
        device = training_device(cfg.device, self.name)
        x, y = self._training_tensors(features, labels, prototypes, device)
        layer = initial_projection(x.shape[1], prototypes.dim, seed).to(device)
        text = TrainingText(prototypes, cfg.text_views, device, seed)

        def batch_loss(batch):
            return F.cross_entropy(text.logits(F.normalize(layer(x[batch]), dim=1)) / cfg.temperature, y[batch])

        groups = [{"params": list(layer.parameters()), "weight_decay": cfg.weight_decay},
                  {"params": list(text.parameters()), "weight_decay": 0.0}]
        loss_value = train_minibatches(groups, batch_loss, x.shape[0], cfg.epochs, cfg.batch_size, cfg.lr, seed,
                                       device)
        if not np.isfinite(loss_value):
            raise ZsarError("linear_projection: training diverged (loss is NaN); lower lr")
        self.set_projection(layer.weight, layer.bias)
        return {"final_loss": loss_value, **self._keep_view_weights(text)}

    def set_projection(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Keep a trained projection (weight [D_t, D], bias [D_t]) in the state."""
        self.state["weight"] = weight.detach().cpu().numpy().astype(np.float32)
        self.state["bias"] = bias.detach().cpu().numpy().astype(np.float32)

    def project(self, features: np.ndarray) -> np.ndarray:
        return self._standardise(features) @ self.state["weight"].T + self.state["bias"]

    def class_vectors(self, prototypes: ClassPrototypes) -> np.ndarray:
        if prototypes.dim != self.state["weight"].shape[0]:
            raise ZsarError(f"text prototypes are {prototypes.dim}-d; the head projects to "
                            f"{self.state['weight'].shape[0]}-d")
        return scoring_vectors(prototypes, self.state.get("view_weights"))

"""SA-DVAE's zero-shot classifier (a linear map latent -> classes, full-batch Adam on sampled text latents),
trained for several latent sets at once.

The protocol chooses SA-DVAE's epoch on validation, which needs one such classifier per epoch: 60 epochs of
300 Adam steps each took 14.5 of a 16.9 s protocol on the demo. Here the K classifiers are one stacked model
(weights [K, C, ls]): the cross-entropy gradient is written out (softmax minus one-hot, through the ReLU when
the released code's quirk is on) and Adam's update is applied to the stack, so K classifiers cost one loop of
`steps` batched steps and no autograd. Each classifier starts from the same seeded initialisation
`train_latent_classifier` (zsar/heads/sadvae_model.py, the step-by-step reference) gives, and the tests check
both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which the reference uses
EPS = 1e-8


@dataclass
class LatentClassifiers:
    weight: torch.Tensor  # [K, C, ls]
    bias: torch.Tensor  # [K, C]
    relu_logits: bool

    def logits(self, k: int, latents: torch.Tensor) -> torch.Tensor:
        """Logits [N, C] of classifier `k` (with the ReLU when the released code's quirk is on)."""
        out = latents @ self.weight[k].T + self.bias[k]
        return torch.relu(out) if self.relu_logits else out


def _initial(latent: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    layer = nn.Linear(latent, num_classes)  # the reference's initialisation, drawn the same way
    return layer.weight.detach().clone(), layer.bias.detach().clone()


def train_latent_classifiers(samples: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int, lr: float,
                             relu_logits: bool, seed: int) -> LatentClassifiers:
    """K classifiers, one per latent set `samples[k]` ([K, M, ls]; every set has the labels `labels` [M]).
    The bias rides as a last weight column against a row of ones, so one product gives the logits and one
    the gradient of weights and bias; the one-hot is subtracted at the M label positions only."""
    k, m, latent = samples.shape
    w0, b0 = _initial(latent, num_classes, seed)
    params = torch.cat([w0, b0[:, None]], dim=1).expand(k, -1, -1).contiguous()  # [K, C, ls + 1]
    first, second = torch.zeros_like(params), torch.zeros_like(params)
    inputs = torch.cat([samples, torch.ones(k, m, 1, dtype=samples.dtype)], dim=2)  # [K, M, ls + 1]
    by_dim = inputs.transpose(1, 2).contiguous()  # [K, ls + 1, M]: class-major logits are the faster layout
    label_at = (labels * m + torch.arange(m)).expand(k, -1)  # positions of the labels in a [C * M] row
    with torch.no_grad():
        for step in range(1, steps + 1):
            logits = torch.bmm(params, by_dim)  # [K, C, M]
            active = logits > 0 if relu_logits else None
            if relu_logits:
                logits.relu_()
            delta = torch.softmax(logits, dim=1)  # d (sum of CE) / d logits = softmax - one-hot
            flat = delta.view(k, -1)
            flat.scatter_add_(1, label_at, torch.full(label_at.shape, -1.0, dtype=delta.dtype))
            if active is not None:
                delta.mul_(active)
            grad = torch.bmm(delta, inputs).div_(m)  # mean CE
            correction1, correction2 = 1 - BETAS[0] ** step, 1 - BETAS[1] ** step
            first.lerp_(grad, 1 - BETAS[0])
            second.mul_(BETAS[1]).addcmul_(grad, grad, value=1 - BETAS[1])
            denom = (second.sqrt() / correction2**0.5).add_(EPS)
            params.addcdiv_(first, denom, value=-lr / correction1)
    return LatentClassifiers(params[:, :, :latent].contiguous(), params[:, :, latent].contiguous(), relu_logits)

"""Pieces the VAE heads share (SA-DVAE, CADA-VAE, FS-VAE): the released codes' linear layer initialisation,
Gaussian encoders and decoders, the reparameterisation, the KL to the standard normal, sampling latents of class
texts for a latent classifier, and the outer training loop over epochs or cycles."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from zsar import progress


def linear(n_in: int, n_out: int) -> nn.Linear:
    """A linear layer initialised as in the released codes: Xavier-uniform with gain 0.5, zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight, gain=0.5)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """n_in -> hidden -> ReLU -> n_out, or one linear layer when `hidden` is 0."""
    if not hidden:
        return nn.Sequential(linear(n_in, n_out))
    return nn.Sequential(linear(n_in, hidden), nn.ReLU(), linear(hidden, n_out))


class GaussianEncoder(nn.Module):
    """x -> (optional `front` module) -> (optional hidden ReLU layer) -> separate linear maps to mu and logvar,
    as the released CADA-VAE / SynSE / FS-VAE encoders."""

    def __init__(self, n_in: int, hidden: int, latent: int, front: nn.Module | None = None):
        super().__init__()
        self.front = front if front is not None else nn.Identity()
        self.body = nn.Sequential(linear(n_in, hidden), nn.ReLU()) if hidden else nn.Identity()
        self.mu = linear(hidden or n_in, latent)
        self.logvar = linear(hidden or n_in, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.after_front(self.front(x))

    def after_front(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of an input that went through `front` already."""
        h = self.body(h)
        return self.mu(h), self.logvar(h)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor, log_scale: float = 0.5) -> torch.Tensor:
    """mu + noise * exp(log_scale * logvar): the standard deviation with `log_scale` 0.5; the released CADA-VAE's
    sampler scales by exp(logvar) (`log_scale` 1). `noise` is [B, dims] or, as in the released codes, [B, 1]."""
    return mu + noise * torch.exp(log_scale * logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma) || N(0, 1)) summed over dims, mean over the batch."""
    return -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))


def latent_noise(rows: int, dims: int, scalar: bool, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise [rows, dims], or [rows, 1] (one scalar per row, the released codes' sampler)."""
    return torch.randn(rows, 1 if scalar else dims, generator=generator)


def text_latent_samples(net, text: torch.Tensor, per_class: int, scalar_noise: bool, generator: torch.Generator,
                        log_scale: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` reparameterised text latents per class of `net.encode_text` (any object with it):
    samples [C * per_class, ls], labels [C * per_class] (class positions, class-major)."""
    with torch.no_grad():
        mu, logvar = net.encode_text(text)
    c, ls = mu.shape
    noise = torch.randn(c, per_class, 1 if scalar_noise else ls, generator=generator)
    z = reparameterise(mu[:, None], logvar[:, None], noise, log_scale)
    return z.reshape(c * per_class, ls), torch.arange(c).repeat_interleave(per_class)


def run_rounds(rounds: int, run_round: Callable[[int], torch.Tensor],
               after_round: Callable[[int, float], None] | None = None) -> float:
    """Run `run_round(r)` for r = 0 .. rounds - 1 (an epoch or a cycle; it returns its last loss); after each, report
    the progress and call `after_round(r, loss)`. Stops at a loss that is not finite. Returns the last loss."""
    value = math.nan
    for r in range(rounds):
        value = float(run_round(r).detach())  # (read once a round: a read per step would wait for an accelerator)
        if not math.isfinite(value):
            return value
        progress.epoch(r + 1, rounds)
        if after_round is not None:
            after_round(r, value)
    return value

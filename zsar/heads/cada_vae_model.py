"""CADA-VAE's networks, loss, warm-ups and training loop (the head is zsar/heads/cada_vae.py).

Two VAEs (features, class text) with one hidden ReLU layer in every encoder and decoder (width 0: linear) share a
latent space. Per mini-batch: L1 reconstruction summed over batch and dims, + beta(ep) KL of both posteriors
(summed), + gamma(ep) cross-reconstruction (each modality decoded from the OTHER modality's latent), + delta(ep)
distribution alignment (2-Wasserstein distance between the two diagonal Gaussians, summed over the batch).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from zsar.heads.vae_parts import GaussianEncoder, gaussian_kl, latent_noise, mlp, reparameterise, run_rounds


class CADANetwork(nn.Module):
    def __init__(self, feature_dim: int, text_dim: int, latent: int, feature_hidden: int, text_hidden: int,
                 feature_decoder_hidden: int, text_decoder_hidden: int):
        super().__init__()
        self.arch = (feature_dim, text_dim, latent, feature_hidden, text_hidden, feature_decoder_hidden,
                     text_decoder_hidden)
        self.latent = latent
        self.feature_encoder = GaussianEncoder(feature_dim, feature_hidden, latent)
        self.text_encoder = GaussianEncoder(text_dim, text_hidden, latent)
        self.feature_decoder = mlp(latent, feature_decoder_hidden, feature_dim)
        self.text_decoder = mlp(latent, text_decoder_hidden, text_dim)

    def encode_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.feature_encoder(x)

    def encode_text(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text_encoder(a)


def warmup(epoch: int, window, weight: float) -> float:
    """0 up to epoch `window[0]`, linear to `weight` at `window[1]`, `weight` after (0-based epochs)."""
    start, end = window
    return weight * min(max((epoch - start) / (end - start), 0.0), 1.0)


@dataclass(frozen=True)
class Weights:
    kl: float  # beta
    cross: float  # gamma
    distribution: float  # delta

    @staticmethod
    def at(epoch: int, cfg) -> Weights:
        return Weights(warmup(epoch, cfg.kl_warmup, cfg.beta), warmup(epoch, cfg.cross_warmup, cfg.cross_weight),
                       warmup(epoch, cfg.distribution_warmup, cfg.distribution_weight))


@dataclass
class Encoded:
    mu_x: torch.Tensor
    logvar_x: torch.Tensor
    mu_a: torch.Tensor
    logvar_a: torch.Tensor
    z_x: torch.Tensor
    z_a: torch.Tensor


def encode_pair(net: CADANetwork, x, a, noise_x, noise_a, log_scale: float = 0.5) -> Encoded:
    mu_x, lv_x = net.encode_features(x)
    mu_a, lv_a = net.encode_text(a)
    return Encoded(mu_x, lv_x, mu_a, lv_a, reparameterise(mu_x, lv_x, noise_x, log_scale),
                   reparameterise(mu_a, lv_a, noise_a, log_scale))


def l1_sum(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target).abs().sum()


def distribution_alignment(mu_x, logvar_x, mu_a, logvar_a) -> torch.Tensor:
    """Sum over the batch of the 2-Wasserstein distance between N(mu_x, sigma_x) and N(mu_a, sigma_a), diagonal:
    sqrt(||mu_x - mu_a||^2 + ||sigma_x - sigma_a||^2) per sample."""
    sigma_gap = torch.exp(0.5 * logvar_x) - torch.exp(0.5 * logvar_a)
    return torch.sqrt((mu_x - mu_a).pow(2).sum(1) + sigma_gap.pow(2).sum(1)).sum()


def cross_reconstruction(net: CADANetwork, x, a, z_x, z_a) -> torch.Tensor:
    """Features decoded from the text latent and text decoded from the feature latent (L1, summed)."""
    return l1_sum(net.feature_decoder(z_a), x) + l1_sum(net.text_decoder(z_x), a)


def cada_loss(net: CADANetwork, x, a, enc: Encoded, w: Weights) -> torch.Tensor:
    reconstruction = l1_sum(net.feature_decoder(enc.z_x), x) + l1_sum(net.text_decoder(enc.z_a), a)
    kl = (gaussian_kl(enc.mu_x, enc.logvar_x) + gaussian_kl(enc.mu_a, enc.logvar_a)) * x.shape[0]  # summed
    return (reconstruction + w.kl * kl + w.cross * cross_reconstruction(net, x, a, enc.z_x, enc.z_a)
            + w.distribution * distribution_alignment(enc.mu_x, enc.logvar_x, enc.mu_a, enc.logvar_a))


def train_cada(net: CADANetwork, features: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, cfg,
               generator: torch.Generator, after_epoch: Callable[[int, float], None] | None = None) -> float:
    """Train in place on features [N, D] with class text [C, Dt] and label positions [N] for `cfg`'s epochs (as
    released: ceil(N / batch) steps an epoch, each on a fresh random batch; Adam with amsgrad). Returns the last
    loss (NaN when training diverged); `after_epoch(epoch, loss)` runs after every epoch. `generator` is a CPU
    generator whatever the device, so a seed gives the same draws everywhere."""
    n, device = features.shape[0], features.device
    batch = min(cfg.setting("batch_size"), n)
    scalar, log_scale = cfg.reference_quirks, (1.0 if cfg.reference_quirks else 0.5)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.setting("lr"), amsgrad=True, fused=True)

    def epoch(number: int) -> torch.Tensor:
        w = Weights.at(number, cfg)
        for _ in range(math.ceil(n / batch)):
            idx = torch.randperm(n, generator=generator)[:batch].to(device)
            noise_x = latent_noise(batch, net.latent, scalar, generator).to(device)
            noise_a = latent_noise(batch, net.latent, scalar, generator).to(device)
            x, a = features[idx], text[labels[idx]]
            loss = cada_loss(net, x, a, encode_pair(net, x, a, noise_x, noise_a, log_scale), w)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        return loss

    return run_rounds(cfg.setting("epochs"), epoch, after_epoch)

"""FS-VAE's networks, schedules, loss and training loop (the head is zsar/heads/fs_vae.py).

Linear VAEs for features and class text sharing a latent space, each encoder behind a learnable re-weighting of
DCT bands of its input (`BandReweighting`, zsar/heads/fs_vae_dct.py). Training runs `cycles` cycles of `cycle`
iterations, one random batch each; the KL weights and the alignment term restart every cycle (cyclical annealing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zsar.heads.fs_vae_dct import BandReweighting
from zsar.heads.vae_parts import GaussianEncoder, gaussian_kl, latent_noise, linear, reparameterise, run_rounds


class FSVAENetwork(nn.Module):
    def __init__(self, feature_dim: int, text_dim: int, latent: int, bands: int, frequency: int, feature_relu: int,
                 text_relu: int, band_strength: float = 0.3):
        super().__init__()
        self.arch = (feature_dim, text_dim, latent, bands, int(frequency), int(feature_relu), int(text_relu))
        self.latent, self.feature_relu, self.text_relu = latent, bool(feature_relu), bool(text_relu)

        def front(dim: int) -> nn.Module | None:
            return BandReweighting(dim, bands, band_strength) if frequency else None

        self.feature_encoder = GaussianEncoder(feature_dim, 0, latent, front(feature_dim))
        self.text_encoder = GaussianEncoder(text_dim, 0, latent, front(text_dim))
        self.feature_decoder = linear(latent, feature_dim)
        self.text_decoder = linear(latent, text_dim)

    def encode_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.feature_encoder(x)

    def encode_text(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text_encoder(t)

    def decode_features(self, z: torch.Tensor) -> torch.Tensor:
        out = self.feature_decoder(z)
        return F.relu(out) if self.feature_relu else out

    def decode_text(self, z: torch.Tensor) -> torch.Tensor:
        out = self.text_decoder(z)
        return F.relu(out) if self.text_relu else out


@dataclass(frozen=True)
class CycleSchedule:
    """The released per-iteration weights for cycles of `length` iterations. The release has them for 1700 (KL from
    iteration 1000 of a cycle over 3000, alignment after 1400) and 1900 (after 1500); another length scales these
    constants by length / 1700 when it is under 1800, else by length / 1900, so both released lengths are exact."""

    length: int

    def constants(self) -> tuple[float, float, float]:
        """(KL start, KL span, alignment start) in iterations from the cycle's start."""
        reference, cross = (1700, 1400) if self.length < 1800 else (1900, 1500)
        return 1000 * self.length / reference, 3000 * self.length / reference, cross * self.length / reference

    def at(self, e: int) -> tuple[float, float, bool]:
        """(k1, k2, alignment on) at global iteration e: k1 = max(0, 0.1 (e - (s + 1000)) / 3000), k2 the same
        from s + E_cr and only from the third cycle (c > 1), alignment for e > s + E_cr (s = the cycle's start)."""
        warm, span, cross = self.constants()
        c = e // self.length
        s = c * self.length
        k1 = max(0.0, 0.1 * (e - (s + warm)) / span)
        k2 = max(0.0, 0.1 * (e - (s + cross)) / span) if c > 1 else 0.0
        return k1, k2, e > s + cross


def calibrated_alignment(t, t_from_s, s, s_from_t, perm: torch.Tensor, lam: float) -> tuple[torch.Tensor, ...]:
    """(L_t, L_s): L_t = mean sigmoid(-(d_neg - d_pos) / lam) with d_pos = ||t_i - t_from_s_i||^2 and d_neg =
    ||t_i - t_from_s_perm(i)||^2; L_s = mean sigmoid(||s_i - s_from_t_i||^2 / lam)."""
    d_pos = (t - t_from_s).pow(2).sum(1)
    d_neg = (t - t_from_s[perm]).pow(2).sum(1)
    return torch.sigmoid(-(d_neg - d_pos) / lam).mean(), torch.sigmoid((s - s_from_t).pow(2).sum(1) / lam).mean()


@dataclass(frozen=True)
class CycleDraws:
    """The random numbers of one cycle, drawn up front from the CPU generator (the same draws on every device)."""

    idx: torch.Tensor  # [L, B] sample rows of every iteration
    noise_s: torch.Tensor  # [L, B, z] (or [L, B, 1]: one scalar per sample)
    noise_t: torch.Tensor
    perm: torch.Tensor  # [L, B] the negatives of the calibrated alignment

    @staticmethod
    def draw(length: int, n: int, batch: int, latent: int, scalar: bool, generator: torch.Generator) -> CycleDraws:
        idx = torch.stack([torch.randperm(n, generator=generator)[:batch] for _ in range(length)])
        noise = latent_noise(length * batch * 2, latent, scalar, generator).view(2, length, batch, -1)
        perm = torch.stack([torch.randperm(batch, generator=generator) for _ in range(length)])
        return CycleDraws(idx, noise[0], noise[1], perm)

    def to(self, device: torch.device) -> CycleDraws:
        return CycleDraws(*(t.to(device) for t in (self.idx, self.noise_s, self.noise_t, self.perm)))


def loss_from_posteriors(net: FSVAENetwork, s, t, posteriors: tuple[torch.Tensor, ...], noise_s, noise_t, perm,
                         weights: tuple[float, float, bool], cfg) -> torch.Tensor:
    """R + k1 KL_s + k2 KL_t + the alignment: lam * alpha * (L_t + L_s) after E_cr (`calibrated`), or the
    features' and text's cross-reconstruction MSE with weight 1 after E_cr (`cross_reconstruction`).
    `posteriors` = (mu_s, logvar_s, mu_t, logvar_t) of the batch; `weights` = `CycleSchedule.at(e)`."""
    (k1, k2, aligned), (smu, slv, tmu, tlv) = weights, posteriors
    sz, tz = reparameterise(smu, slv, noise_s), reparameterise(tmu, tlv, noise_t)
    loss = F.mse_loss(net.decode_features(sz), s) + F.mse_loss(net.decode_text(tz), t)
    loss = loss + k1 * gaussian_kl(smu, slv) + k2 * gaussian_kl(tmu, tlv)
    t_from_s, s_from_t = net.decode_text(sz), net.decode_features(tz)
    if cfg.alignment == "calibrated":
        l_t, l_s = calibrated_alignment(t, t_from_s, s, s_from_t, perm, cfg.lam)
        return loss + cfg.lam * cfg.setting("alpha") * float(aligned) * (l_t + l_s)
    return loss + float(aligned) * (F.mse_loss(s_from_t, s) + F.mse_loss(t_from_s, t))


def fsvae_loss(net: FSVAENetwork, s, t, noise_s, noise_t, perm, weights, cfg) -> torch.Tensor:
    """The loss of a batch of features `s` [B, D] and their class texts `t` [B, Dt], every sample through both
    whole encoders, as released (the reference the training loop is tested against)."""
    return loss_from_posteriors(net, s, t, (*net.encode_features(s), *net.encode_text(t)), noise_s, noise_t, perm,
                                weights, cfg)


class PreparedInputs:
    """The training loop's fast path: what does not depend on the parameters is computed once per fit (the DCT
    coefficients of every training feature and of every class text), and the text encoder runs on the C class
    texts, its posteriors gathered per sample (the same values as encoding every sample's text)."""

    def __init__(self, net: FSVAENetwork, features: torch.Tensor, text: torch.Tensor):
        self.net, self.features, self.text = net, features, text
        with torch.no_grad():
            self.feature_input, self.text_input = (self._fixed(e, v) for e, v in
                                                   ((net.feature_encoder, features), (net.text_encoder, text)))

    @staticmethod
    def _fixed(encoder: GaussianEncoder, x: torch.Tensor) -> torch.Tensor:
        return encoder.front.coefficients(x) if isinstance(encoder.front, BandReweighting) else x

    @staticmethod
    def _encode(encoder: GaussianEncoder, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        front = encoder.front
        return encoder.after_front(front.from_coefficients(fixed) if isinstance(front, BandReweighting) else fixed)

    def loss(self, idx, labels, noise_s, noise_t, perm, weights, cfg) -> torch.Tensor:
        """`fsvae_loss` of the samples `idx` with label positions `labels`."""
        net = self.net
        smu, slv = self._encode(net.feature_encoder, self.feature_input[idx])
        tmu, tlv = (v[labels] for v in self._encode(net.text_encoder, self.text_input))
        return loss_from_posteriors(net, self.features[idx], self.text[labels], (smu, slv, tmu, tlv), noise_s,
                                    noise_t, perm, weights, cfg)


def train_fsvae(net: FSVAENetwork, features: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, cfg,
                generator: torch.Generator, after_cycle: Callable[[int, float], None] | None = None) -> float:
    """Train in place on features [N, D] with class text [C, Dt] and label positions [N] (Adam; every term every
    iteration, as released, through `PreparedInputs`). Returns the last loss (NaN when training diverged);
    `after_cycle(cycle, loss)` runs after every cycle. `generator` is a CPU generator whatever the device."""
    n, length = features.shape[0], cfg.setting("cycle")
    batch, schedule = min(cfg.batch_size, n), CycleSchedule(length)
    prepared = PreparedInputs(net, features, text)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=True)

    def cycle(number: int) -> torch.Tensor:
        draws = CycleDraws.draw(length, n, batch, net.latent, cfg.reference_quirks, generator).to(features.device)
        for i in range(length):
            idx = draws.idx[i]
            loss = prepared.loss(idx, labels[idx], draws.noise_s[i], draws.noise_t[i], draws.perm[i],
                                 schedule.at(number * length + i), cfg)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        return loss

    return run_rounds(cfg.setting("cycles"), cycle, after_cycle)

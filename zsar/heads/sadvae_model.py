"""SA-DVAE's networks, per-iteration loss and eager iterations (the published model; see the head module).

The iterations are the fast path: all features live in one tensor, a batch is one index gather, the noise of
an epoch is drawn in one call, terms whose schedule weight is zero are not computed (their gradient is
exactly zero), and both optimisers are torch's fused Adam. On a CUDA device the iterations are replayed from
CUDA graphs (zsar/heads/sadvae_cuda_graph.py, built on this module); the epoch loop that picks one or the other,
`train_sadvae`, lives in the head module (zsar/heads/sadvae.py), so this module imports neither.
`sadvae_loss(..., skip_zero_terms=False)` computes every term every iteration, as the released code does; the
tests check the loops agree with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zsar.heads.text_views import draw_views
from zsar.heads.vae_parts import gaussian_kl, linear, reparameterise
from zsar.heads.vae_parts import text_latent_samples as text_latent_samples  # re-exported (sadvae.py, benchmarks)


@dataclass(frozen=True)
class Schedule:
    """The per-iteration loss weights; reset at the start of every epoch."""

    kl_skeleton: float  # b_s
    kl_text: float  # b_t, also the total-correlation weight
    cross: float  # l_c

    @staticmethod
    def at(epoch: int, i: int, n: int) -> Schedule:
        b_s = max(0.1 * (i - 0.588 * n) / (1.765 * n), 0.0)
        b_t = max(0.1 * (i - 0.8 * n) / (1.765 * n), 0.0) if epoch >= 2 else 0.0
        return Schedule(b_s, b_t, 1.0 if i > int(0.8 * n) else 0.0)


class SADVAENetwork(nn.Module):
    """Skeleton VAE (latent = semantic `ls` + style `ils`), text VAE (latent `ls`), and the
    total-correlation discriminator. Encoders are single linear layers (mu and logvar side by side)."""

    def __init__(self, feature_dim: int, text_dim: int, latent: int, style: int, skeleton_relu: bool = True):
        super().__init__()
        self.latent, self.style, self.skeleton_relu = latent, style, skeleton_relu
        full = latent + style
        self.skeleton_encoder = linear(feature_dim, 2 * full)
        self.skeleton_decoder = linear(full, feature_dim)
        self.text_encoder = linear(text_dim, 2 * latent)
        self.text_decoder = linear(latent, text_dim)
        self.discriminator = nn.Sequential(linear(full, full // 4), nn.ReLU(), linear(full // 4, 1))

    def vae_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("discriminator")]

    def encode_skeleton(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = self.latent + self.style
        h = self.skeleton_encoder(x)
        return h[:, :full], h[:, full:]  # mu, logvar [B, ls + ils]

    def encode_text(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.text_encoder(y)
        return h[:, : self.latent], h[:, self.latent :]  # mu, logvar [B, ls]

    def decode_skeleton(self, z: torch.Tensor) -> torch.Tensor:
        out = self.skeleton_decoder(z)
        return F.relu(out) if self.skeleton_relu else out

    def decode_text(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.text_decoder(z))


@dataclass
class Latents:
    mu_x: torch.Tensor
    logvar_x: torch.Tensor
    mu_y: torch.Tensor
    logvar_y: torch.Tensor
    z_x: torch.Tensor  # [B, ls + ils]
    z_y: torch.Tensor  # [B, ls]


def encode_batch(net: SADVAENetwork, x, y, noise_x, noise_y) -> Latents:
    mu_x, lv_x = net.encode_skeleton(x)
    mu_y, lv_y = net.encode_text(y)
    return Latents(mu_x, lv_x, mu_y, lv_y, reparameterise(mu_x, lv_x, noise_x), reparameterise(mu_y, lv_y, noise_y))


def discriminator_loss(net: SADVAENetwork, lat: Latents, weight: float, shuffles: torch.Tensor) -> torch.Tensor:
    """Real pairs [z_r, z_v], [z_y, z_v] (label 1) against the same with both parts shuffled independently
    across the batch (label 0), binary cross-entropy scaled by b_t. `shuffles` is [4, B] permutations."""
    ls = net.latent
    z_r, z_v, z_y = lat.z_x[:, :ls].detach(), lat.z_x[:, ls:].detach(), lat.z_y.detach()
    real = torch.cat([torch.cat([z_r, z_v], 1), torch.cat([z_y, z_v], 1)])
    fake = torch.cat([torch.cat([z_r[shuffles[0]], z_v[shuffles[1]]], 1),
                      torch.cat([z_y[shuffles[2]], z_v[shuffles[3]]], 1)])
    logits = net.discriminator(torch.cat([real, fake])).squeeze(1)
    target = torch.cat([logits.new_ones(real.shape[0]), logits.new_zeros(fake.shape[0])])
    return weight * F.binary_cross_entropy_with_logits(logits, target)


def sadvae_loss(net: SADVAENetwork, x, y, lat: Latents, w: Schedule, skip_zero_terms: bool = True) -> torch.Tensor:
    """Reconstruction + b_s KL(skeleton) + b_t KL(text) + l_c cross-reconstruction + b_t TC penalty."""
    ls = net.latent
    loss = F.mse_loss(net.decode_skeleton(lat.z_x), x) + F.mse_loss(net.decode_text(lat.z_y), y)
    if not skip_zero_terms or w.kl_skeleton:  # (weights may be tensors: no truth test unless skipping)
        loss = loss + w.kl_skeleton * gaussian_kl(lat.mu_x, lat.logvar_x)
    if not skip_zero_terms or w.kl_text:
        loss = loss + w.kl_text * gaussian_kl(lat.mu_y, lat.logvar_y)
    if not skip_zero_terms or w.cross:
        cross_x = net.decode_skeleton(torch.cat([lat.z_y, lat.z_x[:, ls:]], 1))
        cross_y = net.decode_text(lat.z_x[:, :ls])
        loss = loss + w.cross * (F.mse_loss(cross_x, x) + F.mse_loss(cross_y, y))
    if not skip_zero_terms or w.kl_text:
        loss = loss + w.kl_text * torch.sigmoid(net.discriminator(lat.z_x)).mean()
    return loss


def reference_step(net: SADVAENetwork, x, y, lat: Latents, w: Schedule, shuffles: torch.Tensor | None,
                   vae_opt: torch.optim.Optimizer, dis_opt: torch.optim.Optimizer) -> torch.Tensor:
    """One iteration the way the released code does it: the discriminator step (when `shuffles` is given) with
    its loss computed even at weight 0, then every VAE loss term. The fast loop is tested and benchmarked
    against it."""
    if shuffles is not None:
        dis_opt.zero_grad()
        discriminator_loss(net, lat, w.kl_text, shuffles).backward()
        dis_opt.step()
    loss = sadvae_loss(net, x, y, lat, w, skip_zero_terms=False)
    vae_opt.zero_grad()
    loss.backward()
    vae_opt.step()
    return loss


@dataclass(frozen=True)
class LoopSettings:
    epochs: int
    batch_size: int
    lr: float
    dis_step: int
    scalar_noise: bool  # the released code's [B, 1] noise
    cuda_graph: bool = True  # on a CUDA device, replay captured iterations (zsar/heads/sadvae_cuda_graph.py)


def iterations_per_epoch(num_samples: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped); at least one."""
    return max(num_samples // batch_size, 1)


@dataclass
class EpochDraws:
    """Everything random in one epoch, drawn up front from the CPU generator (so a seed gives the same draws on
    every device): batch indices, the latent noise of every step, and the discriminator's shuffles."""

    order: torch.Tensor  # [steps, batch] sample indices
    noise_x: torch.Tensor  # [steps, batch, ls + ils] (or [steps, batch, 1]: scalar noise)
    noise_y: torch.Tensor  # [steps, batch, ls] (or [steps, batch, 1])
    shuffles: torch.Tensor  # [discriminator steps, 4, batch] permutations

    @staticmethod
    def draw(num_samples: int, steps: int, batch: int, full: int, latent: int, settings: LoopSettings,
             generator: torch.Generator) -> EpochDraws:
        order = torch.randperm(num_samples, generator=generator)[: steps * batch].view(steps, batch)
        noise_x = torch.randn(steps, batch, 1 if settings.scalar_noise else full, generator=generator)
        noise_y = torch.randn(steps, batch, 1 if settings.scalar_noise else latent, generator=generator)
        shuffles = torch.stack([torch.stack([torch.randperm(batch, generator=generator) for _ in range(4)])
                                for _ in range(0, steps, settings.dis_step)])
        return EpochDraws(order, noise_x, noise_y, shuffles)

    def to(self, device: torch.device) -> EpochDraws:
        return EpochDraws(*(t.to(device) for t in (self.order, self.noise_x, self.noise_y, self.shuffles)))


def schedule_table(epoch: int, steps: int) -> torch.Tensor:
    """The loss weights of every step of an epoch, [steps, 3] (kl_skeleton, kl_text, cross)."""
    rows = [Schedule.at(epoch, i, steps) for i in range(steps)]
    return torch.tensor([[w.kl_skeleton, w.kl_text, w.cross] for w in rows], dtype=torch.float32)


class EagerIterations:
    """The fast path on the CPU (and on a GPU with `cuda_graph` off): one index gather per batch, terms whose
    schedule weight is zero skipped (their gradient is exactly zero), torch's fused Adam."""

    def __init__(self, net: SADVAENetwork, features, text, labels, settings: LoopSettings,
                 views: tuple[torch.Tensor, torch.Generator] | None = None):
        self.net, self.features, self.text, self.labels, self.settings = net, features, text, labels, settings
        self.views = views
        self.vae_opt = torch.optim.Adam(net.vae_parameters(), lr=settings.lr, fused=True)
        self.dis_params = list(net.discriminator.parameters())
        self.dis_opt = torch.optim.Adam(self.dis_params, lr=settings.lr, fused=True)

    def run_epoch(self, epoch: int, draws: EpochDraws) -> float:
        net, steps, dis_step = self.net, draws.order.shape[0], self.settings.dis_step
        loss = torch.tensor(math.nan)
        for i in range(steps):
            idx = draws.order[i]
            x, y = self.features[idx], self._text_rows(self.labels[idx])
            w = Schedule.at(epoch, i, steps)
            lat = encode_batch(net, x, y, draws.noise_x[i], draws.noise_y[i])
            if i % dis_step == 0:
                for p in self.dis_params:
                    p.grad = torch.zeros_like(p)
                if w.kl_text:  # with b_t = 0 the gradient is exactly zero; Adam still steps (its moments decay)
                    discriminator_loss(net, lat, w.kl_text, draws.shuffles[i // dis_step]).backward()
                self.dis_opt.step()
            loss = sadvae_loss(net, x, y, lat, w)
            self.vae_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.vae_opt.step()  # (the TC penalty's gradient left in the discriminator is reset before its next step)
        return float(loss.detach())

    def _text_rows(self, positions: torch.Tensor) -> torch.Tensor:
        if self.text.ndim == 2:
            return self.text[positions]
        probabilities, generator = self.views
        drawn = draw_views(probabilities, len(positions), generator)
        return self.text[drawn.to(positions.device), positions]


def train_latent_classifier(samples: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int, lr: float,
                            relu_logits: bool, seed: int) -> nn.Linear:
    """A fresh linear classifier latent -> classes, full-batch Adam on the sampled text latents."""
    torch.manual_seed(seed)
    classifier = nn.Linear(samples.shape[1], num_classes)
    opt = torch.optim.Adam(classifier.parameters(), lr=lr, fused=True)
    for _ in range(steps):
        logits = classifier(samples)
        loss = F.cross_entropy(F.relu(logits) if relu_logits else logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return classifier

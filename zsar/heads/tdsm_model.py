"""TDSM's denoiser, noise schedule and losses (zsar/heads/tdsm.py trains and scores with them).

The denoiser is a small DiT with joint attention: one token for the (noised) skeleton feature and one token
per text view of the class; both streams have their own weights and adaLN-Zero modulation from
c = timestep embedding + global-text embedding, and one softmax runs over all tokens. It predicts the noise
(epsilon) added to the feature. The schedule is DDPM with `scaled_linear` betas over a few (50) steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

FREQUENCY_DIM = 256  # width of the sinusoidal timestep embedding


# -- schedule ------------------------------------------------------------------------------------------------------
def alpha_bars(timesteps: int) -> torch.Tensor:
    """prod_{s<=t} (1 - beta_s) for beta = linspace(sqrt(0.00085), sqrt(0.012), T)^2, float32 [T]."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


def add_noise(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, bars: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, t [B] indexing `bars`."""
    bar = bars.to(x0.device)[t].unsqueeze(-1)
    return bar.sqrt() * x0 + (1.0 - bar).sqrt() * eps


def timestep_embedding(t: torch.Tensor, dim: int = FREQUENCY_DIM, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [B, dim]: the cosines, then the sines."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


# -- network -------------------------------------------------------------------------------------------------------
def _modulate(h: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return h * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def _mlp(width: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))


class StreamWeights(nn.Module):
    """One stream's weights in a block: adaLN-Zero modulation, qkv, attention output, gated MLP."""

    def __init__(self, hidden: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.mlp = _mlp(hidden, hidden * mlp_ratio)

    def pre_attention(self, h: torch.Tensor, c: torch.Tensor):
        """qkv [B, L, 3H] of the modulated tokens, and the modulation (6 x [B, H])."""
        mod = self.modulation(c).chunk(6, dim=-1)
        return self.qkv(_modulate(self.norm1(h), mod[0], mod[1])), mod

    def post_attention(self, h: torch.Tensor, attended: torch.Tensor, mod) -> torch.Tensor:
        h = h + mod[2].unsqueeze(1) * self.out(attended)
        return h + mod[5].unsqueeze(1) * self.mlp(_modulate(self.norm2(h), mod[3], mod[4]))


class JointBlock(nn.Module):
    """x-stream and text-stream, each with its own weights, attending jointly over all tokens."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.x_stream = StreamWeights(hidden)
        self.text_stream = StreamWeights(hidden)

    def forward(self, x: torch.Tensor, text: torch.Tensor, c: torch.Tensor):
        qkv_x, mod_x = self.x_stream.pre_attention(x, c)
        qkv_t, mod_t = self.text_stream.pre_attention(text, c)
        qkv = torch.cat([qkv_x, qkv_t], dim=1)  # [B, 1 + V, 3H]
        b, length, _ = qkv.shape
        q, k, v = qkv.view(b, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # 3 x [B, heads, L, hd]
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, length, -1)
        n_x = x.shape[1]
        return (self.x_stream.post_attention(x, attended[:, :n_x], mod_x),
                self.text_stream.post_attention(text, attended[:, n_x:], mod_t))


class FinalLayer(nn.Module):
    def __init__(self, hidden: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.linear = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.modulation(c).chunk(2, dim=-1)
        return self.linear(_modulate(self.norm(x), shift, scale))


class TDSMDenoiser(nn.Module):
    """eps_theta(x_t, t, global text g, local text tokens L): [B, D] for x_t [B, D], t [B], g [B, Dt],
    L [B, V, Dt]. A fresh network outputs exactly zero (adaLN-Zero, zero final layer)."""

    def __init__(self, feature_dim: int, text_dim: int, views: int, hidden: int, depth: int, heads: int):
        super().__init__()
        self.feature_dim, self.text_dim, self.views = feature_dim, text_dim, views
        self.hidden, self.depth, self.heads = hidden, depth, heads
        self.x_embed = nn.Linear(feature_dim, hidden)
        self.text_embed = nn.Linear(text_dim, hidden)
        self.text_position = nn.Parameter(torch.zeros(views, hidden))
        self.t_embed = nn.Sequential(nn.Linear(FREQUENCY_DIM, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.g_embed = nn.Sequential(nn.Linear(text_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(JointBlock(hidden, heads) for _ in range(depth))
        self.final = FinalLayer(hidden, feature_dim)
        self._initialise()

    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.text_position, std=0.02)
        for index in (0, 2):
            nn.init.normal_(self.t_embed[index].weight, std=0.02)
        zero = [block.x_stream.modulation[1] for block in self.blocks] + \
               [block.text_stream.modulation[1] for block in self.blocks] + \
               [self.final.modulation[1], self.final.linear]
        for linear in zero:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def condition(self, t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """c = t_emb + g_emb, [B, H]."""
        return self.t_embed(timestep_embedding(t)) + self.g_embed(g)

    def text_tokens(self, local: torch.Tensor) -> torch.Tensor:
        """Local text [B, V, Dt] -> tokens [B, V, H] (with the position table)."""
        return self.text_embed(local) + self.text_position

    def denoise(self, x_t: torch.Tensor, c: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The network after the class-side embeddings (`condition`, `text_tokens`): eps [B, D]."""
        x = self.x_embed(x_t).unsqueeze(1)
        for block in self.blocks:
            x, tokens = block(x, tokens, c)
        return self.final(x, c).squeeze(1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, g: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        return self.denoise(x_t, self.condition(t, g), self.text_tokens(local))


# -- losses --------------------------------------------------------------------------------------------------------
def denoising_errors(net: TDSMDenoiser, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, positive: torch.Tensor,
                     negative: torch.Tensor, global_text: torch.Tensor, local_text: torch.Tensor, bars: torch.Tensor):
    """Per-sample errors mean_d (eps_theta - eps)^2 with the positive and the negative classes' text, [B] each.
    One pass over the batch duplicated to 2B: both halves share x0, eps and t. `global_text` [C, Dt] and
    `local_text` [C, V, Dt] are indexed by the class positions `positive` / `negative` [B]."""
    x_t = add_noise(x0, eps, t, bars).repeat(2, 1)
    classes = torch.cat([positive, negative])
    predicted = net(x_t, t.repeat(2), global_text[classes], local_text[classes])
    errors = (predicted - eps.repeat(2, 1)).pow(2).mean(dim=1)
    return errors[: x0.shape[0]], errors[x0.shape[0]:]


def triplet_terms(e_pos: torch.Tensor, e_neg: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                  margin: float) -> torch.Tensor:
    """1[neg != pos] * relu(e_pos - e_neg + margin) per sample (exactly 0 where the negative is the positive)."""
    return (negative != positive).to(e_pos.dtype) * F.relu(e_pos - e_neg + margin)


def tdsm_loss(e_pos: torch.Tensor, e_neg: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
              margin: float, diffusion_weight: float, triplet_weight: float) -> torch.Tensor:
    """diffusion_weight * mean(e_pos) + triplet_weight * mean(triplet terms) (masked rows count in the mean)."""
    triplet = triplet_terms(e_pos, e_neg, positive, negative, margin).mean()
    return diffusion_weight * e_pos.mean() + triplet_weight * triplet

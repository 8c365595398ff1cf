"""FS-VAE's frequency enhancement: a learnable re-weighting of the bands of an orthonormal DCT-II of the input,
taken along the feature axis as released (on a pooled feature vector the channel index has no temporal or spatial
order, so these "frequencies" have no physical meaning; see zsar/heads/fs_vae.py)."""

from __future__ import annotations

import math

import torch
from torch import nn

SPLIT = 30  # a band whose upper edge is at most this index is boosted ("low"), the others attenuated (released)


def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II as an [n, n] matrix C (row k = frequency k): DCT(v) = C v, inverse C^T V."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


class BandReweighting(nn.Module):
    """v -> IDCT(f * DCT(v)) along the feature axis. The DCT coefficients 0..D-2 fall in `bands` bands with edges
    floor(linspace(0, D-1, bands + 1)); band i is scaled by 1 + w_i k (1 - i/bands) when its upper edge is <= 30
    ("low"), else by 1 - w_i k (1 - (i - bands)/bands); coefficient D-1 is never scaled. k (`strength` at first)
    and the per-band w (1 at first) are learned."""

    def __init__(self, dim: int, bands: int = 30, strength: float = 0.3):
        super().__init__()
        self.k = nn.Parameter(torch.tensor(float(strength)))
        self.w = nn.Parameter(torch.ones(bands))
        edges = torch.linspace(0, dim - 1, bands + 1).long()  # (float32 linspace, truncated: as released)
        band_of = torch.full((dim,), bands, dtype=torch.long)  # index `bands`: factor 1
        for i in range(bands):
            band_of[edges[i] : edges[i + 1]] = i
        i = torch.arange(bands, dtype=torch.float32)
        low = edges[1:] <= SPLIT
        signed_decay = torch.where(low, 1 - i / bands, -(1 - (i - bands) / bands))
        self.register_buffer("basis", dct_matrix(dim), persistent=False)
        self.register_buffer("band_of", band_of, persistent=False)
        self.register_buffer("signed_decay", signed_decay, persistent=False)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """DCT(x) along the last axis (no parameters: fixed for fixed inputs)."""
        return x @ self.basis.T

    def from_coefficients(self, coefficients: torch.Tensor) -> torch.Tensor:
        """IDCT(f * V) of DCT coefficients V."""
        return (coefficients * self.factors()) @ self.basis

    def factors(self) -> torch.Tensor:
        """The scale of every DCT coefficient, [D]."""
        per_band = 1 + self.signed_decay * self.w * self.k
        return torch.cat([per_band, per_band.new_ones(1)])[self.band_of]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_coefficients(self.coefficients(x))

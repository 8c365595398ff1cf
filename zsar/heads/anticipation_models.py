"""The networks and losses of the anticipation heads (`anticipation_heads.py`), after S-GEAR (Diko et al., ECCV 2024).

`PrototypeAnticipator` reads an observed window [B, T, D] (right-aligned: the last position is the latest row,
padding on the left) and gives the anticipated feature z of the next step, mixed with the visual prototypes,
projected into the text space. Its parts, in S-GEAR's order:
1. a linear embedding without bias, then standardisation with the prototypes' statistics (one mean and one
   spread over every entry of the embedded visual prototypes);
2. prototype attention: each frame attends to the visual prototypes (several heads, no q/k/v projections) and is
   mixed with what it read through a learnable gate, sigmoid(0.5) at the start;
3. a causal transformer decoder with learned positions (the GPT-2 head of AVT, small): position t predicts the
   feature of step t + 1, the last position the anticipated feature z;
4. the prototype read-out: z mixed (gate sigmoid(0.5)) with the prototypes weighted by softmax of their cosine to
   the detached z;
5. dropout, a linear map into the text space, unit length.
Deviations from the released code, which does not run as published: the visual prototypes live in the input
feature space (initialised from the training frames' class means, embedded by the same linear map) and are
trained; the prototype attention lets frames attend to all prototypes instead of pairing the i-th frame with the
i-th retrieved prototype through a Toeplitz prior (that pairing needs as many prototypes as frames); the class
layer is replaced by cosine scores against class text prototypes, so held-out classes can be scored (zero-shot);
the feature-prediction target (the embedded, standardised input before the prototype attention) is detached
(with a trainable embedding it could otherwise shrink to zero). With `prototypes=False` steps 2 and 4 are left
out and the prototypes are frozen (they only fix the standardisation): the same network without visual
prototypes.

Losses (`anticipation_loss`): cross-entropy of the text scores over the trained classes; the feature prediction
MSE (prediction t against input t + 1, valid positions only); S-GEAR's semantic loss (the L1 distance between
the L1-normalised similarities of the detached z to the visual prototypes and the L1-normalised row of the
language similarity matrix, which moves the prototypes only); and its regulariser (squared distance of the unit z
to its class's unit initial prototype, which moves z only).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GATE_START = 0.5  # sigmoid(0.5) = 0.62 of the feature, 0.38 of the prototype read-out at the start


def unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1, eps=1e-8)


class PrototypeAnticipator(nn.Module):
    def __init__(self, in_dim: int, text_dim: int, prototypes: torch.Tensor, width: int = 128, layers: int = 2,
                 heads: int = 4, dropout: float = 0.2, max_len: int = 64, use_prototypes: bool = True,
                 readout_temperature: float | None = None):
        super().__init__()
        # S-GEAR divides the read-out's cosines by sqrt(input dimension); a temperature may be given instead
        self.readout_temperature = readout_temperature or math.sqrt(in_dim)
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads, self.use_prototypes = heads, use_prototypes
        self.embed = nn.Linear(in_dim, width, bias=False)
        # [C_trained, in_dim] visual prototypes; without them (the ablation) only their fixed statistics are used
        self.prototypes = nn.Parameter(prototypes.clone().float(), requires_grad=use_prototypes)
        self.register_buffer("initial_prototypes", prototypes.clone().float())
        self.frame_gate = nn.Parameter(torch.tensor(GATE_START))
        self.readout_gate = nn.Parameter(torch.tensor(GATE_START))
        self.attention_out = nn.Linear(width, width)
        self.position = nn.Parameter(torch.zeros(max_len, width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.to_text = nn.Linear(width, text_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)

    def embedded_prototypes(self, initial: bool = False, embedding_fixed: bool = False
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedded prototypes, the same standardised by their own mean and spread), [C, width] each.
        `embedding_fixed`: the embedding's weights detached, so gradients reach the prototypes only."""
        weight = self.embed.weight.detach() if embedding_fixed else self.embed.weight
        protos = F.linear(self.initial_prototypes if initial else self.prototypes, weight)
        mean, spread = protos.mean(), protos.std().clamp_min(1e-6)
        return protos, (protos - mean) / spread

    def prototype_attention(self, x: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
        """Every frame reads the prototypes, per head: softmax(x_h p_h^T / sqrt(d_h)) p_h, then a linear map."""
        b, t, w = x.shape
        d = w // self.heads
        xh = x.view(b, t, self.heads, d).transpose(1, 2)  # [B, H, T, d]
        ph = protos.view(-1, self.heads, d).transpose(0, 1)  # [H, C, d]
        weights = torch.softmax(xh @ ph.transpose(1, 2).unsqueeze(0) / math.sqrt(d), dim=-1)  # [B, H, T, C]
        read = (weights @ ph.unsqueeze(0)).transpose(1, 2).reshape(b, t, w)
        return self.attention_out(read)

    def attention_mask(self, valid: torch.Tensor) -> torch.Tensor:
        """[B * heads, T, T] True where attention is blocked: later steps (causal) and padding, except that every
        step may attend to itself, so no row is fully blocked (a fully blocked row is NaN in some torch versions);
        real steps never read padding."""
        b, t = valid.shape
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=valid.device), diagonal=1)
        blocked = (causal[None] | ~valid[:, None, :]) & ~torch.eye(t, dtype=torch.bool, device=valid.device)[None]
        return blocked.repeat_interleave(self.heads, dim=0)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """`x` [B, T, D] right-aligned windows, `valid` [B, T] bool. Returns the embedded, standardised `inputs`
        (before the prototype attention), the decoder's step predictions `predicted` [B, T, W], z, the similarities
        `s` of the detached z to the prototypes and the unit text-space query `query` [B, E]."""
        emb = self.embed(x)
        raw, protos = self.embedded_prototypes()
        frames = inputs = (emb - raw.mean()) / raw.std().clamp_min(1e-6)
        if self.use_prototypes:
            gate = torch.sigmoid(self.frame_gate)
            frames = gate * frames + (1 - gate) * self.prototype_attention(frames, protos)
        hidden = self.decoder(frames + self.position[:x.shape[1]], mask=self.attention_mask(valid))
        z = hidden[:, -1]
        s = unit(z.detach()) @ unit(self.embedded_prototypes(embedding_fixed=True)[1]).T  # [B, C]: moves P only
        mixed = z
        if self.use_prototypes:
            gate = torch.sigmoid(self.readout_gate)
            mixed = gate * z + (1 - gate) * torch.softmax(s / self.readout_temperature, dim=-1) @ protos
        query = unit(self.to_text(self.dropout(mixed)))
        return {"inputs": inputs, "predicted": hidden, "z": z, "s": s, "query": query}


def semantic_loss(s: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
    """S-GEAR's L_sem per sample: sum_c |s_c / ||s||_1 - S_yc / ||S_y||_1|, `language` = rows S_y [B, C]."""
    return (s / s.abs().sum(-1, keepdim=True).clamp_min(1e-8)
            - language / language.abs().sum(-1, keepdim=True).clamp_min(1e-8)).abs().sum(-1)


def regulariser(z: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """S-GEAR's L_reg per sample: the squared distance of unit z to its class's unit initial prototype."""
    return ((unit(z) - unit(initial.detach())) ** 2).sum(-1)


def prediction_loss(predicted: torch.Tensor, frames: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """MSE of the prediction at step t against the (detached) input at step t + 1, where both are valid."""
    pairs = (valid[:, :-1] & valid[:, 1:]).float()
    error = ((predicted[:, :-1] - frames[:, 1:].detach()) ** 2).mean(-1)
    return (error * pairs).sum() / pairs.sum().clamp_min(1.0)


def anticipation_loss(model: PrototypeAnticipator, out: dict, targets: torch.Tensor, text: torch.Tensor,
                      similarity: torch.Tensor, valid: torch.Tensor, weights: dict[str, float]) -> torch.Tensor:
    """The weighted sum of the losses (module docstring); `targets` are positions into the trained classes,
    `text` their unit prototypes [C, E], `similarity` their language similarity matrix [C, C]."""
    logits = model.scale() * out["query"] @ text.T
    loss = F.cross_entropy(logits, targets)
    if weights.get("feature", 0):
        loss = loss + weights["feature"] * prediction_loss(out["predicted"], out["inputs"], valid)
    if model.use_prototypes and weights.get("semantic", 0):
        loss = loss + weights["semantic"] * semantic_loss(out["s"], similarity[targets]).mean()
    if model.use_prototypes and weights.get("regulariser", 0):
        _, initial = model.embedded_prototypes(initial=True, embedding_fixed=True)
        loss = loss + weights["regulariser"] * regulariser(out["z"], initial[targets]).mean()
    return loss

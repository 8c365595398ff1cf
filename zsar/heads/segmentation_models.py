"""Torch modules and losses for temporal action segmentation heads on cached per-frame features.

Shapes: features x [B, D, T] (channels first, as Conv1d wants them), a valid-frame mask [B, 1, T] (1 on real
frames, 0 on padding; bool or float), frame labels [B, T] long with -100 on padded / ignored frames.

- MS-TCN (Abu Farha & Gall, CVPR 2019): stages of dilated residual temporal convolutions; stage 1 reads the
  features, every later stage reads softmax(previous logits) * mask. Output [stages, B, C, T]; the prediction is
  the argmax of the last stage. Loss per stage: cross-entropy over the valid frames + lambda * T-MSE, summed over
  stages (`mstcn_loss`).
- T-MSE (`smoothing_loss`): mean over (B, C, T-1) of clamp((log_softmax(z_t) - sg(log_softmax(z_{t-1})))^2, 0, 16)
  * mask_t. The mean counts padded positions and every class channel (as the reference code does); `sg` is the
  stop-gradient MS-TCN puts on the previous frame (FACT's smoothing has none: `detach_previous=False`).
- Zero-shot segmentation after FACT-CLIP (`TextSegmentationModel`): an MS-TCN-style backbone whose frame features
  are projected into the text space (Linear -> LayerNorm -> ReLU -> Dropout 0.1 -> Linear, L2-normalised) and
  scored against class text at a learnable temperature; trained with the symmetric frame/text InfoNCE
  (`symmetric_frame_text_loss`) on seen classes only, so unseen classes can be scored from their text alone.

Every stage masks its hidden state after its input 1x1 convolution as well as after each residual layer, so the
values in padded frames never reach a valid frame: a padded video gives the same outputs on its valid frames as
the video alone (the reference leaves the input map's bias in padded frames, a small deviation from it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zsar.errors import ZsarError

IGNORE_INDEX = -100
SMOOTH_CLAMP = 16.0  # tau^2 with tau = 4
MAX_LOG_SCALE = math.log(100)


def _mask_like(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """The valid-frame mask as [B, 1, T] in x's dtype (all ones when None); x is [B, *, T]."""
    if mask is None:
        return x.new_ones(x.shape[0], 1, x.shape[-1])
    if mask.dim() == 2:
        mask = mask[:, None, :]
    return mask.to(x.dtype)


# -- modules -------------------------------------------------------------------------------------------------------
class DilatedResidualLayer(nn.Module):
    """x + Dropout(Conv1x1(ReLU(Conv_k3,dilation d(x)))), times the frame mask; padding d keeps the length T."""

    def __init__(self, channels: int, dilation: int, dropout: float = 0.5):
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.dropout(self.conv_1x1(F.relu(self.conv_dilated(x))))
        return (x + out) * _mask_like(mask, x)


class TemporalStage(nn.Module):
    """One MS-TCN stage: 1x1 conv in_dim -> channels, `layers` dilated residual layers (dilation 2^l, receptive
    field 1 + 2 (2^layers - 1) frames), 1x1 conv channels -> out_dim. forward returns (out [B, out_dim, T],
    hidden [B, channels, T]), both zero on padded frames. With out_dim None there is no output map and `out` is
    the hidden state itself."""

    def __init__(self, in_dim: int, channels: int, layers: int, out_dim: int | None, dropout: float = 0.5):
        super().__init__()
        self.conv_in = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(DilatedResidualLayer(channels, 2 ** i, dropout) for i in range(layers))
        self.conv_out = nn.Conv1d(channels, out_dim, 1) if out_dim is not None else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mask = _mask_like(mask, x)
        hidden = self.conv_in(x) * mask
        for layer in self.layers:
            hidden = layer(hidden, mask)
        out = hidden if self.conv_out is None else self.conv_out(hidden) * mask
        return out, hidden


class MSTCN(nn.Module):
    """Multi-stage TCN: forward(x [B, D, T], mask [B, 1, T]) -> logits [stages, B, C, T]."""

    def __init__(self, in_dim: int, n_classes: int, stages: int = 4, layers: int = 10, channels: int = 64,
                 dropout: float = 0.5):
        super().__init__()
        if stages < 1:
            raise ZsarError(f"MS-TCN needs at least one stage, got {stages}")
        self.stages = nn.ModuleList(
            TemporalStage(in_dim if k == 0 else n_classes, channels, layers, n_classes, dropout)
            for k in range(stages))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = _mask_like(mask, x)
        logits, _ = self.stages[0](x, mask)
        outputs = [logits]
        for stage in self.stages[1:]:
            logits, _ = stage(F.softmax(logits, dim=1) * mask, mask)
            outputs.append(logits)
        return torch.stack(outputs)


class TextSegmentationModel(nn.Module):
    """Zero-shot temporal segmentation in text space (after FACT-CLIP, on cached features).

    Backbone: `stages` MS-TCN stages without output maps. Stage 1 reads the features; every later stage reads the
    previous stage's hidden features ([B, channels, T]) and refines them. Unlike MS-TCN (and FACT's
    process_feature), no stage reads class probabilities: those would tie the network to the seen class set,
    while here the backbone is class-agnostic and the class set enters only through the text rows the
    embeddings are scored against, so unseen classes are scored exactly like seen ones.

    Head: each stage's hidden features go through ONE projection head shared by all stages (so every stage's
    embeddings live in the same text space): Linear(channels, proj_dim) -> LayerNorm -> ReLU -> Dropout(0.1) ->
    Linear(text_dim), L2-normalised; proj_dim defaults to text_dim (FACT-CLIP: 512 -> 512). Padded frames get
    zero embeddings. Scores are scale * cos(e_t, text_c) with scale = exp(logit_scale), logit_scale learnable,
    starting at log(1 / init_temperature) and clamped so that scale <= 100.

    forward(x [B, D, T], mask [B, 1, T]) -> list (one per stage) of frame embeddings [B, T, text_dim].
    """

    def __init__(self, in_dim: int, text_dim: int, stages: int = 2, layers: int = 10, channels: int = 64,
                 dropout: float = 0.5, proj_dim: int | None = None, init_temperature: float = 0.07):
        super().__init__()
        if stages < 1:
            raise ZsarError(f"the segmentation model needs at least one stage, got {stages}")
        proj_dim = proj_dim or text_dim
        self.stages = nn.ModuleList(
            TemporalStage(in_dim if k == 0 else channels, channels, layers, None, dropout) for k in range(stages))
        self.projection = nn.Sequential(nn.Linear(channels, proj_dim), nn.LayerNorm(proj_dim), nn.ReLU(),
                                        nn.Dropout(0.1), nn.Linear(proj_dim, text_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def scale(self) -> torch.Tensor:
        """exp(logit_scale), at most 100 (the clamp keeps the gradient while below it)."""
        return self.logit_scale.clamp(max=MAX_LOG_SCALE).exp()

    def embed(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden features [B, channels, T] -> unit embeddings [B, T, text_dim], zero on padded frames."""
        e = F.normalize(self.projection(hidden.transpose(1, 2)), dim=-1)
        return e * mask.transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        mask = _mask_like(mask, x)
        embeddings, hidden = [], x
        for stage in self.stages:
            _, hidden = stage(hidden, mask)
            embeddings.append(self.embed(hidden, mask))
        return embeddings

    def scores(self, embeddings: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Frame-text logits [B, T, C] at the learned temperature."""
        return frame_text_scores(embeddings, text, self.scale())


# -- losses --------------------------------------------------------------------------------------------------------
def smoothing_loss(scores: torch.Tensor, mask: torch.Tensor | None = None, class_dim: int = -1,
                   detach_previous: bool = True) -> torch.Tensor:
    """Truncated temporal MSE of log-probabilities: mean over (B, C, T-1) of
    clamp((log_softmax(z_t) - log_softmax(z_{t-1}))^2, 0, 16) * mask_t.

    `scores`: frame-text scores [B, T, C] (class_dim -1, the default) or MS-TCN logits [B, C, T] (class_dim 1);
    `mask`: [B, 1, T] or [B, T]. `detach_previous` stops the gradient into z_{t-1} (MS-TCN); the mean counts
    padded positions, which contribute 0."""
    z = scores.movedim(class_dim, 1)  # [B, C, T]
    if z.dim() != 3:
        raise ZsarError(f"smoothing_loss wants [B, C, T] or [B, T, C] scores, got shape {tuple(scores.shape)}")
    mask = _mask_like(mask, z)
    log_p = F.log_softmax(z, dim=1)
    previous = log_p[:, :, :-1].detach() if detach_previous else log_p[:, :, :-1]
    squared = (log_p[:, :, 1:] - previous).pow(2).clamp(0, SMOOTH_CLAMP)
    return (squared * mask[:, :, 1:]).mean()


def mstcn_loss(stage_logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None,
               smooth_weight: float = 0.15) -> torch.Tensor:
    """Sum over stages of CE(logits, labels) over the frames whose label is not -100 (mean over those frames of
    the whole batch) + smooth_weight * T-MSE (`smoothing_loss`, previous frame detached).
    stage_logits: [stages, B, C, T] (or a sequence of [B, C, T]); labels [B, T]; mask [B, 1, T]."""
    total = stage_logits[0].new_zeros(())
    for logits in stage_logits:
        total = total + F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
        if smooth_weight:
            total = total + smooth_weight * smoothing_loss(logits, mask, class_dim=1)
    return total


def frame_text_scores(embeddings: torch.Tensor, text: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """scale * e_t . text_c: embeddings [B, T, E], unit text rows [C, E] -> [B, T, C]."""
    return scale * torch.einsum("bte,ce->btc", embeddings, text)


def _checked_scores(embeddings, labels, text, scale) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores [B', T, C], labels [B', T] and valid frames [B', T] of the videos that have a valid frame."""
    valid = labels != IGNORE_INDEX
    if labels.shape != embeddings.shape[:2]:
        raise ZsarError(f"labels {tuple(labels.shape)} do not match embeddings {tuple(embeddings.shape)}")
    if bool(((labels < 0) & valid).any()) or bool((labels[valid] >= len(text)).any()):
        raise ZsarError(f"frame labels must be positions into the {len(text)} text rows (or -100)")
    keep = valid.any(dim=1)
    if not bool(keep.any()):
        raise ZsarError("no valid frame (every label is -100)")
    return frame_text_scores(embeddings[keep], text, scale), labels[keep], valid[keep]


def _frame_to_text(scores: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    ce = F.cross_entropy(scores.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")  # [B, T]
    return (ce.sum(1) / valid.sum(1)).mean()


def _text_to_frame(scores: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    log_p = F.log_softmax(scores.masked_fill(~valid[:, :, None], float("-inf")), dim=1)  # over frames, [B, T, C]
    own = F.one_hot(labels.clamp(min=0), scores.shape[-1]).bool() & valid[:, :, None]  # [B, T, C]
    per_class = -torch.where(own, log_p, 0.0).sum(1) / own.sum(1).clamp(min=1)  # [B, C], 0 for absent classes
    return per_class.mean(1).mean()


def frame_to_text_loss(embeddings: torch.Tensor, labels: torch.Tensor, text: torch.Tensor,
                       scale: torch.Tensor | float) -> torch.Tensor:
    """Per video: mean over its valid frames of -log softmax_c(scale e_t . text_c)[y_t] (CE over the given text
    rows); then the mean over the videos that have a valid frame."""
    return _frame_to_text(*_checked_scores(embeddings, labels, text, scale))


def text_to_frame_loss(embeddings: torch.Tensor, labels: torch.Tensor, text: torch.Tensor,
                       scale: torch.Tensor | float) -> torch.Tensor:
    """Per video: for each text row c, -mean over the frames labelled c of log softmax over the video's valid
    frames of scale e_t . text_c; a class absent from the video contributes 0 but counts in the mean over the
    C rows. Then the mean over the videos that have a valid frame."""
    return _text_to_frame(*_checked_scores(embeddings, labels, text, scale))


def symmetric_frame_text_loss(embeddings: torch.Tensor, labels: torch.Tensor, text: torch.Tensor,
                              scale: torch.Tensor | float) -> torch.Tensor:
    """FACT-CLIP's L_NCE = frame->text + text->frame (a sum, as the spec writes it; FACT-CLIP then weights
    0.5 L_FACT + 0.5 L_NCE). embeddings [B, T, E] unit; labels [B, T] positions into the (seen) text rows
    [C_seen, E], -100 ignored; each video weighs the same (videos without a valid frame are left out)."""
    checked = _checked_scores(embeddings, labels, text, scale)
    return _frame_to_text(*checked) + _text_to_frame(*checked)

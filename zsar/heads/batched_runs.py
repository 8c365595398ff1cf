"""Many training runs of one small torch head as one model: the members' parameters stacked on a leading axis,
one forward, backward and AdamW step for all of them per mini-batch step.

A member is what one `fit` gets: settings, features, labels, prototypes and a seed. Members may differ in seed,
in the settings that do not shape the model (epochs, batch size, learning rate, weight decay, temperature) and in
their training set and classes (another split, or a held-out part of one); a member with fewer samples or
larger batches sits out the steps it has no batch for, and one with fewer epochs stops. Each member keeps what
its own `fit` would do: its shuffles (a generator seeded as `train_minibatches` seeds it), its initialisation
(the head's own, with its seed), its standardiser (from its own features) and its own AdamW
(`StackedAdamW`). On the CPU a member ends where its separate `fit` ends, up to float rounding in the batched
products; tests/heads/test_batched_runs.py checks it. Every member comes back as an ordinary fitted head (save,
load and scores unchanged), with its fit info and, when asked, a snapshot after every epoch (for the protocol's
choice of epochs on validation).

On a GPU the small heads are limited by launching a few dozen kernels per step, not by arithmetic, and the batched
step launches them once for all members, so M members should cost little more than one (not measured yet: no GPU
was at hand); on a CPU the arithmetic grows with M and only the per-step overhead is saved
(benchmarks/batched_runs.py, docs/speed.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from zsar import progress
from zsar.compute import keeps_torch_state
from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import head_class
from zsar.heads.base import Head, build_config, check_prototypes_cover
from zsar.heads.batched_models import StackedContrastive, StackedLinearProjection, StackedModel
from zsar.heads.stacked_adamw import StackedAdamW
from zsar.heads.torch_device import training_device
from zsar.scoring import label_positions

STACKED_MODELS: dict[str, type[StackedModel]] = {"linear_projection": StackedLinearProjection,
                                                 "contrastive": StackedContrastive}


@dataclass(frozen=True)
class Member:
    """One training run: `head.fit(features, labels, prototypes, seed)` of the head built from `params`; with
    `snapshots`, also a copy of the head after every epoch (what `fit(..., monitor=...)` reports)."""

    params: dict
    features: np.ndarray
    labels: np.ndarray
    prototypes: ClassPrototypes
    seed: int = 0
    snapshots: bool = False


@dataclass
class MemberFit:
    """A member's fitted head, what its `fit` returned, and (when asked for) its state after every epoch."""

    head: Head
    info: dict
    snapshots: list[Head] = field(default_factory=list)


def batched_heads() -> list[str]:
    """The heads that can train batched."""
    return sorted(STACKED_MODELS)


def batch_key(head_name: str, params: dict, features: np.ndarray, prototypes: ClassPrototypes) -> tuple | None:
    """Runs with equal keys can be members of one batched training (the head, the settings that shape its model
    and the feature and text widths); None: this run cannot train batched."""
    if head_name not in STACKED_MODELS:
        return None
    model = STACKED_MODELS[head_name]
    head = model.head_cls(build_config(model.head_cls.Config, params, f"head {head_name!r}"))
    if model.unsupported(head, prototypes) is not None:
        return None
    shape = tuple(getattr(head.config, setting) for setting in model.shared_settings)
    return head_name, shape, int(np.shape(features)[-1]), prototypes.dim


def _stacked_model(head_name: str) -> type[StackedModel]:
    if head_name not in STACKED_MODELS:
        head_class(head_name)  # an unknown head is an error naming the known ones
        raise ZsarError(f"head {head_name!r} cannot train batched; batched heads: {batched_heads()}")
    return STACKED_MODELS[head_name]


def _check_members(model: type[StackedModel], heads: list[Head], members: list[Member]) -> None:
    """Errors naming the member and the setting for anything one stacked model cannot hold."""
    name = model.head_cls.name
    for i, (head, member) in enumerate(zip(heads, members)):
        features = member.features
        if features.ndim != 2 or len(member.labels) != len(features) or len(features) == 0:
            raise ZsarError(f"batched {name}: member {i} needs features [N, D] with N > 0 and N labels, got "
                            f"{features.shape} and {len(member.labels)} labels")
        for what, value, first in (("feature", features.shape[1], members[0].features.shape[1]),
                                   ("text", member.prototypes.dim, members[0].prototypes.dim)):
            if value != first:
                raise ZsarError(f"batched {name}: member {i} has {value}-d {what}s, member 0 {first}-d; members "
                                "of one batched training share their widths")
        for setting in model.shared_settings:
            if getattr(head.config, setting) != getattr(heads[0].config, setting):
                raise ZsarError(f"batched {name}: member {i} has {setting} = {getattr(head.config, setting)!r}, "
                                f"member 0 {getattr(heads[0].config, setting)!r}; it must be the same in every member")
        reason = model.unsupported(head, member.prototypes)
        if reason:
            raise ZsarError(f"batched {name}: member {i} cannot train batched: {reason}")


class _Data:
    """The members' features in one pool on the device (an array shared by several members is held once), each
    member's standardiser and label positions; `batch(pos)` standardises the rows at member positions [M, W]."""

    def __init__(self, heads: list[Head], members: list[Member], device):
        starts, pool, rows = {}, [], 0
        for member in members:
            if id(member.features) not in starts:
                starts[id(member.features)] = rows
                pool.append(member.features)
                rows += len(member.features)
        self.pool = torch.from_numpy(np.ascontiguousarray(pool[0] if len(pool) == 1 else np.concatenate(pool)))
        self.pool = self.pool.to(device)
        self.offsets = torch.tensor([starts[id(m.features)] for m in members], device=device)[:, None]
        for head, member in zip(heads, members):
            head.state = {}
            check_prototypes_cover(member.labels, member.prototypes)
            head._fit_standardiser(member.features)
        self.mean = torch.from_numpy(np.stack([h.state["feature_mean"] for h in heads])).to(device)[:, None]
        self.std = torch.from_numpy(np.stack([h.state["feature_std"] for h in heads])).to(device)[:, None]
        sizes = [len(m.labels) for m in members]
        labels = np.zeros((len(members), max(sizes)), dtype=np.int64)
        for i, member in enumerate(members):
            labels[i, : sizes[i]] = label_positions(member.labels, member.prototypes.class_ids)
        self.labels = torch.from_numpy(labels).to(device)

    def batch(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised features [M, W, D] (float32, as the head's `_standardise`) and label positions [M, W]."""
        x = ((self.pool[self.offsets + pos] - self.mean) / self.std).float()
        return x, self.labels.gather(1, pos)


class _Schedule:
    """Every member's mini-batches, drawn as `train_minibatches` draws them (a CPU generator seeded with the
    member's seed, one permutation per epoch)."""

    def __init__(self, sizes: list[int], batch_sizes: list[int], epochs: list[int], seeds: list[int]):
        self.sizes, self.batch_sizes, self.epochs = sizes, batch_sizes, epochs
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.width = max(batch_sizes)

    def epoch(self, epoch: int) -> tuple[torch.Tensor, np.ndarray]:
        """Member positions [S, M, W] of the epoch's S steps, -1 where a member has no sample (padding, or no batch
        left, or its epochs are over), and whether each member trains at each step [S, M]."""
        blocks = {}
        for m, (n, b) in enumerate(zip(self.sizes, self.batch_sizes)):
            if epoch <= self.epochs[m]:
                order = torch.full((-(-n // b) * b,), -1, dtype=torch.int64)
                order[:n] = torch.randperm(n, generator=self.generators[m])
                blocks[m] = order.view(-1, b)
        steps = max(len(block) for block in blocks.values())
        pos = torch.full((steps, len(self.sizes), self.width), -1, dtype=torch.int64)
        for m, block in blocks.items():
            pos[: len(block), m, : block.shape[1]] = block
        return pos, (pos >= 0).any(-1).numpy()


@keeps_torch_state
def train_batched(head_name: str, members: list[Member]) -> list[MemberFit]:
    """Train every member of one head as one stacked model; per member its fitted head, the fit info its own `fit`
    returns and, for members that ask, a copy of the head after each of its epochs."""
    model_cls = _stacked_model(head_name)
    if not members:
        raise ZsarError(f"batched {head_name}: no members to train")
    heads = [model_cls.head_cls(build_config(model_cls.head_cls.Config, m.params, f"head {head_name!r}"))
             for m in members]
    _check_members(model_cls, heads, members)
    configs = [h.config for h in heads]
    device = training_device(configs[0].device, head_name)
    data = _Data(heads, members, device)
    seeds = [m.seed for m in members]
    model = model_cls(heads, [m.prototypes for m in members], seeds, data.pool.shape[1], device)
    decay = [[c.weight_decay if model.decayed[name] else 0.0 for c in configs] for name in model.params]
    optimiser = StackedAdamW(list(model.params.values()), decay, [c.lr for c in configs])
    schedule = _Schedule([len(m.labels) for m in members], [c.batch_size for c in configs],
                         [c.epochs for c in configs], seeds)
    fits = [MemberFit(head, {}) for head in heads]
    final = _train(model, data, schedule, optimiser, [fit if m.snapshots else None for fit, m in zip(fits, members)])
    for m, (fit, member) in enumerate(zip(fits, members)):
        if not np.isfinite(final[m]):
            raise ZsarError(f"{head_name}: training diverged (loss is NaN); lower lr (batched member {m}, seed "
                            f"{member.seed}, settings {member.params})")
        fit.head = model.member_head(heads[m], m)
        fit.info = model.fit_info(fit.head, member.prototypes, member.seed, float(final[m]))
    return fits


def _train(model: StackedModel, data: _Data, schedule: _Schedule, optimiser: StackedAdamW,
           snapshot_into: list[MemberFit | None]) -> np.ndarray:
    """The stacked mini-batch loop, keeping a snapshot after every epoch into the members' fits that are given;
    returns every member's last batch loss (NaN when it diverged)."""
    members, last_epoch = len(schedule.sizes), max(schedule.epochs)
    last = torch.full((members,), float("nan"), device=data.pool.device)
    final = torch.full_like(last, float("nan"))
    for epoch in range(1, last_epoch + 1):
        pos, active = schedule.epoch(epoch)
        valid = (pos >= 0).to(data.pool.device)
        pos, trains = pos.clamp(min=0).to(data.pool.device), torch.from_numpy(active).to(data.pool.device)
        optimiser.plan(active)
        for step in range(len(pos)):
            x, y = data.batch(pos[step])
            losses = model.losses(x, y, valid[step])
            optimiser.zero_grad()
            losses.sum().backward()  # members share no parameter: each gets its own loss's gradient
            optimiser.step()
            last = torch.where(trains[step], losses.detach(), last)
        ending = torch.tensor([epoch == e for e in schedule.epochs], device=last.device)
        final = torch.where(ending, last, final)
        progress.epoch(epoch, last_epoch)
        for m, fit in enumerate(snapshot_into):
            if fit is not None and epoch <= schedule.epochs[m]:
                fit.snapshots.append(model.member_head(fit.head, m))
    return final.cpu().numpy()

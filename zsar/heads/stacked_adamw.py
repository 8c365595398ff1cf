"""AdamW over parameters stacked on a leading member axis ([M, ...]), for M training runs trained as one model.

One `torch.optim.AdamW` over stacked parameters would give every member the same learning rate and weight decay,
and would move a member that sits a step out (its epoch is over, or it has no batch left in this epoch). Here
each member has its own learning rate, its own weight decay per parameter and its own step count, and a step
leaves the members it is not given untouched. The update is torch.optim.AdamW's (default betas and eps, no
amsgrad), written with the same operations in the same order, so on the CPU a member follows exactly the path a
separate AdamW gives it (tests/heads/test_batched_runs.py checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from zsar.errors import ZsarError

BETAS = (0.9, 0.999)  # torch.optim.AdamW's defaults, which the heads train with
EPS = 1e-8
CACHE_FLOATS = 1 << 18  # on a CPU, members are updated in groups of about this many floats (1 MB) per tensor


class StackedAdamW:
    """`params` [M, ...] each with its per-member weight decay ([M]); `lr` [M]. `step(active)` updates the members
    where `active` ([M] booleans, None: all) is true from the parameters' `.grad`. A training loop that knows an
    epoch's masks ahead `plan`s them: every factor of its steps reaches the device in one copy (a copy per step
    would make the host wait for the device at every step)."""

    def __init__(self, params: Sequence[torch.Tensor], weight_decay: Sequence[Sequence[float]], lr: Sequence[float]):
        self.params = list(params)
        self.lr = np.asarray(lr, dtype=np.float64)
        members = len(self.lr)
        decay = [np.asarray(wd, dtype=np.float64) for wd in weight_decay]
        if len(decay) != len(self.params) or any(
                p.shape[0] != members or d.shape != (members,) for p, d in zip(self.params, decay)):
            raise ZsarError(f"stacked AdamW: every parameter needs {members} members and a weight decay per member")
        # torch's decoupled decay: p *= 1 - lr * wd (skipped where every member's decay is 0, as torch skips it)
        self.decay = [self._per_member(1 - self.lr * d, p) if np.any(d != 0) else None for p, d in zip(self.params,
                                                                                                         decay)]
        self.steps = np.zeros(members, dtype=np.int64)
        self.first = [torch.zeros_like(p) for p in self.params]
        self.second = [torch.zeros_like(p) for p in self.params]
        self._planned: list[np.ndarray] = []
        self._factors = self._keep = None

    @staticmethod
    def _per_member(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        """Per-member float64 values as float32 on the parameter's device, shaped to broadcast over a member."""
        return torch.from_numpy(values.astype(np.float32)).to(like.device).view(-1, *([1] * (like.dim() - 1)))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def plan(self, active: np.ndarray) -> None:
        """The next steps' masks [S, M] (which members each step updates): their step sizes and bias corrections,
        worked out as torch works them out (Python floats), moved to the device at once."""
        active = np.asarray(active, dtype=bool).reshape(-1, len(self.lr))
        steps = self.steps + np.cumsum(active, axis=0)
        self.steps = steps[-1].copy()
        steps = np.maximum(steps, 1)  # a member that has not stepped yet is left alone
        factors = np.stack([-(self.lr / (1 - BETAS[0] ** steps)), (1 - BETAS[1] ** steps) ** 0.5], axis=1)
        device = self.params[0].device
        self._factors = torch.from_numpy(factors.astype(np.float32)).to(device)  # [S, 2, M]
        self._keep = torch.from_numpy(active).to(device)
        self._planned = list(active)

    @torch.no_grad()
    def step(self, active: np.ndarray | None = None) -> None:
        """The next planned step, or (none planned) one step of the members `active` (None: all)."""
        if not self._planned:
            self.plan(np.ones(len(self.lr), dtype=bool) if active is None else active)
        elif active is not None:
            raise ZsarError("stacked AdamW: steps are planned; step() takes no mask until they are done")
        index = len(self._factors) - len(self._planned)
        everyone = bool(self._planned.pop(0).all())
        for p, first, second, decay in zip(self.params, self.first, self.second, self.decay):
            grad = p.grad if p.grad is not None else torch.zeros_like(p)
            # on a CPU a few members at a time, so that every pass over them stays in the cache
            chunk = max(1, CACHE_FLOATS // max(1, p[0].numel())) if p.device.type == "cpu" else len(p)
            for start in range(0, len(p), chunk):
                part = slice(start, start + chunk)
                self._update(index, part, everyone, p, first, second, grad, decay)

    def _update(self, index: int, part: slice, everyone: bool, p, first, second, grad, decay) -> None:
        """torch's AdamW update of the members `part` of one parameter at the planned step `index`."""
        shape = (-1, *([1] * (p.dim() - 1)))
        step_size, correction2 = (f[part].view(shape) for f in self._factors[index])
        moved = (p[part], first[part], second[part])
        if not everyone:
            moved = tuple(t.clone() for t in moved)
        if decay is not None:
            moved[0].mul_(decay[part])
        moved[1].lerp_(grad[part], 1 - BETAS[0])
        moved[2].mul_(BETAS[1]).addcmul_(grad[part], grad[part], value=1 - BETAS[1])
        denom = (moved[2].sqrt() / correction2).add_(EPS)
        moved[0].add_(step_size * moved[1] / denom)  # addcdiv's order: (value * t1) / t2
        if not everyone:
            keep = self._keep[index, part].view(shape)
            for target, new in zip((p[part], first[part], second[part]), moved):
                target.copy_(torch.where(keep, new, target))

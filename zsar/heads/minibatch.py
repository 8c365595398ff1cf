"""The shared training loop of the small torch heads: seeded shuffles, mini-batches, AdamW."""

from __future__ import annotations

from collections.abc import Callable

import torch

from zsar import progress


def train_minibatches(param_groups: list, batch_loss: Callable[[torch.Tensor], torch.Tensor], num_samples: int,
                      epochs: int, batch_size: int, lr: float, seed: int, device: torch.device | str = "cpu",
                      after_epoch: Callable[[int], None] | None = None) -> float:
    """Run `epochs` passes of AdamW over shuffled mini-batches; `batch_loss(indices)` gives the loss of a batch.
    Every pass is reported to the run's progress display, then `after_epoch(epoch)` runs (1-based). Returns the
    last batch's loss (NaN when training diverged)."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(param_groups, lr=lr)
    loss = torch.tensor(float("nan"))
    for epoch in range(1, epochs + 1):
        order = torch.randperm(num_samples, generator=generator).to(device)
        for start in range(0, num_samples, batch_size):
            loss = batch_loss(order[start : start + batch_size])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        progress.epoch(epoch, epochs)
        if after_epoch is not None:
            after_epoch(epoch)
    return float(loss.detach())  # read once: a read per step would wait for an accelerator every step


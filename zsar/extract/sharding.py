"""Splitting one extraction over processes, GPUs or machines: which rows a shard takes, where it writes,
and what a torchrun launch says about this process's rank."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsar.errors import ZsarError
from zsar.features.inputs import samples_digest


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ZsarError(f"shard {self.index}/{self.count}: need 0 <= i < n")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/n` (0-based i)."""
        index, sep, count = text.partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ZsarError(f"shard {text!r} must look like i/n, e.g. 0/4")
        return cls(int(index), int(count))

    def rows(self, total: int) -> np.ndarray:
        """Every n-th row from i: shards get a fair mix of long and short videos of a sorted dataset."""
        return np.arange(self.index, total, self.count, dtype=np.int64)

    def path(self, cache_path: str | Path) -> Path:
        cache_path = Path(cache_path)
        width = len(str(self.count - 1))
        return cache_path.with_name(f"{cache_path.stem}.shard{self.index:0{width}d}-of-{self.count}{cache_path.suffix}")

    def record(self, sample_ids: list[str]) -> dict:
        """What the shard's cache header says about the whole, so a merge can prove coverage."""
        return {"index": self.index, "count": self.count, "total_rows": len(sample_ids),
                "samples_sha256": samples_digest(sample_ids)}


def torchrun_shard() -> Shard | None:
    """This process's shard under torchrun (RANK / WORLD_SIZE in the environment), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Shard(int(os.environ.get("RANK", "0")), world) if world > 1 else None


def torchrun_device(device: str) -> str:
    """`cuda` becomes this rank's GPU (LOCAL_RANK) under torchrun."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device

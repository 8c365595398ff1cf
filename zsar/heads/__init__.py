"""Heads trained on caches, all behind one interface (`zsar.heads.base.Head`)."""

from __future__ import annotations

import json
from pathlib import Path

from zsar.errors import ZsarError
from zsar.heads.base import Head, build_config
from zsar.heads.dual_head import DualHead
from zsar.heads.linear_projection import LinearProjectionHead
from zsar.heads.nearest_prototype import NearestPrototypeHead
from zsar.heads.sadvae import SADVAEHead

HEADS: dict[str, type[Head]] = {
    NearestPrototypeHead.name: NearestPrototypeHead,
    LinearProjectionHead.name: LinearProjectionHead,
    DualHead.name: DualHead,
    SADVAEHead.name: SADVAEHead,
}


def head_class(name: str) -> type[Head]:
    if name not in HEADS:
        raise ZsarError(f"unknown head {name!r}; known heads: {sorted(HEADS)}")
    return HEADS[name]


def build_head(name: str, params: dict | None = None) -> Head:
    cls = head_class(name)
    return cls(build_config(cls.Config, params, f"head {name!r}"))


def load_head(directory: str | Path) -> Head:
    """Load a head saved with `Head.save`; scores are identical to the saved head's."""
    from safetensors.numpy import load_file

    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "weights.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ZsarError("saved head file not found", path)
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
        state = load_file(str(weights_path))
    except (ValueError, OSError) as exc:
        raise ZsarError(f"cannot read saved head: {exc}", directory) from exc
    return head_class(meta.get("head", "")).from_saved(meta.get("config", {}), state)


__all__ = ["HEADS", "Head", "build_head", "head_class", "load_head"]

"""Heads trained on caches, all behind one interface (`zsar.heads.base.Head`). Head modules (and torch) are
imported when a head is first used; their settings live in zsar/heads/configs.py."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from zsar.errors import ZsarError
from zsar.heads.base import Head, build_config
from zsar.heads.configs import HEAD_CLASSES, HEAD_CONFIGS


def head_class(name: str) -> type[Head]:
    if name not in HEAD_CLASSES:
        raise ZsarError(f"unknown head {name!r}; known heads: {sorted(HEAD_CLASSES)}")
    module, cls = HEAD_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


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


def __getattr__(name: str):
    if name == "HEADS":  # every head class by name (imports them all)
        return {head: head_class(head) for head in HEAD_CLASSES}
    raise AttributeError(name)


__all__ = ["HEAD_CLASSES", "HEAD_CONFIGS", "HEADS", "Head", "build_head", "head_class", "load_head"]

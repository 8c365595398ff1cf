"""Reading a network checkpoint file (mmengine style `{"state_dict", "meta"}`, or a bare state dict)."""

from __future__ import annotations

from pathlib import Path

import torch

from zsar.errors import ZsarError


def read_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """(state dict, meta) of a checkpoint; a missing, unreadable or non-checkpoint file names itself."""
    path = Path(path)
    if not path.is_file():
        raise ZsarError("checkpoint not found", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ZsarError(f"cannot read the checkpoint: {type(exc).__name__}: {exc}", path) from exc
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ZsarError("not a checkpoint: expected a state dict (or a dict with `state_dict`)", path)
    meta = payload.get("meta", {}) if isinstance(payload, dict) else {}
    return state, meta if isinstance(meta, dict) else {}

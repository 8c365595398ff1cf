"""Reading a network checkpoint file (mmengine style `{"state_dict", "meta"}`, or a bare state dict).

Checkpoints are pickles, and a pickle can run code when it is loaded. They are read with torch's
`weights_only` loader, which builds only tensors, containers, numbers and strings, plus an allow-list of the
plain-data types that zsar's and mmengine's checkpoints hold (numpy arrays and scalars, mmengine's logging
buffers). Anything else is refused with a message; `trust_pickle=True` (`--trust-pickle`) loads the file with
the full unpickler, for files the user trusts.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from zsar.errors import ZsarError


def _allowed_globals() -> list:
    """Plain-data types found in real checkpoints: numpy arrays, dtypes and scalars (the RNG state in zsar's
    resumable training files, values in mmengine's meta). mmengine's message hub is not among them: its history
    buffers pickle through `getattr`, which could reach anything; such training checkpoints need trust (or a
    copy holding only `state_dict` and `meta`)."""
    from numpy import dtypes

    allowed = [np.ndarray, np.dtype, *(getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType"))]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            imported = __import__(module, fromlist=["_reconstruct", "scalar"])
            allowed += [imported._reconstruct, imported.scalar]
        except (ImportError, AttributeError):
            continue
    return allowed


def load_torch_file(path: str | Path, trust_pickle: bool = False):
    """`torch.load` of a file written by zsar or mmengine, refusing arbitrary objects unless trusted."""
    path = Path(path)
    if trust_pickle:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "unsupported global" in line.lower()), None)
        if detail is None:  # not a refused type: a damaged or foreign file
            raise
        detail = detail.split(" was not an allowed global")[0].replace("WeightsUnpickler error: ", "")
        raise ZsarError(f"refused: the file holds Python objects that are not plain data ({detail}), and loading "
                        "them could run code. If you trust this file, pass --trust-pickle (trust_pickle = true)",
                        path) from exc


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> tuple[dict, dict]:
    """(state dict, meta) of a checkpoint; a missing, unreadable or non-checkpoint file names itself."""
    path = Path(path)
    if not path.is_file():
        raise ZsarError("checkpoint not found", path)
    try:
        payload = load_torch_file(path, trust_pickle)
    except ZsarError:
        raise
    except Exception as exc:  # torch raises many types for a damaged file
        raise ZsarError(f"cannot read the checkpoint: {type(exc).__name__}: {exc}", path) from exc
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ZsarError("not a checkpoint: expected a state dict (or a dict with `state_dict`)", path)
    meta = payload.get("meta", {}) if isinstance(payload, dict) else {}
    return state, meta if isinstance(meta, dict) else {}

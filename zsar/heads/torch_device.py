"""The torch device a head trains on, from its `device` setting, with a clear error where it does not exist."""

from __future__ import annotations

import contextlib

import torch

from zsar.errors import ZsarError


def training_device(name: str, owner: str) -> torch.device:
    """`name` as torch spells it ("cpu", "cuda", "cuda:1", "mps"); an error names the owner of the setting (a head,
    or "[evaluate] device") and what is missing."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ZsarError(f"{owner}: device {name!r} is not a torch device name; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ZsarError(f"{owner}: device {name!r} asked for, but torch sees no CUDA GPU on this machine; "
                            "use device = 'cpu'")
        if device.index is not None and device.index >= count:
            raise ZsarError(f"{owner}: device {name!r} asked for, but torch sees {count} CUDA GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ZsarError(f"{owner}: device {name!r} asked for, but the MPS backend is not available; use 'cpu'")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ZsarError(f"{owner}: device {name!r} is not supported (cpu, cuda or mps)")
    return device


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's CPU thread count set to `threads` (None: left alone) inside the block, restored after it."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)

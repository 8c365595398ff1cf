"""Atomic file replacement: write to a temporary sibling, then rename over the target."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, on error remove it.

    A reader never sees a half-written file: it sees the old one or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def writable_folder(path: str | Path, what: str = "output folder") -> Path:
    """Make `path` (and its parents) and check a file can be created in it: a read-only or full file system, or a
    path that is a file, is one clear error naming the folder, before any work writes there."""
    from zsar.errors import ZsarError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".zsar-write-check.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ZsarError(f"cannot write the {what} here: {exc.strerror or exc}", path) from None
    return path

"""One writer per cache: an exclusive advisory lock on `<cache>.lock`, held from start to publish.

HDF5's own file lock only covers the open partial file; a second writer with `overwrite` could still delete
or publish the first one's partial. This lock is taken on the cache *name* before the partial file is
touched. The lock file holds the holder's pid, host and start time, so a refusal can say who writes.
It is removed on release; a holder checks after locking that the file it locked is still the one at
the path (another holder may have removed it in between) and retries otherwise.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from zsar.errors import ZsarError

log = logging.getLogger(__name__)


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('started', '?')}"


def _record_holder(fd: int) -> None:
    """Who holds the lock, for a refused writer's message (best effort: a full disk must not stop the run)."""
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
    except OSError:
        pass


def _same_file(fd: int, lock: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(lock))
    except FileNotFoundError:
        return False


class CacheLock:
    """`CacheLock.acquire(cache_path, wait_s)`; `release()` when the cache is published or abandoned."""

    def __init__(self, path: Path, fd: int, locked: bool = True):
        self.path, self._fd, self.locked = path, fd, locked

    @classmethod
    def acquire(cls, cache: str | Path, wait_s: float = 0.0) -> CacheLock:
        lock = lock_path(Path(cache))
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            try:
                lock.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ZsarError(f"cannot write here: {exc.strerror} (the cache's folder must be writable)",
                                lock) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise ZsarError(
                        f"another zsar process is writing this cache ({_holder(lock)}); wait for it to finish or "
                        f"stop it. --overwrite does not take over a running writer", cache,
                    ) from None
                time.sleep(0.2)
                continue
            except OSError as exc:  # a file system without flock (some NFS / Lustre mounts)
                log.warning("%s: this file system does not support locks (%s); one writer per cache is not "
                            "enforced here", lock, exc.strerror)
                return cls(lock, fd, locked=False)
            if not _same_file(fd, lock):  # the previous holder removed the file after we opened it
                os.close(fd)
                continue
            _record_holder(fd)
            return cls(lock, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self.locked and _same_file(self._fd, self.path):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

"""How many CPU threads zsar's numeric work uses, and how its thread pools wait.

Measured on the 2-core CPU (linear_projection's protocol on the demo, 560 training samples): idle, 2 torch
threads took 6.7 s and 1 thread 7.8 s; with two busy processes beside it, 2 threads took 98.7 s and 1 thread
11.7 s. Two things cause the collapse. OpenMP threads spin while they wait, so they fight the other processes
(and numpy's and FAISS's own pools) for the cores. More threads than free cores also means each parallel region
waits for a thread that is not running. So:
- `OMP_WAIT_POLICY=PASSIVE` is set when zsar is imported (unless the environment sets it), before torch
  starts its pool: waiting threads sleep. Same run, one busy process beside it: 8.8 s instead of 21.3 s;
  idle: 6.9 s instead of 6.7 s.
- `free_cores()` counts the cores this process may use that other processes leave idle, sampled from
  /proc/stat, and `use_threads()` sizes torch's pool to them (or to the number the user asks for).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time

log = logging.getLogger(__name__)


def passive_waits() -> None:
    """Ask OpenMP pools started after this to sleep while waiting (the user's own setting wins)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; the cpu count where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _busy_and_total() -> tuple[float, float] | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def free_cores(window: float = 0.2) -> int:
    """Usable cores minus the cores other processes kept busy over `window` seconds (at least 1). Where
    /proc/stat cannot be read, all usable cores."""
    cores = usable_cores()
    before, own_before = _busy_and_total(), time.process_time()
    if before is None:
        return cores
    time.sleep(window)
    after, own = _busy_and_total(), time.process_time() - own_before
    if after is None or after[1] <= before[1]:
        return cores
    all_cores = os.cpu_count() or cores
    busy_elsewhere = (after[0] - before[0]) / (after[1] - before[1]) * all_cores - own / window
    return max(1, min(cores, round(cores - max(busy_elsewhere, 0.0))))


def use_threads(requested: int = 0) -> int:
    """Size torch's CPU pool: `requested` threads, or (0) the free cores now. Returns the count set."""
    import torch

    threads = requested if requested > 0 else free_cores()
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    log.info("CPU threads: %d (%s)", threads, "asked for" if requested > 0 else f"free of {usable_cores()} usable")
    return threads


@contextlib.contextmanager
def torch_scope(threads: int | None = None, flush_denormal: bool = False):
    """torch's process-wide settings for one piece of work, restored after it: the global random generator (forked:
    seeding inside the block does not change what later code draws), the CPU thread count (when given) and
    denormal flushing (when asked for; turned off after, torch's default, as torch cannot report the old state)."""
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=devices):
        if threads:
            torch.set_num_threads(threads)
        if flush_denormal:
            torch.set_flush_denormal(True)
        try:
            yield
        finally:
            torch.set_num_threads(before)
            if flush_denormal:
                torch.set_flush_denormal(False)


def keeps_torch_state(function):
    """`function` run inside `torch_scope()`: its seeding leaves the global random generator as it found it."""
    @functools.wraps(function)
    def scoped(*args, **kwargs):
        with torch_scope():
            return function(*args, **kwargs)

    scoped.__wrapped_by_torch_scope__ = True
    return scoped

"""One bad sample is one failed row: run a batch, and when it fails, find the samples that break it.

A sample can load and prepare fine and still break the batch it is in (a shape the network cannot take, a
value that overflows). `encode_isolating` runs the batch; when that raises, it runs the samples one by one
and returns the ones that fail as failed rows with their reason. When every sample of a batch fails alone
with the same error, or with an error that is about memory or the device, the fault is not in the samples and
it is raised (failed rows are never retried, so a passing fault must not become one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from zsar.errors import ZsarError

log = logging.getLogger(__name__)


def problem_text(exc: BaseException) -> str:
    """A one-line reason for a failed row."""
    if isinstance(exc, ZsarError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def is_systemic(exc: BaseException) -> bool:
    """Errors that are not about one sample (memory, the device): they stop the run instead of failing rows."""
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, MemoryError) or any(k in text for k in ("out of memory", "cuda", "cudnn", "device-side"))


def _join(parts: list[tuple]) -> tuple:
    return tuple(None if part[0] is None else np.concatenate([np.asarray(p) for p in part]) for part in zip(*parts))


def encode_isolating(encode: Callable[[list[int]], tuple], rows: Sequence[int],
                     check: Callable[[tuple], None] | None = None) -> tuple[list[int], tuple | None,
                                                                       list[tuple[int, str]]]:
    """`encode(positions)` -> a tuple of arrays (or None) for those positions of the batch; `check(outputs)`
    raises when outputs do not fit the cache (a sample whose data has another shape can encode fine alone).
    Returns (rows encoded, their outputs joined, [(row, reason)] for rows that broke the batch)."""
    positions = list(range(len(rows)))

    def checked(subset: list[int]) -> tuple:
        outputs = encode(subset)
        if check is not None:
            check(outputs)
        return outputs

    try:
        return list(rows), checked(positions), []
    except Exception as exc:  # noqa: BLE001 - whatever breaks the batch is looked for sample by sample
        if is_systemic(exc):
            raise
        if len(rows) == 1:
            return [], None, [(rows[0], problem_text(exc))]
        first = exc
    done, outputs, failed = [], [], []
    for position in positions:
        try:
            outputs.append(checked([position]))
            done.append(rows[position])
        except Exception as exc:  # noqa: BLE001 - this sample is the one that breaks the batch
            if is_systemic(exc):
                raise
            failed.append((rows[position], problem_text(exc)))
    if not done and len({reason for _, reason in failed}) == 1:
        raise first
    log.warning("a batch failed (%s); %d of its %d samples fail alone and are recorded as failed rows",
                problem_text(first), len(failed), len(rows))
    return done, (_join(outputs) if outputs else None), failed

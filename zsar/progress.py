"""Progress of an experiment's runs, for the person waiting on it: runs done of the total with an ETA, the
current head, split, seed and stage, the training epoch, and the validation score as parameters are chosen.

The runner owns a `RunProgress` and makes it current (`tracking`); the protocol and the training loops below
it report through the module functions (`stage`, `epoch`, `chosen`), which do nothing when no run is
tracked, so library users who call a head directly see nothing. On a terminal one status line is rewritten in
place (at most every 0.2 s); every finished run is also a timestamped log line, which is all a log file gets.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import TextIO

log = logging.getLogger("zsar.run")
_current: RunProgress | None = None


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class RunProgress:
    def __init__(self, total: int, stream: TextIO | None = None, live: bool | None = None, clock=time.monotonic):
        self.total, self.done, self.clock = total, 0, clock
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.started = clock()
        self.run_started = self.started
        self.run, self.stage_text, self.epoch_text, self.choice = "", "", "", ""
        self._drawn = 0.0

    # -- what the runner reports ------------------------------------------------------------------------------
    def start_run(self, head: str, split: str, seed: int) -> None:
        self.run, self.stage_text, self.epoch_text, self.choice = f"{head} | {split} | seed {seed}", "", "", ""
        self.run_started = self.clock()
        self.draw(force=True)

    def finish_run(self, summary: str) -> None:
        self.done += 1
        self.clear()
        log.info("run %d/%d done in %s: %s: %s%s", self.done, self.total, _duration(self.clock() - self.run_started),
                 self.run, summary, f" (chosen on validation: {self.choice})" if self.choice else "")
        self.draw(force=True)

    # -- what the protocol and the training loops report ----------------------------------------------------------
    def set_stage(self, text: str) -> None:
        self.stage_text, self.epoch_text = text, ""
        self.draw(force=True)

    def set_epoch(self, epoch: int, total: int) -> None:
        self.epoch_text = f"epoch {epoch}/{total}"
        self.draw()

    def set_choice(self, text: str) -> None:
        self.choice = text
        self.draw(force=True)

    # -- display --------------------------------------------------------------------------------------------------
    def eta(self) -> str:
        if not self.done:
            return "ETA after the first run"
        per_run = (self.clock() - self.started) / self.done
        return f"ETA {_duration(per_run * (self.total - self.done))}"

    def status(self) -> str:
        parts = [f"[{self.done}/{self.total} runs, {_duration(self.clock() - self.started)}, {self.eta()}]", self.run,
                 self.stage_text, self.epoch_text, f"chosen: {self.choice}" if self.choice else ""]
        return " | ".join(p for p in parts if p)

    def draw(self, force: bool = False) -> None:
        now = self.clock()
        if not self.live or (not force and now - self._drawn < 0.2):
            return
        self._drawn = now
        self.stream.write("\r\033[K" + self.status()[:200])
        self.stream.flush()

    def clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


@contextlib.contextmanager
def tracking(progress: RunProgress) -> Iterator[RunProgress]:
    """Make `progress` the one the module functions report to, for the duration."""
    global _current
    previous, _current = _current, progress
    try:
        yield progress
    finally:
        progress.clear()
        _current = previous


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Clear the live status line for whatever is printed inside (a log line), then draw it again below."""
    if _current is None or not _current.live:
        yield
        return
    _current.clear()
    try:
        yield
    finally:
        _current.draw(force=True)


def stage(text: str) -> None:
    if _current is not None:
        _current.set_stage(text)


def epoch(number: int, total: int) -> None:
    if _current is not None:
        _current.set_epoch(number, total)


def chosen(text: str) -> None:
    if _current is not None:
        _current.set_choice(text)

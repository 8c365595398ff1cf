"""The one error type users see: it names the file (when there is one) and the problem."""

from __future__ import annotations

from pathlib import Path


class ZsarError(Exception):
    """A user-facing error. The CLI prints it on one line and exits non-zero."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.problem = problem
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during an experiment: how many runs had finished, and the partial report written (if any)."""

    def __init__(self, finished: int, total: int, report: Path | None):
        self.finished, self.total, self.report = finished, total, report
        where = f"; partial report: {report}" if report is not None else "; no run had finished, no report written"
        super().__init__(f"interrupted: {finished} of {total} runs finished{where}")

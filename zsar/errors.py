"""The one error type users see: it names the file (when there is one) and the problem."""

from __future__ import annotations

from pathlib import Path


class ZsarError(Exception):
    """A user-facing error. The CLI prints it on one line and exits non-zero."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.problem = problem
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)

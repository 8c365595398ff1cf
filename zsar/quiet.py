"""Quiet by default: what the command line keeps off the terminal unless `--verbose`.

A command shows its own result (stdout), zsar's progress and log lines, and every warning and error. Hidden
by default, shown again with `--verbose`:

- third-party INFO logging (sentence-transformers' "Loading SentenceTransformer model ...");
- Hugging Face loading bars ("Loading weights") and progress bars that finish within `BAR_DELAY_S` (the empty
  "0sample" bar of an extraction that had nothing left to do);
- mmcv-lite's import warning about `MultiScaleDeformableAttention` (zsar never uses it);
- the cache writer's "wrote ..." line, which the command's own summary repeats;
- FFmpeg and decord messages written straight to the stderr file descriptor, by this process and by its
  decoding workers ("[mov,mp4,... @ 0x...] moov atom not found", "[12:00:00] video_reader.cc:83: ERROR
  opening ..."): the video is recorded as a failed row with the reason, so they only break the progress bar.

Log lines are written above live progress displays (tqdm bars, the run status line), never into them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import select
import sys
import threading
import warnings
from collections.abc import Iterator

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
BAR_DELAY_S = 0.5
# loggers whose INFO lines repeat what the command prints anyway
QUIET_LOGGERS = ("zsar.features.writer",)
QUIET_WARNINGS = (r"Fail to import ``MultiScaleDeformableAttention``",)
QUIET_ENVIRONMENT = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DELAY": str(BAR_DELAY_S)}

# FFmpeg's "[context @ 0xADDRESS] message" and dmlc's (decord's) "[HH:MM:SS] file.cc:LINE: message"
_PREFIX = rb"(?:\[[\w.,-]+ @ 0x[0-9a-fA-F]+\]|\[\d\d:\d\d:\d\d\] \S+:\d+: )"
_NOISE = re.compile(_PREFIX + rb"[^\n]*\n")
_NOISE_AT_END = re.compile(_PREFIX + rb"[^\n]*\Z")
# what may still become a noise line: an unclosed "[...", or a noise prefix whose line has not ended
_MAYBE_NOISE = re.compile(rb"(?:\[[^\]\n]*|\[\d\d:\d\d:\d\d\][^\n]*|" + _PREFIX + rb"[^\n]*)\Z")


def configure(verbose: bool) -> None:
    """Set up logging and third-party output for one command-line run (see the module docstring)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = ConsoleHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("zsar").setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    if verbose:  # undo what a quiet run in this process (or the parent that started it) set
        for key, value in QUIET_ENVIRONMENT.items():
            if os.environ.get(key) == value:
                del os.environ[key]
        return
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    for key, value in QUIET_ENVIRONMENT.items():  # read when huggingface_hub and tqdm are imported (later)
        os.environ.setdefault(key, value)
    if "transformers" in sys.modules:  # imported already: its switch instead of the environment
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


class ConsoleHandler(logging.StreamHandler):
    """Log lines above the live displays: the run status line and tqdm bars are cleared first, redrawn after.
    Without a stream it writes to whatever `sys.stderr` is at the time (`filtered_stderr` replaces it)."""

    def __init__(self, stream=None):
        super().__init__(stream)
        self.follow = stream is None

    def _target(self):
        return sys.stderr if self.follow else self.stream

    def flush(self) -> None:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self._target().flush()

    def emit(self, record: logging.LogRecord) -> None:
        from zsar import progress

        try:
            text, stream = self.format(record), self._target()
            with progress.suspended():
                if "tqdm" in sys.modules:  # no bar can be on screen before tqdm is imported
                    from tqdm.auto import tqdm

                    tqdm.write(text, file=stream)
                else:
                    stream.write(text + self.terminator)
                stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)


def strip_noise(data: bytes, final: bool = False) -> tuple[bytes, bytes]:
    """(what to show, what to hold back until more arrives): FFmpeg and decord lines removed. A line that may
    still turn out to be one is held back, unless `final`."""
    data = _NOISE.sub(b"", data)
    if final:
        return _NOISE_AT_END.sub(b"", data), b""
    held = _MAYBE_NOISE.search(data)
    return (data, b"") if held is None else (data[: held.start()], data[held.start() :])


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data) :]
        except OSError:  # the terminal went away: drop it, keep draining the pipe
            return


def _pump(read_fd: int, out_fd: int, hold_s: float = 0.2) -> None:
    """Copy the pipe to `out_fd` without the noise; a held-back line is let through after `hold_s`. Never
    stops before the pipe's end (a full pipe would block every writer)."""
    pending = b""
    while True:
        try:
            ready = select.select([read_fd], [], [], hold_s if pending else None)[0]
            chunk = os.read(read_fd, 1 << 16) if ready else None
        except OSError:
            break
        if chunk == b"":
            break
        data = pending + (chunk or b"")
        try:
            shown, pending = strip_noise(data, final=chunk is None)
        except Exception:  # noqa: BLE001 - a filter bug must not hide output: let it through as it is
            shown, pending = data, b""
        _write_all(out_fd, shown)
    _write_all(out_fd, strip_noise(pending, final=True)[0])
    os.close(read_fd)


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """For the duration, bytes written to file descriptor 2 (C libraries, forked workers) pass through a filter
    that drops FFmpeg and decord messages; Python's `sys.stderr` writes to the terminal directly (it stays a
    terminal for progress bars). Does nothing where stderr is not a real file descriptor (tests, notebooks)."""
    try:
        usable = os.name == "posix" and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        usable = False
    if not usable:
        yield
        return
    original = sys.stderr
    original.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = io.TextIOWrapper(io.FileIO(saved, "w", closefd=False), encoding=original.encoding,
                                  errors=original.errors, line_buffering=True)
    pump = threading.Thread(target=_pump, args=(read_fd, saved), name="zsar-stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = original
        os.dup2(saved, 2)  # closes this process's write end of the pipe: the pump drains it and stops
        pump.join(timeout=1.0)  # longer only while a worker still holds the pipe
        # `saved` stays open: a bar not yet garbage-collected may still write to it, and a closed number could
        # be reused by a file

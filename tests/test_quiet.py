"""Quiet by default: third-party noise hidden, FFmpeg/decord lines kept off the terminal, log lines above the
live displays; `--verbose` (configure(True)) brings everything back."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from zsar import progress, quiet
from zsar.progress import RunProgress, tracking

FFMPEG = b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55a9bf103140] moov atom not found\n"
DECORD = b"[22:39:14] /github/workspace/src/video/video_reader.cc:83: ERROR opening: a.mp4, Invalid data\n"
MMCV = ("Fail to import ``MultiScaleDeformableAttention`` from ``mmcv.ops.multi_scale_deform_attn``, You should "
        "install ``mmcv`` rather than ``mmcv-lite`` if you need this module. ")


@pytest.fixture
def restored():
    """configure() changes process-wide state: put logging, warnings and the environment back afterwards."""
    names = ("", "zsar", *quiet.QUIET_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = logging.getLogger().handlers[:]
    environment = {key: os.environ.get(key) for key in quiet.QUIET_ENVIRONMENT}
    with warnings.catch_warnings():
        yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().handlers[:] = handlers
    for key, value in environment.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in quiet.QUIET_ENVIRONMENT}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          env={**environment, **env})


def test_strip_noise_removes_decoder_lines_and_keeps_everything_else():
    bar = b"\rextract vids:  25%|##5       | 1/4 [00:00<00:02,  1.37clip/s]"
    shown, held = quiet.strip_noise(bar + FFMPEG + b"warning: kept\n" + DECORD + b"[info] kept too\n")
    assert (shown, held) == (bar + b"warning: kept\n[info] kept too\n", b"")
    # a line that may still become noise waits for the rest; the bar before it does not
    shown, held = quiet.strip_noise(bar + FFMPEG[:30])
    assert (shown, held) == (bar, FFMPEG[:30])
    assert quiet.strip_noise(held + FFMPEG[30:] + b"after\n") == (b"after\n", b"")
    shown, held = quiet.strip_noise(b"[22:39:1")
    assert shown == b"" and quiet.strip_noise(held + DECORD[8:]) == (b"", b"")
    # at the end (or after a pause) what was held back is let through, unless it is noise itself
    assert quiet.strip_noise(b"[unfinished", final=True) == (b"[unfinished", b"")
    assert quiet.strip_noise(FFMPEG.rstrip(), final=True) == (b"", b"")


def test_filtered_stderr_drops_decoder_lines_of_this_process_and_its_workers():
    code = """
        import os, sys
        from zsar.quiet import filtered_stderr

        def noise():
            os.write(2, %r)
            if os.fork() == 0:  # a decoding worker writes to the same file descriptor
                os.write(2, %r)
                os._exit(0)
            os.wait()
            os.write(2, b"kept from C\\n")
            print("kept from Python", file=sys.stderr)

        with %s:
            noise()
        print("after", file=sys.stderr)
    """
    filtered = _python(code % (FFMPEG, DECORD, "filtered_stderr()"))
    assert filtered.returncode == 0, filtered.stderr
    # Python's own writes go to the terminal directly, the rest through the filter: compare as a set
    assert sorted(filtered.stderr.decode().splitlines()) == ["after", "kept from C", "kept from Python"]
    assert b"moov" not in filtered.stderr and b"video_reader" not in filtered.stderr
    plain = _python(code % (FFMPEG, DECORD, "open(os.devnull)"))  # the same without the filter: all of it
    assert FFMPEG in plain.stderr and DECORD in plain.stderr


def test_quiet_hides_third_party_info_writer_lines_and_the_mmcv_warning(restored):
    quiet.configure(verbose=False)
    assert logging.getLogger("zsar.run").isEnabledFor(logging.INFO)
    assert not logging.getLogger("sentence_transformers.base.model").isEnabledFor(logging.INFO)
    assert not logging.getLogger("zsar.features.writer").isEnabledFor(logging.INFO)
    assert logging.getLogger("zsar.features.writer").isEnabledFor(logging.WARNING)
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.configure(verbose=False)
        warnings.warn(MMCV, UserWarning, stacklevel=1)
        warnings.warn("another warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another warning"]


def test_verbose_shows_everything(restored):
    quiet.configure(verbose=False)
    quiet.configure(verbose=True)  # --verbose after a quiet run in the same process: everything back
    for name in ("sentence_transformers.base.model", "zsar.features.writer", "zsar.run"):
        assert logging.getLogger(name).isEnabledFor(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.configure(verbose=True)
        warnings.warn(MMCV, UserWarning, stacklevel=1)
    assert len(caught) == 1


def test_empty_progress_bar_is_not_drawn_unless_verbose():
    code = """
        from zsar.quiet import configure
        configure(verbose=%s)
        from tqdm.auto import tqdm
        bar = tqdm(total=0, desc="extract synthetic20", unit="sample")
        bar.close()
    """
    assert _python(code % "False").stderr == b""
    assert b"0sample" in _python(code % "True").stderr


def test_log_lines_are_written_above_the_run_status_line():
    stream = io.StringIO()
    handler = quiet.ConsoleHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    tracker = RunProgress(3, stream=stream, live=True)
    with tracking(tracker):
        tracker.start_run("sadvae", "ntu60/55-5", 0)
        stream.seek(0), stream.truncate()
        handler.emit(logging.LogRecord("zsar.x", logging.WARNING, __file__, 1, "a warning", None, None))
    text = stream.getvalue()
    assert text.startswith("\r\033[Ka warning\n\r\033[K[0/3 runs"), repr(text)
    assert progress._current is None


def test_stderr_stays_a_terminal_for_progress_bars():
    import pty

    code = """
        import sys
        from zsar.quiet import filtered_stderr
        with filtered_stderr():
            print(sys.stderr.isatty(), sys.stderr.fileno() != 2)
    """
    main, secondary = pty.openpty()
    try:
        environment = {k: v for k, v in os.environ.items() if k not in quiet.QUIET_ENVIRONMENT}
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                                stderr=secondary, env=environment, timeout=60)
    finally:
        os.close(main), os.close(secondary)
    assert result.stdout.split() == [b"True", b"True"]


def test_console_handler_follows_sys_stderr(monkeypatch):
    handler = quiet.ConsoleHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    for _ in range(2):  # filtered_stderr swaps sys.stderr in and out: each line goes to the one of its time
        now = io.StringIO()
        monkeypatch.setattr(sys, "stderr", now)
        handler.emit(logging.LogRecord("zsar.x", logging.INFO, __file__, 1, "hello", None, None))
        assert now.getvalue() == "INFO hello\n"

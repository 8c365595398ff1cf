"""Head.save replaces its files atomically: a write that fails leaves the previous head (or nothing), never a
partial file."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors.numpy

from zsar.heads import build_head, load_head


def _head(value: float):
    head = build_head("nearest_prototype", {"temperature": 0.2})
    head.state = {"feature_mean": np.full(3, value, np.float32), "feature_std": np.ones(3, np.float32)}
    return head


def _failing_save_file(tensors, filename, *args, **kwargs):
    with open(filename, "wb") as handle:
        handle.write(b"\x00" * 7)  # a torn write
    raise OSError(28, "No space left on device")


def test_a_failed_save_keeps_the_previous_head_and_leaves_no_partial_file(tmp_path, monkeypatch):
    folder = _head(1.0).save(tmp_path / "head")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(safetensors.numpy, "save_file", _failing_save_file)
    with pytest.raises(OSError, match="No space left"):
        _head(2.0).save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporary file beside them either
    monkeypatch.undo()
    np.testing.assert_array_equal(load_head(folder).state["feature_mean"], np.full(3, 1.0, np.float32))


def test_a_failed_first_save_leaves_no_files(tmp_path, monkeypatch):
    monkeypatch.setattr(safetensors.numpy, "save_file", _failing_save_file)
    with pytest.raises(OSError):
        _head(1.0).save(tmp_path / "head")
    assert list((tmp_path / "head").iterdir()) == []

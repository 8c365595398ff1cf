from __future__ import annotations

import os
import subprocess

import pytest

from zsar.atomic import writable_folder
from zsar.errors import ZsarError


def test_writable_folder_is_made_and_left_clean(tmp_path):
    folder = writable_folder(tmp_path / "a" / "b")
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_a_file_in_the_way_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ZsarError, match="cannot write the output folder here") as info:
        writable_folder(tmp_path / "file" / "out")
    assert str(tmp_path / "file" / "out") in str(info.value)


def test_a_read_only_file_system_is_one_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here (needs root and mount rights)")
    try:
        with pytest.raises(ZsarError, match="Read-only file system"):
            writable_folder(folder / "out", "report folder")
    finally:
        subprocess.run(["umount", str(folder)], check=False)

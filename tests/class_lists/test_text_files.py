from __future__ import annotations

import pytest

from zsar.class_lists import read_class_names, read_class_texts
from zsar.errors import ZsarError


def test_names_from_txt_and_csv(tmp_path):
    (tmp_path / "n.txt").write_text("walk\n\nrun\n")
    assert read_class_names(tmp_path / "n.txt") == ["walk", "run"]
    (tmp_path / "n.csv").write_text("idx,label\n1,run\n0,walk\n")
    assert read_class_names(tmp_path / "n.csv") == ["walk", "run"]
    (tmp_path / "gap.csv").write_text("0,walk\n2,run\n")
    with pytest.raises(ZsarError, match="without gaps"):
        read_class_names(tmp_path / "gap.csv")
    (tmp_path / "dup.txt").write_text("walk\nwalk\n")
    with pytest.raises(ZsarError, match="repeat"):
        read_class_names(tmp_path / "dup.txt")


def test_descriptions_with_several_variants(tmp_path):
    names = ["walk", "run"]
    (tmp_path / "d.csv").write_text("0,a person walks\n1,a person runs\n1,someone jogging fast\n")
    expected = [["a person walks"], ["a person runs", "someone jogging fast"]]
    assert read_class_texts(tmp_path / "d.csv", names) == expected
    (tmp_path / "d.json").write_text('{"walk": ["slow steps"], "1": "fast steps"}')
    assert read_class_texts(tmp_path / "d.json", names) == [["slow steps"], ["fast steps"]]
    (tmp_path / "d.txt").write_text("only one line\n")
    with pytest.raises(ZsarError, match="1 lines but there are 2 classes"):
        read_class_texts(tmp_path / "d.txt", names)
    (tmp_path / "missing.json").write_text('{"walk": "x"}')
    with pytest.raises(ZsarError, match=r"no text for classes \['run'\]"):
        read_class_texts(tmp_path / "missing.json", names)
    (tmp_path / "unknown.json").write_text('{"swim": "x"}')
    with pytest.raises(ZsarError, match="unknown class 'swim'"):
        read_class_texts(tmp_path / "unknown.json", names)

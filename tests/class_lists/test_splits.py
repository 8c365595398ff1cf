from __future__ import annotations

import re

import pytest

from zsar.class_lists import builtin_class_names, builtin_split_names, load_split, random_split
from zsar.errors import ZsarError


def _table_rows(text: str, header: str) -> list[list[str]]:
    section = text.split(header, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if not line.strip():
            if rows:
                break
            continue
        if line.startswith("|---"):
            continue
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[1:]  # drop the header row


def _ints(cell: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", cell)]


def test_fixed_and_validation_splits_match_reference(shared):
    text = (shared / "reference" / "splits.md").read_text()
    fixed = _table_rows(text, "## Fixed splits")
    validation = _table_rows(text, "### GZSL validation splits")
    assert len(fixed) == 4 and len(validation) == 4
    for (dataset, sizes, unseen), (_, _, val) in zip(fixed, validation):
        split = load_split(f"{dataset}/{sizes.replace('/', '-')}")
        assert list(split.unseen) == _ints(unseen)
        assert list(split.validation_unseen) == _ints(val)
        assert split.num_classes == sum(_ints(sizes))


def test_random_splits_match_reference(shared):
    rows = _table_rows((shared / "reference" / "splits.md").read_text(), "## Random-split benchmark")
    assert len(rows) == 9
    for dataset, _, number, unseen in rows:
        split = load_split(f"{dataset}/random-{number}")
        assert list(split.unseen) == _ints(unseen)
        assert split.validation_unseen and not set(split.validation_unseen) & set(split.unseen)


def test_class_names_match_reference(shared):
    for name, count in (("ntu60", 60), ("ntu120", 120), ("pku51", 51), ("hri30", 30)):
        ref = (shared / "reference" / "class_names" / f"{name}.txt").read_text().split("\n")
        assert builtin_class_names(name) == [r.strip() for r in ref if r.strip()]
        assert len(builtin_class_names(name)) == count
    assert builtin_class_names("ntu120")[:60] == builtin_class_names("ntu60")
    assert len(builtin_class_names("NW-UCLA")) == 10


def test_hri30_split_uses_official_ids(shared):
    official = {int(line.split()[0]): line.split()[1]
                for line in (shared / "reference" / "hri30" / "classInd.txt").read_text().splitlines() if line.strip()}
    names = builtin_class_names("hri30")
    assert [names[i] for i in load_split("hri30/25-5").unseen] == [official[i] for i in (3, 16, 19, 20, 28)]


def test_random_split_is_seeded_and_valid():
    a, b, c = random_split(60, 5, 1), random_split(60, 5, 1), random_split(60, 5, 2)
    assert a == b and a.unseen != c.unseen
    assert len(a.validation_unseen) == 5 and set(a.validation_unseen) <= set(a.seen)
    val = a.validation_split()
    assert set(val.unseen) == set(a.validation_unseen) and not set(val.seen) & set(a.unseen) - set(a.unseen)


def test_split_files_and_errors(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text("num_classes = 10\nunseen = [1, 2]\nvalidation_unseen = [3]\n")
    split = load_split(f)
    assert split.unseen == (1, 2) and split.validation_unseen == (3,)
    with pytest.raises(ZsarError, match="is for 10 classes"):
        load_split(f, num_classes=12)
    bad = tmp_path / "bad.json"
    bad.write_text('{"num_classes": 5, "unseen": [1, 9]}')
    with pytest.raises(ZsarError, match="outside") as info:
        load_split(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(ZsarError, match="unknown split 'ntu60/99-1'"):
        load_split("ntu60/99-1")
    with pytest.raises(ZsarError, match="not found"):
        load_split(tmp_path / "missing.toml")
    assert "ntu60/55-5" in builtin_split_names()

from __future__ import annotations

import pytest

from zsar.class_lists import builtin_class_names
from zsar.class_lists.class_text import (
    TEXT_DATASETS,
    builtin_class_text,
    class_text_template,
    find_builtin_class_text,
    parse_class_text,
    read_class_text,
    resolve_classes,
)
from zsar.datasets.synthetic import synthetic_class_names, synthetic_class_parts
from zsar.errors import ZsarError

NAMES = ["walk", "sit down"]
GOOD = '''format = "zsar-class-text/1"

[[class]]
id = 0
name = "walk"
description = "The person walks."
motion = "The legs swing in turn."
parts = ["walk", "legs forward"]
paraphrases = ["stroll", "go on foot"]

[[class]]
id = 1
name = "sit down"
description = "The person sits down."
motion = "The hips lower onto a seat."
parts = ["sit", "hips down", "chair"]
paraphrases = ["take a seat", "be seated"]
'''


def write(tmp_path, text: str, name: str = "classes.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_builtin_list_has_complete_class_text():
    for dataset in TEXT_DATASETS:
        texts = builtin_class_text(dataset)
        names = synthetic_class_names() if dataset == "synthetic" else builtin_class_names(dataset)
        assert [t.name for t in texts] == names
        for t in texts:
            assert t.description and t.motion and 2 <= len(t.parts) <= 3 and len(t.paraphrases) >= 2
            assert all(p.strip() for p in (*t.parts, *t.paraphrases))
            assert t.name.lower() not in {p.lower() for p in t.paraphrases}
        # distinct classes get distinct texts
        assert len({t.motion for t in texts}) == len(texts) and len({t.description for t in texts}) == len(texts)


def test_the_demo_parts_are_the_generator_parts():
    assert [list(t.parts) for t in builtin_class_text("synthetic")] == synthetic_class_parts()


def test_builtin_text_is_found_from_class_names():
    dataset, texts = find_builtin_class_text(builtin_class_names("ntu60"))
    assert dataset == "ntu60" and len(texts) == 60
    assert find_builtin_class_text(["walk", "run"]) is None
    names, texts = resolve_classes("nw-ucla")
    assert names == builtin_class_names("nw_ucla") and texts[0].name == names[0]


def test_a_good_file_reads(tmp_path):
    texts = read_class_text(write(tmp_path, GOOD), NAMES)
    assert texts[1].parts == ("sit", "hips down", "chair") and texts[0].paraphrases == ("stroll", "go on foot")
    # a file may leave a field out for every class
    no_motion = GOOD.replace('motion = "The legs swing in turn."\n', "").replace(
        'motion = "The hips lower onto a seat."\n', "")
    assert read_class_text(write(tmp_path, no_motion), NAMES)[0].motion is None


@pytest.mark.parametrize("change, message", [
    (lambda s: s[: s.index("[[class]]\nid = 1")], "'sit down' \\(id 1\\) is missing"),
    (lambda s: s.replace('description = "The person sits down."', 'description = "  "'), "`description` is empty"),
    (lambda s: s.replace("id = 1", "id = 0"), "id 0 is 'walk' in the class names; 'sit down' is class 1"),
    (lambda s: s.replace('name = "sit down"', 'name = "jump"'), "'jump' .*not one of the class names"),
    (lambda s: s.replace('parts = ["walk", "legs forward"]', 'parts = ["walk"]'), "`parts` has 1 entries"),
    (lambda s: s.replace('paraphrases = ["take a seat", "be seated"]', 'paraphrases = ["x", ""]'),
     "`paraphrases` must be a list of non-empty strings"),
    (lambda s: s.replace('motion = "The legs swing in turn."\n', ""), "`motion` is given for some classes"),
    (lambda s: s.replace('format = "zsar-class-text/1"', ""), "format"),
    (lambda s: s.replace("id = 1", "id = 1\ncolour = 'red'"), "unknown keys \\['colour'\\]"),
    (lambda s: s + "[[class", "not valid TOML"),
])
def test_bad_files_name_the_file_the_class_and_the_fix(tmp_path, change, message):
    path = write(tmp_path, change(GOOD))
    with pytest.raises(ZsarError, match=message) as info:
        read_class_text(path, NAMES)
    assert str(path) in str(info.value)


def test_every_problem_is_listed_at_once(tmp_path):
    bad = GOOD.replace('description = "The person walks."', 'description = ""').replace(
        'motion = "The hips lower onto a seat."', 'motion = ""')
    with pytest.raises(ZsarError, match="2 problem") as info:
        read_class_text(write(tmp_path, bad), NAMES)
    assert "'walk'" in str(info.value) and "'sit down'" in str(info.value)
    # problems of single tables and of the whole file, in one error
    worse = bad[: bad.index("[[class]]\nid = 1")]
    with pytest.raises(ZsarError, match="2 problem") as info:
        read_class_text(write(tmp_path, worse), NAMES)
    assert "`description` is empty" in str(info.value) and "'sit down' (id 1) is missing" in str(info.value)


def test_entries_in_any_order_and_a_byte_order_mark(tmp_path):
    first, second = GOOD.split("\n\n[[class]]\nid = 1")
    swapped = '\ufeffformat = "zsar-class-text/1"\n\n[[class]]\nid = 1' + second + "\n" + \
        first.replace('format = "zsar-class-text/1"\n', "")
    texts = read_class_text(write(tmp_path, swapped), NAMES)
    assert [t.name for t in texts] == NAMES


def test_non_utf8_and_missing_files(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(GOOD.replace("walks", "w\u00e4lks").encode("latin-1"))
    with pytest.raises(ZsarError, match="not UTF-8.*save it as UTF-8") as info:
        read_class_text(path, NAMES)
    assert str(path) in str(info.value)
    with pytest.raises(ZsarError, match="not found"):
        read_class_text(tmp_path / "nope.toml", NAMES)


def test_the_template_is_the_format_to_fill(tmp_path):
    template = class_text_template(['say "hi"', "walk"])
    path = write(tmp_path, template)
    with pytest.raises(ZsarError, match="empty"):  # nothing filled in yet
        read_class_text(path, ['say "hi"', "walk"])
    filled = template.replace('description = ""', 'description = "d"').replace('motion = ""', 'motion = "m"')
    filled = filled.replace('["", ""]', '["a", "b"]')
    texts = parse_class_text(filled, path, ['say "hi"', "walk"])
    assert texts[0].name == 'say "hi"' and texts[1].parts == ("a", "b")

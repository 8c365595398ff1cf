"""The README and docs/: generated blocks match the code, every config key is documented, links resolve."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import pytest

from zsar.errors import ZsarError
from zsar.experiment import config as exp_config
from zsar.experiment import config_keys as ck
from zsar.experiment import streams as stream_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))

# Every config dataclass named in the docs, by the TOML table it fills ("" = the file's top level).
EXPERIMENT_TABLES = {"": exp_config.ExperimentConfig, "[data]": exp_config.DataConfig,
                     "[encoder]": exp_config.EncoderConfig, "[text]": exp_config.TextConfig,
                     "[splits]": exp_config.SplitsConfig, "[[heads]]": exp_config.HeadSpec,
                     "[evaluate]": exp_config.EvaluateConfig}
STREAM_TABLES = {"": stream_config.StreamExperimentConfig, "[data]": stream_config.StreamDataConfig,
                 "[extract]": stream_config.WindowConfig, "[text]": stream_config.StreamTextConfig,
                 "[splits]": stream_config.HeldOutConfig, "[[heads]]": stream_config.StreamHeadSpec,
                 "[evaluate]": stream_config.StreamEvaluateConfig, "[anticipation]": stream_config.AnticipationConfig}


def readme() -> str:
    return README.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- generated blocks

@pytest.mark.parametrize("name", ["experiment-keys", "stream-keys"])
def test_key_blocks_equal_the_generated_ones(name):
    generated = ck.BLOCKS[name][0]()
    assert ck.read_block(readme(), name) == generated.strip("\n"), \
        "README block out of date: python -m zsar.experiment.config_keys --write README.md"


def test_encoder_block_equals_the_generated_one():
    pytest.importorskip("yaml")
    from zsar.extract.encoder_zoo import mmaction_package_dir, zoo_markdown

    if mmaction_package_dir() is None:
        pytest.skip("mmaction2 is not installed")
    assert ck.read_block(readme(), "encoders") == zoo_markdown().strip("\n"), \
        "README block out of date: python -m zsar.experiment.config_keys --write README.md"


def parse_key_tables(block: str) -> dict[str, dict[str, list[str]]]:
    """{table ("" = top level): {key: [type, default, description]}} from a generated block's Markdown."""
    tables: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("Top-level keys"):
            current = tables.setdefault("", {})
        elif heading := re.match(r"^`(\[\[?[\w.]+\]\]?)` \(", line):
            current = tables.setdefault(heading.group(1), {})
        elif (row := re.match(r"^\| `(\w+)` \| (.*) \|$", line)) and current is not None:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.group(2))]
            current[row.group(1)] = cells
    return tables


@pytest.mark.parametrize("name, tables", [("experiment-keys", EXPERIMENT_TABLES), ("stream-keys", STREAM_TABLES)])
def test_every_config_field_is_in_the_readme_with_a_description(name, tables):
    parsed = parse_key_tables(ck.read_block(readme(), name))
    sections = {header.strip("[]") for header in tables if header}
    expected = {header: {f.name for f in fields(cls) if f.name not in ck.INTERNAL_FIELDS
                         and not (header == "" and f.name in sections)}
                for header, cls in tables.items()}
    assert {header: set(keys) for header, keys in parsed.items()} == expected
    for header, keys in parsed.items():
        for key, cells in keys.items():
            assert len(cells) == 3 and all(cells), f"{header} {key}: {cells}"
            assert len(cells[2]) > 15, f"{header} {key} needs a real description"


def test_documented_defaults_are_the_dataclass_defaults():
    for tables in (EXPERIMENT_TABLES, STREAM_TABLES):
        for cls in tables.values():
            for f in fields(cls):
                default = ck._default(f)
                if default is ck._REQUIRED or default is None or f.name in ck.INTERNAL_FIELDS:
                    continue
                if is_dataclass(default) or (isinstance(default, list) and any(map(is_dataclass, default))):
                    continue  # a table, or the default head list (named in its heading, not written as TOML)
                assert tomllib.loads(f"v = {ck.toml_value(default)}")["v"] == default, (cls.__name__, f.name)


def test_a_new_key_without_a_description_fails(monkeypatch):
    @dataclass(frozen=True)
    class Section:
        known: int = 1
        brand_new: str = "x"

    @dataclass(frozen=True)
    class Root:
        name: str
        section: Section = field(default_factory=Section)

    monkeypatch.setitem(ck.DESCRIPTIONS, Root, {"name": "The name of the thing.", "section": "A table."})
    monkeypatch.setitem(ck.DESCRIPTIONS, Section, {"known": "A key that has its text."})
    assert ck.undocumented(Root) == ["Section.brand_new"]
    with pytest.raises(ZsarError, match="Section.brand_new"):
        ck.keys_markdown(Root, "test")
    monkeypatch.setitem(ck.DESCRIPTIONS, Section, {"known": "A key that has its text.", "brand_new": "Now known."})
    parsed = parse_key_tables(ck.keys_markdown(Root, "test"))
    assert parsed[""].keys() == {"name"} and parsed["[section]"].keys() == {"known", "brand_new"}


def test_no_description_is_left_for_a_removed_key():
    assert ck.undocumented(exp_config.ExperimentConfig) == [] and ck.undocumented(
        stream_config.StreamExperimentConfig) == []
    assert ck.stale_descriptions() == []


def test_blocks_are_replaced_between_their_markers_only():
    text = "before\n<!-- a:begin -->\nold\n<!-- a:end -->\nafter\n"
    new = ck.replace_block(text, "a", "new line 1\nnew line 2\n")
    assert new == "before\n<!-- a:begin -->\nnew line 1\nnew line 2\n<!-- a:end -->\nafter\n"
    assert ck.replace_block(new, "a", "new line 1\nnew line 2") == new
    assert ck.read_block(ck.replace_block(text, "a", ""), "a") == ""
    with pytest.raises(ZsarError, match="found 0"):
        ck.read_block(text, "b")
    with pytest.raises(ZsarError, match="found 2"):
        ck.replace_block(text + text, "a", "x")


def test_write_and_check_regenerate_a_stale_readme(tmp_path, capsys):
    path = tmp_path / "README.md"
    stale = "\n\n".join(f"<!-- {name}:begin -->\nstale\n<!-- {name}:end -->" for name in ck.BLOCKS) + "\n"
    path.write_text(stale)
    assert ck.main(["--check", str(path)]) == 1 and path.read_text() == stale
    assert ck.main(["--write", str(path)]) == 0
    assert ck.read_block(path.read_text(), "experiment-keys") == ck.experiment_keys_markdown()
    assert ck.main(["--check", str(path)]) == 0
    path.write_text("no blocks here\n")
    assert ck.main(["--write", str(path)]) == 1 and "expected one" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ structure, links, anchors

def strip_code(text: str) -> str:
    """Markdown without fenced code blocks and inline code spans (links and headings there are not real)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", text)


def headings(text: str) -> list[tuple[int, str]]:
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    return [(len(m.group(1)), m.group(2).strip()) for m in re.finditer(r"^(#{1,6}) (.+)$", text, re.MULTILINE)]


def anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation other than `-` and `_` dropped, spaces to `-`, repeats -1."""
    seen: dict[str, int] = {}
    out = set()
    for _, title in headings(text):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return out


def test_anchor_rule():
    assert anchors("# Cache format (schema version 2; per-frame stream caches: version 3)\n## A\n## A\n") == {
        "cache-format-schema-version-2-per-frame-stream-caches-version-3", "a", "a-1"}
    assert anchors("## Import the published SA-DVAE / SynSE features") == {
        "import-the-published-sa-dvae--synse-features"}


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_links_and_anchors_resolve(page):
    text = page.read_text(encoding="utf-8")
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", strip_code(text)):
        if re.match(r"^[a-z]+:", target):
            continue  # an address outside the repository
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            problems.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(file.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with that anchor in {file.name}")
    assert not problems, f"{page.name}: {problems}"


def test_readme_order_for_a_newcomer():
    titles = [title for level, title in headings(readme()) if level == 2]
    order = ["The two commands", "Bring your own data", "Skeletons end to end: the NW-UCLA worked example",
             "Untrimmed streams: zero-shot temporal action segmentation",
             "Videos: extraction that survives crashes and scales past one machine", "CLI reference",
             "Experiment files"]
    assert [t for t in titles if t in order] == order
    assert titles.index("Bring your own data") == titles.index("The two commands") + 1  # the first guide
    byod = readme().split("## Bring your own data", 1)[1].split("\n## ", 1)[0]
    guides = [title for level, title in headings(byod) if level == 3]
    assert guides[:3] == ["A skeleton dataset or pose pickle", "A folder of videos",
                          "Features you already have (`.npy`)"]
    for command in ("zsar extract skeleton", "zsar extract video", "zsar cache import", "zsar run", "--checkpoint"):
        assert command in byod, command


def test_method_notes_speed_and_internals_live_in_docs():
    readme_titles = {title for _, title in headings(readme())}
    moved = {"SA-DVAE": "heads.md", "The current generation: contrastive, CADA-VAE, FS-VAE, TDSM": "heads.md",
             "Speed and feedback": "speed.md", "Benchmarks": "speed.md", "The pipeline": "internals.md",
             "Import the published SA-DVAE / SynSE features": "internals.md",
             "Cache format (schema version 2; per-frame stream caches: version 3)": "cache_format.md",
             "Class text: what each action is and how the body moves": "text.md"}
    for title, page in moved.items():
        assert title not in readme_titles, title
        assert title in {t for _, t in headings((ROOT / "docs" / page).read_text(encoding="utf-8"))}, title
    more = readme().split("## More documentation", 1)[1].split("\n## ", 1)[0]
    for page in DOCS:
        assert f"](docs/{page.name})" in more, f"docs/{page.name} is not listed under More documentation"


def test_head_descriptions_name_every_registered_head():
    from zsar.heads import HEAD_CLASSES
    from zsar.heads.anticipation_heads import ANTICIPATION_HEADS
    from zsar.heads.stream_heads import STREAM_HEADS

    for registry, spec in ((HEAD_CLASSES, exp_config.HeadSpec),
                           (STREAM_HEADS | ANTICIPATION_HEADS, stream_config.StreamHeadSpec)):
        text = ck.DESCRIPTIONS[spec]["name"]
        assert set(re.findall(r"`(\w+)`", text)) == set(registry), spec.__name__

"""The encoder table: facts read from mmaction2's model-zoo metafiles, never a download."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from zsar.cli import app
from zsar.errors import ZsarError
from zsar.extract import encoder_zoo as zoo
from zsar.extract.mmaction_compat import BUILTIN_CONFIGS

yaml = pytest.importorskip("yaml")

URL = "https://example.org/zoo"
SHORT = {"gcn": "skeleton/gcn/gcn_joint_ntu60.py", "vid": "recognition/vid/vid_k400.py",
         "tiny": "recognition/vid/tiny_k400.py", "gone": "recognition/gone/gone.py"}


def write_metafile(root, folder: str, models: list[dict]) -> None:
    path = root / ".mim" / "configs" / folder / "metafile.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"Collections": [{"Name": folder}], "Models": models}, sort_keys=False))


@pytest.fixture()
def package(tmp_path):
    """A stand-in mmaction2 package folder with three metafiles."""
    root = tmp_path / "mmaction"
    write_metafile(root, "skeleton/gcn", [
        # a decoy listed first: its config ends with "gcn_joint_ntu60.py" but not at a folder boundary
        {"Name": "xgcn_joint_ntu60", "Config": "configs/skeleton/gcn/xgcn_joint_ntu60.py",
         "Results": {"Dataset": "Decoy", "Metrics": {"Top 1 Accuracy": 1.0}}, "Weights": f"{URL}/xgcn.pth"},
        {"Name": "gcn_joint_ntu60", "Config": "configs/skeleton/gcn/gcn_joint_ntu60.py",
         "Metadata": {"Training Data": "NTU60-XSub-3D"},
         "Results": {"Dataset": "NTU60-XSub-3D", "Metrics": {"Top 1 Accuracy": 88.11}},
         "Weights": f"{URL}/gcn_joint_ntu60/gcn_joint_ntu60_2022-abc.pth"},
    ])
    write_metafile(root, "recognition/vid", [
        {"Name": "vid_k400", "Config": "configs/recognition/vid/vid_k400.py", "Metadata": {"Architecture": "ViT-B"},
         "Converted From": {"Weights": "https://example.org/authors/MODEL_ZOO.md"},
         "Results": [{"Dataset": "Kinetics-400", "Metrics": {"Top 1 Accuracy": 81.3, "Top 5 Accuracy": 95.0}}],
         "Weights": f"{URL}/vid_k400_2022-def.pth"},
        {"Name": "tiny_k400", "Config": "configs/recognition/vid/tiny_k400.py",
         "Metadata": {"Training Data": "Kinetics-400"},
         "Results": [{"Dataset": "Kinetics-400", "Metrics": {"Top 1 Accuracy": 70.5}}],
         "Weights": f"{URL}/vid_k400_2022-def.pth"},  # named for another model, as upstream's videomaev2-small
    ])
    (root / ".mim" / "configs" / "recognition" / "gone").mkdir(parents=True)
    return root


@pytest.fixture()
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the encoder table must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def by_name(entries):
    return {e.short_name: e for e in entries}


def test_facts_come_from_the_entry_whose_config_matches(package, offline):
    entries = by_name(zoo.encoder_zoo(SHORT, package))
    assert list(entries) == list(SHORT)
    gcn = entries["gcn"]
    assert (gcn.model, gcn.training_data, gcn.reported_on, gcn.top1, gcn.top5) == \
        ("gcn_joint_ntu60", "NTU60-XSub-3D", "NTU60-XSub-3D", 88.11, None)
    assert gcn.weights == f"{URL}/gcn_joint_ntu60/gcn_joint_ntu60_2022-abc.pth"
    assert gcn.metafile == "configs/skeleton/gcn/metafile.yml" and not gcn.weights_name_mismatch
    vid = entries["vid"]  # no `Training Data`: the results' dataset; a list of results; converted weights
    assert (vid.training_data, vid.top1, vid.top5) == ("Kinetics-400", 81.3, 95.0)
    assert vid.converted_from == "https://example.org/authors/MODEL_ZOO.md"
    assert entries["tiny"].weights_name_mismatch
    gone = entries["gone"]
    assert gone.model is None and gone.top1 is None and gone.weights is None


def test_markdown_table(package):
    text = zoo.zoo_markdown(zoo.encoder_zoo(SHORT, package), version="9.9")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[0] == (f"| `gcn` | `skeleton/gcn/gcn_joint_ntu60.py` | NTU60-XSub-3D | 88.11 | - | "
                       f"[weights]({URL}/gcn_joint_ntu60/gcn_joint_ntu60_2022-abc.pth) |")
    assert "| 81.3 | 95.0 |" in rows[1] and "converted from [the authors' release]" in rows[1]
    assert rows[2].endswith("(see the note below) |") and "`tiny`: the metadata's weights file is named" in text
    assert rows[3] == "| `gone` | `recognition/gone/gone.py` | - | - | - | no model-zoo entry |"
    assert "shipped with mmaction2 9.9" in text


def test_unreadable_or_missing_metadata_is_one_error(package, tmp_path, monkeypatch):
    bad = package / ".mim" / "configs" / "skeleton" / "gcn" / "metafile.yml"
    bad.write_text("Models: [unclosed\n")
    with pytest.raises(ZsarError, match="model-zoo metadata") as info:
        zoo.encoder_zoo(SHORT, package)
    assert str(bad) in str(info.value)
    with pytest.raises(ZsarError, match="no .mim/configs"):
        zoo.encoder_zoo(SHORT, tmp_path / "elsewhere")
    monkeypatch.setattr(zoo, "mmaction_package_dir", lambda: None)
    with pytest.raises(ZsarError, match="mmaction2 is not installed"):
        zoo.encoder_zoo(SHORT)


def test_cli_lists_the_table(package, monkeypatch, offline):
    monkeypatch.setattr(zoo, "mmaction_package_dir", lambda: package)
    monkeypatch.setattr(zoo, "BUILTIN_CONFIGS", SHORT)
    runner = CliRunner()
    plain = runner.invoke(app, ["encoder", "list"])
    assert plain.exit_code == 0, plain.output
    assert "gcn" in plain.output and "top-1 88.11" in plain.output
    assert f"weights: {URL}/gcn_joint_ntu60/gcn_joint_ntu60_2022-abc.pth" in plain.output
    assert "no model-zoo entry" in plain.output and "zsar never downloads weights" in plain.output
    markdown = runner.invoke(app, ["encoder", "list", "--markdown"])
    assert markdown.output.strip() == zoo.zoo_markdown().strip()
    rows = json.loads(runner.invoke(app, ["encoder", "list", "--json"]).output)
    assert [r["short_name"] for r in rows] == list(SHORT) and rows[2]["weights_name_mismatch"] is True
    monkeypatch.setattr(zoo, "mmaction_package_dir", lambda: None)
    missing = runner.invoke(app, ["encoder", "list"])
    assert missing.exit_code != 0 and isinstance(missing.exception, ZsarError)


def installed():
    if zoo.mmaction_package_dir() is None:
        pytest.skip("mmaction2 is not installed")


def test_every_short_name_has_an_official_checkpoint_in_the_installed_package(offline):
    installed()
    entries = zoo.encoder_zoo()
    assert [e.short_name for e in entries] == list(BUILTIN_CONFIGS)
    for e in entries:
        assert e.model is not None, f"{e.short_name}: no metafile entry for {e.config}"
        assert e.config == BUILTIN_CONFIGS[e.short_name]
        assert isinstance(e.top1, float) and 0 < e.top1 <= 100, e
        assert e.training_data and e.weights.startswith("https://") and e.weights.endswith(".pth"), e
    facts = by_name(entries)
    assert facts["stgcn"].training_data.startswith("NTU60") and facts["slowonly"].training_data == "Kinetics-400"
    if zoo.mmaction_version() == "1.2.0":  # the facts this README was generated from
        assert (facts["stgcn"].top1, facts["slowonly"].top1, facts["slowonly"].top5) == (88.11, 75.96, 92.4)
        assert [e.short_name for e in entries if e.weights_name_mismatch] == ["videomaev2-small"]

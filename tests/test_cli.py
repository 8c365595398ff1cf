"""End to end through the CLI on tiny generated data."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from zsar import quiet
from zsar.cli import app, resolve_device
from zsar.errors import ZsarError
from zsar.features import FeatureCache

TINY = """
name = "tiny"
seeds = [0, 1]
[data]
source = "synthetic"
[data.synthetic]
num_subjects = 4
repetitions = 2
test_subjects = 1
[text]
variant = "name"
[splits]
random_unseen = 4
random_seeds = [1]
names = ["mysplit.toml"]
[[heads]]
name = "linear_projection"
params = { epochs = 20 }
search = { weight_decay = [1e-3, 1e-2] }
[[heads]]
name = "nearest_prototype"
"""


def zsar(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from zsar.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd)


def invoke(*args, **kwargs):
    """`zsar ARGS` in this process (typer's CliRunner); the process-wide output settings that the command line
    changes (logging levels, warning filters, environment) are put back afterwards."""
    names = ("", "zsar", *quiet.QUIET_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    environment = {key: os.environ.get(key) for key in quiet.QUIET_ENVIRONMENT}
    try:
        with warnings.catch_warnings():
            return CliRunner().invoke(app, list(args), prog_name="zsar", **kwargs)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for key, value in environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.slow
def test_run_writes_complete_reports(tmp_path):
    (tmp_path / "mysplit.toml").write_text("num_classes = 16\nunseen = [1, 4, 9, 13]\n")
    (tmp_path / "exp.toml").write_text(TINY)
    result = zsar("run", str(tmp_path / "exp.toml"), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "linear_projection" in result.stdout and "ZSL top-1" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in ("zsl", "gzsl", "split", "seed", "config", "versions", "caches"):
        assert key in report
    assert set(report["zsl"]) >= {"top1", "top5", "per_class_mean"} and set(report["gzsl"]) >= {"seen", "unseen", "h"}
    assert report["seed"] == [0, 1] and len(report["split"]) == 2 and len(report["runs"]) == 2 * 2 * 2
    assert report["heads"]["linear_projection"]["zsl"]["top1"]["n"] == 4
    assert report["protocol"]["transductive"] is False
    assert report["caches"]["features"]["fingerprint"] == FeatureCache(report["caches"]["features"]["path"]).fingerprint
    run = report["runs"][0]
    assert len(run["selection"]) == 2 and all("validation_top1" in s for s in run["selection"])
    predictions = pd.read_csv(run["predictions"])
    assert {"sample_id", "true_class", "predicted_class", "confidence", "top5_class", "top5_score"} <= set(predictions)
    assert set(predictions["task"]) == {"zsl", "gzsl"}
    html = (tmp_path / "out" / "report.html").read_text()
    # heads compared, GZSL seen-unseen curves, confusion + per-class for both heads, text similarity
    assert html.count("data:image/png;base64,") == 7
    assert "what each unseen class borrows from" in html and "text similarity, unseen vs seen" in html
    (semantics,) = [v for k, v in report["text_semantics"].items() if k.endswith("mysplit.toml")]
    assert [row["class"] for row in semantics["nearest"]] == semantics["unseen"] and len(semantics["seen"]) == 12
    assert report["caches"]["prototypes"]["variant"] == ["name"]
    assert len(report["caches"]["prototypes"]["text_model_sha256"]) == 64
    assert "| linear_projection |" in (tmp_path / "out" / "report.md").read_text()
    # the paired comparison: nearest_prototype (listed second) against linear_projection over the same 4 runs
    (comparison,) = report["comparisons"]
    assert (comparison["head"], comparison["baseline"], comparison["runs"]) == ("nearest_prototype",
                                                                             "linear_projection", 4)
    top1 = {(r["head"], r["split"], r["seed"]): r["zsl"]["top1"] for r in report["runs"]}
    diffs = [top1[("nearest_prototype", s, e)] - top1[("linear_projection", s, e)]
             for h, s, e in top1 if h == "nearest_prototype"]
    assert comparison["top1_difference"]["mean"] == pytest.approx(np.mean(diffs))
    assert comparison["wins"] + comparison["ties"] + comparison["losses"] == 4
    assert "Paired comparisons" in (tmp_path / "out" / "report.md").read_text() and "McNemar" in html
    # rerun reuses the finished cache (same fingerprint) and gives identical numbers
    again = zsar("run", str(tmp_path / "exp.toml"), "--out", str(tmp_path / "out"))
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "out" / "report.json").read_text())["zsl"] == report["zsl"]


def test_import_info_and_bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(12, 6)).astype(np.float32))
    pd.DataFrame({"sample_id": [f"v{i}" for i in range(12)], "label": np.arange(12) % 3,
                  "split": ["train"] * 8 + ["test"] * 4}).to_csv(tmp_path / "meta.csv", index=False)
    (tmp_path / "names.txt").write_text("walk\nrun\njump\n")
    args = ["cache", "import", "--embeddings", str(tmp_path / "x.npy"), "--metadata", str(tmp_path / "meta.csv"),
            "--class-names", str(tmp_path / "names.txt"), "--dataset", "mine", "--encoder", "external"]
    ok = zsar(*args, "--out", str(tmp_path / "c.h5"))
    assert ok.returncode == 0, ok.stderr
    info = zsar("cache", "info", str(tmp_path / "c.h5"), "--json")
    summary = json.loads(info.stdout)
    assert summary["rows"] == 12 and summary["splits"] == {"test": 4, "train": 8}
    # bad inputs: one clear line naming the file, non-zero exit, nothing damaged
    before = FeatureCache(tmp_path / "c.h5").fingerprint
    (tmp_path / "two.txt").write_text("walk\nrun\n")
    bad = zsar(*args[:6], "--class-names", str(tmp_path / "two.txt"), *args[8:], "--out", str(tmp_path / "c.h5"))
    assert bad.returncode == 1 and "outside" in bad.stderr and "Traceback" not in bad.stderr
    assert FeatureCache(tmp_path / "c.h5").fingerprint == before
    x = np.load(tmp_path / "x.npy")
    x[2, 1] = np.inf
    np.save(tmp_path / "nan.npy", x)
    nan = zsar("cache", "import", "--embeddings", str(tmp_path / "nan.npy"), *args[4:], "--out", str(tmp_path / "d.h5"))
    assert nan.returncode == 1 and "nan.npy" in nan.stderr and "NaN or inf" in nan.stderr
    missing = zsar("cache", "info", str(tmp_path / "nope.h5"))
    assert missing.returncode == 1 and "nope.h5: cache file not found" in missing.stderr
    assert zsar("splits", "show", "ntu60/1-2").returncode == 1
    broken_toml = 'name = "x"\n[splits]\nnames = ["ntu60/55-5"]\n[text]\nvariant = "name"\nfoo = 1\n'
    (tmp_path / "broken.toml").write_text(broken_toml)
    broken = zsar("run", str(tmp_path / "broken.toml"))
    assert broken.returncode == 1 and "broken.toml" in broken.stderr and "unknown keys ['foo']" in broken.stderr
    (tmp_path / "exp.toml").write_text(TINY)
    no_device = zsar("run", str(tmp_path / "exp.toml"), "--out", str(tmp_path / "out"), "--device", "tpu")
    assert no_device.returncode == 1 and "[evaluate] device = 'tpu': use cpu, cuda" in no_device.stderr
    assert "'mysplit.toml' is neither a built-in split" in no_device.stderr  # every problem listed at once
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.slow
def test_encoder_train_then_extract_skeleton(tmp_path, ucla_small, tiny_stgcn_config):
    import shutil

    data = tmp_path / "ucla"
    data.mkdir()
    for path in ucla_small.metadata["source"]:
        shutil.copy(path, data)
    (tmp_path / "split.toml").write_text("num_classes = 10\nunseen = [4, 5]\n")
    trained = zsar("encoder", "train", str(data), "--split", str(tmp_path / "split.toml"), "--out",
                   str(tmp_path / "enc"), "--config", str(tiny_stgcn_config), "--epochs", "1", "--frames", "16")
    assert trained.returncode == 0, trained.stderr
    assert "8 seen classes" in trained.stdout
    extracted = zsar("extract", "skeleton", str(data), "--checkpoint", str(tmp_path / "enc" / "best.pth"),
                     "--out", str(tmp_path / "c.h5"), "--temporal")
    assert extracted.returncode == 0, extracted.stderr
    header = FeatureCache(tmp_path / "c.h5").header
    assert header.trained_classes == (0, 1, 2, 3, 6, 7, 8, 9) and header.temporal_length == 8
    stats = zsar("extract", "skeleton", str(data), "--out", str(tmp_path / "s.h5"))
    assert stats.returncode == 0 and FeatureCache(tmp_path / "s.h5").header.trained_classes is None
    missing = zsar("extract", "skeleton", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.h5"))
    assert missing.returncode == 1 and "nowhere" in missing.stderr and "not found" in missing.stderr


@pytest.mark.slow
def test_extract_video_hri30_course_then_predict(tmp_path, videos):
    """Course-style HRI30 videos with a label CSV -> cache with the head's logits -> submission CSV."""
    pytest.importorskip("mmaction")
    import torch
    from conftest import REAL_VIDEOS, TINY_VIDEO_CONFIG

    from zsar.extract.video_encoder import VideoEncoder

    folder = tmp_path / "course"
    folder.mkdir()
    names = [f"CID{c:02d}_SID01_VID{v:02d}" for c, v in ((1, 1), (2, 2), (3, 3), (4, 4))]
    for name, clip in zip(names, REAL_VIDEOS):
        (folder / f"{name}{clip[-4:]}").symlink_to(videos / clip)
    (tmp_path / "labels.csv").write_text("video,class\n" + "".join(f"{n},{i + 1}\n" for i, n in enumerate(names))
                                         + "CID05_SID01_VID05,5\n")
    network = VideoEncoder.from_config(TINY_VIDEO_CONFIG, num_classes=30, seed=4).network
    torch.save({"state_dict": network.state_dict()}, tmp_path / "hri30.pth")
    out = tmp_path / "hri30.h5"
    extracted = zsar("extract", "video", str(folder), "--option", f"labels_csv={tmp_path / 'labels.csv'}",
                     "--config", str(TINY_VIDEO_CONFIG), "--checkpoint", str(tmp_path / "hri30.pth"),
                     "--out", str(out), "--num-workers", "1", "--batch-size", "2")
    assert extracted.returncode == 0, extracted.stderr
    assert "4 ok, 1 failed" in extracted.stdout
    cache = FeatureCache(out)
    assert cache.header.logit_classes == tuple(range(30)) and cache.header.trained_classes == tuple(range(30))
    failed = cache.metadata[cache.metadata["status"] == "failed"]
    assert failed["sample_id"].tolist() == ["CID05_SID01_VID05"] and "not found" in failed["error"].iloc[0]
    predicted = zsar("predict", str(out), "--out", str(tmp_path / "pred"))
    assert predicted.returncode == 0, predicted.stderr
    assert "4 videos" in predicted.stdout and "top-1 on the 4 labelled videos" in predicted.stdout
    submission = pd.read_csv(tmp_path / "pred" / "submission.csv")
    logits = cache.load().logits
    assert submission["video_id"].tolist() == names
    assert submission["class_id"].tolist() == (logits.argmax(1) + 1).tolist()  # HRI30 ids count from 1
    refused = zsar("extract", "video", str(folder), "--out", str(tmp_path / "x.h5"))
    assert refused.returncode == 1 and "--checkpoint" in refused.stderr


def test_text_commands(tmp_path):
    out = zsar("--verbose", "text", "similarity", "nw_ucla", "--variant", "motion", "--out", str(tmp_path / "sim.csv"))
    assert out.returncode == 0, out.stderr
    assert "Loading weights" in out.stderr and "Loading SentenceTransformer" in out.stderr  # --verbose shows them
    table = pd.read_csv(tmp_path / "sim.csv", index_col="class")
    assert table.shape == (10, 10) and table.index[3] == "walk around" and list(table.columns) == list(table.index)
    np.testing.assert_allclose(np.diag(table.to_numpy()), 1, atol=1e-5)
    np.testing.assert_allclose(table.to_numpy(), table.to_numpy().T, atol=1e-6)
    out = zsar("text", "embed", "nw_ucla", "--variant", "prompts", "--variant", "ensemble", "--ensemble", "motion=2",
               "--ensemble", "prompts", "--out", str(tmp_path / "p.h5"))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # quiet by default: no loading bar, no loading log line
    info = zsar("cache", "info", str(tmp_path / "p.h5"))
    assert info.returncode == 0, info.stderr
    assert "ensemble: 10 x 384, text model all-MiniLM-L6-v2" in info.stdout
    assert "views motion=2, prompts=1" in info.stdout
    assert "variant      prompts: 10 x 384" in info.stdout and "  3    walk around" in info.stdout
    out = zsar("text", "similarity", str(tmp_path / "p.h5"), "--variant", "ensemble", "--out", str(tmp_path / "s.npy"))
    assert out.returncode == 0, out.stderr
    assert np.load(tmp_path / "s.npy").shape == (10, 10)
    (tmp_path / "names.txt").write_text("walk\nsit down\n")
    assert zsar("text", "template", str(tmp_path / "names.txt"), "--out", str(tmp_path / "c.toml")).returncode == 0
    again = zsar("text", "template", str(tmp_path / "names.txt"), "--out", str(tmp_path / "c.toml"))
    assert again.returncode != 0 and "exists" in again.stderr
    check = zsar("text", "check", str(tmp_path / "names.txt"), str(tmp_path / "c.toml"))
    assert check.returncode != 0 and "c.toml" in check.stderr and "`description` is empty" in check.stderr
    bad = zsar("text", "embed", str(tmp_path / "names.txt"), "--variant", "motion", "--out", str(tmp_path / "x.h5"))
    assert bad.returncode != 0 and "needs class text" in bad.stderr and "Traceback" not in bad.stderr


def test_version_and_python_dash_m():
    from zsar import __version__

    assert zsar("--version").stdout.strip() == f"zsar {__version__}"
    module = subprocess.run([sys.executable, "-m", "zsar", "--version"], capture_output=True, text=True)
    assert module.returncode == 0 and module.stdout.strip() == f"zsar {__version__}"
    bad = subprocess.run([sys.executable, "-m", "zsar", "run", "missing.toml"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error:")


def _commands(group=None, path=()):
    """(words, click command) of every command of the app, found through click's own structure."""
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


TYPE_NAMES = re.compile(r"<(?:str|int|float|path|bool|list\[[^\]]*\]|[a-z]+ range)>|"
                        r"\b(?:INTEGER|TEXT|PATH|FLOAT|BOOLEAN|FILENAME|DIRECTORY)\b")


def test_every_parameter_has_help_and_a_metavar_without_type_names():
    commands = list(_commands())
    assert len(commands) >= 20 and ("extract", "video") in dict(commands)
    for words, command in [((), typer.main.get_command(app)), *commands]:
        for param in command.params:
            assert (param.help or "").strip(), f"zsar {' '.join(words)}: {param.name} has no help"
            if not getattr(param, "is_flag", False):
                assert param.metavar, f"zsar {' '.join(words)}: {param.name} has no metavar"
        result = invoke(*words, "--help", terminal_width=200)
        assert result.exit_code == 0, result.output
        found = TYPE_NAMES.search(result.output)
        assert found is None, f"zsar {' '.join(words)} --help shows {found.group()}"
        # every [...] written in a help text is printed as written (Rich markup would eat `[split]`)
        flat = " ".join(result.output.split())
        texts = [command.help or ""] + [param.help or "" for param in command.params]
        for bracket in re.findall(r"\[[^\[\]\n]*\]", " ".join(" ".join(t.split()) for t in texts)):
            assert bracket in flat, f"zsar {' '.join(words)} --help lost {bracket}"


def test_help_texts_keep_their_brackets():
    video = " ".join(invoke("extract", "video", "--help", terminal_width=200).output.split())
    assert "a list file (.txt/.csv: path [label [split]])" in video
    embed = " ".join(invoke("text", "embed", "--help", terminal_width=200).output.split())
    assert "(.csv idx,part or .json name -> [parts])" in embed
    imported = " ".join(invoke("cache", "import", "--help", terminal_width=200).output.split())
    assert ".npy file of [N, D] embeddings" in imported and "[N, C] encoder logits" in imported


def test_shell_completion():
    result = invoke("--help")
    assert "--install-completion" in result.output and "--show-completion" in result.output
    completed = invoke(env={"_ZSAR_COMPLETE": "complete_bash", "COMP_WORDS": "zsar ca", "COMP_CWORD": "1"})
    assert completed.output.split() == ["cache"]
    options = invoke(env={"_ZSAR_COMPLETE": "complete_bash", "COMP_WORDS": "zsar cache info --", "COMP_CWORD": "3"})
    assert "--json" in options.output.split()
    script = invoke("--show-completion", "bash")
    assert script.exit_code == 0 and "_ZSAR_COMPLETE" in script.output


def test_device_auto(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("AUTO") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cpu") == "cpu" and resolve_device(None) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


@pytest.mark.parametrize("gpu", [True, False])
def test_commands_resolve_device_auto(tmp_path, monkeypatch, gpu):
    import torch

    from zsar.datasets import skeleton_datasets, video_datasets
    from zsar.experiment import check
    from zsar.extract import skeleton, video

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    seen = []

    def record(position):
        def fake(*args, **kwargs):
            seen.append(args[position])
            raise ZsarError("stop here")
        return fake

    real_check = check.check_experiment
    monkeypatch.setattr(check, "check_experiment", lambda cfg, path: seen.append(cfg.evaluate.device) or
                        real_check(cfg, path))
    monkeypatch.setattr(video_datasets, "open_video_dataset", lambda *args, **kwargs: None)
    monkeypatch.setattr(video, "extract_video_dataset", record(4))
    monkeypatch.setattr(skeleton_datasets, "open_skeleton_dataset", lambda *args, **kwargs: type("S", (), {
        "layout": "ntu"})())
    monkeypatch.setattr(skeleton, "extract_skeleton_network", record(4))
    (tmp_path / "exp.toml").write_text(TINY.replace('names = ["mysplit.toml"]\n', ""))
    checked = invoke("run", str(tmp_path / "exp.toml"), "--device", "auto", "--check")
    assert checked.exit_code == 0, checked.output
    for args in (["extract", "video", "x", "--random-weights"], ["extract", "skeleton", "x", "--checkpoint", "c"]):
        stopped = invoke(*args, "--out", str(tmp_path / "c.h5"), "--device", "auto")
        assert isinstance(stopped.exception, ZsarError) and "stop here" in str(stopped.exception)
    assert seen == ["cuda" if gpu else "cpu"] * 3


def _prototype_file(path):
    from zsar.features.prototypes import ClassPrototypes, save_prototypes

    vectors = np.eye(3, 8, dtype=np.float32)
    return save_prototypes(path, [ClassPrototypes([0, 1, 2], ["walk", "run", "jump"], vectors, "name",
                                                   [["walk"], ["run"], ["jump"]], "my-model", "ab" * 32)])


def test_cache_info_on_a_prototype_file(tmp_path):
    path = _prototype_file(tmp_path / "p.h5")
    result = invoke("cache", "info", str(path))
    assert result.exit_code == 0, result.output
    assert "variant      name: 3 x 8, text model my-model (weights sha256 abababababab)" in result.output
    assert "classes (3):" in result.output and "  2    jump" in result.output
    summary = json.loads(invoke("cache", "info", str(path), "--json").output)
    assert summary["class_names"] == ["walk", "run", "jump"] and summary["variants"]["name"]["dim"] == 8
    missing = invoke("cache", "info", str(tmp_path / "nope.h5"))
    assert isinstance(missing.exception, ZsarError) and "cache file not found" in str(missing.exception)


def test_cache_info_says_when_the_encoder_had_random_weights(tmp_path):
    from zsar.features.schema import CacheHeader
    from zsar.features.writer import write_cache

    meta = pd.DataFrame({"sample_id": ["a", "b"], "label": [0, 1], "class_name": "", "split": "test", "source": ""})
    for weights in ("random", "checkpoint"):
        header = CacheHeader(dataset="toy", modality="video", encoder="e", embedding_dim=2, class_names=("x", "y"),
                             encoder_config={"weights": weights})
        path = write_cache(tmp_path / f"{weights}.h5", header, meta, np.ones((2, 2), np.float32))
        result = invoke("cache", "info", str(path))
        assert result.exit_code == 0, result.output
        assert ("weights      RANDOM (seeded, untrained)" in result.output) == (weights == "random")
        assert json.loads(invoke("cache", "info", str(path), "--json").output)["weights"] == weights


def test_splits_show_names_the_classes_of_built_in_lists(tmp_path):
    from zsar.class_lists.names import builtin_class_names
    from zsar.class_lists.splits import load_split

    result = invoke("splits", "show", "ntu60/55-5")
    assert result.exit_code == 0, result.output
    names, split = builtin_class_names("ntu60"), load_split("ntu60/55-5")
    assert "ntu60/55-5: 60 classes, 55 seen, 5 unseen (class names: ntu60)" in result.output
    for c in (*split.unseen, *split.validation_unseen, *split.seen):
        assert f"  {c:<4} {names[c]}\n" in result.output
    shown = json.loads(invoke("splits", "show", "ntu60/55-5", "--json").output)
    assert shown["unseen"] == list(split.unseen) and shown["class_names"] == names
    (tmp_path / "mine.toml").write_text("num_classes = 6\nunseen = [1, 4]\n")
    plain = invoke("splits", "show", str(tmp_path / "mine.toml"))
    assert "unseen (2): 1, 4" in plain.output and "class names" not in plain.output
    assert "class_names" not in json.loads(invoke("splits", "show", str(tmp_path / "mine.toml"), "--json").output)


def test_cache_writer_line_only_with_verbose(tmp_path, caplog):
    np.save(tmp_path / "x.npy", np.ones((4, 3), np.float32))
    pd.DataFrame({"sample_id": list("abcd"), "label": [0, 1, 0, 1], "split": "test"}).to_csv(tmp_path / "m.csv")
    (tmp_path / "names.txt").write_text("walk\nrun\n")
    args = ["cache", "import", "--embeddings", str(tmp_path / "x.npy"), "--metadata", str(tmp_path / "m.csv"),
            "--class-names", str(tmp_path / "names.txt"), "--dataset", "d", "--encoder", "e", "--overwrite"]
    for verbose in (False, True):
        caplog.clear()
        result = invoke(*(["--verbose"] if verbose else []), *args, "--out", str(tmp_path / "c.h5"))
        assert result.exit_code == 0, result.output
        assert result.output == f"wrote {tmp_path / 'c.h5'}\n"
        wrote = [r for r in caplog.records if r.name == "zsar.features.writer" and "wrote" in r.getMessage()]
        assert len(wrote) == (1 if verbose else 0)

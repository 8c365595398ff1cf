"""The stream experiment end to end on small synthetic streams, its config checks and its report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zsar.cli import app
from zsar.errors import ZsarError
from zsar.experiment.streams import load_stream_config, resolve_held_out, stream_config_from_dict

CONFIG = """
name = "tiny_streams"
seeds = [0]
[data]
source = "synthetic"
synthetic = { num_subjects = 3, repetitions = 1, test_subjects = 1, min_frames = 20, max_frames = 30 }
validation_fraction = 0.3
[streams]
actions_per_stream = [2, 3]
background_gap = [2, 4]
[extract]
window = 8
stride = 4
[splits]
held_out = [["wave left hand", "kick with right leg"]]
[[heads]]
name = "mstcn"
params = { epochs = 2, layers = 2, channels = 8 }
[[heads]]
name = "text_segmentation"
params = { epochs = 2, layers = 2, channels = 8 }
[evaluate]
timelines = 2
"""


def test_a_stream_experiment_runs_end_to_end_and_reports(tmp_path):
    (tmp_path / "exp.toml").write_text(CONFIG)
    result = CliRunner().invoke(app, ["streams", "run", str(tmp_path / "exp.toml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["head"] for r in report["runs"]] == ["mstcn", "text_segmentation"]
    assert report["splits"][0]["class_names"] == ["wave left hand", "kick with right leg"]
    assert "background" in report["background_note"]
    text_run = report["runs"][1]
    assert text_run["calibration"]["pseudo_held_out"] and "gamma" in text_run["calibration"]
    assert len(text_run["timelines"]) == 2
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg") == 4 and "held-out class" in page and "Per-class F1" in page
    assert (tmp_path / "out" / "runs.csv").read_text().count("\n") == 3
    assert "acc_unseen" in (tmp_path / "out" / "report.md").read_text()
    again = CliRunner().invoke(app, ["streams", "run", str(tmp_path / "exp.toml"), "--out", str(tmp_path / "out")])
    assert again.exit_code == 0 and "per-frame" not in again.output  # the per-frame cache is reused


@pytest.mark.parametrize("change, message", [
    ({"data": {"source": "video"}}, "source must be one of"),
    ({"data": {"source": "skeleton"}}, "needs `dataset"),
    ({"data": {"validation_fraction": 1.5}}, "validation_fraction"),
    ({"splits": {}}, "needs `held_out`"),
    ({"seeds": []}, "seeds"),
    ({"extract": {"window": 8, "hop": 2}}, "unknown keys"),
    ({"evaluate": {"select_on_test": "yes"}}, "true or false"),
])
def test_config_mistakes_are_named_before_any_work(change, message):
    data = {"name": "x", "splits": {"held_out": [[1]]}} | change
    with pytest.raises(ZsarError, match=message):
        stream_config_from_dict(data)


def test_held_out_lists_take_names_or_ids_and_refuse_background():
    names = ["a", "b", "c", "background"]
    config = stream_config_from_dict({"name": "x", "splits": {"held_out": [["a", 2]], "random_held_out": 1,
                                                                "random_seeds": [5]}}).splits
    splits = resolve_held_out(config, names, (3,))
    assert splits[0].classes == (0, 2) and len(splits) == 2 and 3 not in splits[1].classes
    for bad in (["background"], ["zzz"], ["a", "b", "c"]):
        with pytest.raises(ZsarError):
            resolve_held_out(stream_config_from_dict({"name": "x", "splits": {"held_out": [bad]}}).splits, names,
                             (3,))


def test_the_shipped_nw_ucla_stream_experiment_parses():
    from pathlib import Path

    config = load_stream_config(Path(__file__).parents[2] / "experiments" / "nw_ucla_streams.toml")
    assert config.data.source == "skeleton" and config.splits.held_out


def test_an_encoder_trained_on_a_held_out_class_is_refused(tmp_path):
    import numpy as np

    from zsar.evaluate.stream_protocol import HeldOut
    from zsar.experiment.stream_runner import check_leakage
    from zsar.features.schema import CacheHeader
    from zsar.features.streams import StreamCache, StreamCacheWriter, StreamRows, frames_entry

    header = CacheHeader(dataset="toy", modality="skeleton", encoder="net", embedding_dim=2,
                         class_names=("a", "b", "c"), trained_classes=(0, 1), frames=frames_entry())
    rows = [StreamRows("s", "train", np.array([0, 1, 2]))]
    with StreamCacheWriter(tmp_path / "c.h5", header, rows, content_digest="x") as writer:
        writer.write_stream(0, np.zeros((3, 2), np.float32))
        cache = StreamCache(writer.finalize())
    check_leakage(cache, [HeldOut("fine", (2,))])
    with pytest.raises(ZsarError, match=r"trained on held-out classes \['b'\]"):
        check_leakage(cache, [HeldOut("fine", (2,)), HeldOut("leaky", (1, 2))])


def test_loader_file_options_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "names.txt").write_text("a\nb\n")
    config = stream_config_from_dict({"name": "x", "splits": {"held_out": [[1]]}}, base_dir=str(tmp_path))
    options = config.loader_options({"class_names": "names.txt", "layout": "coco_17"})
    assert options == {"class_names": str(tmp_path / "names.txt"), "layout": "coco_17"}
    assert config.loader_options({"class_names": "ntu60"}) == {"class_names": "ntu60"}  # a built-in list stays


ANTICIPATION = """
name = "tiny_anticipation"
seeds = [0]
task = "anticipation"
[data]
source = "synthetic"
synthetic = { num_subjects = 3, repetitions = 1, test_subjects = 1, min_frames = 20, max_frames = 30 }
validation_fraction = 0.3
[streams]
actions_per_stream = [3, 4]
background_gap = [2, 4]
successors = 2
[extract]
window = 8
stride = 4
[anticipation]
tau_a = 2
observe = 16
min_observed = 1
examples = 2
[splits]
held_out = [["wave left hand", "kick with right leg"]]
[[heads]]
name = "successor"
[[heads]]
name = "sgear"
params = { epochs = 2, width = 16 }
[[heads]]
name = "sgear"
label = "sgear_no_prototypes"
params = { epochs = 2, width = 16, prototypes = false }
"""


def test_an_anticipation_experiment_runs_end_to_end_and_reports(tmp_path):
    (tmp_path / "exp.toml").write_text(ANTICIPATION)
    result = CliRunner().invoke(app, ["streams", "run", str(tmp_path / "exp.toml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["task"] == "anticipation"
    assert [r["head"] for r in report["runs"]] == ["successor", "sgear", "sgear_no_prototypes"]
    assert report["comparisons"][0]["head"] == "sgear" and report["comparisons"][0]["baseline"] == "successor"
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Zero-shot action anticipation" in text and "recall5_unseen" in text and "Examples" in text
    assert "skipped" in report["samples_note"].lower()
    assert (tmp_path / "out" / "runs.csv").read_text().count("\n") == 4


@pytest.mark.parametrize("change, message", [
    ({"task": "forecast"}, "`task` must be one of"),
    ({"task": "anticipation", "heads": [{"name": "mstcn"}]}, "not a anticipation head"),
    ({"heads": [{"name": "sgear"}]}, "not a segmentation head"),
    ({"task": "anticipation", "anticipation": {"unit": "rows"}}, r"\[anticipation\] anticipation unit"),
    ({"task": "anticipation", "anticipation": {"tau_a": -2}}, "tau_a >= 0"),
    ({"task": "anticipation", "heads": [{"name": "sgear"}, {"name": "sgear"}]}, "own `label`"),
    ({"task": "anticipation", "streams": {"transition": 3}}, "transition = 0"),
    ({"task": "anticipation", "anticipation": {"lookahead": -1}}, "lookahead"),
])
def test_anticipation_config_mistakes_are_named_before_any_work(change, message):
    with pytest.raises(ZsarError, match=message):
        stream_config_from_dict({"name": "x", "splits": {"held_out": [[1]]}} | change)


def test_anticipation_configs_get_the_anticipation_heads_by_default():
    config = stream_config_from_dict({"name": "x", "task": "anticipation", "splits": {"held_out": [[1]]}})
    assert [h.name for h in config.heads] == ["last_segment", "successor", "pooled_linear", "sgear"]
    from pathlib import Path

    shipped = load_stream_config(Path(__file__).parents[2] / "experiments" / "nw_ucla_anticipation.toml")
    assert shipped.task == "anticipation" and shipped.streams["successors"] == 2


def test_a_prototype_file_missing_a_class_is_named(tmp_path):
    import numpy as np

    from zsar.experiment.stream_runner import prototypes_from_file
    from zsar.features.prototypes import ClassPrototypes, save_prototypes

    names = ["a", "b", "background"]
    protos = ClassPrototypes(np.arange(2), names[:2], np.ones((2, 4), np.float32), "names", [["a"], ["b"]], "toy")
    path = save_prototypes(tmp_path / "p.h5", [protos])
    with pytest.raises(ZsarError, match=r"no prototype for classes \['background'\]") as error:
        prototypes_from_file(path, "motion", names)
    assert "p.h5" in str(error.value)
    whole = prototypes_from_file(path, "motion", ["b", "a"])
    assert whole.class_names == ["b", "a"] and whole.class_ids.tolist() == [0, 1]


def test_a_whole_stream_network_cache_is_refused_for_anticipation():
    from types import SimpleNamespace

    from zsar.datasets.anticipation import RowGeometry
    from zsar.experiment.anticipation_runner import row_geometry

    cache = SimpleNamespace(path="c.h5", header=SimpleNamespace(encoder="stgcn:temporal", frames={"stride": 4}))
    with pytest.raises(ZsarError, match="see only the past"):
        row_geometry(cache)
    cache.header.encoder = "imported"  # a release: no window recorded, so the look-ahead must be given
    with pytest.raises(ZsarError, match="lookahead"):
        row_geometry(cache)
    assert row_geometry(cache, 10) == RowGeometry(4, None, 10)
    cache.header.frames = {"stride": 2, "window": 16}
    assert row_geometry(cache) == RowGeometry(2, 16)
    with pytest.raises(ZsarError, match="leave"):
        row_geometry(cache, 3)

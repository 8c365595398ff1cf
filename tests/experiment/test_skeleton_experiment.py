"""`zsar run` on real NW-UCLA files: seen-only encoder training per split, extraction, heads, leakage audit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from zsar.errors import ZsarError
from zsar.experiment.config import config_from_dict
from zsar.experiment.runner import run_experiment

SPLIT = "num_classes = 10\nunseen = [4, 5]\nvalidation_unseen = [0, 2]\n"


@pytest.fixture(scope="module")
def ucla_folder(tmp_path_factory, ucla_small):
    folder = tmp_path_factory.mktemp("ucla")
    for path in ucla_small.metadata["source"]:
        shutil.copy(path, folder)
    (folder / "split.toml").write_text(SPLIT)
    return folder


def experiment(folder, config, **encoder):
    return config_from_dict({
        "name": "ucla-small", "seeds": [0],
        "data": {"source": "skeleton", "dataset": str(folder), "format": "nw_ucla"},
        "encoder": {"name": str(config), "params": {"epochs": 1, "batch_size": 8, "frames": 16}, **encoder},
        "text": {"variant": "name"}, "splits": {"names": [str(folder / "split.toml")]},
        "heads": [{"name": "nearest_prototype", "search": {}}],
    })


@pytest.mark.slow
def test_trained_encoder_experiment_records_what_it_was_trained_on(tmp_path, ucla_folder, tiny_stgcn_config):
    report = run_experiment(experiment(ucla_folder, tiny_stgcn_config), tmp_path / "out", progress=False)
    features = report["caches"]["features"]
    assert features["trained_classes"] == [0, 1, 2, 3, 6, 7, 8, 9]
    assert features["encoder"] == "mmaction2:stgcn" and features["checkpoint_sha256"]
    assert features["encoder_training"]["fit_samples"] + features["encoder_training"]["val_samples"] == 32
    assert report["protocol"]["leakage_override"] is False and not report["protocol"]["leaked_classes"]
    assert 0 <= report["zsl"]["top1"] <= 100 and "h" in report["gzsl"]
    assert len(list((tmp_path / "out" / "encoders").glob("*/best.pth"))) == 1


@pytest.mark.slow
def test_validation_encoder_never_sees_the_validation_classes(tmp_path, ucla_folder, tiny_stgcn_config):
    """With validation_encoder, a second encoder per split learns only the validation-seen classes, and model
    selection and GZSL calibration use its features."""
    report = run_experiment(experiment(ucla_folder, tiny_stgcn_config, validation_encoder=True), tmp_path / "out",
                            progress=False)
    (name, record), = report["caches"]["validation_features_by_split"].items()
    assert record["trained_classes"] == [1, 3, 6, 7, 8, 9]  # seen [0,1,2,3,6,7,8,9] minus validation [0, 2]
    assert report["caches"]["features"]["trained_classes"] == [0, 1, 2, 3, 6, 7, 8, 9]
    assert "validation-seen classes only" in report["protocol"]["validation_encoder"]
    assert len(list((tmp_path / "out" / "encoders").glob("*/best.pth"))) == 2
    assert "validation features" in (tmp_path / "out" / "report.md").read_text()
    with pytest.raises(ZsarError, match="validation_encoder needs an encoder trained here"):
        run_experiment(experiment(ucla_folder, "skeleton-stats", validation_encoder=True), tmp_path / "o2",
                       progress=False)


@pytest.mark.slow
def test_leaking_encoder_is_refused_unless_overridden(tmp_path, ucla_folder, ucla_small, tiny_stgcn_config):
    from zsar.class_lists.splits import ZeroShotSplit
    from zsar.extract.encoder_training import EncoderTrainConfig, train_skeleton_encoder

    everything = ZeroShotSplit(name="none-unseen", num_classes=11, unseen=(10,), validation_unseen=())
    padded = ucla_small.subset(range(len(ucla_small)))
    padded.class_names = [*ucla_small.class_names, "(no such class)"]  # a split with nothing unseen in the data
    checkpoint = train_skeleton_encoder(padded, everything, tmp_path / "enc",
                                        EncoderTrainConfig(config=str(tiny_stgcn_config), epochs=1, frames=16),
                                        progress=False)
    leaky = experiment(ucla_folder, tiny_stgcn_config, checkpoint=str(checkpoint))
    with pytest.raises(ZsarError, match=r"label leakage.*\[4, 5\]"):
        run_experiment(leaky, tmp_path / "refused", progress=False)
    toml = (f'name = "leaky"\n[data]\nsource = "skeleton"\ndataset = "{ucla_folder}"\n'
            f'[encoder]\nname = "stgcn"\ncheckpoint = "{checkpoint}"\n'
            f'[text]\nvariant = "name"\n[splits]\nnames = ["{ucla_folder / "split.toml"}"]\n'
            '[[heads]]\nname = "nearest_prototype"\nsearch = {}\n')
    (tmp_path / "leaky.toml").write_text(toml)
    cli = [sys.executable, "-c", "from zsar.cli import main; main()", "run", str(tmp_path / "leaky.toml"), "--out",
           str(tmp_path / "allowed")]
    refused = subprocess.run(cli, capture_output=True, text=True)
    assert refused.returncode == 1 and "label leakage" in refused.stderr
    allowed = subprocess.run(cli + ["--allow-leakage"], capture_output=True, text=True)
    assert allowed.returncode == 0, allowed.stderr
    report = json.loads((tmp_path / "allowed" / "report.json").read_text())
    assert report["protocol"]["leakage_override"] is True
    assert list(report["protocol"]["leaked_classes"].values()) == [[4, 5]]
    assert "Leakage override: True" in (tmp_path / "allowed" / "report.md").read_text()

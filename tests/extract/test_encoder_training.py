import numpy as np
import pytest
import torch

from zsar.class_lists.splits import ZeroShotSplit
from zsar.errors import ZsarError
from zsar.extract import encoder_training
from zsar.extract.encoder_training import EncoderTrainConfig, train_skeleton_encoder
from zsar.extract.skeleton_encoder import SkeletonEncoder
from zsar.holdout import stratified_holdout

SPLIT = ZeroShotSplit(name="ucla-8/2", num_classes=10, unseen=(4, 5), validation_unseen=(0, 2))


def options(config, **kw):
    return EncoderTrainConfig(config=str(config), epochs=2, batch_size=8, frames=16, threads=2, **kw)


class Recording:
    """A source wrapper that records which rows were loaded."""

    def __init__(self, source):
        self.rows = []
        self.source = source.subset(range(len(source)))
        inner = self.source.load
        self.source.load = lambda i: (self.rows.append(i), inner(i))[1]


def test_only_seen_training_samples_reach_the_encoder(tmp_path, ucla_small, tiny_stgcn_config):
    rec = Recording(ucla_small)
    path = train_skeleton_encoder(rec.source, SPLIT, tmp_path, options(tiny_stgcn_config), progress=False)
    loaded = ucla_small.metadata.iloc[rec.rows]
    assert (loaded["split"] == "train").all()
    assert not set(loaded["label"]) & set(SPLIT.unseen)
    assert set(loaded["label"]) == set(SPLIT.seen)
    spec = SkeletonEncoder.load(path).spec
    assert spec.trained_classes == SPLIT.seen
    assert spec.training["split"]["unseen"] == [4, 5] and spec.training["seed"] == 0
    assert spec.training["val_samples"] == 8 and spec.training["complete"]
    assert spec.input.num_person == 1  # NW-UCLA has one body: no zero padding
    rec.rows.clear()
    assert train_skeleton_encoder(rec.source, SPLIT, tmp_path, options(tiny_stgcn_config), progress=False) == path
    assert rec.rows == []  # a finished run is reused, not repeated


def test_resume_after_interruption_equals_uninterrupted(tmp_path, ucla_small, tiny_stgcn_config, monkeypatch):
    full = train_skeleton_encoder(ucla_small, SPLIT, tmp_path / "full", options(tiny_stgcn_config), progress=False)
    calls = {"n": 0}
    original = encoder_training.evaluate_accuracy

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(encoder_training, "evaluate_accuracy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_skeleton_encoder(ucla_small, SPLIT, tmp_path / "cut", options(tiny_stgcn_config), progress=False)
    assert (tmp_path / "cut" / "last.pth").is_file() and not (tmp_path / "cut" / "best.pth").exists()
    monkeypatch.setattr(encoder_training, "evaluate_accuracy", original)
    resumed = train_skeleton_encoder(ucla_small, SPLIT, tmp_path / "cut", options(tiny_stgcn_config), progress=False)
    a = torch.load(full, weights_only=False)["state_dict"]
    b = torch.load(resumed, weights_only=False)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert not (tmp_path / "cut" / "last.pth").exists()


def test_divergence_is_a_clear_error(tmp_path, ucla_small, tiny_stgcn_config):
    with pytest.raises(ZsarError, match="diverged"):
        train_skeleton_encoder(ucla_small, SPLIT, tmp_path, options(tiny_stgcn_config, lr=1e30), progress=False)


def test_a_split_of_another_dataset_is_refused(tmp_path, ucla_small, tiny_stgcn_config):
    other = ZeroShotSplit(name="x", num_classes=60, unseen=(1,), validation_unseen=())
    with pytest.raises(ZsarError, match="60 classes"):
        train_skeleton_encoder(ucla_small, other, tmp_path, options(tiny_stgcn_config), progress=False)


def test_stratified_holdout_is_seeded_and_per_class():
    labels = np.repeat([3, 5, 7], [10, 4, 1])
    fit, val = stratified_holdout(labels, 0.2, seed=1)
    assert sorted(np.concatenate([fit, val])) == list(range(15))
    assert [int((labels[val] == c).sum()) for c in (3, 5, 7)] == [2, 1, 0]
    assert np.array_equal(val, stratified_holdout(labels, 0.2, seed=1)[1])


def test_a_foreign_best_pth_is_never_overwritten(tmp_path, ucla_small, tiny_stgcn_config):
    (tmp_path / "best.pth").write_bytes(b"someone else's file")
    with pytest.raises(ZsarError, match="not a readable zsar training result") as info:
        train_skeleton_encoder(ucla_small, SPLIT, tmp_path, options(tiny_stgcn_config), progress=False)
    assert info.value.path == tmp_path / "best.pth"
    assert (tmp_path / "best.pth").read_bytes() == b"someone else's file"

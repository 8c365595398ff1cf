import numpy as np
import pytest
import torch

from zsar.class_lists.splits import ZeroShotSplit
from zsar.datasets.layouts import KINECT_V1_20
from zsar.errors import ZsarError
from zsar.extract.encoder_training import EncoderTrainConfig, train_skeleton_encoder
from zsar.extract.gcn_input import prepare, sample_clips
from zsar.extract.skeleton import extract_skeleton_network
from zsar.extract.skeleton_encoder import SkeletonEncoder
from zsar.features import writer as writer_module
from zsar.features.reader import FeatureCache

SPLIT = ZeroShotSplit(name="ucla-8/2", num_classes=10, unseen=(4, 5), validation_unseen=(0, 2))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, ucla_small, tiny_stgcn_config):
    options = EncoderTrainConfig(config=str(tiny_stgcn_config), epochs=1, batch_size=8, frames=16)
    return train_skeleton_encoder(ucla_small, SPLIT, tmp_path_factory.mktemp("enc"), options, progress=False)


def test_extraction_matches_one_sample_at_a_time(tmp_path, ucla_small, checkpoint):
    cache = FeatureCache(extract_skeleton_network(ucla_small, checkpoint, tmp_path / "c.h5", batch_size=7,
                                              temporal=True, progress=False))
    h = cache.header
    assert h.trained_classes == SPLIT.seen and h.logit_classes == SPLIT.seen
    assert h.embedding_dim == 32 and h.temporal_length == 8 and h.encoder == "mmaction2:stgcn"
    assert h.encoder_config["training"]["split"]["name"] == "ucla-8/2" and h.checkpoint_sha256
    data = cache.load(None, with_temporal=True)
    encoder = SkeletonEncoder.load(checkpoint)
    for i in (0, 13, 59):  # the naive path: one sample, no batching
        clips = sample_clips(prepare(ucla_small.load(i), KINECT_V1_20, encoder.spec.input), encoder.spec.input)
        pooled, logits, steps = encoder.features(clips[None])
        np.testing.assert_allclose(data.embeddings[i], pooled[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(data.logits[i], logits[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(data.temporal[i], steps[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(data.temporal[i].mean(0), data.embeddings[i], rtol=1e-4, atol=1e-5)
    fc = encoder.network.cls_head.fc
    with torch.no_grad():
        recomputed = fc(torch.from_numpy(data.embeddings)).numpy()
    np.testing.assert_allclose(recomputed, data.logits, rtol=1e-4, atol=1e-4)


def test_resume_after_a_crash_gives_the_same_cache(tmp_path, ucla_small, checkpoint, monkeypatch):
    whole = FeatureCache(extract_skeleton_network(ucla_small, checkpoint, tmp_path / "whole.h5", batch_size=8,
                                              progress=False))
    original = writer_module.CacheWriter.write
    calls = {"n": 0}

    def crash(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(writer_module.CacheWriter, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        extract_skeleton_network(ucla_small, checkpoint, tmp_path / "cut.h5", batch_size=8, progress=False)
    monkeypatch.setattr(writer_module.CacheWriter, "write", original)
    assert not (tmp_path / "cut.h5").exists()
    resumed = FeatureCache(extract_skeleton_network(ucla_small, checkpoint, tmp_path / "cut.h5", batch_size=8,
                                                progress=False))
    assert resumed.fingerprint == whole.fingerprint


def test_bad_samples_become_failed_rows(tmp_path, ucla_small, checkpoint):
    source = ucla_small.subset(range(12))
    good = source.load

    def load(i):
        if i == 5:
            raise ZsarError("truncated: the file ends where joint 3 was expected", "bad.skeleton")
        return good(i)

    source.load = load
    cache = FeatureCache(extract_skeleton_network(source, checkpoint, tmp_path / "c.h5", progress=False))
    meta = cache.metadata
    assert meta["status"].tolist().count("failed") == 1 and "truncated" in meta["error"][5]
    assert len(cache.load(None).embeddings) == 11


def test_foreign_checkpoints_need_their_config(tmp_path, ucla_small, checkpoint, tiny_stgcn_config):
    raw = tmp_path / "mm.pth"
    torch.save({"state_dict": torch.load(checkpoint, weights_only=False)["state_dict"]}, raw)
    with pytest.raises(ZsarError, match="not written by zsar"):
        SkeletonEncoder.load(raw)
    names = [f"class {i}" for i in range(8)]
    encoder = SkeletonEncoder.load(raw, config=str(tiny_stgcn_config), layout="kinect_v1_20", class_names=names,
                                   num_person=1)
    assert encoder.spec.trained_classes == tuple(range(8))  # assumed trained on every class it scores
    with pytest.raises(ZsarError, match="does not fit"):
        SkeletonEncoder.load(raw, config="stgcn", layout="kinect_v1_20", class_names=names)
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(raw.read_bytes()[:1000])
    with pytest.raises(ZsarError, match="cannot read"):
        SkeletonEncoder.load(damaged)

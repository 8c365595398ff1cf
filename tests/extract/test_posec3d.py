"""PoseC3D-style heatmap recognizers: seen-only training and extraction on a generated 2-D COCO pickle."""

import pickle

import numpy as np
import pytest

from zsar.class_lists.splits import ZeroShotSplit
from zsar.datasets.pose_pickle import pose_pickle_source
from zsar.errors import ZsarError
from zsar.extract.encoder_training import EncoderTrainConfig, train_skeleton_encoder
from zsar.extract.skeleton import extract_skeleton_network
from zsar.features.reader import FeatureCache

pytest.importorskip("mmaction")

# mmaction2's PoseC3D config shape (SlowOnly on joint heatmaps), shrunk to run in seconds on a CPU
TINY_POSEC3D = '''
model = dict(
    type="Recognizer3D",
    backbone=dict(type="ResNet3dSlowOnly", depth=50, pretrained=None, in_channels=17, base_channels=8,
                  num_stages=3, out_indices=(2,), stage_blocks=(1, 1, 1), conv1_stride_s=1, pool1_stride_s=1,
                  inflate=(0, 1, 1), spatial_strides=(2, 2, 2), temporal_strides=(1, 1, 2), dilations=(1, 1, 1)),
    cls_head=dict(type="I3DHead", in_channels=128, num_classes=60, dropout_ratio=0.5, average_clips="prob"))
left_kp = [1, 3, 5, 7, 9, 11, 13, 15]
right_kp = [2, 4, 6, 8, 10, 12, 14, 16]
train_pipeline = [
    dict(type="UniformSampleFrames", clip_len=8),
    dict(type="PoseDecode"),
    dict(type="PoseCompact", hw_ratio=1., allow_imgpad=True),
    dict(type="Resize", scale=(-1, 32)),
    dict(type="RandomResizedCrop", area_range=(0.56, 1.0)),
    dict(type="Resize", scale=(28, 28), keep_ratio=False),
    dict(type="Flip", flip_ratio=0.5, left_kp=left_kp, right_kp=right_kp),
    dict(type="GeneratePoseTarget", sigma=0.6, use_score=True, with_kp=True, with_limb=False),
    dict(type="FormatShape", input_format="NCTHW_Heatmap"),
    dict(type="PackActionInputs"),
]
val_pipeline = [
    dict(type="UniformSampleFrames", clip_len=8, num_clips=1, test_mode=True),
    dict(type="PoseDecode"),
    dict(type="PoseCompact", hw_ratio=1., allow_imgpad=True),
    dict(type="Resize", scale=(-1, 32)),
    dict(type="CenterCrop", crop_size=32),
    dict(type="GeneratePoseTarget", sigma=0.6, use_score=True, with_kp=True, with_limb=False),
    dict(type="FormatShape", input_format="NCTHW_Heatmap"),
    dict(type="PackActionInputs"),
]
'''
SPLIT = ZeroShotSplit(name="coco-3/1", num_classes=4, unseen=(3,), validation_unseen=())


@pytest.fixture(scope="module")
def coco_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coco")
    rng = np.random.default_rng(0)
    rest = rng.uniform(200, 400, (17, 2))
    anns = []
    for i in range(24):
        label, t = i % 4, int(rng.integers(10, 30))
        wave = np.sin(np.linspace(0, (label + 1) * np.pi, t))[:, None, None] * 30
        kp = (rest[None] + wave * (np.arange(17) % (label + 2) == 0)[None, :, None]
              + rng.normal(0, 2, (t, 17, 2)))[None]
        anns.append({"frame_dir": f"clip{i:02d}", "label": label, "keypoint": kp.astype(np.float32),
                     "keypoint_score": np.full((1, t, 17), 0.9, np.float32), "img_shape": (480, 640),
                     "total_frames": t})
    with open(folder / "coco.pkl", "wb") as handle:
        pickle.dump({"split": {"train": [a["frame_dir"] for a in anns[:16]],
                               "val": [a["frame_dir"] for a in anns[16:]]}, "annotations": anns}, handle)
    (folder / "names.txt").write_text("wave\nclap\njump\nbow\n")
    (folder / "posec3d.py").write_text(TINY_POSEC3D)
    return pose_pickle_source(folder / "coco.pkl", class_names=str(folder / "names.txt")), folder / "posec3d.py"


def test_posec3d_trains_on_seen_classes_and_extracts(tmp_path, coco_source):
    source, config = coco_source
    options = EncoderTrainConfig(config=str(config), epochs=1, batch_size=4, val_fraction=0.25)
    checkpoint = train_skeleton_encoder(source, SPLIT, tmp_path / "enc", options, progress=False)
    cache = FeatureCache(extract_skeleton_network(source, checkpoint, tmp_path / "c.h5", temporal=True, progress=False))
    h = cache.header
    assert h.encoder == "mmaction2:resnet3dslowonly" and h.embedding_dim == 128
    assert h.trained_classes == (0, 1, 2) and h.logit_classes == (0, 1, 2) and h.temporal_length == 4
    data = cache.load(None, with_temporal=True)
    assert data.embeddings.shape == (24, 128) and np.isfinite(data.embeddings).all()
    np.testing.assert_allclose(data.temporal.mean(1), data.embeddings, rtol=1e-4, atol=1e-5)
    again = FeatureCache(extract_skeleton_network(source, checkpoint, tmp_path / "d.h5", temporal=True, progress=False))
    np.testing.assert_array_equal(again.load(None).embeddings, data.embeddings)  # test-mode input is deterministic


def test_posec3d_refuses_3d_skeletons(tmp_path, ucla_small, coco_source):
    _, config = coco_source
    split = ZeroShotSplit(name="u", num_classes=10, unseen=(4, 5), validation_unseen=())
    with pytest.raises(ZsarError, match="2-D keypoints"):
        train_skeleton_encoder(ucla_small, split, tmp_path, EncoderTrainConfig(config=str(config), epochs=1),
                               progress=False)

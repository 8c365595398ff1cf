"""zsar's GCN input equals mmaction2's own pipeline (the reference) on NTU and COCO data."""

import numpy as np
import pytest

from zsar.datasets.layouts import COCO_17, KINECT_V1_20, NTU_25
from zsar.extract.gcn_input import GCNInputConfig, normalise_3d, prepare, sample_clips, sample_indices

pytest.importorskip("mmaction")


def ntu_motion(rng, bodies=2, frames=50):
    base = rng.normal(0, 0.3, (1, 1, 25, 3)) + np.array([0.2, 0.1, 3.0])
    drift = np.cumsum(rng.normal(0, 0.01, (bodies, frames, 25, 3)), axis=1)
    kp = (base + drift).astype(np.float32)
    if bodies == 2:
        kp[1, :7] = 0  # second body enters late
    return kp


def mm_pipeline(steps):
    from mmcv.transforms import Compose

    from zsar.extract.mmaction_compat import import_mmaction

    import_mmaction()
    from mmaction.registry import TRANSFORMS

    return Compose([TRANSFORMS.build(s) for s in steps])


@pytest.mark.parametrize("feats", [("j",), ("b",), ("j", "jm"), ("b", "bm")])
@pytest.mark.parametrize("frames", [30, 50, 120])  # longer, within 2x, and shorter than the clip
def test_ntu_3d_equals_mmaction(feats, frames):
    kp = ntu_motion(np.random.default_rng(frames), frames=frames)
    config = GCNInputConfig(clip_len=40, num_person=2, feats=feats)
    ours = sample_clips(prepare(kp, NTU_25, config), config, num_clips=3)
    pipe = mm_pipeline([dict(type="PreNormalize3D"), dict(type="GenSkeFeat", dataset="nturgb+d", feats=list(feats)),
                        dict(type="UniformSampleFrames", clip_len=40, num_clips=3, test_mode=True),
                        dict(type="PoseDecode"), dict(type="FormatGCNInput", num_person=2)])
    ref = pipe({"keypoint": kp.copy(), "total_frames": kp.shape[1], "start_index": 0})["keypoint"]
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_coco_2d_with_scores_equals_mmaction():
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 640, (1, 60, 17, 2)).astype(np.float32)
    score = rng.uniform(0, 1, (1, 60, 17)).astype(np.float32)
    config = GCNInputConfig(clip_len=32, num_person=2, feats=("j", "b", "bm"))
    ours = sample_clips(prepare(np.concatenate([kp, score[..., None]], -1), COCO_17, config, (480, 640)), config)
    pipe = mm_pipeline([dict(type="PreNormalize2D"), dict(type="GenSkeFeat", dataset="coco", feats=["j", "b", "bm"]),
                        dict(type="UniformSampleFrames", clip_len=32, num_clips=1, test_mode=True),
                        dict(type="PoseDecode"), dict(type="FormatGCNInput", num_person=2)])
    ref = pipe({"keypoint": kp.copy(), "keypoint_score": score.copy(), "img_shape": (480, 640),
                "total_frames": 60, "start_index": 0})["keypoint"]
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_kinect_normalisation_uses_its_own_centre_and_axes():
    rng = np.random.default_rng(2)
    kp = (rng.normal(0, 0.3, (1, 20, 20, 3)) + [0, 0, 3]).astype(np.float32)
    out = normalise_3d(kp, KINECT_V1_20)
    np.testing.assert_allclose(out[0, 0, 1], 0, atol=1e-6)  # spine at the origin
    shoulders = out[0, 0, 8] - out[0, 0, 4]
    assert abs(shoulders[1]) < 1e-5 and abs(shoulders[2]) < 1e-5 and shoulders[0] > 0  # left -> right along +x
    # the same joints in NTU order (0-19 mean the same) are normalised identically
    ntu = np.concatenate([kp, kp[:, :, [2, 7, 7, 11, 11]]], axis=2)
    np.testing.assert_allclose(out, normalise_3d(ntu, NTU_25)[:, :, :20], atol=1e-5)


def test_training_sampling_draws_one_frame_per_segment():
    rng = np.random.RandomState(0)
    inds = sample_indices(100, 10, 1, rng, test_mode=False)
    assert len(inds) == 10 and all(10 * i <= f < 10 * (i + 1) for i, f in enumerate(inds))
    short = sample_indices(4, 10, 1, rng, test_mode=False)
    assert set(short) == {0, 1, 2, 3}

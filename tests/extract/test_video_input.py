import numpy as np
import pytest
from conftest import TINY_VIDEO_CONFIG

from zsar.errors import ZsarError
from zsar.extract.video_decode import read_frames
from zsar.extract.video_input import VideoInput, clip_views, crop_offsets, input_from_config, resized_shape

pytest.importorskip("mmaction")


def _mmaction_views(frames: np.ndarray, spec: VideoInput, crop_step: dict) -> np.ndarray:
    """mmaction2's own Resize / crop / FormatShape on the same frames: [views, 3, T, H, W]."""
    from zsar.extract.mmaction_compat import import_mmaction

    import_mmaction()
    from mmaction.datasets.transforms import CenterCrop, FormatShape, Resize, ThreeCrop

    results = {"imgs": list(frames), "img_shape": frames.shape[1:3], "num_clips": spec.num_clips,
               "clip_len": spec.clip_len, "modality": "RGB"}
    steps = [Resize(scale=(-1, spec.short_side))]
    steps.append(CenterCrop(**crop_step) if spec.crop == "centre" else ThreeCrop(**crop_step))
    steps.append(FormatShape(input_format="NCTHW"))
    for step in steps:
        results = step.transform(results)
    return results["imgs"]


@pytest.mark.parametrize("crop", ["centre", "three"])
def test_views_equal_mmaction2_pipeline(videos, crop):
    spec = VideoInput(clip_len=4, frame_interval=5, num_clips=2, short_side=72, crop=crop,
                      crop_size=64 if crop == "centre" else 72)
    for name in ("ntu_S001C001P001R001A001_rgb.avi", "mmaction2_demo.mp4"):
        frames = read_frames(videos / name, spec.frame_indices).frames
        ours = clip_views(frames, spec)  # [crops, clips, T, H, W, 3]
        assert ours.shape == (spec.num_crops, 2, 4, spec.crop_size, spec.crop_size, 3) and ours.dtype == np.uint8
        expected = _mmaction_views(frames, spec, {"crop_size": spec.crop_size})
        flat = ours.reshape((-1,) + ours.shape[2:]).transpose(0, 4, 1, 2, 3)  # crop-major, like FormatShape
        np.testing.assert_array_equal(flat, expected)


def test_resize_arithmetic_and_crop_offsets():
    assert resized_shape(1080, 1920, 256) == (256, 455)
    assert resized_shape(240, 320, 224) == (224, 299)  # 298.67 rounds half up
    assert crop_offsets(256, 455, "centre", 224) == [(16, 115)]
    assert crop_offsets(224, 299, "three", 224) == [(0, 0), (0, 74), (0, 37)]
    with pytest.raises(ZsarError, match="larger"):
        crop_offsets(100, 100, "centre", 224)
    with pytest.raises(ZsarError, match="three crops"):
        crop_offsets(256, 455, "three", 224)


def test_input_read_from_configs():
    from zsar.extract.mmaction_compat import load_config

    slowonly = input_from_config(load_config("slowonly"))
    assert (slowonly.clip_len, slowonly.frame_interval, slowonly.num_clips) == (8, 8, 1)
    assert (slowonly.short_side, slowonly.crop, slowonly.crop_size) == (256, "centre", 224)
    slowonly_test = input_from_config(load_config("slowonly"), "test")
    assert (slowonly_test.num_clips, slowonly_test.crop, slowonly_test.crop_size) == (10, "three", 256)
    videomae = input_from_config(load_config("videomae"))  # no val pipeline: the test one
    assert (videomae.clip_len, videomae.frame_interval, videomae.num_clips, videomae.crop) == (16, 4, 5, "three")
    tiny = input_from_config(load_config(TINY_VIDEO_CONFIG), num_clips=3, crop="three", crop_size=72)
    assert (tiny.num_clips, tiny.crop, tiny.crop_size, tiny.short_side) == (3, "three", 72, 72)
    with pytest.raises(ZsarError, match="pipeline"):
        input_from_config(load_config("slowonly"), "train")


def test_bad_settings():
    with pytest.raises(ZsarError, match="crop"):
        VideoInput(crop="five")
    with pytest.raises(ZsarError, match="NCHW"):
        VideoInput(input_format="NCTHW_Heatmap")
    with pytest.raises(ZsarError, match="RGB frames"):
        clip_views(np.zeros((4, 8, 8), np.uint8), VideoInput())

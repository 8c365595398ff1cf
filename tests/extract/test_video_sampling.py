import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.extract.video_sampling import sample_frame_indices

CASES = [(n, clip_len, interval, clips) for n in (1, 3, 7, 30, 64, 103, 355) for clip_len, interval in
         ((1, 1), (4, 4), (8, 8), (16, 4), (32, 2)) for clips in (1, 2, 5, 10)]


@pytest.mark.parametrize("out_of_bound", ["loop", "repeat_last"])
def test_indices_equal_mmaction_sample_frames(out_of_bound):
    pytest.importorskip("mmaction")
    from zsar.extract.mmaction_compat import import_mmaction

    import_mmaction()
    from mmaction.datasets.transforms import SampleFrames

    for n, clip_len, interval, clips in CASES:
        reference = SampleFrames(clip_len=clip_len, frame_interval=interval, num_clips=clips, test_mode=True,
                                 out_of_bound_opt=out_of_bound)
        expected = reference.transform({"total_frames": n, "start_index": 0})["frame_inds"]
        ours = sample_frame_indices(n, clip_len, interval, clips, out_of_bound)
        assert ours.shape == (clips, clip_len)
        np.testing.assert_array_equal(ours.reshape(-1), expected, err_msg=str((n, clip_len, interval, clips)))


def test_short_videos_are_padded_by_repetition():
    inds = sample_frame_indices(3, clip_len=8, frame_interval=2, num_clips=1)
    assert inds.tolist() == [[0, 2, 1, 0, 2, 1, 0, 2]]  # wraps around, never empty, never out of range
    last = sample_frame_indices(3, clip_len=4, frame_interval=2, num_clips=1, out_of_bound="repeat_last")
    assert last.tolist() == [[0, 2, 2, 2]]


def test_bad_arguments():
    with pytest.raises(ZsarError, match="no frames"):
        sample_frame_indices(0, 8, 8, 1)
    with pytest.raises(ZsarError, match="positive"):
        sample_frame_indices(10, 0, 8, 1)
    with pytest.raises(ZsarError, match="out_of_bound"):
        sample_frame_indices(10, 8, 8, 1, "clamp")

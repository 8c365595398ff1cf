import numpy as np
import pytest
from conftest import REAL_VIDEOS

from zsar.errors import ZsarError
from zsar.extract.video_decode import DECORD_UNRELIABLE_TAIL, open_video, read_frames
from zsar.extract.video_sampling import sample_frame_indices

pytest.importorskip("decord")
pytest.importorskip("av")


def _sampler(num_frames):
    return sample_frame_indices(num_frames, clip_len=4, frame_interval=7, num_clips=2)


@pytest.mark.parametrize("name", REAL_VIDEOS)
def test_decord_and_pyav_give_identical_frames(videos, name):
    """Every frame of the clips (first clip at 0, last ending on the final frame) is the same with both."""
    auto = read_frames(videos / name, _sampler, "auto")
    decord = read_frames(videos / name, _sampler, "decord")
    pyav = read_frames(videos / name, _sampler, "pyav")
    assert decord.backend == "decord" and pyav.backend == "pyav" and auto.backend.startswith("decord")
    assert decord.num_frames == pyav.num_frames == auto.num_frames > 0
    assert decord.frames.shape == pyav.frames.shape == (8,) + decord.frames.shape[1:3] + (3,)
    assert decord.frames.dtype == np.uint8
    np.testing.assert_array_equal(auto.frames, pyav.frames)
    # decord alone: identical except (on the NTU AVIs) the stream's last frames, which "auto" takes from PyAV
    body = _sampler(pyav.num_frames).reshape(-1) < pyav.num_frames - DECORD_UNRELIABLE_TAIL
    np.testing.assert_array_equal(decord.frames[body], pyav.frames[body])


@pytest.mark.parametrize("name", REAL_VIDEOS)
def test_every_frame_matches_a_sequential_decode(videos, name):
    """Random sparse reads with "auto" equal a plain decode of the whole stream (the naive path)."""
    import av

    with av.open(str(videos / name)) as container:
        every = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    rng = np.random.default_rng(0)
    for _ in range(4):
        wanted = np.sort(rng.choice(len(every), size=6, replace=False))
        wanted[-1] = len(every) - 1 - int(rng.integers(0, 2))
        got = read_frames(videos / name, lambda n: wanted, "auto").frames
        np.testing.assert_array_equal(got, np.stack([every[i] for i in wanted]))


def test_frames_follow_the_indices(videos):
    """Repeated and unordered indices return the frames asked for, in that order (naive: one frame at a time)."""
    path = videos / "mmaction2_demo.mp4"
    indices = np.array([5, 0, 5, 279, 100])
    got = read_frames(path, lambda n: indices, "decord").frames
    reader = open_video(path, "pyav")
    for k, i in enumerate(indices):
        np.testing.assert_array_equal(got[k], reader.get(np.array([i]))[0])


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_broken_files_raise_an_error_naming_the_file(video_folder, tmp_path, backend):
    cases = {video_folder / "street" / "empty.mp4": "empty",
             video_folder / "street" / "not_a_video.mp4": "cannot open",
             video_folder / "drink" / "truncated.mp4": "cannot open",
             tmp_path / "missing.avi": "not found",
             tmp_path: "not a file"}
    for path, message in cases.items():
        with pytest.raises(ZsarError, match=message) as info:
            read_frames(path, _sampler, backend)
        assert info.value.path == path


def test_pyav_reports_a_stream_shorter_than_it_claims(videos, tmp_path):
    """A truncated AVI keeps its declared frame count; PyAV names the missing frame instead of returning less."""
    data = (videos / "pyskl_ntu_sample.avi").read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) * 4 // 10])
    with pytest.raises(ZsarError, match="truncated"):
        read_frames(path, _sampler, "pyav")
    decoded = read_frames(path, _sampler, "auto")  # decord indexes the frames that are there
    assert 0 < decoded.num_frames < 72 and decoded.frames.shape[0] == 8


def test_unknown_backend(videos):
    with pytest.raises(ZsarError, match="backend"):
        open_video(videos / REAL_VIDEOS[0], "opencv")

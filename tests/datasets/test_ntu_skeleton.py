"""NTU `.skeleton` files written by the tests from real NW-UCLA motion (joints mapped to NTU-25)."""

import numpy as np
import pytest

from zsar.datasets.ntu_skeleton import ntu_source, ntu_split, parse_ntu_name, read_ntu_skeleton, write_ntu_skeleton
from zsar.datasets.nw_ucla import read_nw_ucla_json
from zsar.errors import ZsarError

# NTU-25 joint -> Kinect v1 joint (the first 20 match; spine shoulder = shoulder centre; hand tips = hands)
NTU_FROM_KINECT = list(range(20)) + [2, 7, 7, 11, 11]


def ntu_bodies(shared, names=("a01_s01_e00_v01", "a11_s02_e01_v02")) -> np.ndarray:
    folder = shared / "datasets" / "nw-ucla" / "all_sqe"
    seqs = [read_nw_ucla_json(folder / f"{n}.json")[0][:, NTU_FROM_KINECT] for n in names]
    t = min(len(s) for s in seqs)
    return np.stack([s[:t] for s in seqs])  # [2, T, 25, 3]


def test_round_trip_keeps_the_moving_bodies_first_and_centres(tmp_path, shared):
    bodies = ntu_bodies(shared)
    still = np.repeat(bodies[1:, :1] + 1.0, bodies.shape[1], axis=1)  # a third body that does not move
    motion = [b.reshape(-1, 3).std(axis=0).sum() for b in bodies]  # summed coordinate spread
    data = np.concatenate([bodies, still])
    path = write_ntu_skeleton(tmp_path / "S001C002P003R002A013.skeleton", data)
    kp = read_ntu_skeleton(path, max_bodies=2, centre=False)
    assert kp.shape == (2, bodies.shape[1], 25, 3)
    order = np.argsort(motion)[::-1]
    np.testing.assert_allclose(kp, bodies[order], atol=1e-5)
    centred = read_ntu_skeleton(path)
    np.testing.assert_allclose(centred[0, 0, 1], 0, atol=1e-6)
    np.testing.assert_allclose(centred - centred[0, 0, 1], kp - kp[0, 0, 1], atol=1e-5)


def test_empty_frames_are_dropped(tmp_path, shared):
    data = ntu_bodies(shared)[:1].copy()
    data[:, 3:5] = 0
    kp = read_ntu_skeleton(write_ntu_skeleton(tmp_path / "S001C001P001R001A001.skeleton", data), centre=False)
    assert kp.shape[1] == data.shape[1] - 2
    np.testing.assert_allclose(kp[0, 3], data[0, 5], atol=1e-5)


def test_file_names_and_benchmarks():
    info = parse_ntu_name("S017C003P020R002A060")
    assert info == {"setup": 17, "camera": 3, "subject": 20, "repetition": 2, "label": 59}
    assert ntu_split(info, "xsub", 60) == "test" and ntu_split({**info, "subject": 1}, "xsub", 60) == "train"
    assert ntu_split(info, "xview", 60) == "train" and ntu_split({**info, "camera": 1}, "xview", 60) == "test"
    assert ntu_split(info, "xset", 120) == "test" and ntu_split({**info, "setup": 18}, "xset", 120) == "train"
    with pytest.raises(ZsarError, match="naming"):
        parse_ntu_name("video_01")


def test_folder_source(tmp_path, shared):
    data = ntu_bodies(shared)
    write_ntu_skeleton(tmp_path / "S001C001P001R001A001.skeleton", data)
    write_ntu_skeleton(tmp_path / "S001C002P003R001A002.skeleton", data[:1])
    source = ntu_source(tmp_path)
    assert source.class_names[0] == "drink water" and len(source.class_names) == 60
    assert source.metadata["split"].tolist() == ["train", "test"]
    assert source.load(1).shape[0] == 1


@pytest.mark.parametrize("cut, problem", [(lambda t: "\n".join(t.splitlines()[:40]), "truncated"),
                                          (lambda t: t.replace("0.", "x.", 1), "not numeric"),
                                          (lambda t: "0\n", "no skeleton"),
                                          (lambda t: "", "truncated")])
def test_malformed_files_name_file_and_line(tmp_path, shared, cut, problem):
    good = write_ntu_skeleton(tmp_path / "good.skeleton", ntu_bodies(shared)[:1, :5]).read_text()
    bad = tmp_path / "S001C001P001R001A001.skeleton"
    bad.write_text(cut(good))
    with pytest.raises(ZsarError, match=problem) as info:
        read_ntu_skeleton(bad)
    assert info.value.path == bad

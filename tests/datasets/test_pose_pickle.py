import pickle

import numpy as np
import pytest

from zsar.datasets.nw_ucla import read_nw_ucla_json
from zsar.datasets.pose_pickle import pose_pickle_source
from zsar.datasets.skeleton_datasets import open_skeleton_dataset
from zsar.errors import ZsarError

NAMES = ("a01_s01_e00_v01", "a02_s01_e00_v02", "a03_s01_e00_v03", "a04_s02_e00_v03")


def write_pickle(path, annotations, split):
    with open(path, "wb") as handle:
        pickle.dump({"split": split, "annotations": annotations}, handle)
    return path


@pytest.fixture()
def ucla_pickle(tmp_path, shared):
    folder = shared / "datasets" / "nw-ucla" / "all_sqe"
    anns = []
    for name in NAMES:
        kp = read_nw_ucla_json(folder / f"{name}.json")
        anns.append({"frame_dir": name, "label": int(name[1:3]) - 1, "keypoint": kp, "total_frames": kp.shape[1]})
    split = {"xview_train": list(NAMES[:2]), "xview_val": list(NAMES[2:])}
    return write_pickle(tmp_path / "ucla.pkl", anns, split), anns


def test_3d_pickle_from_real_data(ucla_pickle):
    path, anns = ucla_pickle
    source = open_skeleton_dataset(path, class_names="nw_ucla")
    assert source.layout == "kinect_v1_20"
    assert source.metadata["split"].tolist() == ["train", "train", "test", "test"]
    assert source.metadata["class_name"].tolist() == ["pick up with one hand", "pick up with two hands",
                                                      "drop trash", "walk around"]
    np.testing.assert_array_equal(source.load(2), anns[2]["keypoint"])


def test_2d_pickle_appends_scores_and_keeps_image_size(tmp_path):
    rng = np.random.default_rng(0)
    anns = [{"frame_dir": f"clip{i}", "label": i % 2, "keypoint": rng.uniform(0, 640, (1, 12, 17, 2)),
             "keypoint_score": rng.uniform(0, 1, (1, 12, 17)), "img_shape": (480, 640), "total_frames": 12}
            for i in range(4)]
    names = tmp_path / "names.txt"
    names.write_text("wave\nclap\n")
    path = write_pickle(tmp_path / "coco.pkl", anns, {"train": ["clip0", "clip1"], "val": ["clip2"]})
    source = pose_pickle_source(path, class_names=str(names))
    assert source.layout == "coco_17" and source.load(0).shape == (1, 12, 17, 3)
    np.testing.assert_allclose(source.load(3)[..., 2], anns[3]["keypoint_score"], rtol=1e-6)
    assert source.metadata["split"].tolist() == ["train", "train", "test", "unused"]
    assert source.metadata["img_shape"][0] == [480, 640]


def test_bad_pickles(tmp_path, ucla_pickle):
    path, anns = ucla_pickle
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ZsarError, match="cannot read") as info:
        pose_pickle_source(broken, class_names="nw_ucla")
    assert info.value.path == broken
    with pytest.raises(ZsarError, match="lacks"):
        pose_pickle_source(write_pickle(tmp_path / "a.pkl", [{"frame_dir": "x"}], {}), class_names="nw_ucla")
    with pytest.raises(ZsarError, match="has 25"):
        pose_pickle_source(path, class_names="nw_ucla", layout="ntu_25")
    with pytest.raises(ZsarError, match="need names"):
        pose_pickle_source(path)
    with pytest.raises(ZsarError, match="not in the pickle"):
        pose_pickle_source(path, class_names="nw_ucla", train_split="xsub_train")
    bad = [dict(a) for a in anns]
    bad[1]["keypoint"] = np.full_like(bad[1]["keypoint"], np.nan)
    bad[2]["keypoint"] = bad[2]["keypoint"][:, :0]
    source = pose_pickle_source(write_pickle(tmp_path / "nan.pkl", bad, {}), class_names="nw_ucla")
    with pytest.raises(ZsarError, match="NaN") as info:
        source.load(1)
    assert "a02_s01_e00_v02" in str(info.value)
    with pytest.raises(ZsarError, match="empty"):
        source.load(2)

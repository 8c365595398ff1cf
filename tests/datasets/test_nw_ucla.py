import json

import numpy as np
import pytest

from zsar.datasets.nw_ucla import nw_ucla_source, read_nw_ucla_json
from zsar.datasets.skeleton_datasets import open_skeleton_dataset
from zsar.errors import ZsarError


@pytest.fixture(scope="module")
def ucla_dir(shared):
    return shared / "datasets" / "nw-ucla" / "all_sqe"


def test_real_dataset_index_and_cross_view_split(ucla_dir):
    source = open_skeleton_dataset(ucla_dir)
    meta = source.metadata
    assert len(source) == 1484 and source.layout == "kinect_v1_20"
    assert meta["split"].value_counts().to_dict() == {"train": 1020, "test": 464}
    assert set(meta.loc[meta["split"] == "test", "view"]) == {3}
    counts = meta.groupby("class_name").size()
    assert counts["walk around"] == 173 and counts["carry"] == 142
    row = meta.index[meta["sample_id"] == "a11_s03_e01_v02"][0]
    assert meta.loc[row, "class_name"] == "throw" and meta.loc[row, "label"] == 8
    assert meta.loc[row, "subject"] == 3 and meta.loc[row, "repetition"] == 1


def test_real_samples_load_including_one_frame_sequences(ucla_dir):
    one_frame = read_nw_ucla_json(ucla_dir / "a02_s09_e04_v02.json")
    assert one_frame.shape == (1, 1, 20, 3)
    zero_joints = read_nw_ucla_json(ucla_dir / "a04_s01_e01_v01.json")
    assert (zero_joints[0, 34, [0, 1, 2, 4, 12, 16]] == 0).all()
    raw = json.loads((ucla_dir / "a01_s01_e00_v01.json").read_text())
    np.testing.assert_allclose(read_nw_ucla_json(ucla_dir / "a01_s01_e00_v01.json")[0], raw["skeletons"], rtol=1e-6)


@pytest.mark.parametrize("content, problem", [
    ('{"file_name": "a01_s01_e00_v01", "skeletons": [[[0, 0', "cannot read"),
    ('{"file_name": "a01_s01_e00_v01"}', "no `skeletons`"),
    ('{"skeletons": [], "label": 1}', "empty"),
    ('{"skeletons": [[[0, 0, 0]]], "label": 1}', "20"),
    ('{"skeletons": [[[1, 2, 3]]], "label": 4}', "does not match"),
    (json.dumps({"skeletons": [[[float("nan"), 0, 0]] * 20], "label": 1}), "NaN"),
])
def test_bad_files_name_the_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "a01_s01_e00_v01.json"
    path.write_text(content)
    with pytest.raises(ZsarError, match=problem) as info:
        read_nw_ucla_json(path)
    assert info.value.path == path


def test_nan_file_becomes_a_failed_row_not_a_crash(tmp_path, ucla_dir):
    from zsar.extract.skeleton import extract_skeleton_stats
    from zsar.features.reader import FeatureCache

    for name in ("a01_s01_e00_v01", "a02_s01_e00_v01", "a03_s01_e00_v03"):
        (tmp_path / f"{name}.json").write_text((ucla_dir / f"{name}.json").read_text())
    (tmp_path / "a04_s01_e00_v01.json").write_text(json.dumps({"skeletons": [[[float("nan"), 0, 0]] * 20]}))
    cache = FeatureCache(extract_skeleton_stats(nw_ucla_source(tmp_path), tmp_path / "c.h5", progress=False))
    status = cache.metadata.set_index("sample_id")["status"]
    assert status["a04_s01_e00_v01"] == "failed" and (status.drop("a04_s01_e00_v01") == "ok").all()
    assert "NaN" in cache.metadata.set_index("sample_id")["error"]["a04_s01_e00_v01"]


def test_bad_file_names_are_rows_that_fail_to_load(tmp_path, ucla_dir):
    (tmp_path / "a07_s01_e00_v01.json").write_text("{}")
    (tmp_path / "a01_s01_e00_v01.json").write_text((ucla_dir / "a01_s01_e00_v01.json").read_text())
    source = nw_ucla_source(tmp_path)
    assert source.metadata["label"].tolist() == [0, -1] and source.metadata["split"].tolist() == ["train", "unused"]
    with pytest.raises(ZsarError, match="not an NW-UCLA action") as info:
        source.load(1)
    assert info.value.path == tmp_path / "a07_s01_e00_v01.json"
    assert source.load(0).shape[2] == 20

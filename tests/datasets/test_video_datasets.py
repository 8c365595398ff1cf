from pathlib import Path

import pytest

from zsar.class_lists.names import builtin_class_names
from zsar.datasets.video_datasets import (
    folder_source,
    hri30_course_source,
    hri30_source,
    list_source,
    open_video_dataset,
    video_paths_source,
)
from zsar.errors import ZsarError

HRI30 = builtin_class_names("hri30")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0")
    return path


def test_class_folders_with_and_without_split_folders(tmp_path):
    for rel in ("a/x1.mp4", "a/x2.avi", "b/y1.mkv", "b/notes.txt"):
        _touch(tmp_path / "flat" / rel)
    flat = open_video_dataset(tmp_path / "flat")
    assert flat.modality == "video" and flat.class_names == ["a", "b"]
    assert flat.metadata[["sample_id", "label", "split"]].values.tolist() == [
        ["a/x1", 0, "all"], ["a/x2", 0, "all"], ["b/y1", 1, "all"]]
    assert flat.load(2) == (tmp_path / "flat" / "b" / "y1.mkv").resolve()
    for rel in ("train/run/1.mp4", "train/walk/2.mp4", "val/run/3.mp4"):
        _touch(tmp_path / "kin" / rel)
    kinetics = folder_source(tmp_path / "kin", class_names=["walk", "run", "jump"])
    assert kinetics.metadata[["label", "split"]].values.tolist() == [[1, "train"], [0, "train"], [1, "val"]]
    with pytest.raises(ZsarError, match=r"not in the given class names"):
        folder_source(tmp_path / "kin", class_names=["walk"])
    with pytest.raises(ZsarError, match="no class folders"):
        folder_source(tmp_path / "kin" / "train" / "run")


def test_list_files(tmp_path):
    (tmp_path / "list.txt").write_text("v/a.mp4 1\nv/b.mp4 0 test\n# comment\nv/c.mp4\n")
    source = list_source(tmp_path / "list.txt", class_names=["jump", "run"])
    assert source.metadata[["sample_id", "label", "class_name", "split"]].values.tolist() == [
        ["v/a", 1, "run", "all"], ["v/b", 0, "jump", "test"], ["v/c", -1, "", "all"]]
    assert source.load(0) == (tmp_path / "v" / "a.mp4").resolve()  # missing files fail later, at decoding
    (tmp_path / "named.csv").write_text("path,label\nx.avi,run\ny.avi,jump\n")
    named = open_video_dataset(tmp_path / "named.csv")
    assert named.class_names == ["jump", "run"] and named.metadata["label"].tolist() == [1, 0]
    (tmp_path / "bad.txt").write_text("a.mp4 7\n")
    with pytest.raises(ZsarError, match="line 1: label 7") as info:
        list_source(tmp_path / "bad.txt", class_names=["jump", "run"])
    assert info.value.path == tmp_path / "bad.txt"
    (tmp_path / "dup.txt").write_text("a.mp4 0\na.mp4 1\n")
    with pytest.raises(ZsarError, match="twice"):
        list_source(tmp_path / "dup.txt")


def test_hri30_official_layout(tmp_path, shared):
    reference = shared / "reference" / "hri30"
    root = tmp_path / "HRI30"
    train = [line for line in (reference / "trainlist01.txt").read_text().splitlines() if line.strip()]
    test = [line for line in (reference / "testlist01.txt").read_text().splitlines() if line.strip()]
    (root).mkdir()
    (root / "classInd.txt").write_text((reference / "classInd.txt").read_text())
    (root / "trainlist01.txt").write_text("\n".join(train[::300]) + "\n")
    (root / "testlist01.txt").write_text("\n".join(test[::300]) + "\n")
    source = open_video_dataset(root)
    assert source.name == "hri30" and source.class_names == HRI30 and source.class_ids == list(range(1, 31))
    meta = source.metadata
    assert len(meta) == len(train[::300]) + len(test[::300])
    first = meta.iloc[0]
    assert first["class_name"] == "DeliverObject" and first["class_id"] == 1 and first["split"] == "train"
    assert first["sample_id"] == "v_DeliverObject_g05_c01" and first["group"] == 5 and first["clip"] == 1
    assert set(meta["split"]) == {"train", "test"}
    assert (meta["class_id"] == meta["label"] + 1).all()
    (root / "trainlist01.txt").write_text("DeliverObject/v_DeliverObject_g05_c01.avi 2\n")
    with pytest.raises(ZsarError, match="class id 2 does not match folder 'DeliverObject'"):
        hri30_source(root)
    with pytest.raises(ZsarError, match="testlist01.txt"):
        hri30_source(root, test_list=root / "absent.txt")


def test_hri30_course_layout(tmp_path):
    folder = tmp_path / "course"
    for name in ("CID01_SID01_VID01.avi", "CID02_SID03_VID02.avi", "CID05_SID02_VID07.mp4"):
        _touch(folder / name)
    (tmp_path / "labels.csv").write_text("video_id,class_id\nCID01_SID01_VID01,1\nCID02_SID03_VID02.avi,"
                                         "MoveBackwardsWhileDrilling\nCID09_SID09_VID09,30\n")
    source = open_video_dataset(folder, labels_csv=tmp_path / "labels.csv")
    meta = source.metadata.set_index("sample_id")
    assert meta.loc["CID01_SID01_VID01", "label"] == 0 and meta.loc["CID02_SID03_VID02", "label"] == 1
    assert meta.loc["CID05_SID02_VID07", "split"] == "unlabelled" and meta.loc["CID05_SID02_VID07", "label"] == -1
    assert meta.loc["CID09_SID09_VID09", "class_name"] == HRI30[29]  # listed but absent: fails at decoding
    assert not Path(meta.loc["CID09_SID09_VID09", "path"]).exists()
    assert meta.loc["CID02_SID03_VID02", ["cid", "sid", "vid"]].tolist() == [2, 3, 2]
    (tmp_path / "bad.csv").write_text("CID01_SID01_VID01,31\n")
    with pytest.raises(ZsarError, match="class id 31"):
        hri30_course_source(folder, tmp_path / "bad.csv")
    _touch(folder / "holiday.mp4")
    with pytest.raises(ZsarError, match="not named CIDxx_SIDxx_VIDxx"):
        hri30_course_source(folder, tmp_path / "labels.csv")


def test_unlabelled_videos_and_missing_dataset(tmp_path):
    for rel in ("a/clip.mp4", "b/clip.mp4", "c.avi"):
        _touch(tmp_path / "in" / rel)
    source = video_paths_source([tmp_path / "in"], class_names=["x", "y"])
    assert len(source) == 3 and (source.metadata["label"] == -1).all()
    assert source.metadata["sample_id"].is_unique and source.class_names == ["x", "y"]
    loose = open_video_dataset(tmp_path / "in" / "a")  # videos, no sub-folders: unlabelled, for inference
    assert loose.metadata[["sample_id", "label", "split"]].values.tolist() == [["clip", -1, "unlabelled"]]
    with pytest.raises(ZsarError, match="not found"):
        open_video_dataset(tmp_path / "nowhere")

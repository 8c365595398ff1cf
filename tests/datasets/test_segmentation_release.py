"""The standard segmentation feature release (features [D, T] .npy, groundTruth names, mapping.txt, split bundles)
on a miniature release written here: transposition, truncation, bundle names, labels, background, validation
split, and one clear error naming the file for every kind of bad input."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from zsar.datasets.segmentation_release import (
    default_length_tolerance,
    list_bundles,
    open_segmentation_release,
    read_mapping,
    segmentation_release_info,
)
from zsar.errors import ZsarError

D = 6
# mapping ids in scrambled order with a blank line: id -> name must come from the numbers, not the line order
MAPPING = "2 stir\n\n0 take\n3 background\n1 pour\n"
CLASSES = ["take", "pour", "stir", "background"]
# video -> (feature frames, label frames): truncation both ways, one exact, one off by one
VIDEOS = {"rgb-01-1": (30, 28), "rgb-02-1": (25, 27), "rgb-03-1": (32, 32), "rgb-04-1": (20, 21)}
BUNDLES = {
    "train.split1.bundle": "rgb-01-1.txt\nrgb-02-1.txt\nrgb-03-1.txt\n",
    "test.split1.bundle": "rgb-04-1.txt\n",
    "train.split2.bundle": "rgb-02-1.txt\r\nrgb-03-1\r\n\r\nrgb-04-1.txt\r\n",  # CRLF, a blank line, one without .txt
    "test.split2.bundle": "rgb-01-1.txt\n",
}


def _label_names(stem: str, t: int, classes=CLASSES) -> list[str]:
    """Runs of 1-5 frames cycling through the classes, different per video."""
    offset = sum(map(ord, stem))
    runs = np.random.default_rng(offset).integers(1, 6, size=t)
    names: list[str] = []
    for i, run in enumerate(runs):
        names += [classes[(i + offset) % len(classes)]] * int(run)
    return names[:t]


def write_release(root, videos=VIDEOS, mapping=MAPPING, classes=CLASSES, bundles=BUNDLES):
    for sub in ("features", "groundTruth", "splits"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "mapping.txt").write_text(mapping)
    for k, (stem, (t_feat, t_gt)) in enumerate(videos.items()):
        x = np.random.default_rng(k).standard_normal((D, t_feat)).astype(np.float32)
        np.save(root / "features" / f"{stem}.npy", x)
        newline = "\r\n" if stem == "rgb-03-1" else "\n"
        (root / "groundTruth" / f"{stem}.txt").write_bytes(
            (newline.join(_label_names(stem, t_gt, classes)) + newline).encode())
    for name, text in bundles.items():
        (root / "splits" / name).write_bytes(text.encode())
    return root


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path / "gtea")


def _gt(root, stem):
    return (root / "groundTruth" / f"{stem}.txt").read_text().splitlines()


def test_features_are_transposed_from_dims_by_frames(release):
    streams = open_segmentation_release(release).streams
    assert len(streams) == 4
    for stream in streams:
        raw = np.load(release / "features" / f"{stream.stream_id}.npy")
        assert raw.shape[0] == D and raw.shape[1] != D
        t = len(stream)
        assert stream.features.shape == (t, D)
        assert isinstance(stream.features, np.memmap)  # a view of the file, not a copy in memory
        np.testing.assert_array_equal(stream.features, raw.T[:t])
        assert stream.source == str(release / "features" / f"{stream.stream_id}.npy")


def test_lengths_are_truncated_to_the_shorter_of_features_and_labels(release):
    data = open_segmentation_release(release)
    lengths = {s.stream_id: (len(s.labels), s.features.shape[0]) for s in data.streams}
    assert lengths == {stem: (min(t), min(t)) for stem, t in VIDEOS.items()}
    assert data.provenance["truncated_videos"] == 3 and data.provenance["max_frames_dropped"] == 2


def test_labels_map_through_mapping_ids_not_line_order(release):
    data = open_segmentation_release(release)
    assert data.class_names == CLASSES
    for stream in data.streams:
        expected = [CLASSES.index(n) for n in _gt(release, stream.stream_id)][: len(stream)]
        np.testing.assert_array_equal(stream.labels, expected)
    assert set().union(*(s.classes() for s in data.streams)) == {0, 1, 2, 3}


def test_bundle_entries_lose_the_txt_suffix_and_give_the_split(release):
    assert list_bundles(release) == {
        1: {"train": ["rgb-01-1", "rgb-02-1", "rgb-03-1"], "test": ["rgb-04-1"]},
        2: {"train": ["rgb-02-1", "rgb-03-1", "rgb-04-1"], "test": ["rgb-01-1"]},
    }
    one = open_segmentation_release(release, split=1)
    two = open_segmentation_release(release, split=2)
    assert [(s.stream_id, s.split) for s in one.streams] == [
        ("rgb-01-1", "train"), ("rgb-02-1", "train"), ("rgb-03-1", "train"), ("rgb-04-1", "test")]
    assert {s.stream_id for s in two.split("train")} == {"rgb-02-1", "rgb-03-1", "rgb-04-1"}
    assert [s.stream_id for s in two.split("test")] == ["rgb-01-1"]


def test_stream_set_name_and_provenance(release):
    data = open_segmentation_release(release, split=2)
    assert data.name == "gtea" and open_segmentation_release(release, name="GTEA").name == "GTEA"
    expected = {"root": str(release), "split": 2, "background": ["background"], "validation_fraction": 0.0,
                "seed": 0, "feature_dim": D}
    assert {key: data.provenance[key] for key in expected} == expected
    assert data.frame_rate is None


def test_background_auto_explicit_and_none(release):
    auto = open_segmentation_release(release)
    assert auto.background == (3,) and auto.provenance["background"] == ["background"]
    assert open_segmentation_release(release, background=()).background == ()
    explicit = open_segmentation_release(release, background=["stir", "take"])
    assert explicit.background == (0, 2) and explicit.provenance["background"] == ["take", "stir"]
    assert open_segmentation_release(release, background="pour").background == (1,)
    with pytest.raises(ZsarError, match=r"'juggle' not in the mapping; known classes: take, pour, stir, background"
                       ) as info:
        open_segmentation_release(release, background=["take", "juggle"])
    assert info.value.path == release / "mapping.txt"


@pytest.mark.parametrize("classes, expected", [
    (["SIL", "pour", "stir", "take"], (0,)),  # Breakfast
    (["cut", "action_start", "mix", "action_end"], (1, 3)),  # 50Salads
    (["cut", "mix", "peel", "stir"], ()),  # none of the known names
])
def test_background_auto_detects_each_release_convention(tmp_path, classes, expected):
    mapping = "".join(f"{i} {n}\n" for i, n in enumerate(classes))
    root = write_release(tmp_path / "r", mapping=mapping, classes=classes)
    data = open_segmentation_release(root)
    assert data.background == expected
    assert data.provenance["background"] == [classes[i] for i in expected]
    assert segmentation_release_info(root)["background_auto"] == [classes[i] for i in expected]


def test_validation_fraction_is_seeded_and_stays_off_test(release):
    plain = open_segmentation_release(release)
    assert not plain.split("val")
    picks = {}
    for seed in range(12):
        data = open_segmentation_release(release, validation_fraction=0.34, seed=seed)
        val = [s.stream_id for s in data.split("val")]
        assert len(val) == 1 and len(data.split("train")) == 2
        assert set(val) <= {"rgb-01-1", "rgb-02-1", "rgb-03-1"}
        assert [s.stream_id for s in data.split("test")] == ["rgb-04-1"]
        assert data.provenance["validation_fraction"] == 0.34 and data.provenance["seed"] == seed
        picks[seed] = val[0]
    again = open_segmentation_release(release, validation_fraction=0.34, seed=5)
    assert [s.stream_id for s in again.split("val")] == [picks[5]]
    assert len(set(picks.values())) > 1  # the seed matters
    most = open_segmentation_release(release, validation_fraction=0.99)
    assert len(most.split("val")) == 2 and len(most.split("train")) == 1  # one train video always remains


def test_validation_fraction_is_checked(release):
    with pytest.raises(ZsarError, match=r"validation_fraction must be in \[0, 1\)"):
        open_segmentation_release(release, validation_fraction=1.0)
    (release / "splits" / "train.split1.bundle").write_text("rgb-01-1.txt\n")
    with pytest.raises(ZsarError, match="at least 2 train videos") as info:
        open_segmentation_release(release, validation_fraction=0.5)
    assert info.value.path == release / "splits" / "train.split1.bundle"


def test_read_mapping_any_order_and_blank_lines(tmp_path):
    path = tmp_path / "mapping.txt"
    path.write_text("\n1 pour milk\r\n0 SIL\n\n  \n2 take_cup\n")
    assert read_mapping(path) == ["SIL", "pour milk", "take_cup"]


@pytest.mark.parametrize("text, problem", [
    ("0 take\n1\n", r"line 2: expected \"<id> <name>\", got '1'"),
    ("0 take\nx pour\n", r"line 2: expected"),
    ("0 take\n\n0 pour\n", r"line 3: class id 0 repeats \(first on line 1\)"),
    ("0 take\n1 take\n", r"line 2: class name 'take' repeats"),
    ("0 take\n2 pour\n", r"ids must be 0\.\.1 with each once: \[1\] missing, \[2\] beyond \(line 2\)"),
    ("-1 take\n0 pour\n", r"line 1: class id -1 is negative"),
    ("\n\n", r"empty"),
])
def test_read_mapping_bad_lines_name_file_and_line(tmp_path, text, problem):
    path = tmp_path / "mapping.txt"
    path.write_text(text)
    with pytest.raises(ZsarError, match=problem) as info:
        read_mapping(path)
    assert info.value.path == path and str(info.value).startswith(str(path))


def test_release_info_is_a_cheap_summary(release):
    np.save(release / "features" / "extra.npy", np.zeros((D, 3), np.float32))
    (release / "groundTruth" / "rgb-02-1.txt").write_text("not a class\n")  # labels are not read
    info = segmentation_release_info(release)
    assert info["classes"] == CLASSES and info["num_classes"] == 4 and info["feature_dim"] == D
    assert info["videos"] == 4 and info["features_without_labels"] == ["extra"] and not info["labels_without_features"]
    assert info["splits"] == {1: {"train": 3, "test": 1}, 2: {"train": 3, "test": 1}}
    assert info["root"] == str(release)


def test_default_length_tolerance():
    assert default_length_tolerance(10, 10) == 2
    assert default_length_tolerance(95, 100) == 5 and default_length_tolerance(100, 94) == 5
    assert default_length_tolerance(2000, 1999) == 100


def test_length_tolerance_default_scales_and_can_be_set(tmp_path):
    root = write_release(tmp_path / "r", videos={"a": (100, 95), "b": (40, 41)},
                         bundles={"train.split1.bundle": "a.txt\n", "test.split1.bundle": "b.txt\n"})
    assert [len(s) for s in open_segmentation_release(root).streams] == [95, 40]
    with pytest.raises(ZsarError, match=r"100 frames but .*a\.txt has 95 labels \(more than 4 frames apart\)") as info:
        open_segmentation_release(root, max_length_mismatch=4)
    assert info.value.path == root / "features" / "a.npy"
    with pytest.raises(ZsarError, match="2 videos are unusable"):
        open_segmentation_release(root, max_length_mismatch=0)
    np.save(root / "features" / "a.npy", np.zeros((D, 90), np.float32))  # 5 apart: 5% of 95 rounded up, allowed
    assert [len(s) for s in open_segmentation_release(root).streams] == [90, 40]
    np.save(root / "features" / "a.npy", np.zeros((D, 89), np.float32))  # 6 apart
    with pytest.raises(ZsarError, match=r"89 frames but .*a\.txt has 95 labels \(more than 5 frames apart\)") as info:
        open_segmentation_release(root)
    assert info.value.path == root / "features" / "a.npy"
    with pytest.raises(ZsarError, match="max_length_mismatch"):
        open_segmentation_release(root, max_length_mismatch=-1)


def _save(rel, array):
    def mutate(root):
        np.save(root / rel, array, allow_pickle=True)
    return mutate


def _write(rel, text):
    def mutate(root):
        (root / rel).write_text(text)
    return mutate


def _remove(rel):
    def mutate(root):
        path = root / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return mutate


def _gt_line(stem, number, label):
    def mutate(root):
        lines = _gt(root, stem)
        lines[number - 1] = label
        (root / "groundTruth" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    return mutate


NAN = np.ones((D, 28), np.float32)
NAN[2, 7] = np.nan

BAD_INPUTS = {
    "length beyond tolerance": (_save("features/rgb-02-1.npy", np.zeros((D, 15), np.float32)), {},
                                "features/rgb-02-1.npy", r"15 frames but .*groundTruth/rgb-02-1\.txt has 27 labels"),
    "label not in mapping": (_gt_line("rgb-03-1", 5, "juggle"), {},
                             "groundTruth/rgb-03-1.txt", r"label 'juggle' on line 5 is not in mapping\.txt"),
    "blank label line": (_gt_line("rgb-03-1", 2, ""), {},
                         "groundTruth/rgb-03-1.txt", r"label '' \(a blank line\) on line 2"),
    "empty label file": (_write("groundTruth/rgb-01-1.txt", ""), {},
                         "groundTruth/rgb-01-1.txt", "empty label file: zero frames"),
    "label file of blank lines": (_write("groundTruth/rgb-01-1.txt", "\n\n"), {},
                                  "groundTruth/rgb-01-1.txt", "empty label file"),
    "zero feature frames": (_save("features/rgb-04-1.npy", np.zeros((D, 0), np.float32)), {},
                            "features/rgb-04-1.npy", r"empty: shape \(6, 0\)"),
    "bundle names a missing video": (_write("splits/test.split1.bundle", "rgb-04-1.txt\nghost.txt\n"), {},
                                     "splits/test.split1.bundle",
                                     r"names video 'ghost' but .*features/ghost\.npy and .*groundTruth/ghost\.txt "
                                     r"are missing"),
    "bundle video without features": (_remove("features/rgb-02-1.npy"), {"split": 2}, "splits/train.split2.bundle",
                                      r"names video 'rgb-02-1' but .*features/rgb-02-1\.npy is missing"),
    "3-D features": (_save("features/rgb-01-1.npy", np.zeros((D, 28, 1), np.float32)), {},
                     "features/rgb-01-1.npy", r"must be 2-D \[D, T\], got shape \(6, 28, 1\)"),
    "1-D features": (_save("features/rgb-01-1.npy", np.zeros(28, np.float32)), {},
                     "features/rgb-01-1.npy", r"must be 2-D"),
    "not an npy file": (_write("features/rgb-03-1.npy", "garbage"), {}, "features/rgb-03-1.npy", "cannot read"),
    "pickled object array": (_save("features/rgb-03-1.npy", np.array([None] * 32, dtype=object).reshape(1, 32)), {},
                             "features/rgb-03-1.npy", "cannot read"),
    "text features": (_save("features/rgb-03-1.npy", np.full((D, 32), "a")), {},
                      "features/rgb-03-1.npy", "must be numbers"),
    "other feature dimension": (_save("features/rgb-03-1.npy", np.zeros((D - 1, 32), np.float32)), {},
                                "features/rgb-03-1.npy", r"D = 5 but rgb-01-1\.npy has D = 6"),
    "non-finite features": (_save("features/rgb-01-1.npy", NAN), {}, "features/rgb-01-1.npy", "1 non-finite values"),
    "no features folder": (_remove("features"), {}, "features", "features folder not found"),
    "no groundTruth folder": (_remove("groundTruth"), {}, "groundTruth", "groundTruth folder not found"),
    "no splits folder": (_remove("splits"), {}, "splits", "splits folder not found"),
    "no mapping": (_remove("mapping.txt"), {}, "mapping.txt", "file not found"),
    "no bundles for the split": (lambda root: None, {"split": 3}, "splits",
                                 r"no bundles for split 3; available splits: 1, 2"),
    "no bundles at all": (lambda root: [p.unlink() for p in (root / "splits").iterdir()], {}, "splits",
                          r"no bundles: expected train\.split<k>\.bundle"),
    "half a split": (_remove("splits/test.split1.bundle"), {}, "splits/test.split1.bundle",
                     "split 1 has a train bundle but no test bundle"),
    "video in train and test": (_write("splits/train.split1.bundle", "rgb-01-1.txt\nrgb-04-1.txt\n"), {},
                                "splits/train.split1.bundle", r"1 videos are in both the train and the test bundle"),
    "repeated bundle entry": (_write("splits/train.split1.bundle", "rgb-01-1.txt\nrgb-02-1\nrgb-01-1.txt\n"), {},
                              "splits/train.split1.bundle", r"line 3: video 'rgb-01-1' repeats \(first on line 1\)"),
    "bundle entry leaves the folder": (_write("splits/test.split1.bundle", "../../etc/passwd.txt\n"), {},
                                       "splits/test.split1.bundle", r"line 1: .* is not a video file name"),
    "bad mapping line": (_write("mapping.txt", "0 take\n1 pour\nstir\n"), {}, "mapping.txt", "line 3: expected"),
    "root is missing": (lambda root: shutil.rmtree(root), {}, "", "segmentation release folder not found"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_naming_the_file(release, case):
    mutate, kwargs, rel, problem = BAD_INPUTS[case]
    mutate(release)
    expected = release / rel if rel else release
    with pytest.raises(ZsarError) as info:
        open_segmentation_release(release, **kwargs)
    message = str(info.value)
    assert info.value.path == expected, message
    assert message.startswith(f"{expected}: "), message
    assert re.search(problem, message), message


def test_split_with_a_missing_half_does_not_block_the_others(release):
    (release / "splits" / "test.split2.bundle").unlink()
    assert len(open_segmentation_release(release, split=1)) == 4
    with pytest.raises(ZsarError, match="split 2 has a train bundle but no test bundle") as info:
        list_bundles(release)
    assert info.value.path == release / "splits" / "test.split2.bundle"


def test_every_bad_video_is_reported_at_once(release):
    _gt_line("rgb-01-1", 3, "juggle")(release)
    np.save(release / "features" / "rgb-04-1.npy", np.zeros((D, 5), np.float32))
    with pytest.raises(ZsarError, match=r"^\S+: 2 videos are unusable: ") as info:
        open_segmentation_release(release)
    message = str(info.value)
    assert info.value.path == release
    assert f"{release / 'groundTruth' / 'rgb-01-1.txt'}: label 'juggle' on line 3" in message
    assert f"{release / 'features' / 'rgb-04-1.npy'}: features have 5 frames" in message
    assert "rgb-02-1" not in message and "; and" not in message


def test_many_bad_videos_are_listed_with_a_count(tmp_path):
    videos = {f"v{i:02d}": (10, 10) for i in range(14)}
    root = write_release(tmp_path / "r", videos=videos, bundles={
        "train.split1.bundle": "".join(f"{v}.txt\n" for v in list(videos)[:13]), "test.split1.bundle": "v13.txt\n"})
    assert len(open_segmentation_release(root)) == 14
    for stem in list(videos)[1:]:
        (root / "groundTruth" / f"{stem}.txt").write_text("")
    with pytest.raises(ZsarError, match=r"13 videos are unusable: .*; and 3 more$") as info:
        open_segmentation_release(root)
    assert str(info.value).count("empty label file") == 10
    assert "v01.txt" in str(info.value) and "v13.txt" not in str(info.value)


def test_bundles_naming_missing_videos_are_all_reported(release):
    (release / "splits" / "train.split1.bundle").write_text("rgb-01-1.txt\nghost1.txt\nrgb-02-1\n")
    (release / "splits" / "test.split1.bundle").write_text("ghost2.txt\n")
    with pytest.raises(ZsarError, match="2 bundle entries are unusable") as info:
        open_segmentation_release(release)
    message = str(info.value)
    assert f"{release / 'splits' / 'train.split1.bundle'}: names video 'ghost1'" in message
    assert f"{release / 'splits' / 'test.split1.bundle'}: names video 'ghost2'" in message

"""Untrusted files: hostile pickles and checkpoints never run their payload without --trust-pickle, and loaders
turn any damage in one file into a clear error naming it (a fixed-seed fuzz of each loader)."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from zsar.datasets.ntu_skeleton import read_ntu_skeleton, write_ntu_skeleton
from zsar.datasets.nw_ucla import nw_ucla_source, read_nw_ucla_json
from zsar.datasets.pose_pickle import pose_pickle_source, read_pose_pickle
from zsar.errors import ZsarError
from zsar.extract.checkpoint_file import read_checkpoint

UCLA_SAMPLE = "a01_s01_e00_v01"


class Payload:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _annotations(shared, extra=None) -> dict:
    kp = read_nw_ucla_json(shared / "datasets" / "nw-ucla" / "all_sqe" / f"{UCLA_SAMPLE}.json")
    ann = {"frame_dir": UCLA_SAMPLE, "label": 0, "keypoint": kp, "total_frames": kp.shape[1]}
    if extra is not None:
        ann["note"] = extra
    return {"split": {"xview_train": [UCLA_SAMPLE]}, "annotations": [ann]}


def test_hostile_pose_pickle_is_refused_unless_trusted(tmp_path, shared):
    marker = tmp_path / "pwned"
    path = tmp_path / "poses.pkl"
    path.write_bytes(pickle.dumps(_annotations(shared, Payload(marker))))
    with pytest.raises(ZsarError, match=r"refused global posix\.mkdir.*--trust-pickle") as info:
        pose_pickle_source(path, class_names="nw_ucla")
    assert info.value.path == path and not marker.exists()
    source = pose_pickle_source(path, class_names="nw_ucla", trust_pickle=True)
    assert marker.exists() and source.provenance == {"trust_pickle": True}


def test_plain_pose_pickles_load_without_trust(tmp_path, shared):
    path = tmp_path / "poses.pkl"
    data = _annotations(shared)
    data["annotations"][0]["img_shape"] = (1080, 1920)
    data["annotations"][0]["score"] = np.float32(0.5)
    for protocol in (2, 4, 5):
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        loaded = read_pose_pickle(path)
        np.testing.assert_array_equal(loaded["annotations"][0]["keypoint"], data["annotations"][0]["keypoint"])


def test_trusted_pickle_is_recorded_in_the_cache_header(tmp_path, shared):
    from zsar.extract.skeleton import extract_skeleton_stats
    from zsar.features import FeatureCache

    path = tmp_path / "poses.pkl"
    path.write_bytes(pickle.dumps(_annotations(shared)))
    trusted = extract_skeleton_stats(pose_pickle_source(path, class_names="nw_ucla", trust_pickle=True),
                                     tmp_path / "t.h5", progress=False)
    plain = extract_skeleton_stats(pose_pickle_source(path, class_names="nw_ucla"), tmp_path / "p.h5", progress=False)
    assert FeatureCache(trusted).header.preprocessing["trust_pickle"] is True
    assert "trust_pickle" not in FeatureCache(plain).header.preprocessing


def test_hostile_checkpoint_is_refused_unless_trusted(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "meta": {"x": Payload(marker)}}, path)
    with pytest.raises(ZsarError, match="not plain data.*--trust-pickle") as info:
        read_checkpoint(path)
    assert info.value.path == path and not marker.exists()
    state, _ = read_checkpoint(path, trust_pickle=True)
    assert marker.exists() and set(state) == {"w"}


def test_checkpoints_with_numpy_meta_load_safely_and_a_message_hub_needs_trust(tmp_path):
    meta = {"seed": np.int64(3), "best": np.float64(0.5), "rng": np.random.RandomState(0).get_state(),
            "classes": ("a", "b")}
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": meta}, path)
    state, loaded = read_checkpoint(path)
    assert torch.equal(state["w"], torch.ones(2)) and loaded["seed"] == 3
    np.testing.assert_array_equal(loaded["rng"][1], meta["rng"][1])
    history = pytest.importorskip("mmengine.logging.history_buffer")
    buffer = history.HistoryBuffer()
    buffer.update(1.5)  # pickles through builtins.getattr: not plain data
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": meta, "message_hub": {"loss": buffer}}, path)
    with pytest.raises(ZsarError, match=r"\(Unsupported global: GLOBAL mmengine\.logging\.history_buffer\.History"):
        read_checkpoint(path)
    assert torch.equal(read_checkpoint(path, trust_pickle=True)[0]["w"], torch.ones(2))


# -- fuzzing: any mutated file loads as valid keypoints or fails with a ZsarError naming it ------------------------
def _mutations(text: bytes, rng: np.random.Generator, count: int) -> list[bytes]:
    structural = [b"", b"{}", b"[]", b"null", b'{"skeletons": 1}', b'{"skeletons": [[["a", "b", "c"]]]}',
                  b'{"skeletons": [[[1, 2]] * 20]}'.replace(b" * 20", b""), b'{"skeletons": "' + b"x" * 100 + b'"}',
                  b'{"skeletons": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b'{"skeletons": [[[1e999, 0, 0]]]}',
                  b'{"skeletons": [[[NaN, 0, 0]]]}', json.dumps({"skeletons": [[[1, 2]] * 20]}).encode(),
                  json.dumps({"skeletons": [[[0, 0, 0]] * 20], "label": "one"}).encode(),
                  json.dumps({"skeletons": [[[[0, 0, 0]]] * 20]}).encode(), b"\xff\xfe\x00garbage"]
    out = [text, *structural]
    for _ in range(count):
        data = bytearray(text)
        kind = rng.integers(0, 4)
        if kind == 0:  # flip bytes
            for position in rng.integers(0, len(data), rng.integers(1, 8)):
                data[position] = rng.integers(0, 256)
        elif kind == 1:  # truncate
            data = data[: rng.integers(0, len(data))]
        elif kind == 2:  # duplicate a slice somewhere
            a, b = sorted(rng.integers(0, len(data), 2))
            at = rng.integers(0, len(data))
            data = data[:at] + data[a:b] + data[at:]
        else:  # replace a digit run by a special token
            at = rng.integers(0, len(data))
            data = data[:at] + rng.choice([b"-1e400", b"nan", b"[", b"]", b'"', b"true", b"{}"]) + data[at:]
        out.append(bytes(data))
    return out


def _valid_keypoints(kp: np.ndarray, joints: int) -> bool:
    return (kp.dtype == np.float32 and kp.ndim == 4 and kp.shape[1] >= 1 and kp.shape[2] == joints
            and np.isfinite(kp).all())


def test_nw_ucla_loader_fuzz(tmp_path, shared):
    original = (shared / "datasets" / "nw-ucla" / "all_sqe" / f"{UCLA_SAMPLE}.json").read_bytes()
    path = tmp_path / f"{UCLA_SAMPLE}.json"
    outcomes = {"ok": 0, "error": 0}
    for data in _mutations(original, np.random.default_rng(0), 400):
        path.write_bytes(data)
        try:
            assert _valid_keypoints(read_nw_ucla_json(path), 20)
            outcomes["ok"] += 1
        except ZsarError as exc:
            assert exc.path == path
            outcomes["error"] += 1
    assert outcomes["error"] > 200 and outcomes["ok"] >= 1


def test_ntu_loader_fuzz(tmp_path):
    rng = np.random.default_rng(1)
    good = write_ntu_skeleton(tmp_path / "S001C001P001R001A001.skeleton",
                              rng.normal(size=(2, 12, 25, 3)).astype(np.float32)).read_bytes()
    path = tmp_path / "S001C001P001R001A002.skeleton"
    errors = 0
    for data in _mutations(good, rng, 300):
        path.write_bytes(data)
        try:
            assert _valid_keypoints(read_ntu_skeleton(path), 25)
        except ZsarError as exc:
            assert exc.path == path
            errors += 1
    assert errors > 100


def test_pose_pickle_fuzz(tmp_path, shared):
    good = pickle.dumps(_annotations(shared), protocol=4)
    path = tmp_path / "poses.pkl"
    errors = 0
    for data in _mutations(good, np.random.default_rng(2), 300):
        path.write_bytes(data)
        try:
            source = pose_pickle_source(path, class_names="nw_ucla")
            for row in range(len(source)):
                try:
                    assert _valid_keypoints(source.load(row), 20)
                except ZsarError:
                    errors += 1
        except ZsarError as exc:
            assert exc.path == path
            errors += 1
    assert errors > 100


def test_one_bad_file_is_one_failed_row_in_an_extraction(tmp_path, shared):
    """Mutated files beside real ones: every real sample is ok, every broken one a failed row naming its file."""
    from zsar.extract.skeleton import extract_skeleton_stats
    from zsar.features import FeatureCache

    folder = shared / "datasets" / "nw-ucla" / "all_sqe"
    real = ["a01_s01_e00_v01", "a02_s01_e00_v01", "a03_s01_e00_v02"]
    for name in real:
        (tmp_path / f"{name}.json").write_text((folder / f"{name}.json").read_text())
    broken = {"a04_s01_e00_v01": b'{"skeletons": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
              "a05_s01_e00_v01": json.dumps({"skeletons": [[[1, 2]] * 20]}).encode(),
              "a06_s01_e00_v01": b"\x00\x01 not json", "a99_s01_e00_v01": b"{}"}
    for name, data in broken.items():
        (tmp_path / f"{name}.json").write_bytes(data)
    cache = FeatureCache(extract_skeleton_stats(nw_ucla_source(tmp_path), tmp_path / "c.h5", progress=False))
    table = cache.metadata.set_index("sample_id")
    assert (table.loc[real, "status"] == "ok").all()
    assert (table.loc[list(broken), "status"] == "failed").all()
    for name in broken:
        assert f"{name}.json" in table.loc[name, "error"]


def test_a_sample_whose_features_are_not_finite_is_a_failed_row(tmp_path, shared):
    """It loads and encodes, but its embedding cannot be stored: that sample fails, not its batch or the run."""
    from zsar.extract.skeleton import BatchEncoder, extract_skeleton, stats_encoder
    from zsar.extract.skeleton_stats import SkeletonStatsEncoder
    from zsar.features import FeatureCache

    folder = shared / "datasets" / "nw-ucla" / "all_sqe"
    for name in ("a01_s01_e00_v01", "a02_s01_e00_v01", "a03_s01_e00_v02"):
        (tmp_path / f"{name}.json").write_text((folder / f"{name}.json").read_text())
    source = nw_ucla_source(tmp_path)
    base = stats_encoder(source, SkeletonStatsEncoder())
    poisoned = BatchEncoder(base.header, prepare=lambda row, kp: (row, base.prepare(row, kp)),
                            encode=lambda items: (np.stack([v + np.inf if row == 1 else v for row, v in items]),
                                                  None, None))
    cache = FeatureCache(extract_skeleton(source, tmp_path / "c.h5", poisoned, batch_size=3, progress=False))
    assert cache.metadata["status"].tolist() == ["ok", "failed", "ok"]
    assert "NaN or inf embeddings" in cache.metadata["error"][1]

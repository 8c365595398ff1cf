from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def text_encoder():
    from zsar.extract.text import TextEncoder

    return TextEncoder()


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory) -> Path:
    """The demo's synthetic data encoded with skeleton statistics (small: 6 subjects x 3 repetitions)."""
    from zsar.datasets.synthetic import SyntheticConfig, synthetic_source
    from zsar.extract.skeleton import extract_skeleton_stats

    source = synthetic_source(SyntheticConfig(num_subjects=6, repetitions=3, test_subjects=2))
    return extract_skeleton_stats(source, tmp_path_factory.mktemp("syn") / "cache.h5", progress=False)


# A small ST-GCN (4 stages, 16 -> 32 channels) so that training tests take seconds on a CPU.
TINY_STGCN = '''
model = dict(
    type="RecognizerGCN",
    backbone=dict(type="STGCN", graph_cfg=dict(layout="nturgb+d", mode="stgcn_spatial"), base_channels=16,
                  num_stages=4, inflate_stages=[3], down_stages=[3]),
    cls_head=dict(type="GCNHead", num_classes=60, in_channels=32))
val_pipeline = [
    dict(type="PreNormalize3D"),
    dict(type="GenSkeFeat", dataset="nturgb+d", feats=["j"]),
    dict(type="UniformSampleFrames", clip_len=16, num_clips=1, test_mode=True),
    dict(type="PoseDecode"),
    dict(type="FormatGCNInput", num_person=2),
    dict(type="PackActionInputs"),
]
'''


@pytest.fixture(scope="session")
def tiny_stgcn_config(tmp_path_factory) -> Path:
    pytest.importorskip("mmaction")
    path = tmp_path_factory.mktemp("cfg") / "tiny_stgcn.py"
    path.write_text(TINY_STGCN)
    return path


@pytest.fixture(scope="session")
def ucla_small(shared):
    """60 real NW-UCLA samples: per class 4 from the training views and 2 from the test view."""
    from zsar.datasets.nw_ucla import nw_ucla_source

    source = nw_ucla_source(shared / "datasets" / "nw-ucla" / "all_sqe")
    meta = source.metadata
    rows = []
    for label in range(10):
        for split, count in (("train", 4), ("test", 2)):
            rows += meta.index[(meta["label"] == label) & (meta["split"] == split)][:count].tolist()
    return source.subset(rows)


TINY_VIDEO_CONFIG = Path(__file__).resolve().parent / "extract" / "data" / "tiny_slowonly.py"
REAL_VIDEOS = ("activitynet_v_GGSY1Qvo990.mp4", "mmaction2_demo.mp4", "ntu_S001C001P001R001A001_rgb.avi",
               "pyskl_ntu_sample.avi")


@pytest.fixture(scope="session")
def videos(shared) -> Path:
    """The real clips (H.264 AVI / MP4, up to 1080p) in ../shared/datasets/videos."""
    folder = shared / "datasets" / "videos"
    if not all((folder / name).is_file() for name in REAL_VIDEOS):
        pytest.skip("the real video clips are not in ../shared/datasets/videos")
    return folder


@pytest.fixture(scope="session")
def video_folder(videos, tmp_path_factory) -> Path:
    """Class folders of the real clips plus broken files: a zero-byte file, a truncated MP4 and a text file named
    .mp4 (each a failed row, never a stopped run)."""
    root = tmp_path_factory.mktemp("video_folder")
    (root / "drink").mkdir()
    (root / "street").mkdir()
    for name in REAL_VIDEOS[2:]:
        (root / "drink" / name).symlink_to(videos / name)
    for name in REAL_VIDEOS[:2]:
        (root / "street" / name).symlink_to(videos / name)
    (root / "street" / "empty.mp4").write_bytes(b"")
    (root / "street" / "not_a_video.mp4").write_text("this is not a video\n")
    data = (videos / "mmaction2_demo.mp4").read_bytes()
    (root / "drink" / "truncated.mp4").write_bytes(data[: len(data) * 4 // 10])
    return root

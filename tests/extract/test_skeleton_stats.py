from __future__ import annotations

import json

import numpy as np
import pytest

from zsar.datasets.synthetic import SyntheticConfig, synthetic_source
from zsar.errors import ZsarError
from zsar.extract.skeleton_stats import SkeletonStatsConfig, SkeletonStatsEncoder


@pytest.fixture(scope="module")
def sample():
    return synthetic_source(SyntheticConfig(num_subjects=2, repetitions=1, test_subjects=1)).load(0)


def test_dimension_and_finite(sample):
    enc = SkeletonStatsEncoder()
    out = enc.encode(sample)
    assert out.shape == (enc.dim(3),) == (366,) and np.isfinite(out).all()


def test_invariant_to_position_size_and_facing(sample):
    enc = SkeletonStatsEncoder()
    base = enc.encode(sample)
    angle = np.radians(40)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    moved = (sample @ rot.T) * 1.3 + np.array([0.5, 0.1, 1.0])
    np.testing.assert_allclose(enc.encode(moved)[:-6], base[:-6], atol=1e-4)


def test_two_bodies_average_and_empty_body_ignored(sample):
    enc = SkeletonStatsEncoder()
    two = np.concatenate([sample, np.zeros_like(sample)], axis=0)
    np.testing.assert_allclose(enc.encode(two), enc.encode(sample), atol=1e-6)


def test_bad_input_errors(sample):
    enc = SkeletonStatsEncoder()
    bad = sample.copy()
    bad[0, 3, 4, 1] = np.nan
    with pytest.raises(ZsarError, match="NaN"):
        enc.encode(bad)
    with pytest.raises(ZsarError, match="zero frames"):
        enc.encode(sample[:, :0])
    with pytest.raises(ZsarError, match="25 joints"):
        enc.encode(np.zeros((1, 10, 25, 3)) + 1)
    with pytest.raises(ZsarError, match="no body"):
        enc.encode(np.zeros_like(sample))


def test_real_nw_ucla_sequences_including_anomalies(shared):
    enc = SkeletonStatsEncoder(SkeletonStatsConfig(layout="kinect_v1_20"))
    folder = shared / "datasets" / "nw-ucla" / "all_sqe"
    # a normal file, the one-frame sample, and one with a frame of zero joints
    for name in ("a01_s01_e00_v01", "a02_s09_e04_v02", "a04_s01_e01_v01"):
        x = np.asarray(json.loads((folder / f"{name}.json").read_text())["skeletons"], dtype=np.float32)
        out = enc.encode(x[None])
        assert np.isfinite(out).all() and out.shape == (366,)


def test_extraction_without_an_encoder_uses_the_sources_joint_layout(tmp_path):
    """A 17-joint COCO source: the default statistics encoder takes the source's layout, so no row fails."""
    import pandas as pd

    from zsar.datasets.source import SampleSource
    from zsar.extract.skeleton import extract_skeleton_stats
    from zsar.features.reader import FeatureCache

    rng = np.random.default_rng(0)
    data = [rng.normal(size=(1, 12, 17, 2)).astype(np.float32) for _ in range(3)]
    meta = pd.DataFrame({"sample_id": ["a", "b", "c"], "label": [0, 1, 0], "split": ["train", "train", "test"],
                         "source": ["a", "b", "c"]})
    source = SampleSource("coco", ["x", "y"], meta, lambda i: data[i], layout="coco_17")
    cache = FeatureCache(extract_skeleton_stats(source, tmp_path / "c.h5", progress=False))
    assert (cache.metadata["status"] == "ok").all()
    assert cache.header.encoder_config["layout"] == "coco_17"

from __future__ import annotations

import numpy as np

from zsar.datasets.layouts import KINECT_V1_20, NTU_25
from zsar.datasets.synthetic import SyntheticConfig, synthetic_class_names, synthetic_source


def test_deterministic_and_shaped():
    config = SyntheticConfig(num_subjects=3, repetitions=2, test_subjects=1, seed=4)
    a, b = synthetic_source(config), synthetic_source(config)
    np.testing.assert_array_equal(a.load(5), b.load(5))
    x = a.load(0)
    assert x.ndim == 4 and x.shape[0] == 1 and x.shape[2] == 20 and x.shape[3] == 3
    assert len(a) == len(synthetic_class_names()) * 3 * 2
    assert set(a.metadata["split"]) == {"train", "test"}
    assert a.metadata[a.metadata.subject == 3]["split"].eq("test").all()
    ntu = synthetic_source(SyntheticConfig(joints=25, num_subjects=2, repetitions=1, test_subjects=1))
    assert ntu.load(0).shape[2] == 25


def test_layout_trees_are_consistent():
    for layout in (KINECT_V1_20, NTU_25):
        assert len(layout.parents) == layout.num_joints
        assert len(layout.bones) == layout.num_joints - 1
        assert set(layout.descendants(layout.root)) == set(range(layout.num_joints))

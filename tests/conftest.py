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

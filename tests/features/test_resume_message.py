"""A resume refused for another encoder config says which settings differ, not two hashes."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from zsar.errors import ZsarError
from zsar.features import CacheHeader, CacheWriter, write_cache
from zsar.features.schema import config_differences, identity_difference

CLASSES = ("a", "b")
CONFIG = {"model": {"backbone": {"depth": 4, "channels": 16}, "head": "linear"}, "clip_len": 32, "feats": ["j"]}


def header(config: dict, **kw) -> CacheHeader:
    base = dict(dataset="toy", modality="skeleton", encoder="enc", embedding_dim=4, class_names=CLASSES)
    return CacheHeader(**{**base, **kw}, encoder_config=config)


def table(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "label": np.arange(n) % 2,
                         "split": ["train"] * n, "source": "gen"})


def changed(**settings) -> dict:
    """CONFIG with dotted keys set (None: removed)."""
    out = {"model": {"backbone": dict(CONFIG["model"]["backbone"]), "head": "linear"}, "clip_len": 32, "feats": ["j"]}
    for dotted, value in settings.items():
        *path, last = dotted.split("__")
        node = out
        for key in path:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return out


def test_a_refused_resume_names_the_nested_settings_that_differ(tmp_path):
    path = tmp_path / "c.h5"
    writer = CacheWriter(path, header(CONFIG), table())
    writer.write([0], np.zeros((1, 4), np.float32))
    writer.close()
    new = changed(model__backbone__depth=8, clip_len=None, frames=64)
    with pytest.raises(ZsarError) as info:
        CacheWriter(path, header(new), table())
    message = str(info.value)
    assert "refusing to resume" in message
    assert "model.backbone.depth: 4 != 8" in message
    assert "clip_len: 32 != (absent)" in message and "frames: (absent) != 64" in message
    assert "channels" not in message and "model.head" not in message  # the same settings are not listed
    assert not re.search(r"[0-9a-f]{64}", message)  # no hashes


def test_a_finished_cache_of_another_config_names_the_setting(tmp_path):
    path = write_cache(tmp_path / "c.h5", header(CONFIG), table(), np.zeros((6, 4), np.float32))
    with pytest.raises(ZsarError, match=r"another encoder or config \(encoder config \(config_hash\) differs: "
                                        r"feats: \['j'\] != \['j', 'b'\]\)"):
        CacheWriter(path, header(changed(feats=["j", "b"])), table())


def test_at_most_five_differences_are_shown_then_a_count():
    old = {f"k{i}": i for i in range(8)}
    new = {f"k{i}": i + 1 for i in range(8)}
    assert config_differences(old, new) == [f"k{i}: {i} != {i + 1}" for i in range(5)] + ["and 3 more"]
    assert config_differences(CONFIG, changed()) == []
    # compared as the hash sees them: a tuple and the list it is stored as are the same setting
    assert config_differences({"feats": ("j",)}, {"feats": ["j"]}) == []
    assert config_differences({"long": "x" * 200}, {"long": "y"})[0].startswith("long: 'xxx")
    assert len(config_differences({"long": "x" * 200}, {"long": "y"})[0]) < 90


def test_other_identity_fields_still_read_as_values():
    assert identity_difference(header(CONFIG), header(CONFIG, embedding_dim=8)) == ["embedding_dim: 4 != 8"]
    assert identity_difference(header(CONFIG), header(CONFIG)) == []

"""`check_experiment` finds every config problem at once, before any heavy import or any work."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from zsar.errors import ZsarError
from zsar.experiment.check import check_experiment
from zsar.experiment.config import config_from_dict
from zsar.features import CacheHeader, write_cache
from zsar.heads.base import type_problem

GOOD = {"name": "x", "data": {"source": "synthetic"}, "splits": {"random_unseen": 4, "random_seeds": [1, 2]},
        "heads": [{"name": "nearest_prototype"}, {"name": "sadvae", "params": {"epochs": 3}}], "seeds": [0, 1, 2]}


def _problems(data: dict, base_dir: str = ".") -> list[str]:
    with pytest.raises(ZsarError) as info:
        check_experiment(config_from_dict(data, base_dir=base_dir))
    return info.value.problem.splitlines()[1:]


def test_a_good_config_says_what_will_run():
    check = check_experiment(config_from_dict(GOOD))
    assert (check.num_classes, check.splits, check.runs) == (16, 2, 2 * 2 * 3)


def test_every_problem_is_listed_at_once(tmp_path):
    bad = {**GOOD, "text": {"variant": "poem", "descriptions": "missing.json"},
           "splits": {"names": ["ntu60/55-5", "nope"], "random_unseen": 4, "random_seeds": [1]},
           "heads": [{"name": "linear_projecton"},
                     {"name": "sadvae", "params": {"epochs": "10"}},
                     {"name": "dual_head", "params": {"lattent": 3}},
                     {"name": "linear_projection", "search": {"temperature": [0.1, True], "wd": [1]}}],
           "evaluate": {"device": "gpu", "threads": -1, "search_backend": "annoy"}}
    problems = _problems(bad, str(tmp_path))
    expected = ["unknown head 'linear_projecton'", "epochs: expected int | None, got str ('10')",
                "unknown parameters ['lattent']", "temperature: expected float, got a boolean (True)",
                "search: unknown parameter 'wd'", "[text] variant = 'poem'", "missing.json does not exist",
                "[evaluate] device = 'gpu'", "[evaluate] threads = -1", "[evaluate] search_backend = 'annoy'",
                "is for 60 classes but the data has 16", "'nope' is neither a built-in split"]
    for text in expected:
        assert sum(text in p for p in problems) == 1, (text, problems)
    assert len(problems) == len(expected)


def test_cache_splits_and_classes_are_checked_against_the_cache(tmp_path):
    meta = pd.DataFrame({"sample_id": [f"s{i}" for i in range(8)], "label": [0, 1, 2, 3] * 2,
                         "class_name": [f"c{i}" for i in [0, 1, 2, 3] * 2], "split": ["train"] * 4 + ["tst"] * 4,
                         "source": "t"})
    header = CacheHeader(dataset="t", modality="skeleton", encoder="e", embedding_dim=3,
                         class_names=tuple(f"c{i}" for i in range(4)))
    write_cache(tmp_path / "c.h5", header, meta, np.ones((8, 3), np.float32))
    data = {**GOOD, "data": {"source": "cache", "cache": "c.h5"}, "splits": {"random_unseen": 4, "random_seeds": [1]}}
    problems = _problems(data, str(tmp_path))
    assert any("test_split = 'test': the cache" in p and "['train', 'tst']" in p for p in problems)
    assert any("random_unseen = 4 does not fit 4 classes" in p for p in problems)


def test_types_of_values():
    assert type_problem("int", 3) is None and type_problem("float", 3) is None
    assert type_problem("int | None", None) is None and type_problem("list | None", [1]) is None
    assert "boolean" in type_problem("int", True) and "got str" in type_problem("float", "1e-3")
    assert type_problem("SomethingElse", object()) is None


def test_check_imports_no_torch_and_a_config_error_comes_before_it(tmp_path):
    """The check and the CLI's config errors run without importing torch (the slow part of start-up)."""
    code = ("import sys; from zsar.experiment.check import check_experiment; "
            "from zsar.experiment.config import config_from_dict; "
            f"check_experiment(config_from_dict({GOOD!r})); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_given_prototype_file_must_hold_the_variant(tmp_path):
    from zsar.features.prototypes import ClassPrototypes, save_prototypes

    vectors = np.eye(16, 8, dtype=np.float32) + 0.1
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    save_prototypes(tmp_path / "p.h5", [ClassPrototypes(np.arange(16), [f"c{i}" for i in range(16)], vectors,
                                                        "lb", [[f"c{i}"] for i in range(16)], "m")])
    ok = {**GOOD, "text": {"prototypes": "p.h5", "variant": "lb"}}
    assert check_experiment(config_from_dict(ok, base_dir=str(tmp_path))).runs == 12
    problems = _problems({**GOOD, "text": {"prototypes": "p.h5", "variant": "chat"}}, str(tmp_path))
    assert len(problems) == 1 and "[text] prototypes" in problems[0] and "chat" in problems[0]


def test_text_settings_are_checked(tmp_path):
    (tmp_path / "bad.toml").write_text('format = "zsar-class-text/1"\n[[class]]\nid = 0\n', encoding="utf-8")
    problems = _problems({**GOOD, "text": {"variant": ["prompts", "poem", "ensemble"],
                                           "ensemble": {"motion": -1}, "class_text": "bad.toml"}},
                         base_dir=str(tmp_path))
    text = "\n".join(problems)
    assert "'poem'" in text and "[text] ensemble" in text and "bad.toml" in text and "`name` is missing" in text
    assert "[text] variant" in _problems({**GOOD, "text": {"variant": ["motion", "motion"]}})[0]
    assert "[text] variant" in _problems({**GOOD, "text": {"variant": 3}})[0]
    assert "not among the variants" in _problems({**GOOD, "text": {"ensemble": {"motion": 1.0}}})[0]
    heads = [{"name": "linear_projection", "params": {"text_views": "augment"}}]
    assert "needs [text] variant 'ensemble'" in _problems({**GOOD, "heads": heads})[0]
    ok = check_experiment(config_from_dict({**GOOD, "text": {"variant": ["prompts", "motion", "ensemble"]}}))
    assert ok.runs == 2 * 2 * 3


def test_head_presets_are_checked_with_the_evaluation_device():
    gpu_only = {**GOOD, "heads": [{"name": "tdsm", "params": {"preset": "faithful"}}, {"name": "fs_vae", "params":
                                                                                      {"preset": "tiny"}}]}
    problems = _problems(gpu_only)
    assert any("preset 'faithful'" in p and "GPU" in p for p in problems)
    assert any("unknown preset 'tiny'" in p for p in problems)
    # the protocol trains on [evaluate] device: on a GPU the faithful preset is a valid config
    on_gpu = {**gpu_only, "heads": gpu_only["heads"][:1], "evaluate": {"device": "cuda"}}
    assert check_experiment(config_from_dict(on_gpu)).runs == 2 * 3
    # a head's own device wins over the evaluation's
    pinned = {**on_gpu, "heads": [{"name": "tdsm", "params": {"preset": "faithful", "device": "cpu"}}]}
    assert any("preset 'faithful'" in p for p in _problems(pinned))


def test_evaluate_switches_must_be_booleans():
    problems = _problems({**GOOD, "evaluate": {"gzsl": "yes", "select_on_test": 0, "top_k": True,
                                               "leaderboard_columns": "true"}})
    assert "[evaluate] gzsl = 'yes': true or false" in " ".join(problems)
    assert any("select_on_test = 0" in p for p in problems) and any("top_k = True" in p for p in problems)
    assert any("leaderboard_columns = 'true'" in p for p in problems) and len(problems) == 4

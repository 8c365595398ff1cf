from dataclasses import FrozenInstanceError, fields

import numpy as np
import pytest

from zsar.class_lists import random_split
from zsar.errors import ZsarError
from zsar.evaluate.epoch_choice import moving_average
from zsar.evaluate.protocol import ProtocolOptions, run_protocol, with_training_device
from zsar.experiment.config import EvaluateConfig, config_from_dict
from zsar.experiment.runner import protocol_options, run_experiment
from zsar.extract.text import build_prototypes
from zsar.features import FeatureCache
from zsar.features.prototypes import ClassPrototypes

GRID = {"weight_decay": [1e-4, 1e-2], "temperature": [0.05, 0.2]}
NO_GZSL = ProtocolOptions(gzsl=False)


@pytest.fixture(scope="module")
def problem(synthetic_cache, text_encoder):
    cache = FeatureCache(synthetic_cache)
    protos = build_prototypes(text_encoder, range(len(cache.class_names)), cache.class_names, "name")
    return cache.load("train"), cache.load("test"), protos, random_split(16, 4, seed=5)


def test_heads_train_on_the_evaluation_device_unless_their_params_name_one(problem):
    assert with_training_device("sadvae", {"epochs": 3}, "cuda") == {"epochs": 3, "device": "cuda"}
    assert with_training_device("dual_head", {"device": "cpu"}, "cuda") == {"device": "cpu"}
    assert with_training_device("nearest_prototype", {}, "cuda") == {}  # trains nothing with torch
    train, test, protos, split = problem
    with pytest.raises(ZsarError, match="linear_projection: device 'tpu' is not a torch device name"):
        run_protocol("linear_projection", {"epochs": 2}, {}, train, test, split, protos, 0,
                     ProtocolOptions(gzsl=False, device="tpu"))


def test_the_runner_hands_every_evaluate_setting_to_the_protocol():
    ev = EvaluateConfig(gzsl=False, top_k=3, search_backend="numpy", device="cuda", select_on_test=True,
                        epoch_choice="best", leaderboard_columns=True)
    options = protocol_options(ev)
    assert options == ProtocolOptions(gzsl=False, top_k=3, backend="numpy", device="cuda", select_on_test=True,
                                      epoch_rule="best", leaderboard_columns=True)
    assert all(getattr(options, f.name) != f.default for f in fields(ProtocolOptions))  # none left at its default
    with pytest.raises(FrozenInstanceError):
        options.gzsl = True


def test_select_on_test_reports_the_best_test_number(problem):
    train, test, protos, split = problem
    params = {"epochs": 20}
    honest = run_protocol("linear_projection", params, GRID, train, test, split, protos, 0, NO_GZSL)
    paper = run_protocol("linear_projection", params, GRID, train, test, split, protos, 0,
                         ProtocolOptions(gzsl=False, select_on_test=True))
    assert [t["test_top1"] for t in paper.selection] and "validation_top1" in honest.selection[0]
    assert paper.zsl["top1"] == pytest.approx(max(t["test_top1"] for t in paper.selection))
    assert paper.zsl["top1"] >= honest.zsl["top1"]


def test_gzsl_reports_calibrated_stacking_chosen_on_validation(problem):
    train, test, protos, split = problem
    result = run_protocol("nearest_prototype", {}, {}, train, test, split, protos, 0)
    g = result.gzsl
    assert {"cs_seen", "cs_unseen", "cs_h", "cs_gamma", "ausuc", "gate_seen", "gate_unseen", "gate_h"} <= set(g)
    assert g["gate_seen_scores"] == "softmax classifier trained on the cache"  # the stats cache has no logits
    assert g["cs_selection"]["gate_selection"]["threshold"] >= 0.25
    assert g["cs_gamma"] == g["cs_selection"]["gamma"] and "validation_h" in g["cs_selection"]
    assert 0 <= g["ausuc"] <= 100


def test_the_text_variant_is_chosen_on_validation(problem):
    train, test, protos, split = problem
    rng = np.random.default_rng(0)
    noise = rng.normal(size=protos.vectors.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    texts = {"noise": ClassPrototypes(protos.class_ids, protos.class_names, noise, "noise", protos.texts, "random"),
             "name": protos}
    result = run_protocol("nearest_prototype", {}, {}, train, test, split, texts, 0, NO_GZSL)
    assert {row["text_variant"] for row in result.selection} == {"noise", "name"}
    best = {row["text_variant"]: row["validation_top1"] for row in result.selection}
    chosen = max(texts, key=lambda v: (best[v], -list(texts).index(v)))  # the best; the first of equals
    assert result.text_variant == chosen and result.summary()["text_variant"] == chosen
    # the same run as the protocol on the chosen variant alone, whose test score played no part
    alone = run_protocol("nearest_prototype", {}, {}, train, test, split, texts[chosen], 0, NO_GZSL)
    assert alone.zsl == result.zsl and alone.selection == []
    # validation scores alone decide: a variant that wins on validation is chosen whatever it does on test
    reordered = run_protocol("nearest_prototype", {}, {}, train, test, split, dict(reversed(texts.items())), 0, NO_GZSL)
    assert reordered.text_variant == (chosen if best["noise"] != best["name"] else "name")
    # a head without a grid is scored once per variant; equal variants: the first given
    picked = run_protocol("linear_projection", {"epochs": 3}, {}, train, test, split, {"a": protos, "b": protos}, 0,
                          NO_GZSL)
    assert picked.text_variant == "a" and len(picked.selection) == 2
    # an epoch-selecting head ranks every epoch of every variant
    sadvae = run_protocol("sadvae", {"epochs": 2, "batch_size": 8, "latents_per_class": 20, "classifier_steps": 20},
                          {}, train, test, split, texts, 0, NO_GZSL)
    assert len(sadvae.selection) == 2 * 2 and sadvae.params["epochs"] in (1, 2)
    scores = {(row["text_variant"], row["params"]["epochs"]): row["selection_score"] for row in sadvae.selection}
    assert scores[(sadvae.text_variant, sadvae.params["epochs"])] == max(scores.values())


@pytest.mark.parametrize("rule", ["best", "smoothed", "last"])
def test_the_epoch_rule_reads_the_validation_curve(problem, rule):
    train, test, protos, split = problem
    params = {"epochs": 5, "batch_size": 8, "latents_per_class": 20, "classifier_steps": 20}
    result = run_protocol("sadvae", params, {}, train, test, split, protos, 0,
                          ProtocolOptions(gzsl=False, epoch_rule=rule))
    curve = [row["validation_top1"] for row in result.selection]
    expected = {"best": int(np.argmax(curve)) + 1, "last": 5,
                "smoothed": int(np.argmax(moving_average(curve))) + 1}[rule]
    assert result.params["epochs"] == expected


@pytest.mark.slow
def test_reports_label_test_set_selection(tmp_path):
    config = config_from_dict({"name": "paper", "data": {"synthetic": {"num_subjects": 4, "repetitions": 2,
                                                                      "test_subjects": 1}},
                               "text": {"variant": "name"}, "splits": {"random_unseen": 4, "random_seeds": [1]},
                               "heads": [{"name": "nearest_prototype"}], "evaluate": {"select_on_test": True}})
    report = run_experiment(config, tmp_path, progress=False)
    assert report["protocol"]["selected_on_test"] is True and report["protocol"]["test_touched_once"] is False
    assert "TEST set" in (tmp_path / "report.md").read_text()
    assert "TEST set" in (tmp_path / "report.html").read_text()

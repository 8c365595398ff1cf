import numpy as np
import pandas as pd
import pytest

from zsar.errors import ZsarError
from zsar.evaluate.predictions import predict_from_cache, write_predictions
from zsar.features.schema import CacheHeader
from zsar.features.writer import write_cache


def _cache(tmp_path, logits, class_ids=None, labels=None, with_logits=True):
    n, k = logits.shape
    header = CacheHeader(dataset="toy", modality="video", encoder="e", embedding_dim=2,
                         class_names=tuple(f"c{i}" for i in range(k)),
                         logit_classes=tuple(range(k)) if with_logits else None,
                         preprocessing={"class_ids": class_ids} if class_ids else {})
    meta = pd.DataFrame({"sample_id": [f"v{i}" for i in range(n)],
                         "label": labels if labels is not None else [-1] * n, "class_name": "",
                         "split": "test", "source": ""})
    return write_cache(tmp_path / "c.h5", header, meta, np.zeros((n, 2), np.float32),
                       logits.astype(np.float32) if with_logits else None)


def test_predictions_match_a_naive_argmax_and_softmax(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20, 7)) * 3
    table = predict_from_cache(_cache(tmp_path, logits, class_ids=list(range(1, 8)), labels=[2] * 20))
    for i, row in table.iterrows():
        probs = np.exp(logits[i] - logits[i].max())
        probs /= probs.sum()
        order = sorted(range(7), key=lambda c: -probs[c])[:5]
        assert row["class_id"] == order[0] + 1 and row["class_name"] == f"c{order[0]}"
        assert row["confidence"] == pytest.approx(probs[order[0]], abs=1e-6)
        assert row["top5_ids"] == " ".join(str(c + 1) for c in order)
        assert [float(p) for p in row["top5_probs"].split()] == pytest.approx(probs[order], abs=1e-4)
    assert (table["true_class_id"] == 3).all()
    submission, detailed = write_predictions(table, tmp_path / "out")
    assert pd.read_csv(submission).columns.tolist() == ["video_id", "class_name", "class_id"]
    assert len(pd.read_csv(detailed)) == 20


def test_without_logits_is_a_clear_error(tmp_path):
    path = _cache(tmp_path, np.zeros((3, 4)), with_logits=False)
    with pytest.raises(ZsarError, match="no classifier logits"):
        predict_from_cache(path)


def test_run_predictions_get_head_split_seed_and_seen_unseen_columns_with_other_predictions_beside():
    from zsar.evaluate.predictions import annotate_run_predictions

    table = pd.DataFrame({"task": ["zsl", "gzsl", "gzsl"], "sample_id": ["a", "b", "c"],
                          "true_class": ["u", "u", "s"], "predicted_class": ["u", "s", "s"], "confidence": 0.5,
                          "true_label": [3, 3, 0], "predicted_label": [3, 0, 0], "top1_class": ["u", "s", "s"],
                          "cs_predicted_class": ["u", "u", "s"], "cs_predicted_label": [3, 3, 0],
                          "gate_predicted_class": [None, "u", "u"], "gate_predicted_label": [None, 3, 3]})
    run = {"head": "h", "split": "x", "seed": 2, "split_classes": {"seen": [0, 1], "unseen": [3]}}
    out = annotate_run_predictions(table, run)
    assert out.columns.tolist()[:13] == [
        "head", "split", "seed", "task", "sample_id", "true_class", "true_domain", "predicted_class",
        "predicted_domain", "cs_predicted_class", "cs_predicted_domain", "gate_predicted_class",
        "gate_predicted_domain"]
    assert out["true_domain"].tolist() == ["unseen", "unseen", "seen"]
    assert out["predicted_domain"].tolist() == ["unseen", "seen", "seen"]
    assert out["gate_predicted_domain"].tolist() == ["", "unseen", "unseen"]  # no gate prediction in ZSL rows
    assert (out["head"] == "h").all() and (out["seed"] == 2).all()
    assert set(out.columns) == set(table.columns) | {"head", "split", "seed", "true_domain", "predicted_domain",
                                                     "cs_predicted_domain", "gate_predicted_domain"}


def test_experiment_predictions_pool_the_runs_files_and_skip_missing_ones(tmp_path):
    from zsar.evaluate.predictions import experiment_predictions

    frame = pd.DataFrame({"task": ["zsl"], "sample_id": ["007"], "true_class": ["u"], "predicted_class": ["u"],
                          "confidence": [0.9], "true_label": [3], "predicted_label": [3]})
    frame.to_csv(tmp_path / "p.csv", index=False)
    runs = [{"head": h, "split": "x", "seed": 0, "predictions": str(tmp_path / "p.csv"),
             "split_classes": {"seen": [0], "unseen": [3]}} for h in ("a", "b")]
    pooled = experiment_predictions([*runs, {**runs[0], "predictions": str(tmp_path / "missing.csv")}])
    assert pooled["head"].tolist() == ["a", "b"] and pooled["sample_id"].tolist() == ["007", "007"]
    assert experiment_predictions([{**runs[0], "predictions": str(tmp_path / "missing.csv")}]) is None

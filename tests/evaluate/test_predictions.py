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

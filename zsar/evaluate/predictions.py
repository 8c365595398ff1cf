"""Supervised predictions from a cache's stored logits: the HRI30 submission table and a richer one.

The submission has one row per video: video id, class name, class id (the dataset's official ids when it
has them, e.g. HRI30's classInd numbers from 1; else the class index). The detailed table adds the
confidence (softmax over the head's classes) and the top-5 classes with their probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from zsar.atomic import atomic_target
from zsar.errors import ZsarError
from zsar.features.reader import FeatureCache


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def predict_from_cache(cache_path: str | Path, top_k: int = 5, split: str | None = None) -> pd.DataFrame:
    """One row per ok sample: video_id, class_name, class_id, confidence, top-k ids / names / probabilities."""
    cache = FeatureCache(cache_path)
    if not cache.has_logits:
        raise ZsarError("the cache stores no classifier logits (extract with a checkpoint whose head classes are "
                        "the dataset's, or name them)", cache.path)
    features = cache.load(split, dtype=np.float32)
    has_logits = ~np.isnan(features.logits).all(axis=1)
    if not has_logits.any():
        raise ZsarError("no row of this selection has logits", cache.path)
    features = features.subset(has_logits)
    probs = _softmax(features.logits.astype(np.float64))
    classes = np.asarray(features.logit_classes)
    official = cache.header.preprocessing.get("class_ids")
    ids = np.asarray(official if official is not None else range(len(cache.class_names)))
    names = np.asarray(cache.class_names, dtype=object)
    k = min(top_k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    best = classes[top[:, 0]]
    table = pd.DataFrame({"video_id": features.metadata["sample_id"].to_numpy(),
                          "class_name": names[best], "class_id": ids[best],
                          "confidence": np.take_along_axis(probs, top[:, :1], axis=1)[:, 0].round(6)})
    table[f"top{k}_ids"] = [" ".join(str(int(i)) for i in ids[classes[row]]) for row in top]
    table[f"top{k}_names"] = [" ".join(str(n) for n in names[classes[row]]) for row in top]
    table[f"top{k}_probs"] = [" ".join(f"{p:.4f}" for p in prob[row]) for prob, row in zip(probs, top)]
    if (features.labels >= 0).any():
        table["true_class_id"] = [int(ids[label]) if label >= 0 else -1 for label in features.labels]
    return table


def write_predictions(table: pd.DataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """`submission.csv` (video id, class name, class id) and `predictions.csv` (everything) in `out_dir`."""
    out_dir = Path(out_dir)
    paths = out_dir / "submission.csv", out_dir / "predictions.csv"
    for path, frame in zip(paths, (table[["video_id", "class_name", "class_id"]], table)):
        with atomic_target(path) as tmp:
            frame.to_csv(tmp, index=False)
    return paths

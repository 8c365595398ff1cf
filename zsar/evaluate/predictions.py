"""Prediction tables.

Supervised predictions from a cache's stored logits: the HRI30 submission table and a richer one. The submission
has one row per video: video id, class name, class id (the dataset's official ids when it has them, e.g. HRI30's
classInd numbers from 1; else the class index). The detailed table adds the confidence (softmax over the head's
classes) and the top-5 classes with their probabilities.

An experiment's zero-shot predictions: every run's `predictions.csv` in one tidy table with the run's head, split
and seed, and whether each true and predicted class is seen or unseen in that split. Other predictions a run
records (calibrated stacking, the gate: columns `<name>_predicted_class` / `<name>_predicted_label`) stand beside
the plain arg-max.
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
        write_table(frame, path)
    return paths


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """`frame` as CSV (no index), atomically."""
    with atomic_target(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


RUN_COLUMNS = ("head", "split", "seed")


def _domain(labels: pd.Series, seen: set[int], unseen: set[int]) -> list[str]:
    return ["" if pd.isna(c) else "seen" if int(c) in seen else "unseen" if int(c) in unseen else "" for c in labels]


def annotate_run_predictions(table: pd.DataFrame, run: dict) -> pd.DataFrame:
    """One run's predictions with its head, split and seed first and a `*_domain` column (seen / unseen in the
    run's split) beside every class column; each prediction's class and domain directly after the true ones."""
    classes = run.get("split_classes") or {}
    seen, unseen = {int(c) for c in classes.get("seen", ())}, {int(c) for c in classes.get("unseen", ())}
    out = table.copy()
    predictions = [c[: -len("_label")] for c in table.columns if c.endswith("predicted_label")]
    for name in ["true", *predictions]:
        out[f"{name}_domain"] = _domain(table[f"{name}_label"], seen, unseen)
    for i, key in enumerate(RUN_COLUMNS):
        out.insert(i, key, run[key])
    first = [*RUN_COLUMNS, "task", "sample_id", "true_class", "true_domain"]
    first += [c for name in predictions for c in (f"{name}_class", f"{name}_domain") if c in out]
    return out[[c for c in first if c in out] + [c for c in out.columns if c not in first]]


def experiment_predictions(runs: list[dict]) -> pd.DataFrame | None:
    """Every run's predictions (the file its record names) in one table; None when no run's file exists."""
    frames = [annotate_run_predictions(pd.read_csv(r["predictions"], dtype={"sample_id": str}), r)
              for r in runs if r.get("predictions") and Path(r["predictions"]).is_file()]
    return pd.concat(frames, ignore_index=True) if frames else None

"""Bring your own features: arrays computed elsewhere (.npy + CSV/Parquet metadata) into a cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from zsar.class_lists.text_files import read_class_names
from zsar.errors import ZsarError
from zsar.features.inputs import arrays_digest
from zsar.features.schema import CacheHeader
from zsar.features.writer import write_cache


def load_npy(path: Path) -> np.ndarray:
    if not Path(path).is_file():
        raise ZsarError("file not found", path)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ZsarError(f"not a readable .npy array ({exc})", path) from exc


def _load_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ZsarError("file not found", path)
    try:
        return pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure becomes one clear message
        raise ZsarError(f"cannot read metadata table ({exc})", path) from exc


def import_arrays(
    embeddings: Path, metadata: Path, class_names: Path, out: Path, dataset: str, encoder: str,
    modality: str = "other", logits: Path | None = None, logit_classes: list[int] | None = None,
    trained_classes: list[int] | None = None, dtype: str = "float32", overwrite: bool = False,
) -> Path:
    """Write `.npy` embeddings (and logits) with their metadata table as a cache. The cache records a hash of
    the arrays: importing changed features to an existing cache is refused unless `overwrite`."""
    names = read_class_names(class_names)
    x = load_npy(embeddings)
    if x.ndim != 2:
        raise ZsarError(f"embeddings must be [N, D], got shape {x.shape}", embeddings)
    table = _load_table(metadata)
    if len(table) != len(x):
        raise ZsarError(f"{len(table)} metadata rows for {len(x)} embeddings", metadata)
    if "class_name" not in table and "label" in table:
        table["class_name"] = [names[int(i)] if 0 <= int(i) < len(names) else "" for i in table["label"]]
    if "source" not in table:
        table["source"] = Path(embeddings).name
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ZsarError(f"{int(bad.sum())} embeddings contain NaN or inf (rows {np.flatnonzero(bad)[:5].tolist()})",
                        embeddings)
    lg = None
    if logits is not None:
        lg = load_npy(logits)
        logit_classes = logit_classes or list(range(lg.shape[1]))
        if lg.shape != (len(x), len(logit_classes)):
            raise ZsarError(f"logits have shape {lg.shape}, expected {(len(x), len(logit_classes))}", logits)
    header = CacheHeader(
        dataset=dataset, modality=modality, encoder=encoder, embedding_dim=int(x.shape[1]), class_names=tuple(names),
        dtype=dtype, encoder_config={"imported_from": str(embeddings)},
        trained_classes=None if trained_classes is None else tuple(trained_classes),
        logit_classes=None if lg is None else tuple(logit_classes),
    )
    try:
        return write_cache(out, header, table, x, lg, overwrite=overwrite, content_digest=arrays_digest(x, lg))
    except ZsarError as exc:
        raise ZsarError(exc.problem, exc.path or metadata) from exc

"""Bring your own features: arrays computed elsewhere (.npy + CSV/Parquet metadata) into a cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from zsar.class_lists.text_files import read_class_names
from zsar.errors import ZsarError
from zsar.features.inputs import arrays_digest
from zsar.features.schema import CacheHeader, validate_metadata
from zsar.features.writer import write_cache

log = logging.getLogger(__name__)


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


SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val", "training": "train", "testing": "test"}
SPLITS = ("train", "val", "test")


def checked_metadata(table: pd.DataFrame, names: list[str], metadata: Path, class_names: Path) -> pd.DataFrame:
    """The user's metadata with `label` as class indices (class names are mapped through the class list) and
    `split` as train / val / test (case and the usual aliases mapped); every problem names the metadata file."""
    missing = [c for c in ("sample_id", "label", "split") if c not in table]
    if missing:
        raise ZsarError(f"metadata needs the columns {missing} (sample_id, label, split; class_name and source are "
                        "filled in)", metadata)
    table = table.copy()
    labels = pd.to_numeric(table["label"], errors="coerce")
    if labels.isna().any():  # class names: map them through the class list
        index = {name: i for i, name in enumerate(names)}
        text = table["label"].astype(str).str.strip()
        unknown = sorted(set(text[~text.isin(index) & labels.isna()]))
        if unknown:
            raise ZsarError(f"labels {unknown[:10]} are neither class indices nor names in {class_names}; use the "
                            "class list's names or 0-based indices", metadata)
        labels = labels.where(labels.notna(), text.map(index))
    table["label"] = labels
    split = table["split"].astype(str).str.strip()
    mapped = split.str.lower().replace(SPLIT_ALIASES)
    unknown = sorted(set(split[~mapped.isin(SPLITS)]))
    if unknown:
        raise ZsarError(f"split values {unknown[:10]} are not train / val / test (case and validation, dev, "
                        "training, testing are mapped): rename them in the metadata file", metadata)
    table["split"] = mapped
    used = set(labels[labels >= 0].astype(int).tolist())
    unused = [name for i, name in enumerate(names) if i not in used]
    if unused:
        log.warning("%s: no sample is labelled with %d of the %d classes of %s (%s): zero-shot splits that hold "
                    "them will be refused", metadata, len(unused), len(names), class_names, ", ".join(unused[:10]))
    return table


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
    table = checked_metadata(table, names, metadata, class_names)
    if "source" not in table:
        table["source"] = Path(embeddings).name
    if trained_classes is not None:
        outside = sorted({c for c in trained_classes if not 0 <= c < len(names)})
        if outside:
            raise ZsarError(f"--trained-classes {outside} are outside the {len(names)} classes 0..{len(names) - 1}",
                            class_names)
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
        table = validate_metadata(table, header)  # here, so that its errors name the user's file, not the cache
    except ZsarError as exc:
        raise ZsarError(exc.problem, metadata) from exc
    try:
        return write_cache(out, header, table, x, lg, overwrite=overwrite, content_digest=arrays_digest(x, lg))
    except ZsarError as exc:
        raise ZsarError(exc.problem, exc.path or metadata) from exc

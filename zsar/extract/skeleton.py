"""Run a skeleton encoder over a sample source into a cache: batched, resumable, failures recorded."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError
from zsar.extract.skeleton_stats import SkeletonStatsEncoder
from zsar.features.schema import CacheHeader
from zsar.features.writer import CacheWriter

log = logging.getLogger(__name__)


def stats_header(source: SampleSource, encoder: SkeletonStatsEncoder, channels: int = 3) -> CacheHeader:
    return CacheHeader(
        dataset=source.name, modality="skeleton", encoder=encoder.name, embedding_dim=encoder.dim(channels),
        class_names=tuple(source.class_names), dtype="float32", encoder_config=encoder.config.to_dict(),
        trained_classes=None, preprocessing={"centre": "root joint", "scale": "median root-neck length",
                                             "align_facing": encoder.config.align_facing},
        normalisation="none",
    )


def extract_skeleton_stats(
    source: SampleSource,
    cache_path: str | Path,
    encoder: SkeletonStatsEncoder | None = None,
    batch_size: int = 64,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Encode every sample of `source` into `cache_path`. A rerun computes only missing rows;
    a sample that fails to load or encode becomes a failed row with the reason."""
    encoder = encoder or SkeletonStatsEncoder()
    header = stats_header(source, encoder)
    meta = source.metadata.copy()
    with CacheWriter(cache_path, header, meta, overwrite=overwrite) as writer:
        todo = writer.pending_rows()
        bar = tqdm(total=len(todo), desc=f"extract {source.name}", unit="sample", disable=not progress)
        for start in range(0, len(todo), batch_size):
            rows, vectors, failed = [], [], []
            for row in todo[start : start + batch_size].tolist():
                try:
                    vectors.append(encoder.encode(source.load(row)))
                    rows.append(row)
                except (ZsarError, ValueError, OSError) as exc:
                    failed.append((row, str(exc.problem if isinstance(exc, ZsarError) else exc)))
            if rows:
                writer.write(rows, np.stack(vectors))
            for row, message in failed:
                log.warning("sample %s failed: %s", meta["sample_id"].iloc[row], message)
                writer.fail([row], message)
            bar.update(len(rows) + len(failed))
        bar.close()
        return writer.finalize()

"""Run a skeleton encoder over a sample source into a cache: batched, resumable, failures recorded.

Two encoders plug in: the training-free statistics baseline and a trained mmaction2 network (ST-GCN,
ST-GCN++, PoseC3D) from a checkpoint (`extract_skeleton_network`). Both go through `extract_skeleton`,
which asks the cache writer for the rows still missing, loads and encodes them in batches and records a
sample that fails to load or to preprocess as a failed row with the reason, so one bad file never stops
the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from zsar.datasets.layouts import get_layout
from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError
from zsar.extract.isolation import encode_isolating, problem_text
from zsar.extract.skeleton_encoder import SkeletonEncoder
from zsar.extract.skeleton_stats import SkeletonStatsConfig, SkeletonStatsEncoder
from zsar.features.fingerprint import file_sha256
from zsar.features.schema import CacheHeader
from zsar.features.writer import CacheWriter

log = logging.getLogger(__name__)


@dataclass
class BatchEncoder:
    """What `extract_skeleton` runs: `prepare(row, keypoints)` per sample (may raise for that sample) and
    `encode(list of prepared)` -> (embeddings [B, D], logits [B, K] or None, temporal [B, T, D] or None)."""

    header: CacheHeader
    prepare: Callable[[int, np.ndarray], object]
    encode: Callable[[list], tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]


def extract_skeleton(source: SampleSource, cache_path: str | Path, encoder: BatchEncoder, batch_size: int = 64,
                     overwrite: bool = False, progress: bool = True) -> Path:
    """Encode every sample of `source` into `cache_path`; a rerun computes only the missing rows. Any error
    from one sample (loading, preparing, or breaking its batch) makes that sample a failed row."""
    meta = source.metadata.copy()
    with CacheWriter(cache_path, encoder.header, meta, overwrite=overwrite) as writer:
        todo = writer.pending_rows()
        bar = tqdm(total=len(todo), desc=f"extract {source.name}", unit="sample", disable=not progress or not len(todo))
        for start in range(0, len(todo), batch_size):
            rows, items, failed = [], [], []
            for row in todo[start : start + batch_size].tolist():
                try:
                    items.append(encoder.prepare(row, source.load(row)))
                    rows.append(row)
                except Exception as exc:  # noqa: BLE001 - any error from one file is that row's failure
                    named = isinstance(exc, ZsarError) and exc.path is not None
                    failed.append((row, problem_text(exc) if named else f"{meta['source'].iloc[row]}: "
                                   f"{problem_text(exc)}"))
            if rows:
                rows, outputs, broke = encode_isolating(lambda idx: encoder.encode([items[i] for i in idx]), rows,
                                                        check=lambda out: writer.check_outputs(*out))
                failed += broke
                if rows:
                    writer.write(rows, *outputs)
            for row, message in failed:
                log.warning("sample %s failed: %s", meta["sample_id"].iloc[row], message)
            if failed:
                writer.fail([row for row, _ in failed], [message for _, message in failed])
            bar.update(len(rows) + len(failed))
        bar.close()
        return writer.finalize()


def _first_channels(source: SampleSource) -> int:
    """Channel count of the data, from the first sample that loads (3 when none does)."""
    for row in range(len(source)):
        try:
            return int(source.load(row).shape[-1])
        except Exception:  # noqa: BLE001, S112 - a bad file becomes a failed row later; look at the next
            continue
    return 3


def stats_encoder(source: SampleSource, encoder: SkeletonStatsEncoder) -> BatchEncoder:
    channels = _first_channels(source)
    header = CacheHeader(
        dataset=source.name, modality="skeleton", encoder=encoder.name, embedding_dim=encoder.dim(channels),
        class_names=tuple(source.class_names), dtype="float32", encoder_config=encoder.config.to_dict(),
        trained_classes=None, preprocessing={"centre": "root joint", "scale": "median root-neck length",
                                             "align_facing": encoder.config.align_facing, **source.provenance},
        normalisation="none",
    )
    return BatchEncoder(header, prepare=lambda row, kp: encoder.encode(kp),
                        encode=lambda items: (np.stack(items), None, None))


def extract_skeleton_stats(source: SampleSource, cache_path: str | Path, encoder: SkeletonStatsEncoder | None = None,
                           batch_size: int = 64, overwrite: bool = False, progress: bool = True) -> Path:
    """The training-free statistics baseline over every sample."""
    encoder = encoder or SkeletonStatsEncoder(SkeletonStatsConfig(layout=source.layout or SkeletonStatsConfig.layout))
    return extract_skeleton(source, cache_path, stats_encoder(source, encoder),
                            batch_size, overwrite, progress)


def _map_classes(spec_names, target_names, classes) -> list[int | None]:
    """Classes of the encoder's label space as labels of the dataset's, matched by name (None: no match)."""
    index = {name: i for i, name in enumerate(target_names)}
    return [index.get(spec_names[c]) for c in classes]


def network_encoder(source: SampleSource, encoder: SkeletonEncoder, checkpoint: str | Path | None = None,
                    temporal: bool = False, num_clips: int = 1, trusted_checkpoint: bool = False) -> BatchEncoder:
    spec = encoder.spec
    if source.layout != spec.layout:
        raise ZsarError(f"the encoder was built for layout {spec.layout!r} but dataset {source.name!r} is "
                        f"{source.layout!r}")
    layout = get_layout(spec.layout)
    temporal_length = None
    if temporal:  # the network's time resolution, from one sample's worth of input
        probe = np.zeros((1, spec.input.clip_len, layout.num_joints, spec.data_channels), np.float32)
        probe[..., :2] = np.linspace(1, 2, layout.num_joints)[None, None, :, None]
        probe[..., 2:] = 1
        temporal_length = encoder.features(encoder.test_clips(encoder.prepare(probe, (4, 4)), 1)[None])[2].shape[1]
    mapped = _map_classes(spec.class_names, source.class_names, spec.trained_classes)
    trained = tuple(m for m in mapped if m is not None)  # the leakage audit sees every matching trained class
    logit_classes = trained if len(trained) == len(mapped) else None
    if logit_classes is None:
        log.warning("the encoder's classes are not all in %s: its logits are not stored", source.name)
    record = {k: v for k, v in spec.to_dict().items() if k != "training"}
    record["training"] = {k: v for k, v in spec.training.items() if k not in ("log", "skipped")}
    header = CacheHeader(
        dataset=source.name, modality="skeleton", encoder=spec.name, embedding_dim=encoder.embedding_dim,
        class_names=tuple(source.class_names), dtype="float32",
        encoder_config={**record, "num_clips": num_clips, "temporal": temporal},
        checkpoint_sha256=file_sha256(checkpoint) if checkpoint else None, trained_classes=trained,
        logit_classes=logit_classes, temporal_length=temporal_length,
        preprocessing={"layout": spec.layout, **spec.input.to_dict(), "num_clips": num_clips,
                       "pipeline": "mmaction2 GCN pipeline (normalise, features, uniform sampling, test mode)"
                       if spec.family == "gcn" else "mmaction2 pose heatmap pipeline (config's test steps)",
                       **source.provenance, **({"trust_pickle_checkpoint": True} if trusted_checkpoint else {})},
        normalisation="none",
    )
    meta = source.metadata
    shapes = meta["img_shape"].tolist() if "img_shape" in meta else None

    def prepare_row(row: int, kp: np.ndarray) -> np.ndarray:
        return encoder.test_clips(encoder.prepare(kp, shapes[row] if shapes else None), num_clips)

    def encode(items: list) -> tuple:
        pooled, logits, steps = encoder.features(np.stack(items))
        return pooled, logits if logit_classes is not None else None, steps if temporal else None

    return BatchEncoder(header, prepare_row, encode)


def extract_skeleton_network(source: SampleSource, checkpoint: str | Path, cache_path: str | Path,
                             batch_size: int = 16, device: str = "cpu", temporal: bool = False, num_clips: int = 1,
                             overwrite: bool = False, progress: bool = True, trust_pickle: bool = False,
                             **load_options) -> Path:
    """Embeddings, seen-class logits and optional per-time-step features of a trained graph network.
    `trust_pickle`: load a checkpoint holding arbitrary Python objects (see `checkpoint_file`)."""
    encoder = SkeletonEncoder.load(checkpoint, device, class_names=source.class_names, trust_pickle=trust_pickle,
                                   **load_options)
    batch_encoder = network_encoder(source, encoder, checkpoint, temporal, num_clips, trust_pickle)
    return extract_skeleton(source, cache_path, batch_encoder, batch_size, overwrite, progress)

"""Run a video encoder over a dataset into a cache: decoding in worker processes overlaps inference,
resumable, failures recorded, shardable.

Worker processes decode, sample and crop videos (uint8) while the main process runs the network on the
previous batch (pinned memory and non-blocking copies on a GPU). A video that cannot be read becomes a
failed row with the reason and the run goes on. The cache writer makes it resumable (a rerun computes only
missing rows) and crash-safe; a shard (`Shard`, or torchrun's rank) writes its own cache, joined later by
`zsar cache merge` (`zsar.features.merge`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError
from zsar.extract.isolation import encode_isolating
from zsar.extract.sharding import Shard
from zsar.extract.video_decode import read_frames
from zsar.extract.video_encoder import VideoEncoder
from zsar.extract.video_input import VideoInput, clip_views
from zsar.features.fingerprint import file_sha256
from zsar.features.inputs import source_files_digest
from zsar.features.schema import CacheHeader
from zsar.features.writer import CacheWriter

log = logging.getLogger(__name__)


def load_views(path: Path, spec: VideoInput, backend: str = "auto") -> np.ndarray:
    """One video -> uint8 views [crops, clips, T, H, W, 3] (clips sampled as the config says)."""
    decoded = read_frames(path, spec.frame_indices, backend)
    return clip_views(decoded.frames, spec)


class _DecodeItems(torch.utils.data.Dataset):
    """Row -> (row, views or None, error message); never raises, so one bad file cannot stop a worker.

    Workers do not touch OpenCV's thread settings: `cv2.setNumThreads` in a worker forked after OpenCV ran
    multi-threaded in the parent hangs that worker (measured)."""

    def __init__(self, rows: np.ndarray, paths: list, spec: VideoInput, backend: str):
        self.rows, self.paths, self.spec, self.backend = rows, paths, spec, backend

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int):
        row = int(self.rows[k])
        try:
            return row, torch.from_numpy(load_views(Path(self.paths[row]), self.spec, self.backend)), ""
        except ZsarError as exc:
            return row, None, exc.problem
        except Exception as exc:  # noqa: BLE001 - any decoder failure on one file becomes that row's error
            return row, None, f"{type(exc).__name__}: {exc}"


def _collate(items):
    ok = [(row, views) for row, views, _ in items if views is not None]
    failed = [(row, error) for row, views, error in items if views is None]
    shapes = {tuple(v.shape) for _, v in ok}
    if len(shapes) > 1:  # cannot happen with one input spec; guard anyway
        raise ZsarError(f"views of different shapes in one batch: {sorted(shapes)}")
    batch = torch.stack([v for _, v in ok]) if ok else None
    return [row for row, _ in ok], batch, failed


@dataclass
class ExtractOptions:
    batch_size: int | None = None  # None: 1 on a CPU (measured: batches of 4 are slower there), 8 on a GPU
    num_workers: int | None = None  # None: one per spare CPU core (at most 8); 0 decodes in this process
    backend: str = "auto"
    per_clip: bool = False  # keep the per-view features [views, D] (the cache's `temporal` array)
    store_logits: bool = True
    prefetch: int = 2
    trust_pickle: bool = False  # load a checkpoint holding arbitrary Python objects (recorded in the header)

    def batch(self, device: torch.device) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 1 if device.type == "cpu" else 8

    def workers(self) -> int:
        if self.num_workers is not None:
            return self.num_workers
        return max(1, min(8, (os.cpu_count() or 2) - 1))


def _map_classes(head_classes, class_names) -> tuple[int, ...] | None:
    index = {n: i for i, n in enumerate(class_names)}
    mapped = [index.get(n) for n in head_classes]
    return tuple(mapped) if mapped and all(m is not None for m in mapped) else None


def video_header(source: SampleSource, encoder: VideoEncoder, checkpoint: str | Path | None, options: ExtractOptions,
                 class_names: list[str], shard: dict | None = None) -> CacheHeader:
    spec = encoder.spec
    logit_classes = None
    if options.store_logits:
        if spec.head_classes:
            logit_classes = _map_classes(spec.head_classes, class_names)
            if logit_classes is None:
                log.warning("the head's classes are not all among %s's classes: logits are not stored", source.name)
        elif encoder.num_classes == len(class_names) and checkpoint is not None:
            log.info("the head has %d classes like %s; its logits are stored as the dataset's classes in order",
                     encoder.num_classes, source.name)
            logit_classes = tuple(range(len(class_names)))
        else:
            log.info("the head's classes are not named: logits are not stored (name them to keep them)")
    views = encoder.views_per_video
    preprocessing = {**spec.input.to_dict(), "decoder": options.backend, "views": views,
                     **({"trust_pickle_checkpoint": True} if options.trust_pickle else {}),
                     "pipeline": "mmaction2 test steps: SampleFrames (test mode), Resize, crop, normalise"}
    if source.class_ids is not None:
        preprocessing["class_ids"] = list(source.class_ids)
    return CacheHeader(
        dataset=source.name, modality="video", encoder=spec.name, embedding_dim=encoder.embedding_dim,
        class_names=tuple(class_names), dtype="float32",
        encoder_config={**spec.to_dict(), "precision": encoder.precision, "per_clip": options.per_clip,
                        "weights": "checkpoint" if checkpoint else "random"},
        checkpoint_sha256=file_sha256(checkpoint) if checkpoint else None,
        trained_classes=logit_classes if checkpoint else None, logit_classes=logit_classes,
        temporal_length=views if options.per_clip else None, preprocessing=preprocessing, shard=shard,
    )


def extract_video(source: SampleSource, cache_path: str | Path, encoder: VideoEncoder,
                  checkpoint: str | Path | None = None, options: ExtractOptions | None = None,
                  shard: Shard | None = None, overwrite: bool = False, progress: bool = True,
                  on_batch: Callable[[int], None] | None = None) -> Path:
    """Embeddings (+ logits, + per-view features) of every video of `source` into `cache_path`; with `shard`,
    of that shard's rows into its own file (`Shard.path`). `on_batch(rows written so far)` after each batch."""
    options = options or ExtractOptions()
    class_names = list(source.class_names) or list(encoder.spec.head_classes) or \
        [f"class_{i}" for i in range(encoder.num_classes)]
    shard_record = None
    if shard is not None:
        shard_record = shard.record(source.metadata["sample_id"].astype(str).tolist())
        source = source.subset(shard.rows(len(source)))
        cache_path = shard.path(cache_path)
    header = video_header(source, encoder, checkpoint, options, class_names, shard_record)
    meta = source.metadata.drop(columns=["path"], errors="ignore")
    paths = source.metadata["path"].tolist() if "path" in source.metadata else \
        [str(source.load(i)) for i in range(len(source))]
    views_per_video = encoder.views_per_video
    inputs = source_files_digest(paths)
    with CacheWriter(cache_path, header, meta, overwrite=overwrite, content_digest=inputs) as writer:
        todo = writer.pending_rows()
        if todo.size:
            workers = options.workers()
            loader = torch.utils.data.DataLoader(
                _DecodeItems(todo, paths, encoder.spec.input, options.backend),
                batch_size=options.batch(encoder.device), shuffle=False, num_workers=workers, collate_fn=_collate,
                pin_memory=encoder.device.type == "cuda", prefetch_factor=options.prefetch if workers else None,
                persistent_workers=False)
            bar = tqdm(total=int(todo.size) * views_per_video, desc=f"extract {source.name}", unit="clip",
                       disable=not progress, smoothing=0.1)
            done, start = 0, time.perf_counter()
            for rows, batch, failed in loader:
                if rows:
                    rows, outputs, broke = encode_isolating(
                        lambda idx, b=batch: encoder.features(b[idx]), rows,
                        check=lambda out: writer.check_outputs(out[0], out[1] if header.logit_classes is not None
                                                               else None, out[2] if options.per_clip else None))
                    failed = failed + broke
                if rows:
                    embeddings, logits, per_view = outputs
                    writer.write(rows, embeddings, logits if header.logit_classes is not None else None,
                                 per_view if options.per_clip else None)
                for row, message in failed:
                    log.warning("%s failed: %s", paths[row], message)
                if failed:
                    writer.fail([row for row, _ in failed], [message for _, message in failed])
                done += len(rows) + len(failed)
                bar.update((len(rows) + len(failed)) * views_per_video)
                if on_batch is not None:
                    on_batch(done)
            bar.close()
            seconds = time.perf_counter() - start
            log.info("%d videos (%d clips) in %.1f s: %.2f clips/s", done, done * views_per_video, seconds,
                     done * views_per_video / max(seconds, 1e-9))
        return writer.finalize()


def extract_video_dataset(source: SampleSource, cache_path: str | Path, config: str | Path,
                          checkpoint: str | Path | None = None, device: str = "cpu", precision: str = "fp32",
                          head_classes=(), options: ExtractOptions | None = None, pipeline: str = "auto",
                          shard: Shard | None = None, overwrite: bool = False, progress: bool = True, seed: int = 0,
                          **input_overrides) -> Path:
    """Build the encoder and extract; under torchrun each rank takes its shard (and its GPU for `cuda`), and
    rank 0 merges the shards into `cache_path` once every rank is done."""
    from zsar.extract.sharding import torchrun_device, torchrun_shard

    launched = torchrun_shard() if shard is None else None
    if launched is not None:
        shard, device = launched, torchrun_device(device)
    if checkpoint is None:
        log.warning("no checkpoint: the encoder has random weights (seed %d); its embeddings are for testing", seed)
    encoder = VideoEncoder.from_config(config, checkpoint, device, precision, head_classes, seed=seed,
                                       pipeline=pipeline, trust_pickle=(options or ExtractOptions()).trust_pickle,
                                       **input_overrides)
    path = extract_video(source, cache_path, encoder, checkpoint, options, shard, overwrite, progress)
    if launched is None:
        return path
    return _merge_after_all_ranks(launched, cache_path, overwrite)


def _merge_after_all_ranks(shard: Shard, cache_path: str | Path, overwrite: bool) -> Path:
    from datetime import timedelta

    import torch.distributed as dist

    from zsar.features.merge import merge_shards

    if not dist.is_initialized():  # gloo: a CPU barrier that works with or without GPUs
        dist.init_process_group("gloo", timeout=timedelta(hours=48))
    try:
        dist.barrier()
        if shard.index == 0:
            merge_shards([Shard(i, shard.count).path(cache_path) for i in range(shard.count)], cache_path, overwrite)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return Path(cache_path)

"""Video extraction throughput (clips/s): zsar's pipeline (decoding in worker processes overlapping the network,
writing the cache) against a straightforward sequential loop (decode one video, run it, next; nothing written),
with the same network, the same clips and the same decoder, measured in the same run. The real clips in
../shared/datasets/videos (two 1080p NTU AVIs, two small MP4s) are repeated to make a workload. Random weights
(speed does not depend on them). On a GPU too when one is present. Prints JSON.

    python benchmarks/video_extract.py [--config slowonly] [--repeats 3] [--batch-size 4] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from zsar.datasets.source import SampleSource
from zsar.extract.video import ExtractOptions, extract_video, load_views
from zsar.extract.video_encoder import VideoEncoder

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "videos"
CLIPS = ("ntu_S001C001P001R001A001_rgb.avi", "pyskl_ntu_sample.avi", "mmaction2_demo.mp4",
         "activitynet_v_GGSY1Qvo990.mp4")


def workload(repeats: int) -> SampleSource:
    paths = [VIDEOS / name for _ in range(repeats) for name in CLIPS]
    meta = pd.DataFrame({"sample_id": [f"{i:04d}_{p.stem}" for i, p in enumerate(paths)], "label": -1,
                         "class_name": "", "split": "bench", "source": [p.name for p in paths],
                         "path": [str(p) for p in paths]})
    return SampleSource("bench_videos", [], meta, lambda i: paths[i], "video")


def sequential(encoder: VideoEncoder, source: SampleSource) -> float:
    """Decode one video, run it, next: the loop research scripts use."""
    start = time.perf_counter()
    for i in range(len(source)):
        encoder.features(load_views(source.load(i), encoder.spec.input)[None])
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def pipelined(encoder: VideoEncoder, source: SampleSource, options: ExtractOptions) -> tuple[float, float]:
    """Total seconds, and seconds to the first finished batch (worker start-up + the first video)."""
    first = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        extract_video(source, Path(tmp) / "bench.h5", encoder, options=options, progress=False,
                      on_batch=lambda done: first.append(time.perf_counter() - start) if not first else None)
        return time.perf_counter() - start, first[0]


def measure(device: str, args) -> dict:
    encoder = VideoEncoder.from_config(args.config, device=device, precision=args.precision if device != "cpu"
                                       else "fp32", num_classes=400)
    source = workload(args.repeats)
    clips = len(source) * encoder.views_per_video
    encoder.features(load_views(source.load(2), encoder.spec.input)[None])  # warm-up (allocator, kernels)
    options = ExtractOptions(batch_size=args.batch_size, num_workers=args.workers)
    seq = sequential(encoder, source)
    pipe, first = pipelined(encoder, source, options)
    return {"device": device, "config": args.config, "precision": encoder.precision,
            "input": encoder.spec.input.to_dict(), "videos": len(source), "clips": clips,
            "decode_workers": options.workers(), "batch_size": options.batch(encoder.device),
            "torch_threads": torch.get_num_threads(),
            "sequential_s": round(seq, 2), "sequential_clips_per_s": round(clips / seq, 3),
            "zsar_s": round(pipe, 2), "zsar_clips_per_s": round(clips / pipe, 3),
            "zsar_first_batch_s": round(first, 2),
            "speedup": round(seq / pipe, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="slowonly")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: zsar's (1 on a CPU, 8 on a GPU)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--precision", default="bf16", help="on a GPU")
    args = parser.parse_args()
    results = [measure("cpu", args)]
    if torch.cuda.is_available():
        results.append(measure("cuda", args))
    print(json.dumps({"benchmark": "video_extract", "machine": {"cpus": os.cpu_count(), "python":
                      platform.python_version(), "torch": torch.__version__}, "results": results}, indent=2))


if __name__ == "__main__":
    main()

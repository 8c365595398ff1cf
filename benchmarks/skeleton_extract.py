"""ST-GCN extraction throughput (samples/s) through zsar's full path: load -> normalise -> sample -> network ->
cache, at batch 16 with 2 bodies x 25 joints, 64 frames (the issue's shape) and 100 frames (the shape of the
published figure: 13.8 samples/s on a laptop CPU, 518 on an RTX 2080 Ti). Random weights (the speed does not
depend on them). Measured on the same machine in the same run: the same network fed by mmaction2's own test
pipeline (the peer path, without writing a cache), and the network alone, to show what the data path costs.
On a GPU too when one is present.
Prints JSON."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from zsar.class_lists.names import builtin_class_names
from zsar.datasets.source import SampleSource
from zsar.extract.skeleton import extract_skeleton_network
from zsar.extract.skeleton_encoder import SkeletonEncoder, make_spec

PUBLISHED = {"cpu": 13.8, "cuda": 518.0}


def ntu_like_source(num: int, seed: int = 0) -> SampleSource:
    """Two-body NTU-25 random-walk sequences of 80-160 frames."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(80, 161, num)
    names = builtin_class_names("ntu60")
    meta = pd.DataFrame({"sample_id": [f"s{i:05d}" for i in range(num)], "label": rng.integers(0, 60, num),
                         "split": "test", "source": "generated"})
    meta["class_name"] = [names[c] for c in meta["label"]]
    data = [(np.cumsum(rng.normal(0, 0.01, (2, t, 25, 3)), axis=1) + rng.normal(0, 0.3, (2, 1, 25, 3)) +
             [0, 0, 3]).astype(np.float32) for t in lengths]
    return SampleSource("bench_ntu", names, meta, lambda i: data[i], "skeleton", "ntu_25")


def network_only(encoder: SkeletonEncoder, frames: int, batch: int = 16, repeats: int = 3) -> float:
    x = np.random.default_rng(0).normal(size=(batch, 1, 2, frames, 25, 3)).astype(np.float32)
    encoder.features(x)  # warm-up
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        encoder.features(x)
        if encoder.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return batch / best


def mmaction_pipeline(encoder: SkeletonEncoder, source: SampleSource, frames: int, batch: int = 16) -> float:
    """The same network fed by mmaction2's own test pipeline, sample by sample (no cache written): the peer path."""
    from mmcv.transforms import Compose

    from zsar.extract.mmaction_compat import import_mmaction

    import_mmaction()
    from mmaction.registry import TRANSFORMS

    pipe = Compose([TRANSFORMS.build(step) for step in (
        dict(type="PreNormalize3D"), dict(type="GenSkeFeat", dataset="nturgb+d", feats=["j"]),
        dict(type="UniformSampleFrames", clip_len=frames, num_clips=1, test_mode=True), dict(type="PoseDecode"),
        dict(type="FormatGCNInput", num_person=2))])
    t = time.perf_counter()
    for start in range(0, len(source), batch):
        items = []
        for i in range(start, min(start + batch, len(source))):
            kp = source.load(i)
            items.append(pipe({"keypoint": kp, "total_frames": kp.shape[1], "start_index": 0})["keypoint"])
        encoder.features(np.stack(items))
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    return len(source) / (time.perf_counter() - t)


def run(device: str, frames: int, num: int, folder: Path) -> dict:
    spec = make_spec("stgcn", "ntu_25", 3, builtin_class_names("ntu60"), range(60), clip_len=frames, num_person=2)
    torch.manual_seed(0)
    checkpoint = SkeletonEncoder(spec).save(folder / f"stgcn_{frames}.pth")
    encoder = SkeletonEncoder.load(checkpoint, device)
    source = ntu_like_source(num)
    extract_skeleton_network(source.subset(range(16)), checkpoint, folder / "warm.h5", 16, device, progress=False,
                         overwrite=True)
    t = time.perf_counter()
    extract_skeleton_network(source, checkpoint, folder / f"{device}_{frames}.h5", 16, device, progress=False,
                         overwrite=True)
    seconds = time.perf_counter() - t
    row = {"device": device, "frames": frames, "samples": num, "batch": 16,
           "zsar_samples_per_s": round(num / seconds, 1),
           "mmaction2_pipeline_samples_per_s": round(mmaction_pipeline(encoder, source, frames), 1),
           "network_only_samples_per_s": round(network_only(encoder, frames), 1)}
    row["zsar_over_mmaction2_pipeline"] = round(row["zsar_samples_per_s"] / row["mmaction2_pipeline_samples_per_s"], 2)
    if frames == 100:
        row["published_samples_per_s"] = PUBLISHED["cuda" if device.startswith("cuda") else "cpu"]
        row["zsar_over_published"] = round(row["zsar_samples_per_s"] / row["published_samples_per_s"], 2)
    return row


def main() -> dict:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            for frames in (64, 100):
                results.append(run(device, frames, 160 if device == "cpu" else 2000, Path(tmp)))
    return {"benchmark": "skeleton_extract", "model": "ST-GCN (mmaction2 stgcn joint config, random weights)",
            "torch_threads": torch.get_num_threads(), "results": results}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

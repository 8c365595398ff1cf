"""Seconds for M separate fits against one batched training of the same M members (zsar/heads/batched_runs.py), for
linear_projection and contrastive at NTU-60 shapes, M = 1, 5, 15. Prints JSON.

The data has NTU-60 55/5's widths: 60 classes, 256-d features, 768-d class text (CLIP ViT-L's width), 55 seen
classes per split. Member i trains on split i // 5 (three seeded random 55/5 splits: different training sets and
class sets, as a protocol's splits are) with seed i % 5; with M = 15 that is the grid of 3 splits x 5 seeds.
Every member is checked against its separate fit (`max_abs_difference` over all weights). NTU-60's training set
has about 40,000 samples; `--samples` sets how many this run draws (the default keeps the whole benchmark near a
minute and a half on a 2-core CPU; seconds grow with samples x epochs on both sides alike). Each time is the best of
`--repeats`. `--device cuda` trains on a GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from zsar.class_lists.splits import random_split
from zsar.compute import use_threads
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head
from zsar.heads.batched_runs import Member, train_batched

CLASSES, FEATURE_DIM, TEXT_DIM, UNSEEN = 60, 256, 768, 5
SETTINGS = {"linear_projection": {"epochs": 3}, "contrastive": {"epochs": 3}}


def problem(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, ClassPrototypes]:
    """Features with a learnable zero-shot structure (a fixed random map of the class text plus noise)."""
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((CLASSES, TEXT_DIM)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    labels = np.arange(samples) % CLASSES
    features = text[labels] @ (rng.standard_normal((TEXT_DIM, FEATURE_DIM)).astype(np.float32) / 4)
    features = np.maximum(features + 0.8 * rng.standard_normal(features.shape).astype(np.float32), 0)
    names = [f"class {c}" for c in range(CLASSES)]
    return features, labels, ClassPrototypes(np.arange(CLASSES), names, text, "benchmark", [[n] for n in names], "none")


def members(head: str, count: int, samples: int, device: str) -> list[Member]:
    features, labels, prototypes = problem(samples)
    out = []
    for i in range(count):
        seen = random_split(CLASSES, UNSEEN, seed=i // 5).seen
        keep = np.isin(labels, seen)
        out.append(Member({**SETTINGS[head], "device": device}, features[keep], labels[keep],
                          prototypes.subset(seen), seed=i % 5))
    return out


def separate(head: str, runs: list[Member]) -> list:
    fitted = []
    for member in runs:
        model = build_head(head, member.params)
        model.fit(member.features, member.labels, member.prototypes, seed=member.seed)
        fitted.append(model)
    return fitted


def timed(function, device: str, repeats: int):
    """The result and the best of `repeats` timings (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = function()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return out, round(best, 2)


def main(sizes: list[int], heads: list[str], samples: int, device: str, repeats: int) -> dict:
    threads = use_threads()
    torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())  # torch's one-time optimizer import, before timing
    results: dict = {}
    for head in heads:
        train_batched(head, members(head, 1, 600, device))  # warm-up: first calls of every kernel
        for count in sizes:
            runs = members(head, count, samples, device)
            alone, alone_s = timed(lambda: separate(head, runs), device, repeats)  # noqa: B023
            together, together_s = timed(lambda: train_batched(head, runs), device, repeats)  # noqa: B023
            difference = max(float(np.abs(a.state[k] - b.head.state[k]).max())
                             for a, b in zip(alone, together) for k in a.state)
            results.setdefault(head, {})[str(count)] = {
                "separate_s": alone_s, "batched_s": together_s, "speedup": round(alone_s / together_s, 2),
                "training_samples_per_member": int(np.mean([len(m.labels) for m in runs])),
                "max_abs_difference": difference}
            print(json.dumps({"head": head, "members": count, **results[head][str(count)]}), flush=True)
    return {"benchmark": "batched_runs", "device": device, "threads": threads, "samples": samples, "repeats": repeats,
            "settings": SETTINGS, "shape": {"classes": CLASSES, "seen": CLASSES - UNSEEN, "feature_dim": FEATURE_DIM,
                                            "text_dim": TEXT_DIM},
            "machine": platform.processor() or platform.machine(), "results": results}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 5, 15])
    parser.add_argument("--heads", nargs="+", default=list(SETTINGS))
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=2, help="timings per measurement; the best is kept")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(json.dumps(main(args.members, args.heads, args.samples, args.device, args.repeats), indent=2))

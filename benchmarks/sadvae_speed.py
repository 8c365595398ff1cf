"""SA-DVAE's 10-epoch ZSL stage: zsar vs. the released code's way of doing the same work, same machine, same run.

Shapes of NTU-60 55/5 (SynSE split): 36,740 training features of 256 dims (55 seen classes), 1024-d text,
preset ntu60_synse (ls 160, ils 8, lr 3.389e-5, batch 32, dis_step 5), 10 epochs; after every epoch 500 text
latents per unseen class train a fresh classifier (300 full-batch steps) that is evaluated on the unseen test
features, and the best and last epoch's top-1 are kept, as the released code does.

- reference: the released code's structure: a per-sample torch Dataset behind a shuffling DataLoader, every
  loss term computed every iteration, default torch Adam, one thread (the figure the issue quotes: ~125 s);
  with `--device cuda` every batch moved to the GPU, as the released code does.
- zsar: SADVAEHead (reference_quirks = true, so it is the same model and noise), its epoch monitor doing the
  same per-epoch classifier and evaluation (both evaluate on the CPU with the same seeds); on the CPU with one
  thread and both cores, on a GPU with the iterations replayed from CUDA graphs and launched one by one.
Synthetic features with a learnable zero-shot structure (features = ReLU of a fixed random map of the class
text + noise), so the top-1 figures compare accuracy too: `--seeds N` trains N seeds per variant and reports
mean top-1 (`--first-seed`, `--only` split the seeds over parallel processes). `--scale` shrinks the sample
count for a smoke run. Prints JSON."""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head
from zsar.heads.configs import PRESETS
from zsar.heads.sadvae_model import (
    SADVAENetwork,
    Schedule,
    encode_batch,
    reference_step,
    text_latent_samples,
    train_latent_classifier,
)
from zsar.heads.torch_device import torch_threads

REFERENCE_SECONDS = 125.0  # the figure for the released code, this machine, one thread


def synthetic_problem(num_train: int, seen: int = 55, unseen: int = 5, test_per_class: int = 276, seed: int = 0):
    rng = np.random.default_rng(seed)
    classes = seen + unseen
    text = rng.standard_normal((classes, 1024)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    mapping = rng.standard_normal((1024, 256)).astype(np.float32) / 4

    def features(labels):
        clean = text[labels] @ mapping
        return np.maximum(clean + 0.8 * rng.standard_normal(clean.shape).astype(np.float32), 0)

    train_labels = rng.integers(0, seen, num_train)
    test_labels = np.repeat(np.arange(seen, classes), test_per_class)
    return features(train_labels), train_labels, features(test_labels), test_labels, text


class PerSampleDataset(torch.utils.data.Dataset):
    def __init__(self, x, labels, text):
        self.x, self.labels, self.text = x, labels, text

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), torch.from_numpy(self.text[self.labels[i]]), int(self.labels[i])


def reference_run(x, labels, test_x, test_labels, text, unseen, epochs: int, seed: int = 5,
                  device: str = "cpu") -> dict:
    """The released code's structure (see the module docstring); returns per-epoch test top-1 and seconds.
    On an accelerator each batch is moved to it, as the released code does."""
    p = PRESETS["ntu60_synse"]
    torch.manual_seed(seed)
    net = SADVAENetwork(x.shape[1], text.shape[1], p["latent"], p["style"]).to(device)
    vae_opt = torch.optim.Adam(net.vae_parameters(), lr=p["lr"])
    dis_opt = torch.optim.Adam(net.discriminator.parameters(), lr=p["lr"])
    loader = torch.utils.data.DataLoader(PerSampleDataset(x, labels, text), batch_size=p["batch_size"], shuffle=True,
                                         drop_last=True)
    steps = len(loader)
    unseen_text = torch.from_numpy(text[unseen])
    top1 = []
    start = time.perf_counter()
    for epoch in range(epochs):
        for i, (xb, yb, _) in enumerate(loader):
            xb, yb = xb.to(device), yb.to(device)
            w = Schedule.at(epoch, i, steps)
            noise_x, noise_y = torch.randn(2, len(xb), 1, device=device)
            lat = encode_batch(net, xb, yb, noise_x, noise_y)
            shuffles = torch.stack([torch.randperm(len(xb), device=device) for _ in range(4)]) \
                if i % p["dis_step"] == 0 else None
            reference_step(net, xb, yb, lat, w, shuffles, vae_opt, dis_opt)
        # the per-epoch evaluation: on the CPU and seeded as zsar's monitor is, and outside the training's random
        # stream (the classifier seeds torch's global generator, which the training draws come from here)
        cpu_net = copy.deepcopy(net).cpu()
        with torch.random.fork_rng(devices=[torch.device(device)] if torch.device(device).type == "cuda" else []):
            samples, targets = text_latent_samples(cpu_net, unseen_text, 500, True, torch.Generator().manual_seed(seed))
            classifier = train_latent_classifier(samples, targets, len(unseen), 300, 1e-3, True, seed)
        with torch.no_grad():
            mu, _ = cpu_net.encode_skeleton(torch.from_numpy(test_x))
            predicted = F.relu(classifier(mu[:, : net.latent])).argmax(1).numpy()
        top1.append(float(np.mean(np.asarray(unseen)[predicted] == test_labels) * 100))
    return {"seconds": time.perf_counter() - start, "epoch_top1": top1}


def zsar_run(x, labels, test_x, test_labels, text, seen, unseen, epochs: int, threads: int, seed: int = 5,
             device: str = "cpu", cuda_graph: bool = True) -> dict:
    names = [f"class {i}" for i in range(len(text))]
    protos = ClassPrototypes(np.arange(len(text)), names, text, "synthetic", [[n] for n in names], "synthetic")
    head = build_head("sadvae", {"preset": "ntu60_synse", "epochs": epochs, "reference_quirks": True,
                                 "feature_scaling": "none", "threads": threads, "device": device,
                                 "cuda_graph": cuda_graph})
    unseen_protos = protos.subset(unseen)

    def test_top1(h) -> float:
        predicted = np.asarray(unseen)[h.score(test_x, unseen_protos).argmax(1)]
        return float(np.mean(predicted == test_labels) * 100)

    start, scores = time.perf_counter(), []
    head.fit(x, labels, protos.subset(seen), seed=seed, monitor=lambda h: scores.append(test_top1(h)))
    return {"seconds": time.perf_counter() - start, "epoch_top1": scores}


def device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    models = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    return f"{models[0] if models else 'cpu'} ({torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 36,740 training samples")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--device", default="cpu", help="torch device of the training loops (cpu, cuda)")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per variant: mean top-1 over them")
    parser.add_argument("--first-seed", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated variant names to run (default: all)")
    args = parser.parse_args()
    on_cpu = torch.device(args.device).type == "cpu"
    num_train = int(36740 * args.scale)
    x, labels, test_x, test_labels, text = synthetic_problem(num_train)
    seen, unseen = list(range(55)), list(range(55, 60))
    result = {"shapes": {"train": list(x.shape), "text": list(text.shape), "seen": 55, "unseen": 5,
                         "test": list(test_x.shape)}, "epochs": args.epochs, "preset": PRESETS["ntu60_synse"],
              "reference_figure_seconds": REFERENCE_SECONDS, "device": device_name(args.device), "runs": {}}
    # warm the process up first (kernel dispatch, allocator: ~2 s once), so neither side pays it
    zsar_run(x[:2000], labels[:2000], test_x[:50], test_labels[:50], text, seen, unseen, 1, 1, device=args.device)
    variants = {}
    reference_name = "reference_1_thread" if on_cpu else f"reference_{args.device}"
    if not args.skip_reference:
        variants[reference_name] = lambda seed: reference_run(x, labels, test_x, test_labels, text, unseen,
                                                              args.epochs, seed, args.device)
    if on_cpu:
        for threads in (1, 2):
            variants[f"zsar_{threads}_thread"] = lambda seed, t=threads: zsar_run(
                x, labels, test_x, test_labels, text, seen, unseen, args.epochs, t, seed)
    else:  # the iterations replayed from CUDA graphs (the default), and launched one by one
        for graph in (True, False):
            variants[f"zsar_{args.device}" + ("" if graph else "_no_graph")] = lambda seed, g=graph: zsar_run(
                x, labels, test_x, test_labels, text, seen, unseen, args.epochs, 1, seed, args.device, g)
    if args.only:
        variants = {name: run for name, run in variants.items() if name in args.only.split(",")}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    for name, run in variants.items():
        with torch_threads(1 if name == reference_name else None):
            runs = [run(seed) for seed in seeds]
        result["runs"][name] = {
            "seeds": seeds,
            "seconds": round(float(np.mean([r["seconds"] for r in runs])), 2),  # per training run
            "seconds_per_seed": [round(r["seconds"], 2) for r in runs],
            "best_top1": round(float(np.mean([max(r["epoch_top1"]) for r in runs])), 2),  # mean over seeds
            "last_top1": round(float(np.mean([r["epoch_top1"][-1] for r in runs])), 2),
            "epoch_top1": [[round(v, 2) for v in r["epoch_top1"]] for r in runs],
        }
    reference = result["runs"].get(reference_name, {}).get("seconds")
    for name, run in result["runs"].items():
        if name.startswith("zsar"):
            run["speedup_vs_reference_figure"] = round(REFERENCE_SECONDS * args.scale / run["seconds"], 2)
            if reference:
                run["speedup_vs_reference_measured"] = round(reference / run["seconds"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

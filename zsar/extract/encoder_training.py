"""Seen-only training of an mmaction2 skeleton recognizer (ST-GCN, ST-GCN++, PoseC3D) on a zero-shot split.

Only samples of the training split whose class is *seen* are loaded; unseen classes never reach the
network. A seeded, class-stratified part of those samples is held out for validation, and the weights
with the best validation accuracy are kept. The optimiser and schedule follow mmaction2's skeleton
configs (SGD with Nesterov momentum, cosine decay per iteration). Each epoch ends with a resumable state
(`last.pth`); a rerun with the same data, split and options continues from there, or returns at once when
the run had finished. The result, `best.pth`, records the class set, split, seed and options.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from zsar.atomic import atomic_target, write_text_atomic
from zsar.class_lists.splits import ZeroShotSplit
from zsar.compute import torch_scope
from zsar.datasets.layouts import get_layout
from zsar.datasets.source import SampleSource
from zsar.errors import ZsarError
from zsar.extract.checkpoint_file import load_torch_file
from zsar.extract.skeleton_encoder import SkeletonEncoder, make_spec
from zsar.features.schema import config_hash
from zsar.holdout import stratified_holdout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderTrainConfig:
    config: str = "stgcn"  # short name (stgcn, stgcnpp, posec3d, ...), a path inside mmaction2's configs, or a file
    epochs: int = 16
    batch_size: int = 16
    lr: float | None = None  # None: mmaction2's 0.1 per 128 samples, scaled linearly to batch_size
    weight_decay: float = 5e-4
    momentum: float = 0.9
    frames: int | None = None  # frames per clip; None: the config's
    num_person: int | None = None  # bodies per sample; None: as many as the data has, at most the config's
    feats: tuple[str, ...] | None = None  # j / b / jm / bm streams; None: the config's
    val_fraction: float = 0.1  # of the seen training samples, per class, held out for checkpoint selection
    device: str = "cpu"
    seed: int = 0
    threads: int | None = None  # torch CPU threads; None: torch's default

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or (self.lr is not None and self.lr <= 0):
            raise ZsarError("epochs, batch_size and lr must be positive")
        if not 0 <= self.val_fraction < 1:
            raise ZsarError(f"val_fraction must be in [0, 1), not {self.val_fraction}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else 0.1 * self.batch_size / 128

    def to_dict(self) -> dict:
        out = asdict(self)
        out["feats"] = list(self.feats) if self.feats else None
        return out


def seen_training_rows(source: SampleSource, split: ZeroShotSplit, train_split: str = "train") -> np.ndarray:
    """Rows the encoder may learn from: the training split's samples of seen classes, nothing else."""
    meta = source.metadata
    if len(source.class_names) != split.num_classes:
        raise ZsarError(f"split {split.name!r} has {split.num_classes} classes, dataset {source.name!r} has "
                        f"{len(source.class_names)}")
    in_split = (meta["split"] == train_split).to_numpy()
    if not in_split.any():
        raise ZsarError(f"dataset {source.name!r} has no samples in split {train_split!r}; it has "
                        f"{sorted(meta['split'].unique())}")
    rows = np.nonzero(in_split & meta["label"].isin(split.seen).to_numpy())[0]
    if len(set(meta["label"].iloc[rows])) < 2:
        raise ZsarError(f"fewer than two seen classes have training samples in split {train_split!r}")
    return rows


def _load_rows(source: SampleSource, rows: np.ndarray, progress: bool):
    data, kept, skipped = [], [], []
    for row in tqdm(rows.tolist(), desc=f"load {source.name}", unit="sample", disable=not progress, leave=False):
        try:
            data.append(source.load(row))
            kept.append(row)
        except (ZsarError, ValueError, OSError) as exc:
            skipped.append({"sample_id": str(source.metadata["sample_id"].iloc[row]), "error": str(exc)})
            log.warning("skipping %s: %s", skipped[-1]["sample_id"], exc)
    if not data:
        raise ZsarError(f"no training sample of {source.name!r} could be loaded (first error: "
                        f"{skipped[0]['error'] if skipped else 'none'})")
    return data, np.array(kept, dtype=np.int64), skipped


def _batch(prepared: list, positions: np.ndarray, encoder: SkeletonEncoder, rng) -> torch.Tensor:
    clips = [encoder.train_clip(prepared[p], rng) for p in positions]
    return torch.from_numpy(np.stack(clips)).to(encoder.device)


def evaluate_accuracy(encoder: SkeletonEncoder, prepared: list, targets: np.ndarray, positions: np.ndarray,
                      batch_size: int) -> float:
    """Top-1 accuracy with test-mode clips (deterministic)."""
    correct = 0
    for start in range(0, len(positions), batch_size):
        chunk = positions[start : start + batch_size]
        clips = np.stack([encoder.test_clips(prepared[p]) for p in chunk])
        _, logits, _ = encoder.features(clips)
        correct += int((logits.argmax(1) == targets[chunk]).sum())
    return correct / max(len(positions), 1)


def train_skeleton_encoder(source: SampleSource, split: ZeroShotSplit, out_dir: str | Path,
                           config: EncoderTrainConfig | None = None, train_split: str = "train",
                           progress: bool = True) -> Path:
    """Train on the seen classes of `split` (training samples only); returns the path of `best.pth`."""
    config = config or EncoderTrainConfig()
    out = Path(out_dir)
    rows = seen_training_rows(source, split, train_split)
    run_key = config_hash({"config": config.to_dict(), "split": split.to_dict(), "dataset": source.name,
                           "samples": source.metadata["sample_id"].iloc[rows].tolist()})
    best_path = out / "best.pth"
    if _finished(best_path, run_key):
        log.info("encoder already trained for this split and options: %s", best_path)
        return best_path
    # tiny weights otherwise slow CPU training down several times: denormals flushed, inside the scope only
    with torch_scope(config.threads or None, flush_denormal=True):
        return _train(source, split, rows, run_key, out, config, train_split, progress)


def _train(source: SampleSource, split: ZeroShotSplit, rows, run_key: str, out: Path, config: EncoderTrainConfig,
           train_split: str, progress: bool) -> Path:
    """Training (resumed from `last.pth` when it belongs to this run), then `best.pth` and the training log."""
    best_path, last_path = out / "best.pth", out / "last.pth"
    data = _training_data(source, rows, config, progress)
    fit, val = stratified_holdout(data.labels, config.val_fraction, config.seed)
    data.encoder.init_weights()
    net = data.encoder.network
    optimiser = torch.optim.SGD(net.parameters(), lr=config.learning_rate, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
    rng = np.random.RandomState(config.seed)
    state = _resumed_state(last_path, run_key, net, optimiser, rng)
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        loss = _train_epoch(data, fit, epoch, optimiser, rng, config, progress)
        _end_epoch(data, fit, val, epoch, loss, state, config)
        with atomic_target(last_path) as tmp:
            torch.save({"run_key": run_key, "state_dict": net.state_dict(), "optimizer": optimiser.state_dict(),
                        "rng": rng.get_state(), "torch_rng": torch.get_rng_state(), **state}, tmp)

    net.load_state_dict(state["best_state"])
    training = {"run_key": run_key, "complete": True, "dataset": source.name, "train_split": train_split,
                "split": split.to_dict(), "seed": config.seed, "options": config.to_dict(),
                "samples": int(len(data.rows)), "fit_samples": int(len(fit)), "val_samples": int(len(val)),
                "skipped": data.skipped, "best_epoch": state["best_epoch"], "best_val_acc": state["best_acc"],
                "log": state["log"]}
    data.encoder.spec = replace(data.encoder.spec, training=training)
    data.encoder.save(best_path)
    write_text_atomic(out / "train_log.json", json.dumps(training, indent=2))
    last_path.unlink(missing_ok=True)
    return best_path


def _finished(best_path: Path, run_key: str) -> bool:
    """Whether `best_path` is this run's finished result; a file there that zsar cannot read is an error (it is
    never overwritten)."""
    if not best_path.is_file():
        return False
    try:
        done = load_torch_file(best_path)["meta"]["zsar"]["training"]
    except Exception as exc:  # damaged, or not written by zsar: never overwrite it
        raise ZsarError(f"exists but is not a readable zsar training result ({type(exc).__name__}); "
                        "train into another folder", best_path) from exc
    return bool(done.get("run_key") == run_key and done.get("complete"))


@dataclass
class _TrainingData:
    """The loaded samples prepared for the encoder (network built, not yet initialised), with their dataset rows,
    global labels and positions among the trained classes."""

    encoder: SkeletonEncoder
    prepared: list
    rows: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    skipped: list


def _training_data(source: SampleSource, rows: np.ndarray, config: EncoderTrainConfig,
                   progress: bool) -> _TrainingData:
    """Load the rows (skipping unreadable samples), build the network for the classes they hold and prepare
    every sample for it."""
    data, rows, skipped = _load_rows(source, rows, progress)
    if source.layout is None:
        raise ZsarError(f"dataset {source.name!r} does not say its skeleton layout")
    layout = get_layout(source.layout)
    channels = {kp.shape[-1] for kp in data}
    if len(channels) != 1:
        raise ZsarError(f"samples of {source.name!r} mix channel counts {sorted(channels)}")
    meta = source.metadata
    labels = meta["label"].to_numpy()[rows]
    trained = sorted(set(labels.tolist()))
    spec = make_spec(config.config, layout.name, channels.pop(), source.class_names, trained,
                     clip_len=config.frames, feats=config.feats, num_person=config.num_person)
    if config.num_person is None:  # no padding beyond the bodies the data has
        persons = min(spec.input.num_person, max(kp.shape[0] for kp in data))
        spec = replace(spec, input=replace(spec.input, num_person=persons))
    shapes = meta["img_shape"].to_numpy()[rows] if "img_shape" in meta else [None] * len(rows)
    torch.manual_seed(config.seed)
    encoder = SkeletonEncoder(spec, config.device)
    prepared = [encoder.prepare(kp, shape) for kp, shape in zip(data, shapes)]
    return _TrainingData(encoder, prepared, rows, labels, np.searchsorted(trained, labels), skipped)


def _resumed_state(last_path: Path, run_key: str, net: torch.nn.Module, optimiser: torch.optim.Optimizer,
                   rng: np.random.RandomState) -> dict:
    """The training state after the last finished epoch: fresh, or restored (with the network, optimiser and random
    states) from `last_path` when it belongs to this run."""
    state = {"epoch": 0, "best_acc": -1.0, "best_epoch": 0, "best_state": None, "log": []}
    if last_path.is_file():
        saved = load_torch_file(last_path)
        if saved.get("run_key") == run_key:
            net.load_state_dict(saved["state_dict"])
            optimiser.load_state_dict(saved["optimizer"])
            rng.set_state(saved["rng"])
            torch.set_rng_state(saved["torch_rng"])
            state = {k: saved[k] for k in state}
            log.info("resuming encoder training after epoch %d", state["epoch"])
        else:
            log.info("ignoring %s: it belongs to a different run", last_path)
    return state


def _train_epoch(data: _TrainingData, fit: np.ndarray, epoch: int, optimiser: torch.optim.Optimizer,
                 rng: np.random.RandomState, config: EncoderTrainConfig, progress: bool) -> float:
    """One pass over the fit samples in a seeded order, the learning rate on its cosine schedule per iteration;
    returns the mean loss."""
    encoder = data.encoder
    encoder.network.train()
    steps_per_epoch = math.ceil(len(fit) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    order = rng.permutation(fit)
    losses = []
    bar = tqdm(total=len(order), desc=f"train {encoder.spec.name} epoch {epoch}/{config.epochs}", unit="sample",
               disable=not progress, leave=False)
    for step in range(steps_per_epoch):
        batch = order[step * config.batch_size : (step + 1) * config.batch_size]
        it = (epoch - 1) * steps_per_epoch + step
        for group in optimiser.param_groups:
            group["lr"] = config.learning_rate * 0.5 * (1 + math.cos(math.pi * it / total_steps))
        x = _batch(data.prepared, batch, encoder, rng)
        y = torch.from_numpy(data.targets[batch]).to(encoder.device)
        loss = torch.nn.functional.cross_entropy(encoder.logits(x), y)
        if not torch.isfinite(loss):
            raise ZsarError(f"encoder training diverged: loss is {loss.item()} at epoch {epoch}, step {step}; "
                            f"try a lower lr than {config.learning_rate}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        bar.update(len(batch))
        bar.set_postfix(loss=f"{np.mean(losses):.3f}")
    bar.close()
    return float(np.mean(losses))


def _end_epoch(data: _TrainingData, fit: np.ndarray, val: np.ndarray, epoch: int, loss: float, state: dict,
               config: EncoderTrainConfig) -> None:
    """Validation accuracy (training accuracy without validation samples) into the log; the best weights kept."""
    check = val if len(val) else fit
    acc = evaluate_accuracy(data.encoder, data.prepared, data.targets, check, config.batch_size)
    state["log"].append({"epoch": epoch, "loss": loss, "val_acc": acc,
                         "selected_on": "validation" if len(val) else "training"})
    log.info("epoch %d: loss %.4f, %s accuracy %.3f", epoch, loss, "validation" if len(val) else "training", acc)
    if acc > state["best_acc"]:
        state.update(best_acc=acc, best_epoch=epoch,
                     best_state={k: v.detach().cpu().clone() for k, v in data.encoder.network.state_dict().items()})
    state["epoch"] = epoch

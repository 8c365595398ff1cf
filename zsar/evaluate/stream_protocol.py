"""The zero-shot segmentation protocol on a per-frame cache: hold classes out, train, choose on validation, score.

For each held-out class set and seed:
1. Training streams: the `train` streams with no frame of a held-out class (FACT-CLIP's rule: a stream with one
   held-out frame is removed whole, so held-out classes never reach a head in training).
2. Validation streams: the `val` streams, likewise free of held-out classes. After every epoch the head labels
   them against every class (seen, held-out and background), and the score (`SELECTION_METRIC`) goes into a
   curve; the epoch rule (`epoch_choice`) picks the snapshot to keep. The validation problem is the seen-class
   segmentation with held-out classes as wrong answers: it never shows a held-out class's frames.
   `select_on_test` picks the snapshot on the test streams instead (the released codes' protocol), labelled.
3. Test streams: every `test` stream, labelled against every class; frame accuracy, Edit and F1@{10,25,50} on all,
   seen and held-out classes (`segmentation_metrics`), with the background convention stated; the last epoch's
   scores (with the same calibration) are kept beside the chosen ones.
4. Heads that can score untrained classes (zero-shot heads) use calibrated stacking at test, its shift chosen on
   the validation streams with a pseudo-held-out head (`stream_calibration`); the uncalibrated scores are kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zsar.datasets.streams import Stream
from zsar.errors import ZsarError
from zsar.evaluate.epoch_choice import EPOCH_RULES, selection_scores
from zsar.evaluate.segmentation_metrics import per_class_f1, score_streams
from zsar.evaluate.stream_calibration import choose_gamma, pseudo_held_out, shifted_scores, stacked_scores
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.stream_heads import StreamHead, make_stream_head
from zsar.progress import epoch as report_epoch
from zsar.progress import stage

SELECTION_METRIC = "mean of acc and f1@25"


@dataclass(frozen=True)
class HeldOut:
    """One zero-shot split of a stream dataset: its name and the held-out class ids."""

    name: str
    classes: tuple[int, ...]


@dataclass(frozen=True)
class StreamProtocol:
    epoch_rule: str = "smoothed"
    select_on_test: bool = False
    timelines: int = 4  # test streams whose frame labels go into the report's timeline strips
    calibrate: bool = True  # calibrated stacking for heads that score untrained classes (stream_calibration.py)

    def __post_init__(self) -> None:
        if self.epoch_rule not in EPOCH_RULES:
            raise ZsarError(f"epoch_choice must be one of {EPOCH_RULES}, not {self.epoch_rule!r}")
        if self.timelines < 0:
            raise ZsarError(f"timelines must be 0 or more, not {self.timelines}")


def selection_score(scores: dict) -> float:
    return (scores["acc"] + scores["f1@25"]) / 2


def split_streams(streams: Sequence[Stream], held_out: HeldOut, select_on_test: bool) -> dict[str, list[Stream]]:
    """Training, selection and test streams of one held-out split (see the module docstring)."""
    drop = set(held_out.classes)
    clean = [s for s in streams if not drop & s.classes()]
    parts = {"train": [s for s in clean if s.split == "train"], "test": [s for s in streams if s.split == "test"]}
    parts["select"] = parts["test"] if select_on_test else [s for s in clean if s.split == "val"]
    for part, what in (("train", "training"), ("test", "test"),
                       ("select", "test" if select_on_test else "validation")):
        if not parts[part]:
            hint = {"train": "every training stream holds a held-out frame: build shorter streams or hold out "
                             "fewer classes",
                    "select": "build validation streams (validation_fraction) or free some of held-out classes",
                    "test": "the cache has no test streams"}[part]
            raise ZsarError(f"split {held_out.name!r}: no {what} streams ({hint})")
    parts["removed"] = [s for s in streams if s.split == "train" and drop & s.classes()]
    return parts


def predictions(head: StreamHead, streams: Sequence[Stream], classes: np.ndarray, prototypes: ClassPrototypes,
                gamma: float = 0.0) -> list[np.ndarray]:
    return [classes[shifted_scores(head, s, classes, prototypes, gamma).argmax(axis=1)] for s in streams]


def _scored(head, streams, classes, prototypes, background, held_out, gamma=0.0) -> tuple[dict, list[np.ndarray]]:
    preds = predictions(head, streams, classes, prototypes, gamma)
    return score_streams(preds, [s.labels for s in streams], background, held_out), preds


def calibration(parts: dict, prototypes: ClassPrototypes, background: Sequence[int], head_name: str, params: dict,
                held_out: HeldOut, seed: int, epochs: int) -> dict:
    """gamma for calibrated stacking, chosen on the validation streams with a pseudo-held-out head (see
    `stream_calibration`); gamma 0 with the reason when the validation problem cannot be built."""
    pseudo = pseudo_held_out(parts["train"], background, len(held_out.classes), seed)
    train = [s for s in parts["train"] if not set(pseudo) & s.classes()]
    if not pseudo or not train:
        return {"gamma": 0.0, "pseudo_held_out": list(pseudo), "note": "no validation problem: not calibrated"}
    stage(f"{head_name} calibration on {held_out.name}, seed {seed}")
    head = make_stream_head(head_name, (params or {}) | {"seed": seed, "epochs": epochs}).fit(train, prototypes)
    classes = prototypes.class_ids
    scores = np.concatenate([head.scores(s.features, classes, prototypes) for s in parts["select"]])
    truth = np.concatenate([s.labels for s in parts["select"]])
    return choose_gamma(scores, truth, classes, head.classes, pseudo) | {"pseudo_held_out": list(pseudo),
                                                                        "training_streams": len(train)}


def run_stream_split(streams: Sequence[Stream], prototypes: ClassPrototypes, background: Sequence[int],
                     head_name: str, params: dict, held_out: HeldOut, seed: int,
                     protocol: StreamProtocol = StreamProtocol()) -> dict:
    """One run: train the head on one held-out split, choose its epoch (and gamma), score the test streams."""
    started = time.perf_counter()
    parts = split_streams(streams, held_out, protocol.select_on_test)
    classes = prototypes.class_ids
    head = make_stream_head(head_name, (params or {}) | {"seed": seed})
    curve, snapshots = [], []

    def after_epoch(epoch: int, fitted: StreamHead) -> None:
        scores, _ = _scored(fitted, parts["select"], classes, prototypes, background, ())
        curve.append(selection_score(scores))
        snapshots.append(fitted.state())
        report_epoch(epoch, head.config.epochs)

    stage(f"{head_name} on {held_out.name}, seed {seed}")
    head.fit(parts["train"], prototypes, after_epoch=after_epoch)
    rule = "best" if protocol.select_on_test else protocol.epoch_rule
    chosen = int(np.argmax(selection_scores(curve, rule)))
    calibrated = calibration(parts, prototypes, background, head_name, params, held_out, seed, chosen + 1) \
        if protocol.calibrate and head.zero_shot else None
    gamma = calibrated["gamma"] if calibrated else 0.0
    last, _ = _scored(head, parts["test"], classes, prototypes, background, held_out.classes, gamma)
    head.load_state(snapshots[chosen])
    raw = [head.scores(s.features, classes, prototypes) for s in parts["test"]]  # scored once for both below
    gts = [s.labels for s in parts["test"]]
    preds = [classes[r.argmax(axis=1)] for r in raw]
    plain = score_streams(preds, gts, background, held_out.classes)
    if calibrated:
        preds = [classes[stacked_scores(r, classes, head.classes, gamma).argmax(axis=1)] for r in raw]
    scores = score_streams(preds, gts, background, held_out.classes) if calibrated else plain
    return {
        "head": head_name, "params": head.config.__dict__, "split": held_out.name,
        "held_out": list(held_out.classes), "seed": seed, "epoch_rule": rule,
        "selected_on": "test (the released codes' protocol)" if protocol.select_on_test else "validation streams",
        "chosen_epoch": chosen + 1, "curve": [float(v) for v in curve], "metrics": scores, "metrics_last": last,
        "metrics_uncalibrated": plain, "calibration": calibrated,
        "per_class_f1": {int(k): float(v) for k, v in per_class_f1(preds, gts, 0.5, background).items()},
        "streams": {k: len(parts[k]) for k in ("train", "removed", "select", "test")},
        "timelines": [{"stream_id": s.stream_id, "truth": s.labels.tolist(), "predicted": p.tolist()}
                      for s, p in list(zip(parts["test"], preds, strict=True))[:protocol.timelines]],
        "seconds": round(time.perf_counter() - started, 2),
    }


def summarise_runs(runs: Sequence[dict], keys: Sequence[str] = ("acc", "edit", "f1@10", "f1@25", "f1@50",
                                                                 "acc_seen", "acc_unseen", "f1@25_seen",
                                                                 "f1@25_unseen")) -> list[dict]:
    """Per head: mean and standard error over its runs of each metric: chosen epoch (calibrated where the head is
    zero-shot), last epoch (same calibration) and chosen epoch without calibration ("_plain")."""
    rows = []
    for head in dict.fromkeys(r["head"] for r in runs):
        mine = [r for r in runs if r["head"] == head]
        row = {"head": head, "runs": len(mine), "seconds": round(float(np.mean([r["seconds"] for r in mine])), 1)}
        for source, suffix in (("metrics", ""), ("metrics_last", "_last"), ("metrics_uncalibrated", "_plain")):
            for key in keys:
                values = np.array([r[source].get(key, np.nan) for r in mine], dtype=float)
                values = values[np.isfinite(values)]
                row[key + suffix] = float(values.mean()) if values.size else None
                row[key + suffix + "_se"] = float(values.std(ddof=1) / np.sqrt(values.size)) \
                    if values.size > 1 else None
        rows.append(row)
    return rows

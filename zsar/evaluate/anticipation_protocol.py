"""The zero-shot anticipation protocol on a per-frame cache: hold classes out, train, choose on validation, score.

For each held-out class set and seed (the streams are split exactly as for segmentation, `split_streams`):
1. Training samples come from the `train` streams with no frame of a held-out class, so a held-out class is never
   a training target and never observed in training.
2. Validation samples come from the `val` streams, likewise free of held-out classes. After every epoch the head
   scores them against every action class (seen and held out); the mean of top-1 accuracy and class-mean top-5
   recall goes into a curve, and the epoch rule picks the snapshot to keep (`select_on_test`: on the test
   samples instead, the released codes' protocol, labelled).
3. Test samples come from every `test` stream, scored against every action class (background is never a next
   action): top-1, top-5 and class-mean top-5 recall on all, seen and held-out targets (`anticipation_metrics`).
4. Heads that score untrained classes through their text use calibrated stacking, its shift chosen on the
   validation samples with a pseudo-held-out head (`stream_calibration.choose_gamma`); the uncalibrated and the
   last epoch's scores are kept beside the chosen ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zsar.datasets.anticipation import (
    AnticipationSample,
    AnticipationWindow,
    RowGeometry,
    anticipation_samples,
    check_some_samples,
)
from zsar.datasets.streams import Stream
from zsar.errors import ZsarError
from zsar.evaluate.anticipation_metrics import ranked, score_anticipation
from zsar.evaluate.epoch_choice import EPOCH_RULES, selection_scores
from zsar.evaluate.stream_calibration import choose_gamma, pseudo_held_out, stacked_scores
from zsar.evaluate.stream_protocol import HeldOut, split_streams, summarise_runs
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.anticipation_heads import AnticipationHead, make_anticipation_head
from zsar.progress import epoch as report_epoch
from zsar.progress import stage

SELECTION_METRIC = "mean of top-1 and class-mean top-5 recall"


@dataclass(frozen=True)
class AnticipationProtocol:
    window: AnticipationWindow = AnticipationWindow()
    geometry: RowGeometry = RowGeometry()
    frame_rate: float | None = None
    epoch_rule: str = "smoothed"
    select_on_test: bool = False
    calibrate: bool = True
    examples: int = 6  # test samples listed in the report with their observed past and ranked predictions

    def __post_init__(self) -> None:
        if self.epoch_rule not in EPOCH_RULES:
            raise ZsarError(f"epoch_choice must be one of {EPOCH_RULES}, not {self.epoch_rule!r}")
        if self.examples < 0:
            raise ZsarError(f"examples must be 0 or more, not {self.examples}")


@dataclass
class Part:
    """Streams of one role and their samples (sample.stream indexes `streams`)."""

    streams: list[Stream]
    samples: list[AnticipationSample]
    skipped: dict[str, int]

    def truth(self) -> np.ndarray:
        return np.array([s.target for s in self.samples], dtype=np.int64)


def sampled_parts(streams: Sequence[Stream], held_out: HeldOut, background: Sequence[int],
                  protocol: AnticipationProtocol) -> dict[str, Part]:
    """The training, selection and test streams of one split with their anticipation samples; a role without
    any sample is an error naming the longest history."""
    parts = split_streams(streams, held_out, protocol.select_on_test)
    out = {}
    for role, what in (("train", "training streams"), ("select", "selection streams"), ("test", "test streams")):
        samples, skipped = anticipation_samples(parts[role], protocol.window, protocol.geometry, background,
                                                protocol.frame_rate)
        check_some_samples(samples, parts[role], protocol.window, protocol.geometry, background,
                           f"{what} of split {held_out.name!r}")
        out[role] = Part(parts[role], samples, skipped)
    return out


def selection_score(metrics: dict) -> float:
    return (metrics["top1"] + metrics["recall5"]) / 2


def calibration(parts: dict[str, Part], prototypes: ClassPrototypes, classes: np.ndarray, background, name: str,
                params: dict, held_out: HeldOut, seed: int, epochs: int) -> dict:
    """gamma for calibrated stacking from a head trained without `len(held_out)` pseudo-held-out seen classes,
    chosen on the validation samples; gamma 0 with the reason when that problem cannot be built."""
    train = parts["train"]
    pseudo = pseudo_held_out(train.streams, background, len(held_out.classes), seed)
    keep = {i for i, s in enumerate(train.streams) if not set(pseudo) & s.classes()}
    samples = [s for s in train.samples if s.stream in keep]
    truth = parts["select"].truth()
    if not pseudo or not samples or not np.isin(truth, pseudo).any():
        return {"gamma": 0.0, "pseudo_held_out": list(pseudo), "note": "no validation problem: not calibrated"}
    stage(f"{name} calibration on {held_out.name}, seed {seed}")
    head = make_anticipation_head(name, (params or {}) | {"seed": seed, "epochs": epochs})
    head.fit(train.streams, samples, prototypes)
    scores = head.scores(parts["select"].streams, parts["select"].samples, classes, prototypes)
    return choose_gamma(scores, truth, classes, head.classes, pseudo) | {"pseudo_held_out": list(pseudo),
                                                                        "training_samples": len(samples)}


def examples(part: Part, scores: np.ndarray, classes: np.ndarray, held_out: Sequence[int], count: int) -> list[dict]:
    """A few test samples (held-out targets first, then seen ones, alternating) with their recent past and the
    five best predictions."""
    unseen = [i for i, s in enumerate(part.samples) if s.target in set(held_out)]
    seen = [i for i, s in enumerate(part.samples) if s.target not in set(held_out)]
    order = [i for pair in zip(unseen, seen, strict=False) for i in pair] + unseen[len(seen):] + seen[len(unseen):]
    best = ranked(scores, classes)[:, :5]
    return [{"stream_id": part.streams[part.samples[i].stream].stream_id, "rows": [part.samples[i].start,
             part.samples[i].end], "action_start": part.samples[i].action_start,
             "recent": list(part.samples[i].history[-3:]), "target": part.samples[i].target,
             "predicted": best[i].tolist()} for i in order[:count]]


def run_anticipation_split(streams: Sequence[Stream], prototypes: ClassPrototypes, background: Sequence[int],
                           head_name: str, params: dict, held_out: HeldOut, seed: int,
                           protocol: AnticipationProtocol = AnticipationProtocol(), label: str | None = None) -> dict:
    """One run: train the head on one held-out split, choose its epoch (and gamma), score the test samples."""
    started = time.perf_counter()
    parts = sampled_parts(streams, held_out, background, protocol)
    classes = np.array([c for c in prototypes.class_ids if c not in set(background)], dtype=np.int64)
    head = make_anticipation_head(head_name, (params or {}) | {"seed": seed})
    curve, snapshots = [], []
    select = parts["select"]

    def after_epoch(epoch: int, fitted: AnticipationHead) -> None:
        scores = fitted.scores(select.streams, select.samples, classes, prototypes)
        curve.append(selection_score(score_anticipation(scores, classes, select.truth())))
        snapshots.append(fitted.state())
        report_epoch(epoch, head.config.epochs)

    stage(f"{label or head_name} on {held_out.name}, seed {seed}")
    head.fit(parts["train"].streams, parts["train"].samples, prototypes, after_epoch=after_epoch)
    rule = "best" if protocol.select_on_test else protocol.epoch_rule
    chosen = int(np.argmax(selection_scores(curve, rule)))
    calibrated = calibration(parts, prototypes, classes, background, head_name, params, held_out, seed, chosen + 1) \
        if protocol.calibrate and head.zero_shot else None
    gamma = calibrated["gamma"] if calibrated else 0.0
    test, truth = parts["test"], parts["test"].truth()
    last_scores = head.scores(test.streams, test.samples, classes, prototypes)
    last = score_anticipation(stacked_scores(last_scores, classes, head.classes, gamma), classes, truth,
                              held_out.classes)
    head.load_state(snapshots[chosen])
    plain_scores = head.scores(test.streams, test.samples, classes, prototypes)  # scored once, shifted below
    scores = stacked_scores(plain_scores, classes, head.classes, gamma)
    return {
        "head": label or head_name, "head_name": head_name, "params": head.config.__dict__, "split": held_out.name,
        "held_out": list(held_out.classes), "seed": seed, "epoch_rule": rule,
        "selected_on": "test (the released codes' protocol)" if protocol.select_on_test else "validation samples",
        "chosen_epoch": chosen + 1, "curve": [float(v) for v in curve],
        "metrics": score_anticipation(scores, classes, truth, held_out.classes), "metrics_last": last,
        "metrics_uncalibrated": score_anticipation(plain_scores, classes, truth, held_out.classes),
        "calibration": calibrated,
        "samples": {role: len(p.samples) for role, p in parts.items()},
        "skipped": {role: p.skipped for role, p in parts.items()},
        "chance": {"top1": 100 / len(classes), "top5": 100 * min(5, len(classes)) / len(classes)},
        "examples": examples(test, scores, classes, held_out.classes, protocol.examples),
        "top1_correct": (ranked(scores, classes)[:, 0] == truth).tolist(),  # per test sample, for paired tests
        "seconds": round(time.perf_counter() - started, 2),
    }


def summarise_anticipation(runs: Sequence[dict], keys: Sequence[str] = (
        "top1", "top5", "recall5", "top1_seen", "top5_seen", "recall5_seen", "top1_unseen", "top5_unseen",
        "recall5_unseen")) -> list[dict]:
    """Per head: mean and standard error over its runs of each metric (chosen epoch, calibrated where the head is
    zero-shot), of the last epoch ("_last") and of the chosen epoch uncalibrated ("_plain")."""
    return summarise_runs(runs, keys)

"""The anticipation protocol: held-out classes never reach training, epoch chosen on validation, report fields."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.datasets.anticipation import AnticipationWindow, RowGeometry
from zsar.datasets.streams import Stream
from zsar.errors import ZsarError
from zsar.evaluate import anticipation_protocol as protocol_module
from zsar.evaluate.anticipation_protocol import AnticipationProtocol, run_anticipation_split, summarise_anticipation
from zsar.evaluate.stream_protocol import HeldOut
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.anticipation_heads import SGEARHead

D, BG = 7, 6
SMALL = {"epochs": 3, "width": 16, "heads": 2}
PROTOCOL = AnticipationProtocol(AnticipationWindow(tau_a=1, observe=6, min_observed=2), RowGeometry(), examples=3)


def toy_streams() -> list[Stream]:
    out, k = [], 0
    for split, n in (("train", 30), ("val", 8), ("test", 8)):
        for i in range(n):
            rng = np.random.default_rng(k)
            c, labels = int(rng.integers(6)), []
            for _ in range(3):
                labels += [c] * int(rng.integers(4, 8)) + [BG] * 2
                c = (c + int(rng.integers(1, 3))) % 6
            labels = np.array(labels)
            features = np.eye(D, dtype=np.float32)[labels] + rng.normal(scale=0.3, size=(len(labels), D)).astype(
                np.float32)
            out.append(Stream(f"{split}{i}", split, labels, features))
            k += 1
    return out


def prototypes() -> ClassPrototypes:
    vectors = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    names = [f"c{i}" for i in range(7)]
    return ClassPrototypes(np.arange(7), names, vectors, "names", [[n] for n in names], "toy", None)


def test_held_out_classes_never_reach_training_and_the_run_is_complete(monkeypatch):
    fitted = []
    original = SGEARHead.fit

    def spy(self, streams, samples, protos, after_epoch=None):
        fitted.append((streams, samples))
        return original(self, streams, samples, protos, after_epoch)

    monkeypatch.setattr(SGEARHead, "fit", spy)
    run = run_anticipation_split(toy_streams(), prototypes(), (BG,), "sgear", SMALL, HeldOut("h", (2,)), 0, PROTOCOL)
    assert fitted  # the main head and the pseudo-held-out head of the calibration
    for streams, samples in fitted:
        assert all(s.target != 2 for s in samples)
        assert all(2 not in streams[i].classes() for i in {s.stream for s in samples})
    assert run["selected_on"] == "validation samples" and len(run["curve"]) == 3
    assert 1 <= run["chosen_epoch"] <= 3 and run["calibration"]["pseudo_held_out"]
    assert run["metrics"]["count_unseen"] > 0 and run["chance"]["top1"] == pytest.approx(100 / 6)
    assert len(run["examples"]) == 3 and run["examples"][0]["target"] == 2  # held-out targets shown first
    assert BG not in {c for ex in run["examples"] for c in ex["predicted"]}  # background is never a next action
    assert len(run["top1_correct"]) == run["samples"]["test"]
    summary = summarise_anticipation([run])
    assert summary[0]["head"] == "sgear" and summary[0]["top1"] == run["metrics"]["top1"]


def test_select_on_test_is_labelled_and_baselines_are_not_calibrated():
    protocol = AnticipationProtocol(PROTOCOL.window, PROTOCOL.geometry, select_on_test=True)
    run = run_anticipation_split(toy_streams(), prototypes(), (BG,), "pooled_linear", SMALL, HeldOut("h", (2,)), 0,
                                 protocol)
    assert run["selected_on"].startswith("test") and run["calibration"] is None
    assert run["metrics"]["top1_unseen"] == 0.0  # a supervised baseline cannot name a held-out class


def test_a_split_without_samples_is_an_error(monkeypatch):
    long_tau = AnticipationProtocol(AnticipationWindow(tau_a=100, observe=6), RowGeometry())
    with pytest.raises(ZsarError, match="no anticipation sample in the training streams of split 'h'"):
        run_anticipation_split(toy_streams(), prototypes(), (BG,), "successor", {}, HeldOut("h", (2,)), 0, long_tau)
    with pytest.raises(ZsarError, match="epoch_choice"):
        AnticipationProtocol(epoch_rule="median")
    assert protocol_module.SELECTION_METRIC.startswith("mean of top-1")


def test_epochs_and_gamma_are_chosen_on_validation_samples_only(monkeypatch):
    calls = []
    original = SGEARHead.scores

    def spy(self, streams, samples, classes, protos=None):
        calls.append({streams[i].split for i in {s.stream for s in samples}})
        return original(self, streams, samples, classes, protos)

    monkeypatch.setattr(SGEARHead, "scores", spy)
    run = run_anticipation_split(toy_streams(), prototypes(), (BG,), "sgear", SMALL, HeldOut("h", (2,)), 0, PROTOCOL)
    first_test = next(i for i, c in enumerate(calls) if "test" in c)
    assert all(c == {"val"} for c in calls[:first_test])
    assert first_test == SMALL["epochs"] + 1  # one per epoch, then the calibration head's
    assert all(c == {"test"} for c in calls[first_test:]) and run["calibration"]["pseudo_held_out"]

"""The segmentation protocol: held-out streams never reach training, epoch chosen on validation, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.datasets.streams import Stream
from zsar.errors import ZsarError
from zsar.evaluate.stream_calibration import choose_gamma, harmonic_accuracy, pseudo_held_out
from zsar.evaluate.stream_protocol import HeldOut, StreamProtocol, run_stream_split, split_streams, summarise_runs
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import stream_heads

D, E, BACKGROUND = 8, 8, 5
SMALL = {"epochs": 4, "layers": 2, "channels": 8}


def toy(split: str, k: int, classes, seed: int) -> Stream:
    rng = np.random.default_rng(seed)
    parts = []
    for c in classes:
        parts += [c] * int(rng.integers(5, 9)) + [BACKGROUND] * 2
    labels = np.array(parts)
    features = np.eye(D, dtype=np.float32)[labels] * 2 + rng.normal(scale=0.3, size=(len(labels), D)).astype(
        np.float32)
    return Stream(f"{split}{k}", split, labels, features)


def toy_streams() -> list[Stream]:
    streams, k = [], 0
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        for i in range(n):
            classes = np.random.default_rng(100 + k).permutation(5)[:3].tolist()
            streams.append(toy(split, i, classes, k))
            k += 1
    return streams


def prototypes() -> ClassPrototypes:
    vectors = np.eye(E, dtype=np.float32)[:6]
    return ClassPrototypes(np.arange(6), [f"c{i}" for i in range(6)], vectors, "names", [[str(i)] for i in range(6)],
                           "toy")


def test_streams_with_a_held_out_frame_are_removed_from_training_and_validation():
    streams = toy_streams()
    parts = split_streams(streams, HeldOut("h", (4,)), select_on_test=False)
    assert parts["train"] and all(4 not in s.classes() for s in parts["train"] + parts["select"])
    assert {s.stream_id for s in parts["removed"]} == {s.stream_id for s in streams
                                                       if s.split == "train" and 4 in s.classes()}
    assert [s.stream_id for s in parts["test"]] == [s.stream_id for s in streams if s.split == "test"]
    on_test = split_streams(streams, HeldOut("h", (4,)), select_on_test=True)
    assert on_test["select"] is on_test["test"]
    with pytest.raises(ZsarError, match="no training streams"):
        split_streams(streams, HeldOut("h", (0, 1, 2, 3, 4)), select_on_test=False)


def test_no_held_out_class_reaches_a_head_in_training(monkeypatch):
    seen_labels = []
    original = stream_heads.StreamHead.fit

    def spying(self, streams, prototypes, after_epoch=None):
        seen_labels.append(set().union(*(s.classes() for s in streams)))
        return original(self, streams, prototypes, after_epoch)

    monkeypatch.setattr(stream_heads.StreamHead, "fit", spying)
    run_stream_split(toy_streams(), prototypes(), (BACKGROUND,), "text_segmentation", SMALL, HeldOut("h", (2,)), 0)
    assert len(seen_labels) == 2  # the head, and the calibration head without its pseudo-held-out classes too
    assert all(2 not in labels for labels in seen_labels)
    assert seen_labels[1] < seen_labels[0]


def test_a_run_reports_the_chosen_epoch_its_curve_and_both_views(tmp_path):
    run = run_stream_split(toy_streams(), prototypes(), (BACKGROUND,), "mstcn", SMALL, HeldOut("h", (2,)), 0)
    assert len(run["curve"]) == 4 and 1 <= run["chosen_epoch"] <= 4
    assert run["selected_on"] == "validation streams" and run["calibration"] is None  # MS-TCN: nothing to calibrate
    assert run["metrics"]["acc_unseen"] == 0.0  # a supervised head cannot label a held-out class
    for key in ("acc", "edit", "f1@10", "f1@25", "f1@50", "acc_seen", "f1@50_unseen"):
        assert key in run["metrics"] and key in run["metrics_last"]
    assert run["streams"]["train"] + run["streams"]["removed"] == 12
    on_test = run_stream_split(toy_streams(), prototypes(), (BACKGROUND,), "mstcn", SMALL, HeldOut("h", (2,)), 0,
                               StreamProtocol(select_on_test=True))
    assert on_test["selected_on"].startswith("test") and on_test["epoch_rule"] == "best"
    rows = summarise_runs([run, on_test])
    assert rows[0]["runs"] == 2 and rows[0]["acc_se"] is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_choose_gamma_matches_a_naive_search_over_every_margin(seed):
    rng = np.random.default_rng(seed)
    classes = np.arange(5)
    scores = rng.normal(size=(200, 5)).round(1)  # rounding makes ties, as real scores can have
    scores[:, :3] += 1.0  # trained classes 0-2 score higher
    truth = rng.integers(-1, 5, size=200)
    best = choose_gamma(scores, truth, classes, np.array([0, 1, 2]), unseen=(3, 4))
    trained = np.isin(classes, [0, 1, 2])
    margins = scores[:, trained].max(1) - scores[:, ~trained].max(1)
    naive = []  # every gamma that changes something, tried one at a time
    edges = np.unique(margins[margins >= 0].round(6))
    for gamma in np.r_[0.0, (edges[:-1] + edges[1:]) / 2, edges[-1] + 1.0]:
        shifted = scores - gamma * trained[None, :]
        naive.append((harmonic_accuracy(classes[shifted.argmax(1)], truth, (3, 4))[2], gamma))
    top = max(h for h, _ in naive)
    assert best["harmonic"] == pytest.approx(top, abs=1e-12)
    shifted = scores - best["gamma"] * trained[None, :]
    assert harmonic_accuracy(classes[shifted.argmax(1)], truth, (3, 4))[2] == pytest.approx(top, abs=1e-12)
    assert best["harmonic"] > harmonic_accuracy(classes[scores.argmax(1)], truth, (3, 4))[2]


def test_pseudo_held_out_classes_are_seen_actions_never_background():
    streams = [s for s in toy_streams() if s.split == "train"]
    picked = pseudo_held_out(streams, (BACKGROUND,), 2, seed=3)
    assert len(picked) == 2 and BACKGROUND not in picked
    assert picked == pseudo_held_out(streams, (BACKGROUND,), 2, seed=3)
    assert pseudo_held_out(streams, (BACKGROUND,), 5, seed=3) == ()

"""Stream heads: one contract (fit / score / save / load identical), trained classes only, zero-shot scoring."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.datasets.streams import Stream
from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.stream_heads import STREAM_HEADS, StreamHead, make_stream_head, padded_batch

D, E = 8, 6


def toy_streams(n: int = 6, classes=(0, 1, 2), seed: int = 0) -> list[Stream]:
    """Streams of 3 segments; each class has its own feature direction, plus noise."""
    rng = np.random.default_rng(seed)
    centres = np.eye(D, dtype=np.float32)[:4] * 3.0
    streams = []
    for k in range(n):
        labels = np.concatenate([np.full(int(rng.integers(6, 12)), c) for c in rng.permutation(classes)])
        features = centres[labels] + rng.normal(scale=0.3, size=(len(labels), D)).astype(np.float32)
        streams.append(Stream(f"s{k}", "train", labels, features))
    return streams


def prototypes(n: int = 4) -> ClassPrototypes:
    vectors = np.linalg.qr(np.random.default_rng(1).normal(size=(E, E)))[0][:n].astype(np.float32)
    return ClassPrototypes(np.arange(n), [f"c{i}" for i in range(n)], vectors, "names", [[f"c{i}"] for i in range(n)],
                           "toy")


SMALL = {"epochs": 3, "layers": 2, "channels": 8, "stages": 2, "batch_streams": 2}


@pytest.mark.parametrize("name", sorted(STREAM_HEADS))
def test_contract_fit_score_save_load_identical(tmp_path, name):
    head = make_stream_head(name, SMALL)
    streams = toy_streams()
    seen_epochs = []
    head.fit(streams, prototypes(), after_epoch=lambda epoch, h: seen_epochs.append(epoch))
    assert seen_epochs == [1, 2, 3]
    scores = head.scores(streams[0].features, [0, 1, 2, 3], prototypes())
    assert scores.shape == (len(streams[0]), 4)
    again = StreamHead.load(head.save(tmp_path / "head.pt"))
    assert type(again) is type(head)
    np.testing.assert_array_equal(again.scores(streams[0].features, [0, 1, 2, 3], prototypes()), scores)
    np.testing.assert_array_equal(again.predict(streams[0].features, [3, 1], prototypes()),
                                  head.predict(streams[0].features, [3, 1], prototypes()))


@pytest.mark.parametrize("name", sorted(STREAM_HEADS))
def test_training_is_deterministic_and_snapshots_restore(name):
    streams = toy_streams()
    a = make_stream_head(name, SMALL)
    states = {}
    a.fit(streams, prototypes(), after_epoch=lambda epoch, h: states.__setitem__(epoch, h.state()))
    b = make_stream_head(name, SMALL).fit(streams, prototypes())
    np.testing.assert_array_equal(a.scores(streams[1].features, [0, 1, 2], prototypes()),
                                  b.scores(streams[1].features, [0, 1, 2], prototypes()))
    final = a.scores(streams[1].features, [0, 1, 2], prototypes())
    a.load_state(states[1])
    assert not np.array_equal(a.scores(streams[1].features, [0, 1, 2], prototypes()), final)
    a.load_state(states[3])
    np.testing.assert_array_equal(a.scores(streams[1].features, [0, 1, 2], prototypes()), final)


def test_mstcn_learns_the_toy_segmentation_and_cannot_predict_untrained_classes():
    head = make_stream_head("mstcn", {"epochs": 40, "layers": 3, "channels": 16, "stages": 2, "lr": 5e-3})
    streams = toy_streams(classes=(0, 1, 2))
    head.fit(streams, prototypes())
    test = toy_streams(n=3, seed=5)
    accuracy = np.mean(np.concatenate([head.predict(s.features, [0, 1, 2, 3]) == s.labels for s in test]))
    assert accuracy > 0.9
    assert np.isneginf(head.scores(test[0].features, [3])).all()


def test_text_head_scores_come_from_the_prototypes_of_the_asked_classes():
    head = make_stream_head("text_segmentation", {"epochs": 40, "layers": 3, "channels": 16, "lr": 5e-3})
    streams = toy_streams(classes=(0, 1, 2))
    head.fit(streams, prototypes())
    test = toy_streams(n=3, seed=5)
    accuracy = np.mean(np.concatenate([head.predict(s.features, [0, 1, 2], prototypes()) == s.labels for s in test]))
    assert accuracy > 0.9
    swapped = prototypes()
    swapped.vectors = swapped.vectors[[1, 0, 2, 3]]  # class 0 now has class 1's text
    predicted = head.predict(test[0].features, [0, 1, 2], swapped)
    ones = test[0].labels == 1
    assert np.mean(predicted[ones] == 0) > 0.9
    with pytest.raises(ZsarError, match="needs the class prototypes"):
        head.scores(test[0].features, [0, 1])


def test_bad_input_is_one_clear_error(tmp_path):
    head = make_stream_head("mstcn", SMALL)
    with pytest.raises(ZsarError, match="no training streams"):
        head.fit([], prototypes())
    with pytest.raises(ZsarError, match="no class prototype for trained classes"):
        head.fit(toy_streams(), prototypes(2))
    with pytest.raises(ZsarError, match="fit or load"):
        head.scores(np.zeros((4, D), np.float32), [0])
    head.fit(toy_streams(), prototypes())
    with pytest.raises(ZsarError, match="fitted on 8-d"):
        head.scores(np.zeros((4, D + 1), np.float32), [0])
    with pytest.raises(ZsarError, match="unknown stream head"):
        make_stream_head("fact", {})
    with pytest.raises(ZsarError, match="epochs"):
        make_stream_head("mstcn", {"epochs": 0})
    (tmp_path / "junk.pt").write_text("no")
    with pytest.raises(ZsarError, match="cannot read the stream head file"):
        StreamHead.load(tmp_path / "junk.pt")


def test_padded_batch_masks_padding_and_maps_labels():
    streams = toy_streams(n=2)
    x, mask, labels = padded_batch(streams, {0: 0, 1: 1})  # class 2 is not trained: ignored
    longest = max(len(s) for s in streams)
    assert x.shape == (2, D, longest)
    short = int(np.argmin([len(s) for s in streams]))
    n = len(streams[short])
    assert mask[short, 0, n:].sum() == 0 and mask[short, 0, :n].all()
    assert (labels[short, n:] == -100).all()
    np.testing.assert_array_equal(labels[short, :n].numpy() == -100, streams[short].labels == 2)

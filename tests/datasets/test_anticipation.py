"""Anticipation samples: the observation window ends tau_a before the action, after the encoder's window."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from zsar.datasets.anticipation import (
    AnticipationWindow,
    RowGeometry,
    anticipation_samples,
    check_some_samples,
    observed_features,
    segments,
    stream_samples,
)
from zsar.datasets.streams import Stream
from zsar.errors import ZsarError
from zsar.extract.stream_windows import window_bounds

BG = 9


def stream(labels, split="train", name="s", dim=3) -> Stream:
    labels = np.asarray(labels)
    features = np.arange(len(labels) * dim, dtype=np.float32).reshape(len(labels), dim)
    return Stream(name, split, labels, features)


def test_segments_are_the_runs_of_one_label():
    assert segments(np.array([0, 0, 9, 9, 9, 1, 1, 0])) == [(0, 0, 2), (9, 2, 5), (1, 5, 7), (0, 7, 8)]
    assert segments(np.array([], dtype=np.int64)) == []


def test_a_hand_checked_sample_without_an_encoder_window():
    s = stream([0] * 10 + [BG] * 4 + [1] * 10)
    samples, skipped = anticipation_samples([s], AnticipationWindow(tau_a=2, observe=5, min_observed=1),
                                            RowGeometry(), (BG,))
    # action 1 starts at frame 14; rows up to 11 end more than 2 frames before it; 5 of them are observed
    assert [(x.start, x.end, x.action_start, x.target, x.history) for x in samples] == [(7, 12, 14, 1, (0,))]
    assert skipped == {"background or unlabelled segments": 1, "history shorter than 1 rows": 1}


def test_the_window_of_a_windowed_encoder_never_sees_the_action():
    geometry = RowGeometry(stride=2, window=16)
    rng = np.random.default_rng(0)
    streams = [stream(np.repeat(rng.integers(0, 4, size=6), rng.integers(3, 12, size=6)), name=f"s{i}")
               for i in range(30)]
    for tau in (0, 3, 8):
        samples, _ = anticipation_samples(streams, AnticipationWindow(tau_a=tau, observe=12, min_observed=1),
                                          geometry, ())
        assert samples
        for x in samples:
            last_seen = geometry.last_frame_seen(np.array([x.end - 1]))[0]
            assert last_seen < geometry.first_frame(x.action_start) - tau  # what to test 4 in the S-GEAR spec
            assert x.end - x.start <= 6 and x.end <= x.action_start


def test_samples_match_a_brute_force_rule():
    geometry = RowGeometry(stride=3, window=10)
    window = AnticipationWindow(tau_a=4, observe=20, min_observed=2)
    rng = np.random.default_rng(1)
    for k in range(20):
        labels = np.repeat(rng.integers(0, 5, size=5), rng.integers(2, 9, size=5))
        s = stream(labels)
        got = stream_samples(s, 0, window, geometry, (), None, Counter())
        expected = []
        runs = segments(labels)
        for target, first, _ in runs[1:] if len(runs) > 1 else []:
            limit = geometry.first_frame(first) - 4
            rows = [r for r in range(first) if geometry.last_frame_seen(np.array([r]))[0] < limit]
            rows = rows[-7:]  # ceil(20 / 3) rows observed at most
            if len(rows) >= 2:
                expected.append((rows[0], rows[-1] + 1, first, target))
        got_first = [(x.start, x.end, x.action_start, x.target) for x in got if x.action_start > 0]
        assert got_first == expected, k


def test_single_segment_streams_and_short_histories_are_counted():
    samples, skipped = anticipation_samples([stream([2] * 8), stream([0, 0, 1, 1, 1])],
                                            AnticipationWindow(tau_a=0, observe=4, min_observed=3), RowGeometry(), ())
    assert samples == []
    assert skipped == {"single-segment streams": 1, "history shorter than 3 rows": 2}


def test_a_tau_a_longer_than_every_history_is_one_clear_error():
    streams = [stream([0] * 5 + [1] * 5), stream([2] * 3 + [0] * 4)]
    window = AnticipationWindow(tau_a=50, observe=8, min_observed=1)
    samples, _ = anticipation_samples(streams, window, RowGeometry(), ())
    with pytest.raises(ZsarError, match="longest history before an action is 5 input frames"):
        check_some_samples(samples, streams, window, RowGeometry(), (), "test streams")


def test_observed_features_are_a_view_not_a_copy():
    s = stream([0] * 6 + [1] * 6)
    samples, _ = anticipation_samples([s], AnticipationWindow(tau_a=0, observe=4, min_observed=1), RowGeometry(), ())
    rows = observed_features([s], samples[0])
    assert np.shares_memory(rows, s.features) and rows.shape == (4, 3)


def test_seconds_need_a_frame_rate_and_bad_windows_are_refused():
    window = AnticipationWindow(tau_a=0.5, observe=2, unit="seconds")
    assert window.in_frames(30.0) == (15.0, 60.0)
    with pytest.raises(ZsarError, match="frame rate"):
        window.in_frames(None)
    for bad in ({"unit": "rows"}, {"tau_a": -1}, {"observe": 0}, {"min_observed": 0}, {"min_observed": 1.5}):
        with pytest.raises(ZsarError):
            AnticipationWindow(**bad)


@pytest.mark.parametrize("window, stride, tau", [(16, 2, 0), (16, 2, 8), (8, 4, 3), (5, 1, 0), (21, 3, 10)])
def test_no_observed_row_reads_a_frame_of_its_action_by_the_extractors_own_windows(window, stride, tau):
    """The oracle is independent of the sampler: the extractor's windows (`window_bounds`) over frame-level
    labels; every observed row's window must end more than tau frames before its action's first frame."""
    rng = np.random.default_rng(window * 100 + stride * 10 + tau)
    checked = 0
    for _ in range(15):
        frame_labels = np.repeat(rng.integers(0, 4, size=6), rng.integers(4, 40, size=6))
        centres, _, ends = window_bounds(len(frame_labels), window, stride)
        s = Stream("s", "train", frame_labels[centres], np.zeros((len(centres), 2), np.float32))
        samples, _ = anticipation_samples([s], AnticipationWindow(tau_a=tau, observe=40, min_observed=1),
                                          RowGeometry(stride, window), ())
        for x in samples:
            first = centres[x.action_start]
            while first > 0 and frame_labels[first - 1] == x.target:
                first -= 1  # back to the first frame of the action the target row lies in
            assert ends[x.start:x.end].max() - 1 < first - tau
            checked += 1
    assert checked > 10


def test_a_release_without_a_window_needs_its_lookahead():
    s = stream([0] * 10 + [1] * 10)
    window = AnticipationWindow(tau_a=0, observe=20, min_observed=1)
    plain, _ = anticipation_samples([s], window, RowGeometry(), ())
    ahead, _ = anticipation_samples([s], window, RowGeometry(lookahead=3), ())
    assert plain[0].end == 10 and ahead[0].end == 7  # rows 7-9 read frames 10-12 of the next action
    with pytest.raises(ZsarError, match="lookahead"):
        RowGeometry(lookahead=-1)

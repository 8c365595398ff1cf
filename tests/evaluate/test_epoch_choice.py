from __future__ import annotations

import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.evaluate.epoch_choice import moving_average, selection_scores, smoothing_window


def _naive_average(curve, window):
    half = window // 2
    return [float(np.mean(curve[max(0, i - half): i + half + 1])) for i in range(len(curve))]


@pytest.mark.parametrize("length", [1, 2, 5, 10, 37, 60, 100])
def test_moving_average_equals_the_loop(length):
    curve = np.random.default_rng(length).random(length) * 100
    np.testing.assert_allclose(moving_average(curve), _naive_average(curve, smoothing_window(length)))


def test_window_is_odd_and_about_a_tenth():
    assert [smoothing_window(n) for n in (1, 10, 30, 60, 100)] == [3, 3, 3, 7, 11]


def test_rules():
    # a lucky spike at epoch 2 against a plateau at 6-8
    curve = [40, 90, 40, 40, 70, 75, 75, 75, 70, 60]
    assert int(np.argmax(selection_scores(curve, "best"))) == 1
    assert int(np.argmax(selection_scores(curve, "smoothed"))) in (5, 6, 7)
    last = selection_scores(curve, "last")
    assert int(np.argmax(last)) == 9 and np.isinf(last[:-1]).all()
    with pytest.raises(ZsarError, match="epoch choice"):
        selection_scores(curve, "median")

import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.evaluate.gzsl import (
    ausuc,
    best_gamma,
    calibrated_predictions,
    calibrated_stacking_metrics,
    seen_unseen_curve,
)
from zsar.evaluate.metrics import gzsl_metrics

SEEN, UNSEEN = [0, 2, 3], [1, 4]
CLASSES = [0, 1, 2, 3, 4]


def problem(seed=0, n=200, bias=1.0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, n)
    scores = rng.normal(0, 1, (n, 5))
    scores[np.arange(n), labels] += 1.5  # informative
    scores[:, SEEN] += bias  # seen-biased, as zero-shot scorers are
    return scores, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curve_equals_rerunning_the_argmax_at_every_gamma(seed):
    scores, labels = problem(seed)
    curve = seen_unseen_curve(scores, labels, CLASSES, SEEN, UNSEEN)
    for g, s, u in zip(curve["gammas"], curve["seen"], curve["unseen"]):
        naive = gzsl_metrics(calibrated_predictions(scores, CLASSES, SEEN, g), labels, SEEN, UNSEEN)
        assert s == pytest.approx(naive["seen"]) and u == pytest.approx(naive["unseen"])
    assert curve["unseen"][0] == 0 and curve["seen"][-1] == 0  # from all-seen to all-unseen
    assert np.all(np.diff(curve["unseen"]) >= 0) and np.all(np.diff(curve["seen"]) <= 0)


def test_best_gamma_beats_plain_argmax_and_metrics_use_it():
    scores, labels = problem(3, bias=2.0)
    curve = seen_unseen_curve(scores, labels, CLASSES, SEEN, UNSEEN)
    gamma = best_gamma(curve)
    plain = gzsl_metrics(calibrated_predictions(scores, CLASSES, SEEN, 0.0), labels, SEEN, UNSEEN)
    stacked = calibrated_stacking_metrics(scores, labels, CLASSES, SEEN, UNSEEN, gamma)
    assert stacked["h"] == pytest.approx(curve["h"].max()) and stacked["h"] > plain["h"]
    assert stacked["gamma"] == gamma > 0


def test_ausuc_is_100_for_a_perfect_scorer_and_shift_invariant():
    labels = np.array(CLASSES * 10)
    perfect = np.eye(5)[labels] * 5.0
    assert ausuc(seen_unseen_curve(perfect, labels, CLASSES, SEEN, UNSEEN)) == pytest.approx(100.0)
    scores, labels = problem(4)
    base = ausuc(seen_unseen_curve(scores, labels, CLASSES, SEEN, UNSEEN))
    shifted = scores.copy()
    shifted[:, SEEN] += 3.0  # a seen-class bias moves gamma, not the curve
    assert ausuc(seen_unseen_curve(shifted, labels, CLASSES, SEEN, UNSEEN)) == pytest.approx(base)
    assert 0 < base < 100


def test_curve_needs_both_kinds_of_samples():
    scores, labels = problem(5)
    with pytest.raises(ZsarError, match="test samples"):
        seen_unseen_curve(scores[np.isin(labels, SEEN)], labels[np.isin(labels, SEEN)], CLASSES, SEEN, UNSEEN)

import numpy as np
import torch

from zsar.evaluate.domain_gate import THRESHOLDS, fit_domain_gate, fit_logistic, gate_inputs
from zsar.evaluate.metrics import gzsl_metrics

SEEN, UNSEEN = [0, 1, 2, 3], [4, 5]


def test_newton_logistic_regression_matches_gradient_descent():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x @ [1.0, -2.0, 0.5, 0.0] + rng.normal(0, 1, 300) > 0).astype(float)
    w = fit_logistic(x, y, l2=1e-3)
    wt = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    xb = torch.from_numpy(np.concatenate([x, np.ones((300, 1))], 1))
    optimiser = torch.optim.LBFGS([wt], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xb @ wt, torch.from_numpy(y), reduction="sum")
        loss = loss + 0.5e-3 * (wt[:4] ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    np.testing.assert_allclose(w, wt.detach().numpy(), atol=1e-4)


def test_gate_inputs_are_sorted_and_padded():
    x = gate_inputs(np.array([[0.2, 0.8]]), np.array([[0.1, 0.6, 0.3]]), k=3)
    np.testing.assert_allclose(x, [[0.8, 0.2, 0.0, 0.6, 0.3, 0.1]])


def scores(rng, labels):
    """Unseen-class scores confident on unseen samples, seen logits confident on seen samples."""
    n = len(labels)
    unseen = rng.normal(0, 1, (n, 2))
    seen = rng.normal(0, 1, (n, 4))
    for i, c in enumerate(labels):
        if c in UNSEEN:
            unseen[i, UNSEEN.index(c)] += 4
        else:
            seen[i, SEEN.index(c)] += 4
            unseen[i] += rng.normal(0, 0.3)
    return unseen, seen * 2


def test_gate_separates_seen_from_unseen_and_uses_one_threshold_rule():
    rng = np.random.default_rng(1)
    val_labels = rng.choice(SEEN + UNSEEN, 400)
    gate = fit_domain_gate(*scores(rng, val_labels), val_labels, UNSEEN, SEEN, seed=0)
    assert gate.threshold in THRESHOLDS and gate.temperature in range(1, 10)
    test_labels = rng.choice(SEEN + UNSEEN, 400)
    unseen, seen = scores(rng, test_labels)
    predicted = gate.predict(unseen, UNSEEN, seen, SEEN)
    gated = gzsl_metrics(predicted, test_labels, SEEN, UNSEEN)
    assert gated["h"] > 80 and gate.selection["validation_h"] > 80
    p = gate.p_seen(unseen, seen)
    np.testing.assert_array_equal(np.isin(predicted, SEEN), p > gate.threshold)


def test_gate_is_deterministic():
    rng = np.random.default_rng(2)
    labels = rng.choice(SEEN + UNSEEN, 200)
    u, s = scores(rng, labels)
    a, b = fit_domain_gate(u, s, labels, UNSEEN, SEEN, seed=3), fit_domain_gate(u, s, labels, UNSEEN, SEEN, seed=3)
    assert a.threshold == b.threshold and np.array_equal(a.weights, b.weights)
    assert np.abs(a.weights).sum() > 0

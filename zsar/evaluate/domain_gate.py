"""GZSL seen/unseen gate: the "domain classifier" of SynSE and SA-DVAE, with one consistent threshold rule.

Input per sample: the top-k sorted unseen-class probabilities of the zero-shot head and the top-k sorted
seen-class probabilities of a seen-class scorer (the encoder's own logits, or a classifier trained on the
cache), k = the number of unseen classes. A logistic regression (unseen = 0, seen = 1) is fitted on the
validation problem (seen samples subsampled to the unseen count); the seen-logit temperature T in 1..9
and the threshold in 0.25..0.74 are chosen for the best H on a held-out part of that data. At test a
sample is "seen" when P(seen) > threshold (the same rule in fitting and testing) and then takes the
seen scorer's arg-max, otherwise the zero-shot head's arg-max over the unseen classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsar.evaluate.metrics import gzsl_metrics
from zsar.holdout import stratified_holdout
from zsar.scoring import softmax

TEMPERATURES = tuple(range(1, 10))
THRESHOLDS = tuple(np.round(np.arange(0.25, 0.745, 0.01), 2))


def gate_inputs(unseen_probs: np.ndarray, seen_probs: np.ndarray, k: int) -> np.ndarray:
    """[top-k sorted unseen probabilities, top-k sorted seen probabilities] (zero-padded to k)."""
    def top(p):
        p = -np.sort(-p, axis=1)[:, :k]
        return np.pad(p, ((0, 0), (0, k - p.shape[1])))
    return np.concatenate([top(unseen_probs), top(seen_probs)], axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 25) -> np.ndarray:
    """Binary logistic regression by Newton steps (IRLS); returns weights with the bias last."""
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    w = np.zeros(xb.shape[1])
    reg = l2 * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + reg @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass
class DomainGate:
    weights: np.ndarray
    temperature: float
    threshold: float
    k: int
    selection: dict

    def p_seen(self, unseen_scores: np.ndarray, seen_logits: np.ndarray) -> np.ndarray:
        x = gate_inputs(softmax(unseen_scores), softmax(seen_logits / self.temperature), self.k)
        return 1.0 / (1.0 + np.exp(-(x @ self.weights[:-1] + self.weights[-1])))

    def predict(self, unseen_scores, unseen_classes, seen_logits, seen_classes) -> np.ndarray:
        """Class ids: the seen scorer's arg-max where P(seen) > threshold, else the zero-shot head's."""
        seen = self.p_seen(unseen_scores, seen_logits) > self.threshold
        return np.where(seen, np.asarray(seen_classes)[seen_logits.argmax(1)],
                        np.asarray(unseen_classes)[unseen_scores.argmax(1)])


def fit_domain_gate(unseen_scores: np.ndarray, seen_logits: np.ndarray, labels: np.ndarray, unseen_classes,
                    seen_classes, seed: int = 0, held_fraction: float = 0.3) -> DomainGate:
    """Fit on validation samples (labels among `seen_classes` + `unseen_classes` of the validation problem)."""
    rng = np.random.RandomState(seed)
    is_seen = np.isin(labels, seen_classes)
    unseen_rows, seen_rows = np.nonzero(~is_seen)[0], np.nonzero(is_seen)[0]
    if len(seen_rows) > len(unseen_rows):
        seen_rows = np.sort(rng.choice(seen_rows, len(unseen_rows), replace=False))
    rows = np.concatenate([seen_rows, unseen_rows])
    fit_pos, held_pos = stratified_holdout(is_seen[rows].astype(int), held_fraction, seed)
    fit_rows, held_rows = rows[fit_pos], rows[held_pos]
    k = len(unseen_classes)
    best = None
    table = []
    for t in TEMPERATURES:
        x = gate_inputs(softmax(unseen_scores), softmax(seen_logits / t), k)
        w = fit_logistic(x[fit_rows], is_seen[fit_rows].astype(float))
        gate = DomainGate(w, float(t), 0.5, k, {})
        p = gate.p_seen(unseen_scores[held_rows], seen_logits[held_rows])
        for thr in THRESHOLDS:
            seen_pred = p > thr
            pred = np.where(seen_pred, np.asarray(seen_classes)[seen_logits[held_rows].argmax(1)],
                            np.asarray(unseen_classes)[unseen_scores[held_rows].argmax(1)])
            h = gzsl_metrics(pred, labels[held_rows], seen_classes, unseen_classes)["h"]
            table.append((h, t, float(thr)))
            if best is None or h > best[0]:
                best = (h, t, float(thr), w)
    h, t, thr, w = best
    return DomainGate(w, float(t), thr, k, {"validation_h": float(h), "temperature": float(t), "threshold": thr,
                                            "fit_samples": int(len(fit_rows)), "held_samples": int(len(held_rows))})

"""Calibrated stacking for zero-shot segmentation, with the shift chosen on validation streams.

A head trained on the seen classes scores them higher than any class it never saw, so without a correction a
held-out class almost never wins a frame (measured on NW-UCLA development splits: 0 of 992 held-out frames).
Calibrated stacking subtracts one constant, gamma, from the scores of the trained classes. gamma cannot be chosen
on held-out classes; as the clip protocol does, it is chosen on a validation problem of the same shape: a second
head is trained without `len(held_out)` further seen classes (picked by the seed; their training streams removed
as well), and on the validation streams (free of the test's held-out classes) gamma maximises the harmonic mean of
frame accuracy on the frames of its trained classes and of those pseudo-held-out classes. The main head then
uses that gamma on the test streams.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zsar.datasets.streams import Stream
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.stream_heads import StreamHead

TIE = 1e-9  # margins closer than this flip together (float noise is not a threshold)


def stacked_scores(scores: np.ndarray, classes: np.ndarray, trained: np.ndarray, gamma: float) -> np.ndarray:
    """Scores [N, len(classes)] with gamma subtracted from the `trained` classes (calibrated stacking)."""
    return scores - gamma * np.isin(classes, trained)[None, :]


def shifted_scores(head: StreamHead, stream: Stream, classes: np.ndarray, prototypes: ClassPrototypes,
                   gamma: float) -> np.ndarray:
    """[T, len(classes)] scores with gamma subtracted from the classes the head was trained on."""
    return stacked_scores(head.scores(stream.features, classes, prototypes), classes, head.classes, gamma)


def harmonic_accuracy(predicted: np.ndarray, truth: np.ndarray, unseen: Sequence[int]) -> tuple[float, float, float]:
    """(seen, unseen, harmonic mean) frame accuracy over labelled frames, seen = not in `unseen`."""
    labelled = truth >= 0
    is_unseen = np.isin(truth, list(unseen)) & labelled
    is_seen = ~np.isin(truth, list(unseen)) & labelled
    seen = float(np.mean(predicted[is_seen] == truth[is_seen])) if is_seen.any() else 0.0
    other = float(np.mean(predicted[is_unseen] == truth[is_unseen])) if is_unseen.any() else 0.0
    return seen, other, 2 * seen * other / (seen + other) if seen + other > 0 else 0.0


def choose_gamma(scores: np.ndarray, truth: np.ndarray, classes: np.ndarray, trained: np.ndarray,
                 unseen: Sequence[int]) -> dict:
    """The gamma >= 0 with the highest harmonic mean of frame accuracy on frames of trained classes and of `unseen`
    classes, searched exactly: a frame's prediction flips from its best trained class to its best untrained class
    once gamma passes its margin, so sorting the margins gives every distinct outcome (ties to the smaller gamma)."""
    is_trained = np.isin(classes, trained)
    best_trained = classes[is_trained][scores[:, is_trained].argmax(axis=1)]
    best_other = classes[~is_trained][scores[:, ~is_trained].argmax(axis=1)]
    margins = scores[:, is_trained].max(axis=1) - scores[:, ~is_trained].max(axis=1)
    labelled = truth >= 0
    groups = {"seen": labelled & ~np.isin(truth, list(unseen)), "unseen": labelled & np.isin(truth, list(unseen))}
    order = np.argsort(margins, kind="stable")
    sorted_margins = margins[order]
    accuracy = {}
    for name, members in groups.items():
        stay = (best_trained == truth)[order] & members[order]
        move = (best_other == truth)[order] & members[order]
        kept = stay.sum() - np.r_[0, np.cumsum(stay)]  # correct among the frames not flipped (k = 0..N flipped)
        gained = np.r_[0, np.cumsum(move)]  # correct among the k flipped frames
        accuracy[name] = (kept + gained) / max(int(members.sum()), 1)
    seen, other = accuracy["seen"], accuracy["unseen"]
    harmonic = np.where(seen + other > 0, 2 * seen * other / np.maximum(seen + other, 1e-12), 0.0)
    # state k (the k smallest margins flipped) exists for gamma >= 0 when k >= the frames flipped at gamma 0 and
    # no tie separates frame k - 1 from frame k; its gamma lies between their margins
    k_all = np.arange(len(margins) + 1)
    at_zero = int((margins < -TIE).sum())
    split = np.r_[True, sorted_margins[1:] - sorted_margins[:-1] > TIE, True]  # margins closer than TIE: one step
    reachable = (k_all >= at_zero) & (split | (k_all == at_zero))
    k = int(np.argmax(np.where(reachable, harmonic, -1.0)))
    upper = sorted_margins[k] if k < len(margins) else sorted_margins[-1] + 2.0
    gamma = 0.0 if k == at_zero else float((sorted_margins[k - 1] + upper) / 2)
    return {"gamma": gamma, "seen": float(seen[k]), "unseen": float(other[k]), "harmonic": float(harmonic[k])}


def pseudo_held_out(train: Sequence[Stream], background: Sequence[int], count: int, seed: int) -> tuple[int, ...]:
    """`count` seen action classes (never background) drawn by `seed` to play the held-out classes."""
    seen = sorted(set().union(*(s.classes() for s in train)) - set(background))
    if len(seen) <= count:
        return ()
    return tuple(sorted(int(c) for c in np.random.default_rng(10_000 + seed).choice(seen, size=count, replace=False)))

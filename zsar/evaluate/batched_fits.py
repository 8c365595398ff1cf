"""The protocol's fits as requests, and a store of fits trained together before the protocol asks for them.

A `FitRequest` is one `fit` the protocol makes (head, settings, training set, text, seed, whether it watches every
epoch). `BatchedFits.train` trains the requests that a batched model can hold (`zsar.heads.batched_runs`) as few
stacked models as their shapes allow; `take` hands each back when the protocol asks for it, and a request that
was not trained there is fitted alone, as without the store (`alone` counts them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from zsar import progress
from zsar.features.prototypes import ClassPrototypes
from zsar.features.reader import FeatureSet
from zsar.heads.base import Head
from zsar.heads.batched_runs import Member, MemberFit, batch_key, train_batched


def _digest(*arrays) -> str:
    h = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if array is not None:
            array = np.ascontiguousarray(array)
            h.update(f"{array.dtype}{array.shape}".encode())
            h.update(array.data)
    return h.hexdigest()


@dataclass(frozen=True)
class FitRequest:
    """`head.fit(data.embeddings, data.labels, prototypes, seed)` of `head` built with `params`; `monitored`: with a
    snapshot after every epoch."""

    head: str
    params: dict
    data: FeatureSet
    prototypes: ClassPrototypes
    seed: int
    monitored: bool = False

    @cached_property
    def samples(self) -> str:
        """A digest of the training samples (features and labels)."""
        return _digest(self.data.embeddings, self.data.labels)

    @cached_property
    def key(self) -> tuple:
        """Equal for requests that give the same fit (the same settings, samples, text and seed)."""
        p = self.prototypes
        weights = None if p.view_weights is None else np.asarray(p.view_weights)
        return (self.head, json.dumps(self.params, sort_keys=True, default=repr), self.seed, self.monitored,
                self.samples, _digest(p.class_ids, p.vectors, p.views, weights))

    def member(self, features: np.ndarray | None = None) -> Member:
        """The request as a member of a batched training (`features`: an equal array to train from instead)."""
        features = self.data.embeddings if features is None else features
        return Member(self.params, features, self.data.labels, self.prototypes, self.seed, self.monitored)

    def fit_alone(self, head: Head) -> MemberFit:
        """The request fitted on its own by `head` (built from `params`)."""
        snapshots: list[Head] = []
        monitor = {"monitor": lambda h: snapshots.append(h.snapshot())} if self.monitored else {}
        info = head.fit(self.data.embeddings, self.data.labels, self.prototypes, seed=self.seed, **monitor)
        return MemberFit(head, info, snapshots)


class BatchedFits:
    """Fits trained ahead, by request key, each kept until it has been taken as often as it was requested."""

    def __init__(self):
        self.ready: dict[tuple, MemberFit] = {}
        self.wanted: dict[tuple, int] = {}
        self.alone = 0  # requests the protocol fitted on its own (not trained here)
        self.batches: list[int] = []  # members of every batched training, in order

    def train(self, requests: list[FitRequest]) -> None:
        """Train every request a batched model can hold, grouped by `batch_key` (one stacked training per group);
        the others are left to be fitted alone when asked for."""
        groups: dict[tuple, dict[tuple, FitRequest]] = {}
        for request in requests:
            self.wanted[request.key] = self.wanted.get(request.key, 0) + 1
            if request.key in self.ready:
                continue
            key = batch_key(request.head, request.params, request.data.embeddings, request.prototypes)
            if key is not None:
                groups.setdefault(key, {})[request.key] = request
        for (head, *_), members in groups.items():
            progress.stage(f"training {len(members)} {head} runs as one batched model")
            same: dict[str, np.ndarray] = {}  # equal training samples are held once on the device
            fits = train_batched(head, [r.member(same.setdefault(r.samples, r.data.embeddings))
                                        for r in members.values()])
            self.ready.update(zip(members, fits))
            self.batches.append(len(members))

    def take(self, request: FitRequest) -> MemberFit | None:
        """The fit trained for `request` (None: not trained here; the caller fits it alone)."""
        fit = self.ready.get(request.key)
        if fit is None:
            self.alone += 1
            return None
        self.wanted[request.key] -= 1
        if self.wanted[request.key] <= 0:
            del self.ready[request.key]
        return fit

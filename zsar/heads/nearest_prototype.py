"""Nearest-prototype zero-shot head (training-free).

`prototypes = "synthesized"` (default): classes live in the feature space. A seen class's
prototype is the mean of its (standardised, unit) training features; an unseen class's prototype
is the mix of seen-class means weighted by the softmax of text similarity between the unseen and
the seen classes' text prototypes (temperature `mix_temperature`). Works for any feature dim.

`prototypes = "text"`: features already live in the text space (e.g. a video-text model);
queries are compared to the text prototypes directly. Feature and text dims must agree.
"""

from __future__ import annotations

import numpy as np

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.base import Head
from zsar.heads.configs import NearestPrototypeConfig
from zsar.scoring import normalise_rows, softmax


class NearestPrototypeHead(Head):
    name = "nearest_prototype"
    Config = NearestPrototypeConfig
    search_space = {"mix_temperature": [0.02, 0.05, 0.1, 0.2]}

    def fit(self, features, labels, prototypes: ClassPrototypes, seed: int = 0) -> dict:
        self.state = {}
        self._fit_standardiser(features)
        if self.config.prototypes == "text":
            if features.shape[1] != prototypes.dim:
                raise ZsarError(
                    f"nearest_prototype with text prototypes needs features in the text space: features are "
                    f"{features.shape[1]}-d, text prototypes {prototypes.dim}-d; use prototypes = 'synthesized'"
                )
            return {}
        z = self.project(features)
        classes = np.asarray(prototypes.class_ids)
        means = []
        for c in classes:
            rows = z[labels == c]
            if len(rows) == 0:
                raise ZsarError(f"nearest_prototype: seen class {int(c)} has no training samples")
            means.append(rows.mean(0))
        self.state["seen_class_ids"] = classes.astype(np.int64)
        self.state["seen_means"] = normalise_rows(np.stack(means), "class means")
        self.state["seen_text"] = prototypes.vectors.astype(np.float32)
        return {"seen_classes": int(len(classes))}

    def project(self, features: np.ndarray) -> np.ndarray:
        if self.config.prototypes == "text":
            return np.asarray(features, dtype=np.float32)
        return normalise_rows(self._standardise(features), "features")

    def class_vectors(self, prototypes: ClassPrototypes) -> np.ndarray:
        if self.config.prototypes == "text":
            return prototypes.vectors
        seen_ids = self.state["seen_class_ids"]
        if prototypes.dim != self.state["seen_text"].shape[1]:
            raise ZsarError(f"text prototypes are {prototypes.dim}-d; the head was fitted with "
                            f"{self.state['seen_text'].shape[1]}-d ones")
        weights = softmax(prototypes.vectors @ self.state["seen_text"].T / self.config.mix_temperature)  # [C, S]
        vectors = weights @ self.state["seen_means"]
        position = {int(c): i for i, c in enumerate(seen_ids)}
        for row, c in enumerate(prototypes.class_ids.tolist()):
            if c in position:  # a seen class is represented by its own mean
                vectors[row] = self.state["seen_means"][position[c]]
        return vectors

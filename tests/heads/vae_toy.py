"""A toy zero-shot problem and tiny settings for the tests of the latent-classifier VAE heads (CADA-VAE, FS-VAE):
Gaussian clusters whose means are a fixed random map of random unit class texts (8 seen, 4 unseen classes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsar.features.prototypes import ClassPrototypes

SEEN, UNSEEN = list(range(8)), list(range(8, 12))

# settings that train in a second or two on a CPU and solve the toy problem on every seed tried (0-4)
# (one thread: these small models are many small ops, which threads only slow down on a busy CPU)
TINY = {
    "cada_vae": {"preset": "small", "epochs": 40, "threads": 1},
    # (raw features of this toy, 3 +- 1, saturate the calibrated alignment's sigmoid: standardised here)
    "fs_vae": {"cycle": 150, "cycles": 3, "lr": 1e-3, "feature_scaling": "standardise", "threads": 1},
}


def prototypes(vectors: np.ndarray, ids=None) -> ClassPrototypes:
    ids = np.arange(len(vectors)) if ids is None else np.asarray(ids)
    names = [f"class {i}" for i in ids]
    return ClassPrototypes(ids, names, vectors, "toy", [[n] for n in names], "toy-model")


@dataclass
class Toy:
    protos: ClassPrototypes  # all 12 classes
    x: np.ndarray  # training features of the seen classes
    y: np.ndarray
    x_test: np.ndarray  # features of the unseen classes
    y_test: np.ndarray

    @property
    def seen(self) -> ClassPrototypes:
        return self.protos.subset(SEEN)

    @property
    def unseen(self) -> ClassPrototypes:
        return self.protos.subset(UNSEEN)


def toy_problem(per_class: int = 30, feature_dim: int = 64, text_dim: int = 32, noise: float = 0.2,
                seed: int = 0) -> Toy:
    """Non-negative features (a cluster mean = text @ a fixed random map, shifted; noise around it, clipped at 0)."""
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((12, text_dim)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    means = text @ rng.standard_normal((text_dim, feature_dim)).astype(np.float32) + 3.0

    def draw(classes):
        labels = np.repeat(classes, per_class)
        x = means[labels] + noise * rng.standard_normal((len(labels), feature_dim)).astype(np.float32)
        return np.maximum(x, 0).astype(np.float32), labels

    x, y = draw(SEEN)
    x_test, y_test = draw(UNSEEN)
    return Toy(prototypes(text), x, y, x_test, y_test)

"""The one small interface every head has: fit on features of seen classes, score features
against any set of class prototypes, save with its config, load to identical scores."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from zsar import __version__
from zsar.atomic import atomic_target, write_text_atomic
from zsar.compute import keeps_torch_state
from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.scoring import PrototypeIndex, label_positions

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),),
          "list": (list, tuple), "tuple": (list, tuple), "dict": (dict,)}


def type_problem(annotation: str, value: Any) -> str | None:
    """Why `value` does not fit a field annotated `annotation` ("int | None", "float", "list", ...), or None.
    Unknown annotations accept anything; an int fits a float, a bool fits only a bool."""
    names = [part.strip().split("[")[0] for part in str(annotation).split("|")]
    if any(name not in _TYPES for name in names):
        return None
    if isinstance(value, bool):
        return None if "bool" in names else f"expected {annotation}, got a boolean ({value})"
    allowed = tuple(t for name in names for t in _TYPES[name])
    return None if isinstance(value, allowed) else f"expected {annotation}, got {type(value).__name__} ({value!r})"


def build_config(config_cls: type, params: dict | None, where: str) -> Any:
    """Dataclass from a dict; unknown keys and values of the wrong type are errors naming them."""
    params = dict(params or {})
    known = {f.name: f.type for f in fields(config_cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ZsarError(f"unknown parameters {unknown} for {where}; known: {sorted(known)}")
    wrong = [f"{key}: {problem}" for key, value in params.items() if (problem := type_problem(known[key], value))]
    if wrong:
        raise ZsarError(f"{where}: " + "; ".join(wrong))
    return config_cls(**params)


def check_prototypes_cover(labels: np.ndarray, prototypes: ClassPrototypes) -> None:
    """Every training class needs a text prototype; the error names the ones without."""
    missing = sorted(set(np.unique(labels).tolist()) - set(prototypes.class_ids.tolist()))
    if missing:
        raise ZsarError(f"no text prototype for training classes {missing[:20]} (variant {prototypes.variant!r})")


class Head:
    """Base class. Subclasses set `name`, `Config`, `search_space` and implement `fit`, `project`
    and `class_vectors`; scores are cosine similarities / `temperature` through `PrototypeIndex`."""

    def __init_subclass__(cls, **kwargs):
        """Every head's `fit` seeds torch inside `torch_scope`: the global generator is restored after training."""
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is not None and not getattr(fit, "__wrapped_by_torch_scope__", False):
            cls.fit = keeps_torch_state(fit)

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    # hyper-parameter grid searched on the validation zero-shot split (never on test)
    search_space: ClassVar[dict[str, list]] = {}
    # fit(..., monitor=f) calls f(head) after every epoch (the head in that epoch's state); the protocol keeps a
    # `snapshot()` of each, scores them with `score_snapshots` and chooses `epochs` too
    epoch_selection: ClassVar[bool] = False
    # the setting the choice among snapshots sets (`snapshot_setting(k)` is its value for the k-th, 1-based)
    epoch_parameter: ClassVar[str] = "epochs"
    # a class's score does not depend on the other classes scored with it (prototype heads)
    separable_scores: ClassVar[bool] = True

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()
        self.state: dict[str, np.ndarray] = {}

    # -- to implement ------------------------------------------------------------------------
    def fit(self, features: np.ndarray, labels: np.ndarray, prototypes: ClassPrototypes, seed: int = 0) -> dict:
        """Train on seen-class features [N, D] with global labels [N] and the seen classes' prototypes."""
        raise NotImplementedError

    def project(self, features: np.ndarray) -> np.ndarray:
        """Features [N, D] -> query vectors [N, Dq] in the space the class vectors live in."""
        raise NotImplementedError

    def class_vectors(self, prototypes: ClassPrototypes) -> np.ndarray:
        """Class prototypes -> class vectors [C, Dq]."""
        raise NotImplementedError

    @property
    def temperature(self) -> float:
        return float(getattr(self.config, "temperature", 1.0))

    def snapshot_setting(self, k: int) -> int:
        """The value of `epoch_parameter` that makes a fresh fit stop where the k-th monitored snapshot (1-based)
        was taken: k epochs unless the head monitors otherwise."""
        return k

    # -- shared --------------------------------------------------------------------------------
    def score(
        self, features: np.ndarray, prototypes: ClassPrototypes, backend: str = "auto", device: str = "cpu"
    ) -> np.ndarray:
        """Logits [N, C] for the classes of `prototypes`, in their order."""
        if not self.state:
            raise ZsarError(f"head {self.name!r} is not fitted")
        self._check_dim(features)
        index = PrototypeIndex(self.class_vectors(prototypes), backend=backend, device=device)
        return index.similarities(self.project(features)) / self.temperature

    def snapshot(self) -> Head:
        """A copy of this head in its present state (training goes on in the original)."""
        copy = type(self)(self.config)
        copy.state = {k: np.array(v, copy=True) for k, v in self.state.items()}
        return copy

    @classmethod
    def score_snapshots(cls, heads: list[Head], features: np.ndarray, prototypes: ClassPrototypes,
                        backend: str = "auto", device: str = "cpu") -> list[np.ndarray]:
        """`score` of every head (snapshots of one training run); heads may do it in one batch."""
        return [head.score(features, prototypes, backend, device) for head in heads]

    def _check_dim(self, features: np.ndarray) -> None:
        expected = self.state["feature_mean"].shape[0]
        if features.ndim != 2 or features.shape[1] != expected:
            raise ZsarError(f"head {self.name!r} was fitted on {expected}-d features, got shape {features.shape}")

    def _fit_standardiser(self, features: np.ndarray) -> None:
        self.state["feature_mean"] = features.mean(0).astype(np.float32)
        self.state["feature_std"] = (features.std(0) + 1e-6).astype(np.float32)

    def _training_tensors(self, features: np.ndarray, labels: np.ndarray, prototypes: ClassPrototypes, device):
        """Reset the state, fit the standardiser; standardised features and label positions as torch tensors (for
        the heads trained with torch; the class text comes from `text_views.TrainingText`)."""
        import torch

        self.state = {}
        check_prototypes_cover(labels, prototypes)
        self._fit_standardiser(features)
        x = torch.from_numpy(self._standardise(features)).to(device)
        y = torch.from_numpy(label_positions(labels, prototypes.class_ids)).to(device)
        return x, y

    def _checked_training_tensors(self, features: np.ndarray, labels: np.ndarray, prototypes: ClassPrototypes,
                                  scaling: str, device):
        """`_training_tensors` for heads with a `feature_scaling` setting: finite features checked (an error naming the
        head), standardised when `scaling` is "standardise", else fed raw; the state is reset."""
        import torch

        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise ZsarError(f"{self.name}: training features must be [N, D], got shape {features.shape}")
        if not np.isfinite(features).all():
            raise ZsarError(f"{self.name}: training features contain NaN or inf")
        if scaling == "standardise":
            return self._training_tensors(features, labels, prototypes, device)
        self.state = {}
        check_prototypes_cover(labels, prototypes)
        x = torch.from_numpy(features).to(device)
        return x, torch.from_numpy(label_positions(labels, prototypes.class_ids)).to(device)

    def _scoring_tensor(self, features: np.ndarray, prototypes: ClassPrototypes, text_dim: int):
        """Checked (fitted, feature and text widths) and, when the head standardises, standardised features as a
        CPU tensor, for heads that score with torch."""
        import torch

        if not self.state:
            raise ZsarError(f"head {self.name!r} is not fitted")
        self._check_dim(features)
        if prototypes.dim != text_dim:
            raise ZsarError(f"text prototypes are {prototypes.dim}-d; the head was trained on {text_dim}-d text")
        features = np.asarray(features, dtype=np.float32)
        if "feature_mean" in self.state:
            features = self._standardise(features)
        return torch.from_numpy(features)

    def _cached_for_classes(self, prototypes: ClassPrototypes, build):
        """`build()` once per (fitted state, prototypes' classes and vectors): what a head trains to score a class
        set (a latent classifier) is reused, e.g. by the GZSL gate and the ZSL test on the same unseen classes."""
        import hashlib

        key = (tuple(int(c) for c in prototypes.class_ids), hashlib.sha256(prototypes.vectors.tobytes()).hexdigest())
        cached = getattr(self, "_class_set_cache", None)
        if cached is None or cached[0] is not self.state:
            cached = self._class_set_cache = (self.state, {})
        if key not in cached[1]:
            cached[1][key] = build()
        return cached[1][key]

    def _keep_view_weights(self, text) -> dict:
        """Keep a `fused` head's learned view weights in its state (they make its scoring vectors); the fit info
        says how many text views training saw and their weights."""
        weights = text.learned_weights()
        if weights is not None:
            self.state["view_weights"] = weights
        info = {"text_views": text.num_views, "text_view_mode": text.mode}
        return info if weights is None else {**info, "view_weights": weights.round(4).tolist()}

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.state["feature_mean"]) / self.state["feature_std"]).astype(np.float32)

    def save(self, directory: str | Path) -> Path:
        """`config.json` (head name, config, zsar version) + `weights.safetensors`."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"head": self.name, "config": asdict(self.config), "zsar_version": __version__}
        # weights first, each file replaced atomically: a crash leaves the old head or a complete new one's weights
        with atomic_target(directory / "weights.safetensors") as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in self.state.items()}, str(tmp))
        write_text_atomic(directory / "config.json", json.dumps(meta, indent=2))
        return directory

    @classmethod
    def from_saved(cls, config: dict, state: dict[str, np.ndarray]) -> Head:
        head = cls(build_config(cls.Config, config, f"head {cls.name!r}"))
        head.state = dict(state)
        return head

"""What the cross-modal VAE heads scored by a latent classifier share (CADA-VAE, FS-VAE): the checked training
inputs, the torch network kept in the head's state (and rebuilt from it), the checks of scoring inputs, and the
scoring itself: a fresh linear softmax classifier trained on latent samples of the scored classes (which samples
is the head's choice), applied to the `mu` of the feature encoder. One classifier is trained per fitted state and
class set (cached), and the snapshots of one run train theirs as one stacked model
(zsar/heads/latent_classifier.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.base import Head
from zsar.heads.latent_classifier import LatentClassifiers, train_latent_classifiers
from zsar.heads.torch_device import torch_threads, training_device


class LatentVAEHead(Head):
    """Subclasses set `Network` (constructed from the ints of its `arch`, with `encode_features` and
    `encode_text` giving (mu, logvar)) and implement `_new_network`, `_train` and `_classifier_set` (and may add
    to the state with `_extra_state`, to the fit's report with `_fit_info`); the config has `feature_scaling`,
    `device`, `threads`, `classifier_steps`, `classifier_lr` and `reference_quirks`."""

    Network: ClassVar[type[nn.Module]]
    epoch_selection = True  # fit() reports to a monitor; the protocol picks the stopping point on validation
    separable_scores = False  # a class's score depends on the other classes scored with it (one classifier)

    @property
    def relu_logits(self) -> bool:
        """Whether the classifier's logits go through a ReLU (a released code's quirk)."""
        return False

    # -- to implement ---------------------------------------------------------------------------------------------
    def _new_network(self, feature_dim: int, text_dim: int, non_negative: bool) -> nn.Module:
        """A freshly initialised network (torch's seed is set); `non_negative`: the training features are >= 0."""
        raise NotImplementedError

    def _train(self, net: nn.Module, x: torch.Tensor, text: torch.Tensor, y: torch.Tensor,
               generator: torch.Generator, report: Callable[[int, float], None]) -> float:
        """Train `net` in place, calling `report(step, loss)` after every epoch or cycle; the last loss."""
        raise NotImplementedError

    def _classifier_set(self, net: nn.Module, prototypes: ClassPrototypes) -> tuple[torch.Tensor, torch.Tensor]:
        """Seeded latent samples [M, ls] of `prototypes`' classes and their class positions [M]; the snapshots of
        one run must give the same positions in the same order."""
        raise NotImplementedError

    def _extra_state(self, net: nn.Module, x: torch.Tensor, labels: np.ndarray,
                     seed: int) -> Callable[[], dict[str, np.ndarray]]:
        """What the state keeps besides the network, as a function called whenever the state is stored."""
        return dict

    def _fit_info(self, net: nn.Module) -> dict:
        return {}

    # -- training -------------------------------------------------------------------------------------------------
    def fit(self, features, labels, prototypes: ClassPrototypes, seed: int = 0,
            monitor: Callable[[Head], object] | None = None) -> dict:
        """Train on seen-class features [N, D] with global labels [N]; `monitor(head)` (if given) is called after
        every epoch or cycle (`epoch_parameter`) with the head in its state then."""
        x, y, text, non_negative = self._training_inputs(features, labels, prototypes)
        torch.manual_seed(seed)
        net = self._new_network(x.shape[1], text.shape[1], non_negative).to(x.device)
        extra = self._extra_state(net, x, np.asarray(labels).astype(np.int64), seed)

        def report(step: int, loss: float) -> None:
            if monitor is not None:
                self._store(net, seed, extra())
                monitor(self)

        with torch_threads(self.config.threads):
            loss = self._train(net, x, text, y, torch.Generator().manual_seed(seed), report)
        if not np.isfinite(loss):
            raise ZsarError(f"{self.name}: training diverged (loss is NaN); lower lr")
        self._store(net, seed, extra())
        return {"final_loss": loss, **self._fit_info(net)}

    def _training_inputs(self, features: np.ndarray, labels: np.ndarray, prototypes: ClassPrototypes):
        """Checked (and, with `feature_scaling`, standardised) features [N, D], label positions [N] and the classes'
        text [C, Dt] as tensors on the training device, and whether the features are all >= 0; the state is reset
        (to the standardiser)."""
        cfg = self.config
        device = training_device(cfg.device, self.name)
        x, y = self._checked_training_tensors(features, labels, prototypes, cfg.feature_scaling, device)
        return x, y, torch.from_numpy(prototypes.vectors).to(device), bool(x.min() >= 0)

    def _store(self, net: nn.Module, seed: int, extra: dict[str, np.ndarray]) -> None:
        """The network's weights and shape, the seed, the standardiser and `extra` (arrays) as the state."""
        kept = {k: v for k, v in self.state.items() if k.startswith("feature_")}
        weights = {f"net.{k}": v.detach().cpu().numpy().astype(np.float32) for k, v in net.state_dict().items()}
        self.state = {**kept, **weights, "arch": np.array(net.arch, dtype=np.int64),
                      "seed": np.array([seed], dtype=np.int64), **extra}

    def network(self) -> nn.Module:
        """The network of the present state (on the CPU, in eval mode)."""
        net = self.Network(*(int(v) for v in self.state["arch"]))
        net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in self.state.items() if k.startswith("net.")})
        return net.eval()

    # -- scoring --------------------------------------------------------------------------------------------------
    def _check_dim(self, features: np.ndarray) -> None:
        expected = int(self.state["arch"][0])
        if features.ndim != 2 or features.shape[1] != expected:
            raise ZsarError(f"head {self.name!r} was fitted on {expected}-d features, got shape {features.shape}")

    def _prepare(self, features: np.ndarray, prototypes: ClassPrototypes) -> torch.Tensor:
        return self._scoring_tensor(features, prototypes, int(self.state["arch"][1]) if self.state else 0)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.state["seed"][0]))

    def _train_classifiers(self, samples: list[torch.Tensor], targets: torch.Tensor, classes: int) -> LatentClassifiers:
        cfg = self.config
        return train_latent_classifiers(torch.stack(samples), targets, classes, cfg.classifier_steps,
                                        cfg.classifier_lr, self.relu_logits, int(self.state["seed"][0]))

    def _scorer(self, prototypes: ClassPrototypes) -> tuple[nn.Module, LatentClassifiers]:
        """The network and the latent classifier for this class set, trained once per fitted state and class set."""
        def build():
            net = self.network()
            samples, targets = self._classifier_set(net, prototypes)
            return net, self._train_classifiers([samples], targets, len(prototypes.class_ids))

        return self._cached_for_classes(prototypes, build)

    @staticmethod
    def _feature_mu(net: nn.Module, features: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net.encode_features(features)[0]

    def score(self, features: np.ndarray, prototypes: ClassPrototypes, backend: str = "auto",
              device: str = "cpu") -> np.ndarray:
        """Logits [N, C] of a linear classifier trained on latent samples of `prototypes`' classes, applied to the
        feature encoder's mu (search backends do not apply)."""
        x = self._prepare(features, prototypes)
        with torch_threads(self.config.threads):
            net, classifiers = self._scorer(prototypes)
            return classifiers.logits(0, self._feature_mu(net, x)).numpy().astype(np.float32)

    @classmethod
    def score_snapshots(cls, heads: list[Head], features: np.ndarray, prototypes: ClassPrototypes,
                        backend: str = "auto", device: str = "cpu") -> list[np.ndarray]:
        """The snapshots of one training run scored at once: their latent classifiers train as one stacked model
        (same seed and settings; heads whose sample sets are laid out differently are scored one by one). Only
        each snapshot's latents are kept, not its network."""
        if not heads:
            return []
        x = heads[0]._prepare(features, prototypes)
        with torch_threads(heads[0].config.threads):
            mus, samples, layouts = [], [], []
            for head in heads:
                net = head.network()
                latents, targets = head._classifier_set(net, prototypes)
                mus.append(cls._feature_mu(net, x))
                samples.append(latents)
                layouts.append(targets)
            if any(not torch.equal(t, layouts[0]) for t in layouts[1:]):
                return [head.score(features, prototypes, backend, device) for head in heads]
            classifiers = heads[0]._train_classifiers(samples, layouts[0], len(prototypes.class_ids))
            return [classifiers.logits(k, mu).numpy().astype(np.float32) for k, mu in enumerate(mus)]

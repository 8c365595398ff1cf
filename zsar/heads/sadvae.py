"""SA-DVAE (ECCV 2024): semantic alignment via disentangled VAEs, trained on cached features.

A skeleton VAE with a latent split into a semantic part (`latent` dims) and a style part (`style` dims),
a text VAE into the semantic space, cross-modal reconstruction and a total-correlation discriminator,
with the released schedules and per-dataset presets (zsar/heads/sadvae_model.py has the model and its eager
iterations, zsar/heads/sadvae_cuda_graph.py the same iterations replayed from CUDA graphs; `train_sadvae` here
runs the epochs with one or the other).

Zero-shot scoring against any classes: `latents_per_class` text latents are sampled per class from the
text VAE, a fresh linear classifier (latent -> classes) is trained on them (seeded, so scores are
reproducible), and a feature's semantic `mu` is classified. The number of epochs is chosen on the
validation zero-shot problem by the protocol (`epoch_selection`), never on test.

`reference_quirks = true` restores two behaviours of the released code: one noise scalar per sample
broadcast over all latent dims, and a ReLU on the classifier's logits. By default the noise is per
dimension (the VAE as written in the paper) and logits are not rectified.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from zsar import progress
from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads.base import Head
from zsar.heads.configs import SADVAEConfig
from zsar.heads.latent_classifier import LatentClassifiers, train_latent_classifiers
from zsar.heads.sadvae_cuda_graph import GraphedIterations
from zsar.heads.sadvae_model import (
    EagerIterations,
    EpochDraws,
    LoopSettings,
    SADVAENetwork,
    iterations_per_epoch,
    text_latent_samples,
)
from zsar.heads.text_views import VIEW_SEED_OFFSET, view_probabilities
from zsar.heads.torch_device import torch_threads, training_device


def train_sadvae(net: SADVAENetwork, features: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                 settings: LoopSettings, generator: torch.Generator,
                 after_epoch: Callable[[int, float], None] | None = None,
                 views: tuple[torch.Tensor, torch.Generator] | None = None) -> float:
    """Train in place on features [N, Dx] with class text [C, Dy] and label positions [N]; returns the
    last VAE loss (NaN when training diverged). `after_epoch(epoch, loss)` runs after every epoch.
    `generator` is a CPU generator whatever the device (see EpochDraws). On a CUDA device the iterations are
    replayed from captured CUDA graphs unless `settings.cuda_graph` is off; the result is the same model.
    `text` [V, C, Dy] (several texts per class): every sample of every step is paired with one view drawn for it
    with `views` = (probabilities [V], CPU generator) (text augmentation; always the eager loop)."""
    n = features.shape[0]
    batch = min(settings.batch_size, n)
    steps = iterations_per_epoch(n, batch)
    full, ls = net.latent + net.style, net.latent
    if text.ndim == 3:
        run_epoch = EagerIterations(net, features, text, labels, settings, views).run_epoch
    elif features.is_cuda and settings.cuda_graph:
        run_epoch = GraphedIterations(net, features, text, labels, settings, steps, batch).run_epoch
    else:
        run_epoch = EagerIterations(net, features, text, labels, settings).run_epoch
    loss_value = math.nan
    for epoch in range(settings.epochs):
        draws = EpochDraws.draw(n, steps, batch, full, ls, settings, generator).to(features.device)
        loss_value = run_epoch(epoch, draws)
        if not math.isfinite(loss_value):
            return loss_value
        progress.epoch(epoch + 1, settings.epochs)
        if after_epoch is not None:
            after_epoch(epoch, loss_value)
    return loss_value


class SADVAEHead(Head):
    name = "sadvae"
    Config = SADVAEConfig
    epoch_selection = True  # fit() reports every epoch to a monitor; the protocol picks `epochs` on validation
    separable_scores = False  # a class's score depends on the other classes scored with it (one classifier)

    def fit(self, features, labels, prototypes: ClassPrototypes, seed: int = 0,
            monitor: Callable[[Head], object] | None = None) -> dict:
        """Train on seen-class features; `monitor(head)` (if given) is called after every epoch with the head
        in its state at that epoch."""
        cfg = self.config
        device = training_device(cfg.device, self.name)
        x, y = self._checked_training_tensors(features, labels, prototypes, cfg.feature_scaling, device)
        augment = cfg.text_views == "augment" and prototypes.views is not None and len(prototypes.views) > 1
        text = self._scaled_text(prototypes.views if augment else prototypes.vectors).to(device)
        views = (torch.from_numpy(view_probabilities(prototypes)),
                 torch.Generator().manual_seed(seed + VIEW_SEED_OFFSET))
        settings = LoopSettings(*(cfg.setting(k) for k in ("epochs", "batch_size", "lr", "dis_step")),
                                scalar_noise=cfg.reference_quirks, cuda_graph=cfg.cuda_graph)
        with torch_threads(cfg.threads):
            torch.manual_seed(seed)
            net = SADVAENetwork(x.shape[1], prototypes.dim, cfg.setting("latent"), cfg.setting("style"),
                                skeleton_relu=bool(x.min() >= 0)).to(device)
            generator = torch.Generator().manual_seed(seed)

            def after_epoch(epoch: int, loss: float) -> None:
                if monitor is not None:
                    self._store(net, seed)
                    monitor(self)

            loss = train_sadvae(net, x, text, y, settings, generator, after_epoch, views=views)
        if not np.isfinite(loss):
            raise ZsarError("sadvae: training diverged (loss is NaN); lower lr")
        self._store(net, seed)
        return {"final_loss": loss, "skeleton_decoder_relu": net.skeleton_relu,
                "text_views": int(text.shape[0]) if augment else 1}

    def _scaled_text(self, vectors: np.ndarray) -> torch.Tensor:
        """Class text as the text VAE sees it: unit vectors, or (`text_scaling = "rms"`) scaled by sqrt(D) so every
        dimension has unit root-mean-square, the order of magnitude of the released (unnormalised) sentence
        features; unit vectors make the text reconstruction error about D times smaller against its KL term."""
        factor = float(np.sqrt(vectors.shape[-1])) if self.config.text_scaling == "rms" else 1.0
        return torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32) * np.float32(factor))

    def _store(self, net: SADVAENetwork, seed: int) -> None:
        kept = {k: v for k, v in self.state.items() if k.startswith("feature_")}
        self.state = {**kept, **{f"net.{k}": v.detach().cpu().numpy().astype(np.float32)
                                 for k, v in net.state_dict().items()}}
        self.state["seed"] = np.array([seed], dtype=np.int64)
        self.state["skeleton_relu"] = np.array([net.skeleton_relu], dtype=np.int64)

    def network(self) -> SADVAENetwork:
        s = self.state
        latent = s["net.text_decoder.weight"].shape[1]
        full = s["net.skeleton_decoder.weight"].shape[1]
        net = SADVAENetwork(s["net.skeleton_encoder.weight"].shape[1], s["net.text_encoder.weight"].shape[1],
                            latent, full - latent, skeleton_relu=bool(s["skeleton_relu"][0]))
        net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in s.items() if k.startswith("net.")})
        return net.eval()

    def _check_dim(self, features: np.ndarray) -> None:
        expected = self.state["net.skeleton_encoder.weight"].shape[1]
        if features.ndim != 2 or features.shape[1] != expected:
            raise ZsarError(f"head {self.name!r} was fitted on {expected}-d features, got shape {features.shape}")

    def _text_latents(self, prototypes: ClassPrototypes) -> tuple[SADVAENetwork, torch.Tensor, torch.Tensor]:
        """The network and its seeded text latent samples of `prototypes`' classes (with their labels)."""
        net = self.network()
        samples, targets = text_latent_samples(net, self._scaled_text(prototypes.vectors),
                                               self.config.latents_per_class, self.config.reference_quirks,
                                               torch.Generator().manual_seed(int(self.state["seed"][0])))
        return net, samples, targets

    def _train_classifiers(self, samples: list[torch.Tensor], targets: torch.Tensor, classes: int) -> LatentClassifiers:
        cfg = self.config
        return train_latent_classifiers(torch.stack(samples), targets, classes, cfg.classifier_steps,
                                        cfg.classifier_lr, cfg.reference_quirks, int(self.state["seed"][0]))

    def _scorer(self, prototypes: ClassPrototypes) -> tuple[SADVAENetwork, LatentClassifiers]:
        """The network and the latent classifier for this class set, trained once per fitted state and class set."""
        def build():
            net, samples, targets = self._text_latents(prototypes)
            return net, self._train_classifiers([samples], targets, len(prototypes.class_ids))

        return self._cached_for_classes(prototypes, build)

    def _prepare(self, features: np.ndarray, prototypes: ClassPrototypes) -> torch.Tensor:
        return self._scoring_tensor(features, prototypes, self.state["net.text_encoder.weight"].shape[1]
                                    if self.state else 0)

    @staticmethod
    def _classify(net: SADVAENetwork, classifiers: LatentClassifiers, k: int, features: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            mu, _ = net.encode_skeleton(features)
            return classifiers.logits(k, mu[:, : net.latent]).numpy().astype(np.float32)

    def score(self, features: np.ndarray, prototypes: ClassPrototypes, backend: str = "auto",
              device: str = "cpu") -> np.ndarray:
        """Logits [N, C] of a linear classifier trained on text latents of `prototypes`' classes
        (search backends do not apply)."""
        x = self._prepare(features, prototypes)
        with torch_threads(self.config.threads):
            net, classifiers = self._scorer(prototypes)
            return self._classify(net, classifiers, 0, x)

    @classmethod
    def score_snapshots(cls, heads: list[Head], features: np.ndarray, prototypes: ClassPrototypes,
                        backend: str = "auto", device: str = "cpu") -> list[np.ndarray]:
        """The epochs of one training run scored at once: their latent classifiers train as one stacked model
        (same seed, settings and standardiser for all, as `fit` stores them)."""
        if not heads:
            return []
        first = heads[0]
        x = first._prepare(features, prototypes)
        with torch_threads(first.config.threads):
            nets, samples = [], []
            for head in heads:
                net, latents, targets = head._text_latents(prototypes)
                nets.append(net)
                samples.append(latents)
            classifiers = first._train_classifiers(samples, targets, len(prototypes.class_ids))
            return [cls._classify(net, classifiers, k, x) for k, net in enumerate(nets)]

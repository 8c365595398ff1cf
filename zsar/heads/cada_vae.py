"""CADA-VAE (Schönfeld et al., CVPR 2019) on cached features: aligned feature and text VAEs, and the generative
(G)ZSL classifier in their shared latent space (the model is zsar/heads/cada_vae_model.py).

Training: `preset = "original"` is the released image model (hidden 1560/1450 encoders, 1660/665 decoders, latent
64, Adam with amsgrad, lr 1.5e-4, batch 50, 100 epochs, the released warm-ups of the KL, cross-reconstruction and
distribution-alignment weights); `small` keeps the schedule with narrower layers. The protocol chooses the number
of epochs on the validation zero-shot problem (`epoch_selection`): the warm-ups are in absolute epochs, so a fit
with `epochs = k` is exactly the k-th epoch of a longer one.

Scoring (GZSL without a gate): for the classes of the given prototypes a fresh softmax classifier is trained in
latent space on, per class the head was trained on, `seen_latents_per_class` latents of its real training samples
(the posteriors of up to that many of them kept at fitting, each drawn with seeded noise, repeated to the count as
released), and per other class latents sampled from the text encoder's posterior: `unseen_latents_per_class` when
some scored class was trained on (GZSL), `zsl_latents_per_class` when none was (ZSL). A feature is classified by
the mu of its feature posterior. Scoring seen and unseen classes together is thus CADA-VAE's own GZSL; the
protocol's gate and calibrated stacking apply on top as for any head.

Deviations from the release:
- the latent classifier is full-batch Adam (lr `classifier_lr`, betas 0.9/0.999, `classifier_steps` steps), not
  mini-batches of 32 with betas 0.5/0.999 for a number of epochs the release picks on the test set;
- the training samples behind the seen-class latents are a seeded random choice (the release takes the first ones);
- the number of VAE epochs is chosen on validation (the release trains 100 and reports the best test epoch of the
  classifier);
- features are standardised by default (`feature_scaling`), and the sampler draws per-dimension noise scaled by
  exp(logvar / 2). `reference_quirks = true` restores the released sampler: one noise scalar per sample broadcast
  over the latent dims, scaled by exp(logvar).
"""

from __future__ import annotations

import numpy as np
import torch

from zsar.features.prototypes import ClassPrototypes
from zsar.heads.cada_vae_model import CADANetwork, train_cada
from zsar.heads.configs import CADA_KEYS, CADAVAEConfig
from zsar.heads.latent_vae_head import LatentVAEHead
from zsar.heads.vae_parts import latent_noise, reparameterise, text_latent_samples


def kept_rows(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Up to `per_class` training rows per class (a seeded choice), grouped by class."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rows.append(np.sort(rng.choice(idx, per_class, replace=False)) if len(idx) > per_class else idx)
    return np.concatenate(rows)


def repeated_rows(kept_labels: np.ndarray, classes: np.ndarray, count: int) -> np.ndarray:
    """For every class of `classes`, in order, `count` rows of `kept_labels` of that class (its rows repeated as
    often as needed, then cut to `count`, as the released classifier data)."""
    rows = [np.flatnonzero(kept_labels == c) for c in classes]
    return np.concatenate([np.tile(r, -(-count // len(r)))[:count] for r in rows]) if rows else np.zeros(0, int)


class CADAVAEHead(LatentVAEHead):
    name = "cada_vae"
    Config = CADAVAEConfig
    Network = CADANetwork
    epoch_parameter = "epochs"

    def _new_network(self, feature_dim: int, text_dim: int, non_negative: bool) -> CADANetwork:
        return CADANetwork(feature_dim, text_dim, *(self.config.setting(k) for k in CADA_KEYS[:5]))

    def _train(self, net, x, text, y, generator, report) -> float:
        return train_cada(net, x, text, y, self.config, generator, report)

    def _extra_state(self, net: CADANetwork, x: torch.Tensor, labels: np.ndarray, seed: int):
        """The trained classes, and the posteriors (mu, logvar) of up to `seen_latents_per_class` training samples
        of each (a seeded choice, the same at every epoch) with their labels: latents, so snapshots stay small."""
        rows = kept_rows(labels, self.config.seen_latents_per_class, seed)
        kept = x[torch.from_numpy(rows).to(x.device)]

        def extra() -> dict[str, np.ndarray]:
            with torch.no_grad():
                mu, logvar = (t.cpu().numpy().astype(np.float32) for t in net.encode_features(kept))
            return {"seen_classes": np.unique(labels), "seen_labels": labels[rows], "seen_mu": mu,
                    "seen_logvar": logvar}

        return extra

    def _classifier_set(self, net: CADANetwork, prototypes: ClassPrototypes) -> tuple[torch.Tensor, torch.Tensor]:
        """Real-sample latents of the trained classes among `prototypes` (`seen_latents_per_class` each), then text
        latents of the others; labels are positions in `prototypes`."""
        cfg, s = self.config, self.state
        scalar, log_scale = cfg.reference_quirks, (1.0 if cfg.reference_quirks else 0.5)
        generator = self._generator()
        trained = np.isin(prototypes.class_ids, s["seen_classes"])
        rows = repeated_rows(s["seen_labels"], prototypes.class_ids[trained], cfg.seen_latents_per_class)
        mu, logvar = torch.from_numpy(s["seen_mu"][rows]), torch.from_numpy(s["seen_logvar"][rows])
        samples = [reparameterise(mu, logvar, latent_noise(len(rows), mu.shape[1], scalar, generator), log_scale)]
        targets = [torch.from_numpy(np.flatnonzero(trained)).repeat_interleave(cfg.seen_latents_per_class)]
        if not trained.all():
            per_class = cfg.unseen_latents_per_class if trained.any() else cfg.zsl_latents_per_class
            others = np.flatnonzero(~trained)
            latents, positions = text_latent_samples(net, torch.from_numpy(prototypes.vectors[others]), per_class,
                                                     scalar, generator, log_scale)
            samples.append(latents)
            targets.append(torch.from_numpy(others)[positions])
        return torch.cat(samples), torch.cat(targets)

"""Every head's settings, as plain dataclasses (no torch): `zsar run --check` and the config checks read them
before any heavy module is imported. The heads themselves (zsar/heads/<name>.py) say what the settings do."""

from __future__ import annotations

from dataclasses import dataclass

from zsar.errors import ZsarError

# head name -> (module, class), imported only when the head is used
HEAD_CLASSES = {
    "nearest_prototype": ("zsar.heads.nearest_prototype", "NearestPrototypeHead"),
    "linear_projection": ("zsar.heads.linear_projection", "LinearProjectionHead"),
    "dual_head": ("zsar.heads.dual_head", "DualHead"),
    "sadvae": ("zsar.heads.sadvae", "SADVAEHead"),
    "contrastive": ("zsar.heads.contrastive", "ContrastiveHead"),
    "cada_vae": ("zsar.heads.cada_vae", "CADAVAEHead"),
    "fs_vae": ("zsar.heads.fs_vae", "FSVAEHead"),
    "tdsm": ("zsar.heads.tdsm", "TDSMHead"),
}


@dataclass(frozen=True)
class NearestPrototypeConfig:
    prototypes: str = "synthesized"  # "synthesized" (feature space) or "text" (features already in text space)
    mix_temperature: float = 0.05  # softmax temperature over text similarities to seen classes
    temperature: float = 0.1  # cosine / temperature = logits (sets confidence only, not the ranking)

    def __post_init__(self) -> None:
        if self.prototypes not in ("synthesized", "text"):
            raise ZsarError(f"nearest_prototype: prototypes must be 'synthesized' or 'text', not {self.prototypes!r}")
        if self.mix_temperature <= 0 or self.temperature <= 0:
            raise ZsarError("nearest_prototype: temperatures must be positive")


@dataclass(frozen=True)
class LinearProjectionConfig:
    epochs: int = 150  # full passes over the training features
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-3
    temperature: float = 0.05  # cosine / temperature in the training softmax
    text_views: str = "mean"  # several texts per class: mean | augment | fused (zsar/heads/text_views.py)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.temperature <= 0:
            raise ZsarError("linear_projection: epochs, batch_size, lr and temperature must be positive")
        _check_text_views("linear_projection", self.text_views)


@dataclass(frozen=True)
class DualHeadConfig:
    epochs: int = 100
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-3
    dropout: float = 0.5
    hidden: int = 0  # width of a shared trainable trunk; 0: no trunk, the heads on the cached feature (published)
    cls_weight: float = 0.7  # loss weight of the classification head; the semantic head gets the rest
    fuse_weight: float = 0.8  # supervised inference: fuse_weight * cls + (1 - fuse_weight) * semantic
    init_temperature: float = 0.07  # the learnable scale starts at 1 / init_temperature
    text_views: str = "mean"  # several texts per class: mean | augment | fused (zsar/heads/text_views.py)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.init_temperature <= 0 or self.hidden < 0:
            raise ZsarError("dual_head: epochs, batch_size, lr and init_temperature must be positive, hidden >= 0")
        if not 0 <= self.cls_weight < 1 or not 0 <= self.fuse_weight <= 1 or not 0 <= self.dropout < 1:
            raise ZsarError("dual_head: cls_weight must be in [0, 1), fuse_weight in [0, 1], dropout in [0, 1)")
        _check_text_views("dual_head", self.text_views)


TEXT_VIEW_MODES = ("mean", "augment", "fused")  # zsar/heads/text_views.py says what they do


def _check_text_views(head: str, mode: str, modes: tuple[str, ...] = TEXT_VIEW_MODES) -> None:
    if mode not in modes:
        raise ZsarError(f"{head}: text_views must be one of {modes}, not {mode!r}")


# the released scripts' settings: semantic latent, style latent, Adam lr, batch size, discriminator period
PRESETS: dict[str, dict] = {
    "ntu60_synse": {"latent": 160, "style": 8, "lr": 3.389e-5, "batch_size": 32, "dis_step": 5, "epochs": 10},
    "ntu120_synse": {"latent": 256, "style": 32, "lr": 3.478e-5, "batch_size": 32, "dis_step": 4, "epochs": 10},
    "ntu60_random": {"latent": 224, "style": 16, "lr": 3.596e-5, "batch_size": 32, "dis_step": 7, "epochs": 10},
    "ntu120_random": {"latent": 176, "style": 20, "lr": 7.361e-5, "batch_size": 32, "dis_step": 12, "epochs": 10},
    "pku51_random": {"latent": 128, "style": 16, "lr": 3.074e-5, "batch_size": 64, "dis_step": 2, "epochs": 10},
    # not from the paper: for datasets of a few hundred to a few thousand training samples (NW-UCLA, the
    # demo, a user's own), where 10 epochs at the NTU learning rate are a few hundred Adam steps
    "generic": {"latent": 64, "style": 8, "lr": 1e-3, "batch_size": 32, "dis_step": 5, "epochs": 60},
}
PRESET_KEYS = ("latent", "style", "lr", "batch_size", "dis_step", "epochs")


@dataclass(frozen=True)
class SADVAEConfig:
    preset: str = "generic"  # one of PRESETS; explicit values below override it
    latent: int | None = None  # semantic latent size (ls); None: the preset's
    style: int | None = None  # non-semantic latent size (ils); None: the preset's
    lr: float | None = None  # Adam learning rate of the VAEs and the discriminator; None: the preset's
    batch_size: int | None = None
    dis_step: int | None = None  # discriminator step every `dis_step` iterations; None: the preset's
    epochs: int | None = None  # the most epochs (None: the preset's); the protocol picks how many on validation
    latents_per_class: int = 500  # text latents sampled per class to train the zero-shot classifier
    classifier_steps: int = 300  # full-batch Adam steps of that classifier
    classifier_lr: float = 1e-3
    feature_scaling: str = "standardise"  # training mean / std; "none" feeds raw features, as released
    text_scaling: str = "unit"  # "unit": the prototypes' unit vectors; "rms": times sqrt(D) (SADVAEHead._scaled_text)
    reference_quirks: bool = False  # [B, 1] noise and ReLU on the classifier logits, as in the released code
    threads: int | None = None  # torch CPU threads while training; None: torch's default
    device: str = "cpu"  # torch device of training ("cuda": the iterations are replayed from CUDA graphs)
    cuda_graph: bool = True  # false: launch every kernel of every iteration from Python (same model, slower)
    text_views: str = "mean"  # several texts per class: mean | augment (zsar/heads/text_views.py)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ZsarError(f"sadvae: unknown preset {self.preset!r}; known: {sorted(PRESETS)}")
        _check_text_views("sadvae", self.text_views, ("mean", "augment"))  # its text VAE takes one vector: no fused
        if self.feature_scaling not in ("none", "standardise"):
            raise ZsarError("sadvae: feature_scaling must be 'none' or 'standardise'")
        _check_choice("sadvae", "text_scaling", self.text_scaling, ("unit", "rms"))
        values = [self.setting(k) for k in PRESET_KEYS] + [self.latents_per_class, self.classifier_steps]
        if min(values) <= 0 or self.classifier_lr <= 0:
            raise ZsarError("sadvae: sizes, learning rates, batch size, dis_step, epochs and steps must be positive")

    def setting(self, key: str):
        value = getattr(self, key)
        return PRESETS[self.preset][key] if value is None else value


def _preset_setting(config, presets: dict, key: str):
    value = getattr(config, key)
    return presets[config.preset][key] if value is None else value


def _check_preset(head: str, preset: str, presets: dict) -> None:
    if preset not in presets:
        raise ZsarError(f"{head}: unknown preset {preset!r}; known: {sorted(presets)}")


def _check_positive(head: str, **values) -> None:
    bad = [name for name, value in values.items() if value is not None and value <= 0]
    if bad:
        raise ZsarError(f"{head}: {', '.join(bad)} must be positive")


def _check_choice(head: str, key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ZsarError(f"{head}: {key} must be one of {choices}, not {value!r}")


@dataclass(frozen=True)
class ContrastiveConfig:
    epochs: int = 100  # the most epochs; the protocol picks how many on validation
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-2
    hidden: int = 0  # width of a hidden layer (GELU, dropout) before the projection; 0: a linear projection
    dropout: float = 0.1  # on the hidden layer
    init_temperature: float = 0.07  # the learnable temperature starts here (logit scale clamped at 100)
    symmetric: bool = True  # also the text -> features direction over the batch's samples
    views_as_positives: bool = True  # every text view of the sample's class is a positive (multi-positive InfoNCE)
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_positive("contrastive", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                        init_temperature=self.init_temperature)
        if self.hidden < 0 or not 0 <= self.dropout < 1 or self.weight_decay < 0:
            raise ZsarError("contrastive: hidden and weight_decay must be >= 0, dropout in [0, 1)")


# CADA-VAE (CVPR 2019) as released for images; `small` keeps its schedule with narrower layers for a few hundred
# training samples (not from the paper)
CADA_PRESETS: dict[str, dict] = {
    "original": {"latent": 64, "feature_hidden": 1560, "text_hidden": 1450, "feature_decoder_hidden": 1660,
                 "text_decoder_hidden": 665, "epochs": 100, "batch_size": 50, "lr": 1.5e-4},
    "small": {"latent": 32, "feature_hidden": 256, "text_hidden": 256, "feature_decoder_hidden": 256,
              "text_decoder_hidden": 256, "epochs": 100, "batch_size": 32, "lr": 1e-3},
}
CADA_KEYS = ("latent", "feature_hidden", "text_hidden", "feature_decoder_hidden", "text_decoder_hidden", "epochs",
             "batch_size", "lr")


@dataclass(frozen=True)
class CADAVAEConfig:
    preset: str = "original"  # one of CADA_PRESETS; explicit values below override it
    latent: int | None = None
    feature_hidden: int | None = None  # encoder hidden widths (0: a linear encoder)
    text_hidden: int | None = None
    feature_decoder_hidden: int | None = None
    text_decoder_hidden: int | None = None
    epochs: int | None = None  # the most epochs; the protocol picks how many on validation
    batch_size: int | None = None
    lr: float | None = None
    beta: float = 0.25  # KL weight at the end of its warm-up
    cross_weight: float = 2.37  # cross-reconstruction weight (gamma) at the end of its warm-up
    distribution_weight: float = 8.13  # distribution-alignment weight (delta) at the end of its warm-up
    # linear warm-ups (first epoch at weight 0, epoch at full weight; 0-based epochs, as released), absolute so that
    # stopping early replays the same schedule
    kl_warmup: tuple = (0, 93)
    cross_warmup: tuple = (21, 75)
    distribution_warmup: tuple = (6, 22)
    seen_latents_per_class: int = 200  # real seen-sample latents per seen class in the final classifier
    unseen_latents_per_class: int = 400  # text latents per class not trained on (GZSL); ZSL uses zsl_latents
    zsl_latents_per_class: int = 200  # text latents per class when no scored class was trained on
    classifier_steps: int = 300  # full-batch Adam steps of the latent softmax classifier
    classifier_lr: float = 1e-3
    feature_scaling: str = "standardise"  # training mean / std; "none" feeds raw features
    reference_quirks: bool = False  # the released sampler: one noise scalar per sample, scaled by exp(logvar)
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads while training and scoring; None: torch's default

    def __post_init__(self) -> None:
        _check_preset("cada_vae", self.preset, CADA_PRESETS)
        _check_choice("cada_vae", "feature_scaling", self.feature_scaling, ("none", "standardise"))
        _check_positive("cada_vae", latent=self.setting("latent"), epochs=self.setting("epochs"),
                        batch_size=self.setting("batch_size"), lr=self.setting("lr"),
                        seen_latents_per_class=self.seen_latents_per_class,
                        unseen_latents_per_class=self.unseen_latents_per_class,
                        zsl_latents_per_class=self.zsl_latents_per_class, classifier_steps=self.classifier_steps,
                        classifier_lr=self.classifier_lr, threads=self.threads)
        if min(self.setting(k) for k in CADA_KEYS[1:5]) < 0 or min(self.beta, self.cross_weight,
                                                                   self.distribution_weight) < 0:
            raise ZsarError("cada_vae: hidden widths and loss weights must be >= 0")
        for name in ("kl_warmup", "cross_warmup", "distribution_warmup"):
            value = getattr(self, name)
            if len(value) != 2 or not 0 <= value[0] < value[1]:
                raise ZsarError(f"cada_vae: {name} must be [start, end] epochs with 0 <= start < end, not {value}")

    def setting(self, key: str):
        return _preset_setting(self, CADA_PRESETS, key)


# FS-VAE (ICCV 2025) scripts: latent size, iterations per cycle, cycles, calibrated-alignment alpha
FSVAE_PRESETS: dict[str, dict] = {
    "ntu60": {"latent": 100, "cycle": 1700, "cycles": 10, "alpha": 0.5},
    "ntu120": {"latent": 200, "cycle": 1900, "cycles": 10, "alpha": 0.1},
    # not from the paper: NTU-60's settings with 500-step cycles (5,000 steps instead of 17,000) for datasets of a
    # few hundred to a few thousand samples; the schedule's constants scale with the cycle
    "small": {"latent": 100, "cycle": 500, "cycles": 10, "alpha": 0.5},
}
FSVAE_KEYS = ("latent", "cycle", "cycles", "alpha")


@dataclass(frozen=True)
class FSVAEConfig:
    preset: str = "ntu60"  # one of FSVAE_PRESETS; explicit values below override it
    latent: int | None = None
    cycle: int | None = None  # iterations (one batch each) per annealing cycle
    cycles: int | None = None  # the most cycles; the protocol picks how many on validation
    alpha: float | None = None  # calibrated-alignment weight factor (the loss weight is lam * alpha)
    lam: float = 100.0  # lambda, the sigmoid's scale in the calibrated alignment
    batch_size: int = 64
    lr: float = 1e-4
    frequency: bool = True  # the learnable DCT band re-weighting in front of both encoders
    bands: int = 30
    band_strength: float = 0.3  # k, learnable
    alignment: str = "calibrated"  # "calibrated" (FS-VAE) or "cross_reconstruction" (MSF / SynSE's CADA-VAE)
    latents_per_class: int = 500  # text latents per class for the zero-shot classifier
    classifier_steps: int = 300
    classifier_lr: float = 1e-3
    feature_scaling: str = "none"  # "none" as released (non-negative pooled features); "standardise"
    # the released code's quirks: one noise scalar per sample, a ReLU on the text decoder and on the classifier
    # logits. Off: per-dimension noise, linear text decoder and logits (the feature decoder's ReLU is kept where
    # the training features are non-negative, as SA-DVAE's)
    reference_quirks: bool = False
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads while training and scoring; None: torch's default

    def __post_init__(self) -> None:
        _check_preset("fs_vae", self.preset, FSVAE_PRESETS)
        _check_choice("fs_vae", "alignment", self.alignment, ("calibrated", "cross_reconstruction"))
        _check_choice("fs_vae", "feature_scaling", self.feature_scaling, ("none", "standardise"))
        _check_positive("fs_vae", latent=self.setting("latent"), cycle=self.setting("cycle"),
                        cycles=self.setting("cycles"), alpha=self.setting("alpha"), lam=self.lam,
                        batch_size=self.batch_size, lr=self.lr, bands=self.bands,
                        latents_per_class=self.latents_per_class, classifier_steps=self.classifier_steps,
                        classifier_lr=self.classifier_lr, threads=self.threads)
        if self.band_strength < 0:
            raise ZsarError("fs_vae: band_strength must be >= 0")

    def setting(self, key: str):
        return _preset_setting(self, FSVAE_PRESETS, key)


# TDSM (ICCV 2025): the released denoiser and schedule (`faithful`, ~261M parameters: a GPU job), and a `small`
# one for a CPU and a few hundred to a few thousand training samples (not from the paper)
TDSM_PRESETS: dict[str, dict] = {
    "faithful": {"hidden": 768, "depth": 12, "heads": 12, "iterations": 50000, "batch_size": 256, "lr": 1e-4,
                 "gpu_only": True},
    # chosen on the demo's development splits (seeds 4-9): 56.1 ZSL top-1 against 43.3 nearest_prototype; about
    # 13 ms per step on NW-UCLA-sized data on a 2-core CPU
    "small": {"hidden": 64, "depth": 2, "heads": 4, "iterations": 2000, "batch_size": 64, "lr": 3e-4,
              "gpu_only": False},
}
TDSM_KEYS = ("hidden", "depth", "heads", "iterations", "batch_size", "lr")


@dataclass(frozen=True)
class TDSMConfig:
    preset: str = "small"  # one of TDSM_PRESETS; explicit values below override it
    hidden: int | None = None  # transformer width
    depth: int | None = None  # blocks
    heads: int | None = None  # attention heads
    iterations: int | None = None  # optimiser steps the learning-rate schedule spans
    stop_at: int | None = None  # stop after this many steps (same schedule); the protocol picks it on validation
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.01
    warmup: int = 100  # linear warm-up steps of the cosine schedule
    timesteps: int = 50  # DDPM steps of the scaled-linear schedule
    score_timestep: int = 25  # t* of matching
    score_noises: int = 3  # fixed noises averaged in matching
    margin: float = 1.0  # triplet margin
    diffusion_weight: float = 1.0
    triplet_weight: float = 1.0
    evaluations: int = 10  # snapshots for the protocol's choice of iterations (every iterations / evaluations)
    feature_scaling: str = "none"  # "none" as released; "standardise"
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads while training and scoring; None: torch's default

    def __post_init__(self) -> None:
        _check_preset("tdsm", self.preset, TDSM_PRESETS)
        _check_choice("tdsm", "feature_scaling", self.feature_scaling, ("none", "standardise"))
        _check_positive("tdsm", **{k: self.setting(k) for k in TDSM_KEYS}, timesteps=self.timesteps,
                        score_noises=self.score_noises, evaluations=self.evaluations, threads=self.threads)
        if self.setting("hidden") % self.setting("heads"):
            raise ZsarError(f"tdsm: hidden ({self.setting('hidden')}) must be a multiple of heads "
                            f"({self.setting('heads')})")
        if self.stop_at is not None and not 0 < self.stop_at <= self.setting("iterations"):
            raise ZsarError(f"tdsm: stop_at must be in [1, iterations = {self.setting('iterations')}]")
        if not 0 <= self.score_timestep < self.timesteps or self.margin < 0 or self.warmup < 0:
            raise ZsarError("tdsm: score_timestep must be in [0, timesteps), margin and warmup >= 0")
        if TDSM_PRESETS[self.preset]["gpu_only"] and not self.device.startswith("cuda"):
            raise ZsarError(f"tdsm: preset {self.preset!r} (a {self.setting('depth')} x {self.setting('hidden')} "
                            f"transformer, {self.setting('iterations')} steps) is for a GPU: set device = 'cuda', "
                            "or use preset = 'small' on a CPU")

    def setting(self, key: str):
        return _preset_setting(self, TDSM_PRESETS, key)


HEAD_CONFIGS: dict[str, type] = {"nearest_prototype": NearestPrototypeConfig,
                                 "linear_projection": LinearProjectionConfig, "dual_head": DualHeadConfig,
                                 "sadvae": SADVAEConfig, "contrastive": ContrastiveConfig,
                                 "cada_vae": CADAVAEConfig, "fs_vae": FSVAEConfig, "tdsm": TDSMConfig}

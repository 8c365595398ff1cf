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
        values = [self.setting(k) for k in PRESET_KEYS] + [self.latents_per_class, self.classifier_steps]
        if min(values) <= 0 or self.classifier_lr <= 0:
            raise ZsarError("sadvae: sizes, learning rates, batch size, dis_step, epochs and steps must be positive")

    def setting(self, key: str):
        value = getattr(self, key)
        return PRESETS[self.preset][key] if value is None else value


HEAD_CONFIGS: dict[str, type] = {"nearest_prototype": NearestPrototypeConfig,
                                 "linear_projection": LinearProjectionConfig, "dual_head": DualHeadConfig,
                                 "sadvae": SADVAEConfig}

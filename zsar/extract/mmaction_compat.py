"""The one place that imports mmaction2: import-time fixes, config lookup and model building.

mmaction2 1.2.0 needs a few patches to import cleanly in a plain CPU environment (measured, see the
install notes); each is applied once, before the first import of `mmaction.models`.
"""

from __future__ import annotations

import sys
import types
from functools import lru_cache
from pathlib import Path

from zsar.errors import ZsarError

_SLOWONLY = "recognition/slowonly/slowonly_imagenet-pretrained-r50_8xb16-"
# Short names for the recognizer configs shipped inside the mmaction2 package.
BUILTIN_CONFIGS = {
    "stgcn": "skeleton/stgcn/stgcn_8xb16-joint-u100-80e_ntu60-xsub-keypoint-3d.py",
    "stgcnpp": "skeleton/stgcnpp/stgcnpp_8xb16-joint-u100-80e_ntu60-xsub-keypoint-3d.py",
    "stgcn-2d": "skeleton/stgcn/stgcn_8xb16-joint-u100-80e_ntu60-xsub-keypoint-2d.py",
    "stgcnpp-2d": "skeleton/stgcnpp/stgcnpp_8xb16-joint-u100-80e_ntu60-xsub-keypoint-2d.py",
    "posec3d": "skeleton/posec3d/slowonly_r50_8xb16-u48-240e_ntu60-xsub-keypoint.py",  # 2-D COCO-17 keypoints
    # video recognizers (RGB)
    "slowonly": _SLOWONLY + "8x8x1-steplr-150e_kinetics400-rgb.py",
    "slowonly-4x16": _SLOWONLY + "4x16x1-steplr-150e_kinetics400-rgb.py",
    "videomae": "recognition/videomae/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py",
    "videomae-large": "recognition/videomae/vit-large-p16_videomae-k400-pre_16x4x1_kinetics-400.py",
    "videomaev2": "recognition/videomaev2/vit-base-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400.py",
    "videomaev2-small": "recognition/videomaev2/vit-small-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400.py",
    "tsn": "recognition/tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb.py",
    "tsm": "recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py",
}


@lru_cache(maxsize=1)
def import_mmaction():
    """Import mmaction2 with its models registered; a clear error when the `mm` extra is missing."""
    # Patch 1: the 1.2.0 wheel lacks the `drn` localizer package that `mmaction.models.localizers`
    # imports; provide an empty stand-in (zsar never uses localizers).
    if "mmaction.models.localizers.drn.drn" not in sys.modules:
        package = types.ModuleType("mmaction.models.localizers.drn")
        package.__path__ = []
        module = types.ModuleType("mmaction.models.localizers.drn.drn")
        module.DRN = None
        sys.modules.setdefault("mmaction.models.localizers.drn", package)
        sys.modules.setdefault("mmaction.models.localizers.drn.drn", module)
    try:
        import mmaction
        import mmaction.utils.dependency as dependency
    except ImportError as exc:
        raise ZsarError(f"mmaction2 is not installed ({exc}); install zsar with the `mm` extra") from exc
    # Patch 2 is a dependency (importlib-metadata, which mmaction2 imports but does not declare).
    # Patch 3: with `transformers` installed mmaction2 tries to register its multimodal models, which need
    # packages zsar does not install; switch that off.
    dependency.WITH_MULTIMODAL = False
    # Patch 4 (setuptools<81 for pkg_resources) is a pin; configs are loaded by file path here anyway.
    # Patch 5: mmaction2's pose transforms (PoseCompact, used by PoseC3D) use `np.Inf`, which numpy 2 removed;
    # restore the alias (the same value as `np.inf`).
    import numpy

    if "Inf" not in numpy.__dict__:
        numpy.Inf = numpy.inf
    from mmaction.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    return mmaction


def config_root() -> Path:
    return Path(import_mmaction().__file__).parent / ".mim" / "configs"


def resolve_config(spec: str | Path) -> Path:
    """A config file: a short name (`stgcn`, `stgcnpp`, ...), a path inside mmaction2's configs, or a file."""
    spec = str(spec)
    if spec in BUILTIN_CONFIGS:
        return config_root() / BUILTIN_CONFIGS[spec]
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    inside = config_root() / spec
    if inside.is_file():
        return inside
    raise ZsarError(f"config {spec!r} is neither a short name {sorted(BUILTIN_CONFIGS)}, a file, nor a path under "
                    f"mmaction2's configs ({config_root()})")


def load_config(spec: str | Path):
    import_mmaction()
    from mmengine.config import Config

    path = resolve_config(spec)
    try:
        return Config.fromfile(str(path))
    except Exception as exc:  # mmengine raises many types for a bad config file
        raise ZsarError(f"cannot load the mmaction2 config: {type(exc).__name__}: {exc}", path) from exc


def build_model(model_cfg: dict):
    """Build a recognizer from a `model` config dict (pretrained weights are never downloaded)."""
    import_mmaction()
    from mmaction.registry import MODELS

    try:
        return MODELS.build(model_cfg)
    except Exception as exc:  # registry errors wrap the constructor's exception type
        raise ZsarError(f"cannot build the mmaction2 model: {type(exc).__name__}: {exc}") from exc

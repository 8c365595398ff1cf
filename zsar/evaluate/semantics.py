"""What the class text says about a split: how similar each unseen class's prototype is to the seen classes'
(S-GEAR's language prototypes), i.e. which seen classes an unseen class can borrow from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from zsar.atomic import atomic_target
from zsar.class_lists.splits import ZeroShotSplit
from zsar.errors import ZsarError
from zsar.evaluate.plots import similarity_png
from zsar.features.prototypes import ClassPrototypes

NEAREST = 3  # seen classes listed per unseen class


def class_similarity(prototypes: ClassPrototypes) -> np.ndarray:
    """[C, C] cosine similarity of the classes' prototypes (in the prototypes' class order)."""
    return (prototypes.vectors @ prototypes.vectors.T).astype(np.float32)


def write_similarity(prototypes: ClassPrototypes, out: str | Path) -> Path:
    """The [C, C] matrix to `.csv` (class names as header and first column) or `.npy` (the matrix alone, rows in
    the prototypes' class order), atomically."""
    out = Path(out)
    matrix = class_similarity(prototypes)
    if out.suffix.lower() not in (".csv", ".npy"):
        raise ZsarError("similarity output must end in .csv or .npy", out)
    with atomic_target(out) as tmp:
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, matrix)
        else:
            table = pd.DataFrame(matrix.round(6), index=prototypes.class_names, columns=prototypes.class_names)
            table.to_csv(tmp, index_label="class")
    return out


def unseen_seen_similarity(prototypes: ClassPrototypes, split: ZeroShotSplit, nearest: int = NEAREST) -> dict:
    """The [unseen, seen] cosine matrix of a split, and each unseen class's nearest seen classes."""
    unseen, seen = prototypes.subset(split.unseen), prototypes.subset(split.seen)
    matrix = unseen.vectors @ seen.vectors.T
    rows = []
    for i, name in enumerate(unseen.class_names):
        order = np.argsort(-matrix[i], kind="stable")[:nearest]
        rows.append({"class": name, "nearest_seen": [[seen.class_names[j], round(float(matrix[i, j]), 4)]
                                                     for j in order]})
    return {"variant": prototypes.variant, "unseen": unseen.class_names, "seen": seen.class_names,
            "matrix": np.round(matrix, 4).tolist(), "nearest": rows}


def semantics_rows(semantics: dict) -> list[list[str]]:
    """Table rows (split, unseen class, nearest seen classes with cosine) for the reports."""
    return [[split, row["class"], ", ".join(f"{name} ({sim:.2f})" for name, sim in row["nearest_seen"])]
            for split, entry in semantics.items() for row in entry["nearest"]]


def semantics_figure(split: str, entry: dict) -> tuple[str, str]:
    title = f"text similarity, unseen vs seen ({split}, {entry['variant']})"
    return title, similarity_png(np.asarray(entry["matrix"]), entry["unseen"], entry["seen"], title)

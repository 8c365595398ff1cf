"""Figures for reports, rendered to PNG bytes (base64-embedded in the HTML report)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def confusion_png(matrix: np.ndarray, names: list[str], title: str) -> str:
    """Row-normalised confusion heatmap (rows = true class), with counts in the cells."""
    n = len(names)
    size = min(3 + 0.45 * n, 16)
    fig, ax = plt.subplots(figsize=(size, size))
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    return _png(fig)


def per_class_png(accuracy: dict[str, float], title: str, chance: float | None = None) -> str:
    """Horizontal bars of per-class accuracy (percent)."""
    names, values = list(accuracy), list(accuracy.values())
    fig, ax = plt.subplots(figsize=(7, 1 + 0.3 * len(names)))
    ax.barh(range(len(names)), values, color="#3b7dd8")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%)")
    if chance is not None:
        ax.axvline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance {chance:.1f}%")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def similarity_png(matrix: np.ndarray, rows: list[str], columns: list[str], title: str) -> str:
    """Heatmap of cosine similarities (rows x columns), values printed when the matrix is small."""
    fig, ax = plt.subplots(figsize=(min(3 + 0.32 * len(columns), 18), min(1.5 + 0.35 * len(rows), 14)))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("seen classes")
    ax.set_ylabel("unseen classes")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.03, label="cosine")
    if matrix.size <= 400:
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6, color="white")
    return _png(fig)

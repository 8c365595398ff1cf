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


def head_bars_png(panels: list[dict], title: str) -> str:
    """Heads side by side, one panel per group of metrics. A panel is {"title", "series": {label: {head: (mean,
    [per-split values])}}, "reference": (value, label) or None}: one bar per series and head at the mean, its value
    printed on it, and the per-split values as black points on the bar."""
    heads = list(dict.fromkeys(h for p in panels for values in p["series"].values() for h in values))
    widths = [max(3.5, 1.0 + 0.4 * len(heads) * len(p["series"])) for p in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths), 4.2), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, panel in zip(axes[0], panels):
        _bar_panel(ax, panel, heads)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _png(fig)


def _bar_panel(ax, panel: dict, heads: list[str]) -> None:
    series = panel["series"]
    step = 0.8 / len(series)
    colours = plt.get_cmap("tab10").colors
    for i, (label, values) in enumerate(series.items()):
        shown = [j for j, head in enumerate(heads) if head in values]
        x = np.array(shown) - 0.4 + step * (i + 0.5)
        bars = ax.bar(x, [values[heads[j]][0] for j in shown], width=0.9 * step, color=colours[i % len(colours)],
                      label=label, alpha=0.85)
        for label_text in ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2):
            label_text.set_bbox({"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.5})
        for xi, j in zip(x, shown):
            points = values[heads[j]][1]
            ax.scatter([xi] * len(points), points, s=10, color="black", zorder=3)
    if panel.get("reference"):
        value, text = panel["reference"]
        ax.axhline(value, color="grey", linestyle="--", linewidth=1, label=text)
    ax.scatter([], [], s=10, color="black", label="each split")
    ax.set_xticks(range(len(heads)), heads, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 108)
    ax.set_ylabel("%")
    ax.set_title(panel["title"], fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)


CURVE_MARKERS = {"GZSL": "o", "CS": "s", "gate": "^"}  # operating points: plain arg-max, calibrated stacking, gate


def seen_unseen_png(curves: dict[str, list[dict]], title: str) -> str:
    """One panel per head: every run's seen-unseen accuracy curve (x unseen, y seen, in %; a run is {"label",
    "unseen", "seen", "ausuc", "points": {name: [unseen, seen]}}) with its operating points marked."""
    cols = min(3, len(curves))
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 4.1 * rows), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for ax, (head, runs) in zip(axes.flat, curves.items()):
        for k, run in enumerate(runs):
            colour = colours[k % len(colours)]
            ax.plot(run["unseen"], run["seen"], color=colour, linewidth=1.2,
                    label=f"{run['label']} (AUSUC {run['ausuc']:.1f})")
            for name, (u, s) in run.get("points", {}).items():
                ax.scatter(u, s, marker=CURVE_MARKERS.get(name, "x"), color=colour, edgecolor="black", zorder=3)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xlabel("unseen accuracy (%)")
        ax.set_ylabel("seen accuracy (%)")
        ax.set_title(head, fontsize=10)
        ax.legend(fontsize=6, loc="upper right")
    for ax in axes.flat[len(curves):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker=m, linestyle="", color="grey", markeredgecolor="black", label=name)
               for name, m in CURVE_MARKERS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, title="operating points")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _png(fig)

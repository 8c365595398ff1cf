"""Paired comparisons of heads: is a difference in ZSL top-1 more than the noise of a few splits?

Two heads evaluated on the same splits, seeds and test samples are compared in two ways:
- per run: the difference of ZSL top-1 on each (split, seed), its mean, standard deviation and standard
  error, and how many runs each head won;
- per sample: all ZSL test samples of the shared runs pooled; the samples only one of the two heads gets right
  (b for the head, c for the baseline) and McNemar's exact two-sided test of b against c. The test treats samples
  as independent, which samples of one split are not quite; a large p says the difference is within noise.
No correction for the number of pairs compared is applied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

RunKey = tuple[str, int]  # (split, seed)


def binomial_tail(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (stable for large n)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_half_n = -n * math.log(2.0)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n for i in range(k + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant samples (1.0 when there are none)."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_tail(min(b, c), n))


def zsl_correct(predictions: pd.DataFrame) -> pd.Series:
    """Per ZSL test sample (index: sample_id), whether the head's top-1 class was right."""
    zsl = predictions[predictions["task"] == "zsl"]
    return pd.Series((zsl["predicted_label"] == zsl["true_label"]).to_numpy(), index=zsl["sample_id"].to_numpy())


def compare_pair(head: dict[RunKey, pd.Series], baseline: dict[RunKey, pd.Series]) -> dict | None:
    """Paired statistics over the runs both heads have (None when they share none). The values are
    per-sample correctness series keyed by (split, seed)."""
    keys = sorted(set(head) & set(baseline))
    if not keys:
        return None
    diffs, b, c, samples = [], 0, 0, 0
    for key in keys:
        a, z = head[key].align(baseline[key], join="inner")
        a, z = a.to_numpy(bool), z.to_numpy(bool)
        diffs.append(100.0 * (a.mean() - z.mean()) if len(a) else 0.0)
        b += int(np.sum(a & ~z))
        c += int(np.sum(~a & z))
        samples += len(a)
    d = np.asarray(diffs)
    std = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    return {
        "runs": len(keys),
        "top1_difference": {"mean": float(d.mean()), "std": std, "stderr": std / math.sqrt(len(d)), "n": len(d)},
        "wins": int(np.sum(d > 0)), "ties": int(np.sum(d == 0)), "losses": int(np.sum(d < 0)),
        "samples": samples, "only_head_right": b, "only_baseline_right": c, "mcnemar_p": mcnemar_exact(b, c),
    }


def compare_heads(correct: dict[str, dict[RunKey, pd.Series]], order: Sequence[str]) -> list[dict]:
    """Every head against every head listed before it in `order` (baselines usually come first)."""
    out = []
    for i, name in enumerate(order):
        for baseline in order[:i]:
            stats = compare_pair(correct.get(name, {}), correct.get(baseline, {}))
            if stats is not None:
                out.append({"head": name, "baseline": baseline, **stats})
    return out


def comparison_rows(comparisons: list[dict]) -> list[list[str]]:
    """Table rows for the Markdown and HTML reports."""
    rows = []
    for c in comparisons:
        d = c["top1_difference"]
        spread = f" ± {d['std']:.2f} (se {d['stderr']:.2f})" if d["n"] > 1 else ""
        rows.append([c["head"], c["baseline"], f"{d['mean']:+.2f}{spread}", f"{c['wins']}/{c['ties']}/{c['losses']}",
                     f"{c['only_head_right']} / {c['only_baseline_right']} of {c['samples']}", f"{c['mcnemar_p']:.3g}"])
    return rows


COMPARISON_HEADER = ["head", "baseline", "top-1 difference (runs)", "runs won/tied/lost",
                     "samples only head / only baseline right", "McNemar p"]

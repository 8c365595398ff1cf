from fractions import Fraction
from math import comb

import numpy as np
import pandas as pd
import pytest

from zsar.evaluate.comparison import compare_heads, compare_pair, mcnemar_exact, zsl_correct


def naive_mcnemar(b: int, c: int) -> float:
    """Exact rational arithmetic: 2 * P(X <= min(b, c)), X ~ Bin(b + c, 1/2), capped at 1."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(Fraction(comb(n, i), 2**n) for i in range(min(b, c) + 1))
    return float(min(Fraction(1), 2 * tail))


@pytest.mark.parametrize("b,c", [(0, 0), (0, 1), (1, 0), (3, 3), (10, 2), (2, 10), (0, 25), (40, 61), (700, 640)])
def test_mcnemar_exact_matches_rational_arithmetic(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(naive_mcnemar(b, c), rel=1e-9, abs=1e-300)


def _series(ids, flags):
    return pd.Series(np.asarray(flags, dtype=bool), index=ids)


def test_compare_pair_aligns_samples_and_counts_discordant_pairs():
    head = {("s1", 0): _series(["a", "b", "c", "d"], [1, 1, 0, 1]),
            ("s2", 0): _series(["e", "f"], [0, 0]),
            ("s3", 0): _series(["g"], [1])}  # a run the baseline does not have: left out
    baseline = {("s1", 0): _series(["d", "c", "b", "a"], [0, 1, 1, 0]),  # same samples, another order
                ("s2", 0): _series(["f", "e"], [1, 0])}
    stats = compare_pair(head, baseline)
    # s1: head right on a, b, d; baseline right on b, c -> only head: a, d; only baseline: c. s2: only baseline: f
    assert stats["runs"] == 2 and stats["samples"] == 6
    assert (stats["only_head_right"], stats["only_baseline_right"]) == (2, 2)
    diffs = [100 * (3 / 4 - 2 / 4), 100 * (0 - 1 / 2)]
    assert stats["top1_difference"]["mean"] == pytest.approx(np.mean(diffs))
    assert stats["top1_difference"]["std"] == pytest.approx(np.std(diffs, ddof=1))
    assert stats["top1_difference"]["stderr"] == pytest.approx(np.std(diffs, ddof=1) / np.sqrt(2))
    assert (stats["wins"], stats["ties"], stats["losses"]) == (1, 0, 1)
    assert stats["mcnemar_p"] == pytest.approx(naive_mcnemar(2, 2))
    assert compare_pair(head, {("other", 0): _series(["a"], [1])}) is None


def test_compare_heads_pairs_each_head_with_the_heads_before_it():
    runs = {("s", 0): _series(["a", "b"], [1, 0])}
    table = compare_heads({"np": runs, "lp": runs, "dual": runs}, ["np", "lp", "dual"])
    assert [(c["head"], c["baseline"]) for c in table] == [("lp", "np"), ("dual", "np"), ("dual", "lp")]
    assert all(c["top1_difference"]["mean"] == 0 and c["mcnemar_p"] == 1.0 for c in table)


def test_zsl_correct_reads_only_zsl_rows():
    predictions = pd.DataFrame({"task": ["zsl", "zsl", "gzsl"], "sample_id": ["a", "b", "a"],
                                "true_label": [3, 4, 3], "predicted_label": [3, 5, 9]})
    out = zsl_correct(predictions)
    assert out.to_dict() == {"a": True, "b": False}

"""Intervals and paired tests of per-example outcomes (accuracy of prompts scored on the same examples):
Wilson intervals, the exact McNemar test, a paired bootstrap of a mean difference, and Benjamini-Hochberg over a
family of p-values that are shown, never claimed.

Importing this module pulls numpy only (scipy loads inside the functions)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..exceptions import AnalyzerError

def benjamini_hochberg(p: Sequence[float]) -> list[float | None]:
    """Benjamini-Hochberg q-values (``scipy.stats.false_discovery_control``) of a family of p-values; None where
    a p-value is missing or not finite (left out of the family)."""
    return per_position_q(p)


def per_position_q(p: Sequence[float]) -> list[float | None]:
    """Benjamini-Hochberg across one measure's per-position p-values (shown, never claimed)."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p, dtype=np.float64)
    ok = np.isfinite(p)
    out: list[float | None] = [None] * p.size
    if ok.any():
        for i, q in zip(np.flatnonzero(ok), false_discovery_control(p[ok], method="bh")):
            out[i] = float(q)
    return out


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n`` (``scipy.stats.binomtest``);
    ``(nan, nan)`` for n=0."""
    from scipy.stats import binomtest

    if n <= 0:
        return float("nan"), float("nan")
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> dict[str, Any]:
    """Exact two-sided McNemar test of two classifiers scored on the same examples: a binomial test (p = 1/2)
    of the discordant pairs (``scipy.stats.binomtest``).

    Returns ``{"a_only", "b_only", "p_value"}``: how many examples only A / only B got right, and the p-value
    of "A and B are equally accurate"."""
    from scipy.stats import binomtest

    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise AnalyzerError(f"McNemar needs per-example outcomes of the same examples; got shapes {a.shape} and "
                            f"{b.shape}.")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    m = a_only + b_only
    p = 1.0 if m == 0 else float(binomtest(min(a_only, b_only), m, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": min(1.0, p)}


def paired_bootstrap_diff(a: np.ndarray, b: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                          confidence: float = 0.95) -> dict[str, float]:
    """Mean difference ``mean(A) − mean(B)`` of per-example values of the same examples (correctness, or a
    loss) with a paired percentile-bootstrap interval (examples resampled with replacement, ``n_boot`` times,
    fixed ``seed``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise AnalyzerError(f"Expected two equally long non-empty 1-d arrays of per-example values; got "
                            f"shapes {a.shape} and {b.shape}.")
    d = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    boots = d[idx].mean(axis=1)
    tail = 50.0 * (1.0 - confidence)
    lo, hi = np.percentile(boots, [tail, 100.0 - tail])
    return {"diff": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": int(d.size),
            "n_boot": int(n_boot)}

"""How a number and a p-value read in a sentence: ``format_p`` (``p=0.031``, ``p<0.001``, ``p≤0.002`` at the
null's resolution) and ``_g`` (three significant digits or ``n/a``).  Pulls nothing beyond the standard library."""

from __future__ import annotations

import math


def _g(x) -> str:
    """A number for a sentence: three significant digits, or ``n/a`` for None/NaN/inf."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


def format_p(p: float | None, n_null: int | None = None, name: str = "p", direction: str = "two-sided") -> str:
    """``p=0.031``; ``p<0.001`` below 0.001; ``p≤0.002`` at the smallest value ``n_null`` null samples can
    give (``1/(n_null+1)``, twice that two-sided), which is all such a p-value says."""
    if p is None or not math.isfinite(p):
        return f"{name}=n/a"
    floor = (2.0 if direction == "two-sided" else 1.0) / (n_null + 1) if n_null else 0.0
    if p < 0.001:
        return f"{name}<0.001"
    if floor and p <= floor * (1 + 1e-9):
        return f"{name}≤{floor:.2g}"
    return f"{name}={p:.2g}" if p < 0.01 else f"{name}={p:.3f}".rstrip("0").rstrip(".")


"""Tests between two matrices over the same items (e.g. a prompt-to-prompt similarity and the prompts' relative
transfer): Spearman's rho over the ordered pairs ``i != j``, its one-sided Mantel permutation p-value (item
identities permuted, so the dependence between pairs that share an item is kept) and a bootstrap 95% interval
over items (Mantel 1967; the pairs of a bootstrap sample that repeat an item are dropped).

Importing this module pulls numpy only (scipy loads inside the function)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._rows import empirical_p


def off_diagonal(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The off-diagonal entries of ``m`` over the items ``idx`` (ordered pairs of distinct positions; a pair of
    one item drawn twice is not a pair)."""
    sub = np.asarray(m, np.float64)[np.ix_(idx, idx)]
    off = ~np.eye(len(idx), dtype=bool)
    same = idx[:, None] == idx[None, :]
    return sub[off & ~same]


def mantel_spearman(x: np.ndarray, y: np.ndarray, *, rng: np.random.Generator, n_perm: int = 2000,
                    n_boot: int = 2000) -> dict[str, Any]:
    """``{"rho", "ci", "p", "n_pairs"}``: Spearman's rho of the square matrices ``x`` and ``y`` over their ordered
    off-diagonal pairs (non-finite pairs left out), the one-sided (``greater``) Mantel p over ``n_perm`` permutations
    of ``x``'s items, and the 2.5/97.5 percentiles of ``n_boot`` bootstrap samples of items (NaN when none has
    spread).  ``rng`` is drawn from in that order (permutations, then bootstrap)."""
    from scipy.stats import spearmanr

    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    p = x.shape[0]
    every = np.arange(p)
    yv = off_diagonal(y, every)
    xv = off_diagonal(x, every)
    ok = np.isfinite(xv) & np.isfinite(yv)
    rho = float(spearmanr(xv[ok], yv[ok]).statistic)
    null = []
    for _ in range(n_perm):
        perm = rng.permutation(p)
        xs = off_diagonal(x[np.ix_(perm, perm)], every)
        k = np.isfinite(xs) & np.isfinite(yv)
        null.append(spearmanr(xs[k], yv[k]).statistic)
    # a permutation that reproduces the observed pairing ties it; 1e-12 keeps a float-rounding tie a tie
    pval = empirical_p(rho - 1e-12, np.asarray(null, np.float64), "greater")
    boots = []
    for _ in range(n_boot):
        idx = rng.choice(p, size=p, replace=True)
        xb, yb = off_diagonal(x, idx), off_diagonal(y, idx)
        k = np.isfinite(xb) & np.isfinite(yb)
        if k.sum() >= 3 and np.ptp(xb[k]) > 0 and np.ptp(yb[k]) > 0:
            boots.append(spearmanr(xb[k], yb[k]).statistic)
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan)
    return {"rho": rho, "ci": [float(lo), float(hi)], "p": pval, "n_pairs": int(ok.sum())}


__all__ = ["off_diagonal", "mantel_spearman"]


def mantel_family(xs: Mapping[str, np.ndarray], y: np.ndarray, *, seed: int = 0, n_perm: int = 2000,
                  n_boot: int = 2000, alpha: float | None = None) -> list[dict[str, Any]]:
    """:func:`mantel_spearman` of each matrix in ``xs`` (named) against ``y``, one family: each row also holds
    ``q`` (Benjamini-Hochberg over the family) and ``significant`` (``q < alpha``, the toolkit's ``ALPHA`` by
    default). One generator seeded by ``seed`` draws every permutation and bootstrap sample, in ``xs``'s order."""
    from . import ALPHA, benjamini_hochberg

    alpha = ALPHA if alpha is None else alpha
    rng = np.random.default_rng(seed)
    rows = [{"name": name, **mantel_spearman(x, y, rng=rng, n_perm=n_perm, n_boot=n_boot)} for name, x in xs.items()]
    for r, q in zip(rows, benjamini_hochberg([r["p"] for r in rows])):
        r["q"] = float(q)
        r["significant"] = bool(q < alpha)
    return rows

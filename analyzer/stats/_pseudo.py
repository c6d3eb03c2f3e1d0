"""Null samples: seeds and the random streams of every draw, pseudo-prompts matched position by position
(repeated positions repeated), the sign-flip null of a paired comparison, resampled means, and the comparison of a
cross-prompt score with its null (:class:`NullComparison`).

Importing this module pulls numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._json import _f
from .._params import SEED, check_param
from ._format import _g
from ._rows import ALPHA, NULLS, empirical_p

# independent random streams, one per purpose (np.random.default_rng([seed, stream]))
_STREAM_GAUSS, _STREAM_VOCAB, _STREAM_BOOT, _STREAM_PERM = 11, 12, 13, 15


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


def check_seed(seed, *, what: str = "seed", owner: str = "analyzer") -> int:
    """The one check of a seed (the CLI's ``--seed`` of every command): an int in ``[0, SEED_MAX]``
    (:data:`analyzer._params.SEED`, where ``SEED_MAX`` is defined); anything else raises AnalyzerError in
    :func:`analyzer._params.check_param`'s message shape, naming ``what`` of ``owner`` and the value."""
    return check_param(owner, what, seed, SEED)


@dataclass(frozen=True)
class NullComparison:
    """One score beside one null distribution.

    value:       the observed score.
    null_mean:   mean of the null distribution (for ``init``: the initialisation's own score).
    null_std:    standard deviation of the null distribution.
    z:           ``(value - null_mean) / null_std`` (for ``init``: mean difference / sign-flip std).
    p:           empirical p-value with +1 smoothing, in the direction of ``alternative``.
    n_null:      how many null statistics ``p`` was computed from.
    significant: ``p < alpha``.
    verdict:     one plain sentence.
    null:        which null (``random_vectors``, ``vocab_tokens``, ``init``, ``permutation`` ...).
    alternative: ``greater``, ``less`` or ``two-sided``.
    """

    value: float
    null_mean: float
    null_std: float
    z: float
    p: float
    n_null: int
    significant: bool
    verdict: str
    null: str = ""
    alternative: str = "greater"

    def to_dict(self) -> dict:
        return {"value": _f(self.value), "null_mean": _f(self.null_mean), "null_std": _f(self.null_std),
                "z": _f(self.z), "p": _f(self.p), "n_null": int(self.n_null), "significant": bool(self.significant),
                "verdict": self.verdict, "null": self.null, "alternative": self.alternative}


def compare_to_null(value: float, null: np.ndarray, *, alternative: str = "greater", alpha: float = ALPHA,
                    null_name: str = "", what: str = "the score", center: float | None = None,
                    spread: float | None = None) -> NullComparison:
    """Compare an observed ``value`` with samples ``null`` of the same statistic under a null (used for scores
    across prompts, e.g. cluster metrics against label permutations; a prompt's own claims are :class:`Test` rows).

    ``center``/``spread`` override the reported null mean and std (used by the paired init comparison)."""
    null = np.asarray(null, dtype=np.float64).ravel()
    null = null[np.isfinite(null)]
    desc = NULLS.get(null_name, null_name or "the null")
    value = float(value) if value is not None else float("nan")
    nan = float("nan")
    mean = float(center) if center is not None else (float(null.mean()) if null.size else nan)
    std = float(spread) if spread is not None else (float(null.std()) if null.size else nan)
    p = empirical_p(value, null, alternative)
    z = (value - mean) / std if std > 0 else (0.0 if value == mean else nan)
    if not np.isfinite(p):
        reason = "no value" if not np.isfinite(value) else "no null samples"
        verdict = f"{what} cannot be tested against {desc} ({reason})."
        return NullComparison(value, mean, std, z, p, int(null.size), False, verdict, null_name, alternative)
    significant = bool(p < alpha)
    stats = f"{what} {_g(value)} vs {_g(mean)} under {desc}, p={_g(p)}"
    if significant:
        direction = {"greater": "higher than", "less": "lower than"}.get(
            alternative, "higher than" if value > mean else "lower than")
        verdict = f"{stats}: {direction} chance."
    else:
        verdict = f"{stats}: not distinguishable from chance."
    return NullComparison(value, mean, std, z, p, int(null.size), significant, verdict, null_name, alternative)


# ---------------------------------------------------------------------------------------------------
# Pseudo-prompts: matched position by position, repeated positions repeated
# ---------------------------------------------------------------------------------------------------

#: positions whose top-k neighbour lists share at least this fraction of their tokens are one observation
NEIGHBOR_OVERLAP = 0.8


def position_groups(vectors: np.ndarray, tol: float = 1e-6, ids: np.ndarray | None = None,
                    overlap: float = NEIGHBOR_OVERLAP) -> np.ndarray:
    """int64 ``"n"``: the group of each position.  Positions whose vectors are equal (to ``tol`` relative L2)
    share a group, and so (given their top-k neighbour ``ids``, ``"n k"``) do positions whose neighbour lists
    share at least ``overlap`` of their tokens -- near-copies (a tiled TEXT init after a little training) see the
    same neighbours and are no independent evidence, so their null queries are the same draw.  Groups are
    numbered by first appearance."""
    v = np.asarray(vectors, dtype=np.float64)
    n = v.shape[0]
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    norms = np.linalg.norm(v, axis=1)
    for i in range(n):
        for j in np.flatnonzero(np.linalg.norm(v[i + 1:] - v[i], axis=1) <= tol * max(norms[i], 1e-30)):
            union(i, i + 1 + int(j))
    if ids is not None and n > 1:
        ids = np.asarray(ids, np.int64)
        k = ids.shape[1]
        for i in range(n):
            for j in range(i + 1, n):
                if np.intersect1d(ids[i], ids[j]).size >= overlap * k:
                    union(i, j)
    roots = np.array([find(i) for i in range(n)])
    _, first = np.unique(roots, return_index=True)
    order = {int(roots[f]): g for g, f in enumerate(np.sort(first))}
    return np.array([order[int(r)] for r in roots], np.int64)


@dataclass(frozen=True)
class MatchedPool:
    """Null values matched to the positions of one prompt.

    values:  float ``"n_groups m"``: ``m`` null draws for each group of positions.
    groups:  int ``"n"``: each position's group (:func:`position_groups`)."""

    values: np.ndarray
    groups: np.ndarray

    @property
    def m(self) -> int:
        return int(self.values.shape[1])


def pseudo_prompt_draws(n_groups: int, m: int, n_boot: int, seed: int) -> np.ndarray:
    """int64 ``"n_boot n_groups"``: which of the ``m`` null draws each group takes in each pseudo-prompt."""
    return np.random.default_rng([int(seed), 21]).integers(0, m, size=(n_boot, n_groups))


def pseudo_prompt_means(pool: MatchedPool, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """float64 ``"n_boot"``: the mean over positions of ``n_boot`` matched pseudo-prompts (NaN-aware)."""
    vals = np.asarray(pool.values, dtype=np.float64)
    G, m = vals.shape
    J = pseudo_prompt_draws(G, m, n_boot, seed)
    per_group = vals[np.arange(G)[None, :], J]          # "n_boot G"
    per_pos = per_group[:, np.asarray(pool.groups)]     # "n_boot n"
    with np.errstate(invalid="ignore"):
        return np.nanmean(per_pos, axis=1)


def sign_flip_null(diffs: np.ndarray, groups: np.ndarray | None = None, n_perm: int = 1000,
                   seed: int = 0) -> np.ndarray:
    """The paired null (no difference from the initialisation): means of ``diffs`` under random sign flips,
    one flip per group of repeated positions."""
    d = np.asarray(diffs, dtype=np.float64).ravel()
    g = np.arange(d.size) if groups is None else np.asarray(groups, np.int64)
    ok = np.isfinite(d)
    if not ok.any():
        return np.zeros(0)
    n_groups = int(g.max()) + 1
    signs = np.random.default_rng([int(seed), 22]).choice(np.array([-1.0, 1.0]), size=(n_perm, n_groups))
    return (signs[:, g[ok]] * d[ok]).mean(axis=1)


def bootstrap_means(pool: np.ndarray, n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``n`` values drawn with replacement from ``pool`` (finite values only), ``n_boot`` times:
    the null distribution of a mean over ``n`` positions.  float64 ``"n_boot"`` (empty if the pool is)."""
    pool = np.asarray(pool, dtype=np.float64).ravel()
    pool = pool[np.isfinite(pool)]
    if pool.size == 0 or n < 1:
        return np.zeros(0)
    idx = _rng(seed, _STREAM_BOOT).integers(0, pool.size, size=(n_boot, n))
    return pool[idx].mean(axis=1)

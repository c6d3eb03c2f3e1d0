"""The one statistics layer: every claim the toolkit makes is one :class:`Test` row made here.

A row compares a prompt-level statistic with its distribution under a null, made of whole pseudo-prompts:

* ``matched`` -- **the basis of claims** (:mod:`analyzer.nulls`).  For every virtual token, meaningless
  queries of several constructions that share with it what mechanically moves the neighbour measures: its top-k
  neighbour scores (how far from the vocabulary cloud, how dense the cloud is there) and its neighbours'
  frequency ranks (common words have common neighbours).  A pseudo-prompt takes one construction for all its
  positions and one matched draw per position; positions that repeat the same vector (a tiled TEXT init) repeat
  the same draw, so a prompt never gets a narrower null for repeating itself.  The null is *composite*: each
  construction that reaches the prompt is one way a meaningless prompt could have been made, and the row's p is
  the largest of the per-construction p-values (valid whichever way is the true one; see :func:`make_test`).
* ``init`` -- the prompt's own initialisation (paired: random sign flips of the per-position differences).
* ``random_vectors`` (isotropic Gaussian directions) and ``vocab_tokens`` (random vocabulary tokens, each with
  itself removed from its own neighbour list) -- **labelled references**, shown beside the claims and never
  the basis of one: the isotropic cloud lies far from where the vocabulary lives, and a real token is not a
  soft prompt.

p-values are empirical with +1 smoothing, two-sided unless a row says otherwise (task specificity is one-sided,
``greater``: "related to T" is a directional claim; a one-sided row beyond chance the other way says so in its
verdict, "lower than chance ..., described, not a claim", never "not distinguishable"); Benjamini-Hochberg
(``scipy.stats.false_discovery_control``) runs over a prompt's claim rows and gives ``q``; a row is significant
when ``q < alpha``.  Words: "higher than chance (q=...)", "lower than chance (q=...)", "not distinguishable
from chance"; ``p<0.001`` below the resolution of the null sample.  Per-position p-values are shown, with
their own correction, and never summarised as claims.

Importing this module pulls numpy only (scipy loads inside the functions)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np

from .exceptions import AnalyzerError

ALPHA = 0.05
DIRECTIONS = ("greater", "less", "two-sided")

#: the nulls, each in the one sentence a reader of the report sees
NULLS = {
    "matched": ("meaningless queries of thirteen constructions (vocabulary-shaped noise, isotropic, sparse and "
                "principal directions, random tokens, token averages, tokens plus noise, tokens shrunk toward the "
                "mean, tokens with permuted coordinates), matched to each virtual token on its top-k neighbour scores "
                "(distance to the vocabulary, local density), its neighbours' frequency ranks and density, and "
                "where it points in the vocabulary's principal directions; one "
                "construction per pseudo-prompt, repeated positions repeated; the prompt must stand out from "
                "every construction that reaches it (p is the largest of theirs)"),
    "init": "the prompt's own initialisation (paired, position by position)",
    "random_vectors": ("reference only: isotropic Gaussian vectors with the prompt's norms (they lie far from the "
                       "vocabulary cloud, so nearly anything near it beats them)"),
    "vocab_tokens": ("reference only: randomly chosen vocabulary tokens as queries, each with itself removed "
                     "from its own neighbour list"),
}
#: the nulls a claim may rest on
CLAIM_NULLS = ("matched", "init")

#: the largest seed every generator takes (numpy, torch, Python's random): seeds are ints in [0, SEED_MAX]
SEED_MAX = 2**32 - 1


def check_seed(seed, *, what: str = "seed") -> int:
    """The one check of a seed (the CLI's ``--seed`` of every command, AnalysisSettings, TrainConfig): an int in
    ``[0, SEED_MAX]``; anything else raises AnalyzerError naming the value."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= SEED_MAX:
        raise AnalyzerError(f"The {what!r} must be an int in [0, {SEED_MAX}]. Got {seed!r} instead.")
    return int(seed)


def _f(x) -> float | None:
    """A JSON-safe float: None for NaN/inf."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _g(x) -> str:
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


def empirical_p(value: float, null: np.ndarray, direction: str = "two-sided") -> float:
    """``(1 + #{null >= value}) / (1 + n)`` (``greater``), its mirror image (``less``), or twice the smaller of
    the two, capped at 1 (``two-sided``).  NaN when ``value`` is NaN or the null is empty."""
    if direction not in DIRECTIONS:
        raise AnalyzerError(f"direction must be one of {list(DIRECTIONS)}; got {direction!r}.")
    null = np.asarray(null, dtype=np.float64).ravel()
    null = null[np.isfinite(null)]
    if null.size == 0 or value is None or not math.isfinite(value):
        return float("nan")
    ge = (1.0 + np.count_nonzero(null >= value)) / (1.0 + null.size)
    le = (1.0 + np.count_nonzero(null <= value)) / (1.0 + null.size)
    if direction == "greater":
        return float(ge)
    if direction == "less":
        return float(le)
    return float(min(1.0, 2.0 * min(ge, le)))


@dataclass(frozen=True)
class Test:
    """One row of a prompt's table of tests.

    measure:     what is measured (``tightness``, ``task-related share``, ``k-occurrence skew`` ...).
    space:       ``model`` (the model's input embeddings), ``text`` (MiniLM), or ``-`` for set statistics.
    null:        a key of :data:`NULLS`.
    value:       the prompt's statistic; ``null_mean``/``null_sd``: of its null distribution.
    effect:      ``(value - null_mean) / null_sd``, a standardised size.
    p:           empirical p-value in ``direction``; ``q``: Benjamini-Hochberg over the prompt's claims.
    claim:       whether this row is a claim (its null is one of :data:`CLAIM_NULLS`) or a labelled reference.
    significant: ``q < alpha`` (claims only).
    verdict:     one plain sentence.
    n_null:      null samples behind ``p``.
    p_other:     a one-sided row's p-value in the opposite direction (same null; None for two-sided rows): a
                 value beyond chance the other way is *described* ("lower than chance ..., not a claim"), never
                 called "not distinguishable", and never enters the FDR family.
    """

    measure: str
    space: str
    null: str
    value: float | None
    null_mean: float | None
    null_sd: float | None
    effect: float | None
    p: float | None
    q: float | None
    direction: str
    significant: bool
    verdict: str
    claim: bool
    n_null: int
    p_other: float | None = None

    @property
    def label(self) -> str:
        return self.measure if self.space in ("", "-") else f"{self.measure} ({self.space} space)"

    def to_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, "space": self.space, "null": self.null, "value": _f(self.value),
                "null_mean": _f(self.null_mean), "null_sd": _f(self.null_sd), "effect": _f(self.effect),
                "p": _f(self.p), "q": _f(self.q), "direction": self.direction,
                "significant": bool(self.significant), "verdict": self.verdict, "claim": bool(self.claim),
                "n_null": int(self.n_null), "p_other": _f(self.p_other)}

    @classmethod
    def from_dict(cls, d: dict) -> "Test":
        return cls(**{f: d.get(f) for f in cls.__dataclass_fields__})


def make_test(measure: str, space: str, null: str, value: float, null_samples: np.ndarray, *,
              direction: str = "two-sided", center: float | None = None, spread: float | None = None,
              statistic: float | None = None, null_groups: np.ndarray | None = None,
              claim: bool = True) -> Test:
    """A row (``q`` still unset: :func:`adjust` sets it) from the null samples of the statistic.

    ``statistic``: the value the null samples are compared with when it differs from ``value`` (the paired
    ``init`` test compares the mean difference with sign flips, while ``value`` and ``center`` stay the prompt's
    and the initialisation's readings).

    ``null_groups``: one label per null sample for a *composite* null -- several processes, each of which could
    have made a meaningless prompt like this one (the matched null's constructions).  The prompt must stand out
    from every one of them: ``p`` is the largest of the per-group p-values (valid whichever process is the true
    one), and the row's null mean, spread and ``n_null`` are those of that group.

    ``claim=False`` keeps a row on a claim null as a described reference (never significant, not in the FDR
    family): for a statistic whose matched null is known not to hold it fixed (see its measure)."""
    if null not in NULLS:
        raise AnalyzerError(f"Unknown null {null!r}; expected one of {list(NULLS)}.")
    samples = np.asarray(null_samples, dtype=np.float64).ravel()
    ok = np.isfinite(samples)
    labels = None if null_groups is None else np.asarray(null_groups).ravel()[ok]
    samples = samples[ok]
    stat = value if statistic is None else statistic
    stat = float("nan") if stat is None else float(stat)
    value = float("nan") if value is None else float(value)
    other = {"greater": "less", "less": "greater"}.get(direction)
    p_other = None
    if labels is not None and samples.size:
        parts = [samples[labels == g] for g in np.unique(labels)]
        ps = [empirical_p(stat, part, direction) for part in parts]
        worst = int(np.nanargmax(ps)) if np.isfinite(ps).any() else 0
        if other is not None:      # the other way must also hold against every construction
            p_other = max(empirical_p(stat, part, other) for part in parts)
        samples = parts[worst]
    elif other is not None:
        p_other = empirical_p(stat, samples, other)
    mean = float(center) if center is not None else (float(samples.mean()) if samples.size else float("nan"))
    sd = float(spread) if spread is not None else (float(samples.std()) if samples.size else float("nan"))
    p = empirical_p(stat, samples, direction)
    shift = (stat - float(samples.mean())) if statistic is not None and samples.size else value - mean
    effect = shift / sd if sd > 0 else (0.0 if shift == 0 else float("nan"))
    return Test(measure, space, null, value, mean, sd, effect, p, None, direction, False, "",
                bool(claim) and null in CLAIM_NULLS, int(samples.size), _f(p_other))


def adjust(tests: Iterable[Test], alpha: float = ALPHA) -> list[Test]:
    """Benjamini-Hochberg over the claim rows with a p-value (``scipy.stats.false_discovery_control``); sets
    ``q``, ``significant`` (``q < alpha``) and every row's ``verdict``."""
    from scipy.stats import false_discovery_control

    tests = list(tests)
    idx = [i for i, t in enumerate(tests) if t.claim and t.p is not None and math.isfinite(t.p)]
    qs = false_discovery_control([tests[i].p for i in idx], method="bh") if idx else []
    out = list(tests)
    for i, q in zip(idx, qs):
        out[i] = replace(out[i], q=float(min(1.0, q)), significant=bool(q < alpha))
    return [replace(t, verdict=verdict(t)) for t in out]


def verdict(t: Test) -> str:
    """The row's sentence: value, null mean, the words, and ``q`` (claims) or ``p`` (references)."""
    what = f"{t.label} {_g(t.value)} vs {_g(t.null_mean)}"
    if t.null == "init":
        ref = "at initialisation"
    elif t.null == "matched":
        ref = "under matched null queries"
    else:
        ref = f"under the reference {'random Gaussian vectors' if t.null == 'random_vectors' else 'vocabulary tokens'}"
    if t.p is None or not math.isfinite(t.p):
        return f"{what} {ref}: cannot be tested (no null samples or no value)."
    higher = (t.value if t.value is not None else 0) > (t.null_mean if t.null_mean is not None else 0)
    word = "higher" if higher else "lower"
    against = "than at initialisation" if t.null == "init" else "than chance"
    if t.claim:
        stat = format_p(t.q, None, "q")
        if t.significant:
            return f"{what} {ref}, {stat}: {word} {against}."
        if t.p_other is not None and math.isfinite(t.p_other) and t.p_other < ALPHA:
            tested = "higher" if t.direction == "greater" else "lower"
            return (f"{what} {ref}: {'lower' if t.direction == 'greater' else 'higher'} {against} "
                    f"({format_p(t.p_other, t.n_null, direction='greater')}, the other way from the one-sided test "
                    f"for {tested}: described, not a claim; {stat}).")
        return f"{what} {ref}, {stat}: not distinguishable " + (
            "from the initialisation." if t.null == "init" else "from chance.")
    stat = format_p(t.p, t.n_null, direction=t.direction)
    return f"{what} {ref}, {stat} (a reference, not a claim)."


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


__all__ = ["ALPHA", "DIRECTIONS", "NULLS", "CLAIM_NULLS", "SEED_MAX", "check_seed", "Test", "NullComparison", "compare_to_null", "format_p", "empirical_p", "make_test", "adjust",
           "verdict", "NEIGHBOR_OVERLAP", "position_groups", "MatchedPool", "pseudo_prompt_draws", "pseudo_prompt_means",
           "sign_flip_null", "per_position_q"]


class TestTable:
    """Collects a prompt's rows while its measures are computed, then adjusts them together.

    ``add(test, target)``: ``target`` is the dict of the measure's detailed result that shows this row; after
    :meth:`adjust` it carries the row's ``q``, ``significant`` and ``verdict`` too (figures read it), so the
    table and the details never disagree."""

    def __init__(self):
        self.rows: list[Test] = []
        self._targets: list[dict | None] = []

    def add(self, test: Test, target: dict | None = None) -> Test:
        self.rows.append(test)
        self._targets.append(target)
        return test

    def extend(self, other: "TestTable") -> "TestTable":
        self.rows += other.rows
        self._targets += other._targets
        return self

    def adjust(self, alpha: float = ALPHA) -> list[Test]:
        self.rows = adjust(self.rows, alpha)
        for t, target in zip(self.rows, self._targets):
            if target is not None:
                target.update({"q": _f(t.q), "significant": bool(t.significant), "verdict": t.verdict,
                               "claim": bool(t.claim), "direction": t.direction})
        return self.rows

    def to_list(self) -> list[dict]:
        return [t.to_dict() for t in self.rows]


__all__ += ["TestTable"]


# ---------------------------------------------------------------------------------------------------
# Intervals and paired tests of per-example outcomes (accuracy of prompts scored on the same examples)
# ---------------------------------------------------------------------------------------------------

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


__all__ += ["wilson_interval", "mcnemar_exact", "paired_bootstrap_diff", "benjamini_hochberg"]


# ---------------------------------------------------------------------------------------------------
# Importance of prompt positions (analyzer.faithfulness.importance): one claim row per position
# ---------------------------------------------------------------------------------------------------

NULLS["removal"] = ("removing one position of matched meaningless prompts (same length, the prompt's norm at "
                    "every position, directions drawn from the vocabulary's shape), scored on the first examples "
                    "of the same split; the first position (the attention sink, ~3x the spread) is standardised "
                    "apart, then the effects are pooled over positions and pseudo-prompts; fewer examples make the "
                    "null wider, so the test is conservative")
CLAIM_NULLS = CLAIM_NULLS + ("removal",)


def removal_verdict(t: Test) -> str:
    """The sentence of a position's row: what removing it does against removing a matched meaningless position."""
    what = (f"{t.measure}: NLL change {_g(t.value)} vs {_g(t.null_mean)} when a position of a matched meaningless "
            f"prompt is removed")
    if t.p is None or not math.isfinite(t.p):
        return f"{what}: cannot be tested (no null samples or no value)."
    q = format_p(t.q, None, "q")
    if t.significant:
        return f"{what}, {q}: matters more than chance."
    if t.p_other is not None and math.isfinite(t.p_other) and t.p_other < ALPHA:
        return (f"{what}: removing it hurts less than chance ({format_p(t.p_other, t.n_null, direction='greater')}, "
                f"the other way from the one-sided test: described, not a claim; {q}).")
    return f"{what}, {q}: not distinguishable from chance."


def adjust_positions(tests: Iterable[Test], alpha: float = ALPHA) -> list[Test]:
    """:func:`adjust` (Benjamini-Hochberg over the rows) with the position sentence of :func:`removal_verdict`
    for the rows on the ``removal`` null."""
    return [replace(t, verdict=removal_verdict(t)) if t.null == "removal" else t for t in adjust(tests, alpha)]


def stratified_test(measure: str, space: str, null: str, value: float, null_samples: np.ndarray,
                    null_strata: np.ndarray, stratum: int, *, direction: str = "greater", min_size: int = 3) -> Test:
    """A row against a null pooled over strata after standardising each stratum (its mean and sd): for a null
    whose spread differs between kinds of samples (removing a prompt's first position moves the output several
    times more than removing another) while pooling keeps the resolution ``1/(n_null+1)``.  The value is
    standardised with its stratum's mean and sd; each null sample leave-one-out (with the mean and sd of the other
    samples of its stratum), so that under the null it is exchangeable with the value.  The row's ``null_mean`` and
    ``null_sd`` are those of the value's stratum (raw units); ``effect`` is the standardised value.  With a stratum
    of fewer than ``min_size`` samples (or no spread) the samples are pooled raw, as :func:`make_test` does."""
    x = np.asarray(null_samples, np.float64).ravel()
    g = np.asarray(null_strata, np.int64).ravel()
    ok = np.isfinite(x)
    x, g = x[ok], g[ok]
    groups = [x[g == s] for s in np.unique(g)]
    if stratum not in set(g.tolist()) or any(v.size < min_size or v.std() == 0 for v in groups):
        return make_test(measure, space, null, value, x, direction=direction)
    z = np.empty_like(x)
    for s in np.unique(g):
        v = x[g == s]
        k = v.size
        mu = (v.sum() - v) / (k - 1)                                       # leave-one-out mean and sd
        var = ((v ** 2).sum() - v ** 2 - (k - 1) * mu ** 2) / (k - 2) if k > 2 else np.zeros_like(v)
        z[g == s] = (v - mu) / np.sqrt(np.maximum(var, 1e-300))
    own = x[g == stratum]
    mu, sd = float(own.mean()), float(own.std(ddof=1))
    stat = (float(value) - mu) / sd if value is not None and math.isfinite(value) else float("nan")
    t = make_test(measure, space, null, value, z, direction=direction, statistic=stat, center=mu)
    return replace(t, null_sd=sd)


__all__ += ["removal_verdict", "adjust_positions", "stratified_test"]


# ---------------------------------------------------------------------------------------------------
# What the model says a prompt means (analyzer.faithfulness.description): grid-level rows
# ---------------------------------------------------------------------------------------------------

NULLS["description"] = ("meaningless prompts of the prompt's length whose norms follow its norm profile (four "
                        "constructions: random tokens, vocabulary-shaped noise, isotropic directions, tokens plus "
                        "noise), described through the same layer grid and few-shot prompt; the prompt must stand "
                        "out from every construction (p is the largest of theirs)")
CLAIM_NULLS = CLAIM_NULLS + ("description",)


def adjust_description(tests: Iterable[Test], alpha: float = ALPHA) -> list[Test]:
    """:func:`adjust` (Benjamini-Hochberg over the rows), with verdicts that name the description null."""
    out = []
    for t in adjust(tests, alpha):
        if t.null == "description":
            words = verdict(replace(t, null="matched"))
            t = replace(t, verdict=words.replace("under matched null queries", "under matched meaningless prompts", 1))
        out.append(t)
    return out


__all__ += ["adjust_description"]

"""The table of tests: the :class:`Test` row, how a row is made from null samples (:func:`make_test`,
:func:`stratified_test`), Benjamini-Hochberg over a prompt's claims (:func:`adjust` and its variants for
positions and descriptions), the verdict sentences, and :class:`TestTable`, which collects a prompt's rows.

Importing this module pulls numpy only (scipy loads inside the functions)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable

import numpy as np

from .._json import _f
from .._params import Options, check_param
from ._format import _g, format_p

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
    "removal": ("removing one position of matched meaningless prompts (same length, the prompt's norm at "
                "every position, directions drawn from the vocabulary's shape), scored on the first examples "
                "of the same split; the first position (the attention sink, ~3x the spread) is standardised "
                "apart, then the effects are pooled over positions and pseudo-prompts; fewer examples make the "
                "null wider, so the test is conservative"),
    "description": ("meaningless prompts of the prompt's length whose norms follow its norm profile (four "
                    "constructions: random tokens, vocabulary-shaped noise, isotropic directions, tokens plus "
                    "noise), described through the same layer grid and few-shot prompt; the prompt must stand "
                    "out from every construction (p is the largest of theirs)"),
}
#: the nulls a claim may rest on
CLAIM_NULLS = ("matched", "init", "removal", "description")


def empirical_p(value: float, null: np.ndarray, direction: str = "two-sided") -> float:
    """``(1 + #{null >= value}) / (1 + n)`` (``greater``), its mirror image (``less``), or twice the smaller of
    the two, capped at 1 (``two-sided``).  NaN when ``value`` is NaN or the null is empty."""
    check_param("empirical_p", "direction", direction, Options(*DIRECTIONS))
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
    check_param("make_test", "null", null, Options(*NULLS))
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


def beyond_chance_other_way(t: Test) -> bool:
    """A row whose one-sided test is not significant but whose value lies beyond chance the untested way
    (``p_other < ALPHA``): described in its sentence, never a claim."""
    return not t.significant and t.p_other is not None and math.isfinite(t.p_other) and t.p_other < ALPHA


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
        if beyond_chance_other_way(t):
            tested = "higher" if t.direction == "greater" else "lower"
            return (f"{what} {ref}: {'lower' if t.direction == 'greater' else 'higher'} {against} "
                    f"({format_p(t.p_other, t.n_null, direction='greater')}, the other way from the one-sided test "
                    f"for {tested}: described, not a claim; {stat}).")
        return f"{what} {ref}, {stat}: not distinguishable " + (
            "from the initialisation." if t.null == "init" else "from chance.")
    stat = format_p(t.p, t.n_null, direction=t.direction)
    return f"{what} {ref}, {stat} (a reference, not a claim)."


def with_row(comparison: dict, t: Test) -> dict:
    """A measure's null comparison ``comparison`` (a dict of its detailed result) with the fields its row ``t``
    of the table of tests is the one home of: ``q``, ``significant``, ``verdict``, ``claim`` and ``direction``
    (a new dict; the keys it already has keep their places)."""
    return {**comparison, "q": _f(t.q), "significant": bool(t.significant), "verdict": t.verdict,
            "claim": bool(t.claim), "direction": t.direction}


class TestTable:
    """Collects a prompt's rows while its measures are computed, then adjusts them together.  The rows are the
    only home of ``q``, significance and the verdict: a measure's detailed result shows them through
    :func:`with_row` (the typed results of :mod:`analyzer.result_groups` do that when they write the JSON)."""

    def __init__(self):
        self.rows: list[Test] = []

    def add(self, test: Test) -> Test:
        self.rows.append(test)
        return test

    def extend(self, other: "TestTable") -> "TestTable":
        self.rows += other.rows
        return self

    def adjust(self, alpha: float = ALPHA) -> list[Test]:
        self.rows = adjust(self.rows, alpha)
        return self.rows

    def to_list(self) -> list[dict]:
        return [t.to_dict() for t in self.rows]


def removal_verdict(t: Test) -> str:
    """The sentence of a position's row: what removing it does against removing a matched meaningless position."""
    what = (f"{t.measure}: NLL change {_g(t.value)} vs {_g(t.null_mean)} when a position of a matched meaningless "
            f"prompt is removed")
    if t.p is None or not math.isfinite(t.p):
        return f"{what}: cannot be tested (no null samples or no value)."
    q = format_p(t.q, None, "q")
    if t.significant:
        return f"{what}, {q}: matters more than chance."
    if beyond_chance_other_way(t):
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


def adjust_description(tests: Iterable[Test], alpha: float = ALPHA) -> list[Test]:
    """:func:`adjust` (Benjamini-Hochberg over the rows), with verdicts that name the description null."""
    out = []
    for t in adjust(tests, alpha):
        if t.null == "description":
            words = verdict(replace(t, null="matched"))
            t = replace(t, verdict=words.replace("under matched null queries", "under matched meaningless prompts", 1))
        out.append(t)
    return out

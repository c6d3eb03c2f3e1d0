"""A measure's score against each of its nulls, as rows of the table of tests: :func:`per_token_test` (one
score per virtual token, the prompt-level mean against matched pseudo-prompts, resampled reference pools and the
paired initialisation) and :func:`set_test` (one whole-prompt score against pseudo-prompts, described only).
Both return the measure's JSON-ready detail dict; its null comparisons show ``q`` and the verdict of their rows
through :func:`~analyzer.stats.with_row`.

Importing this module pulls numpy only (scipy loads inside the functions)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .._json import _f, _fl
from ._format import _g as _fmt
from ._intervals import per_position_q
from ._pseudo import bootstrap_means, sign_flip_null
from ._rows import ALPHA, empirical_p, make_test


def _measure_space(what: str) -> tuple[str, str]:
    """``"tightness (model space)"`` -> ``("tightness", "model")``; ``"k-occurrence skew"`` -> (..., ``"-"``)."""
    if what.endswith(" space)") and " (" in what:
        m, sp = what[:-len(" space)")].rsplit(" (", 1)
        return m, sp
    return what, "-"


def per_token_test(values: np.ndarray, pools: Mapping[str, np.ndarray], *, init_values: np.ndarray | None = None,
                   alternative: str = "two-sided", n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA,
                   what: str = "the score", omitted: Mapping[str, str] | None = None, matched=None,
                   table=None, groups: np.ndarray | None = None, matched_claim: bool = True) -> dict:
    """A per-token score against each null; every comparison is one row of ``table``
    (:class:`analyzer.stats.TestTable`), the only home of its adjusted ``q`` and verdict
    (:func:`analyzer.stats.with_row` shows them in a comparison of this dict).

    values:      ``"n"`` the score of each virtual token.
    pools:       reference null name -> ``"m"`` the score of each null query (i.i.d. pseudo-prompts).
    matched:     ``(MatchedNull, row_values)`` -- the claim-basis null, ``row_values`` one score per pool row.
    init_values: ``"n"`` the score of each position's initialisation (paired sign-flip test), or None.
    groups:      each position's group of repeated positions (sign flips and matched draws are per group).
    matched_claim: False makes the matched row a described reference instead of a claim.
    Returns a JSON-ready dict: ``value`` (mean over positions), ``per_position``, ``null`` (name -> the
    comparison, or ``{"omitted": reason}``), ``per_position_p`` and ``per_position_q`` (each position against
    each null; BH within the measure; shown, never claimed)."""
    measure, space = _measure_space(what)
    values = np.asarray(values, dtype=np.float64).ravel()
    n = int(np.isfinite(values).sum())
    value = float(np.nanmean(values)) if n else float("nan")
    out: dict[str, Any] = {"value": _f(value), "per_position": _fl(values), "null": {}, "per_position_p": {},
                           "per_position_q": {}, "n_significant_positions": {}}

    def record(name, test, extra=None):
        d = {"value": _f(test.value), "null_mean": _f(test.null_mean), "null_std": _f(test.null_sd),
             "z": _f(test.effect), "p": _f(test.p), "n_null": test.n_null, "null": name,
             "alternative": test.direction, "significant": False, "verdict": "", **(extra or {})}
        if test.p_other is not None:
            d["p_other"] = test.p_other
        out["null"][name] = d
        if table is not None:
            table.add(test)
        return d

    def positions(name, samples):
        pp = [empirical_p(v, samples[i] if samples.ndim == 2 else samples, alternative)
              for i, v in enumerate(values)]
        out["per_position_p"][name] = _fl(pp)
        out["per_position_q"][name] = per_position_q(pp)
        out["n_significant_positions"][name] = int(sum(q is not None and q < alpha
                                                       for q in out["per_position_q"][name]))

    if matched is not None:
        mn, row_values = matched
        record("matched", make_test(measure, space, "matched", value, mn.means(row_values), direction=alternative,
                                    null_groups=mn.draw_c, claim=matched_claim),
               {"n_pool": int(mn.sets.size)})
        positions("matched", mn.position_samples(row_values))
    for name, pool in pools.items():
        boot = bootstrap_means(pool, max(n, 1), n_boot, seed)
        record(name, make_test(measure, space, name, value, boot, direction=alternative),
               {"n_pool": int(np.isfinite(np.asarray(pool, dtype=np.float64)).sum())})
        positions(name, np.asarray(pool, np.float64))
    if init_values is not None:
        init_values = np.asarray(init_values, dtype=np.float64).ravel()
        d = values - init_values
        flips = sign_flip_null(d, groups, n_boot, seed)
        ok = np.isfinite(d)
        mean_d = float(d[ok].mean()) if ok.any() else float("nan")
        init_mean = float(np.nanmean(init_values)) if np.isfinite(init_values).any() else float("nan")
        t = make_test(measure, space, "init", value, flips, direction=alternative, center=init_mean,
                      statistic=mean_d)
        record("init", t, {"difference": _f(mean_d), "init_per_position": _fl(init_values)})
    for name, reason in (omitted or {}).items():
        out["null"].setdefault(name, {"omitted": reason})
    return out


def set_test(value: float, null_values: Mapping[str, np.ndarray], *, init_value: float | None = None,
             alternative: str = "two-sided", alpha: float = ALPHA, what: str = "the score",
             omitted: Mapping[str, str] | None = None, table=None,
             null_groups: Mapping[str, np.ndarray] | None = None) -> dict:
    """A whole-prompt score against null distributions of the same score on pseudo-prompts, each one row of
    ``table``; ``null_groups``: null name -> one label per sample where that null is composite
    (:func:`analyzer.stats.make_test`).

    Every row here is a described reference, the matched one too: these statistics measure how the positions
    relate to *each other* (shared neighbours, hubs), and meaningless prompts whose positions are correlated
    (near-copies of a few tokens, directions along the vocabulary's principal axes) reach any value of them,
    which no position-by-position matched null holds fixed (benchmarks/bench_calibration.py measured 40-70% of
    such prompts "significant")."""
    measure, space = _measure_space(what)
    out: dict[str, Any] = {"value": _f(value), "null": {}}
    for name, null in sorted(null_values.items(), key=lambda kv: kv[0] != "matched"):
        t = make_test(measure, space, name, value, null, direction=alternative,
                      null_groups=(null_groups or {}).get(name), claim=False)
        d = {"value": _f(t.value), "null_mean": _f(t.null_mean), "null_std": _f(t.null_sd), "z": _f(t.effect),
             "p": _f(t.p), "n_null": t.n_null, "null": name, "alternative": alternative, "significant": False,
             "verdict": f"{what} {_fmt(t.value)} vs {_fmt(t.null_mean)} ({name}): described, not tested."}
        out["null"][name] = d
        if table is not None:
            table.add(t)
    if init_value is not None:
        out["null"]["init"] = {"value": _f(value), "init_value": _f(init_value),
                               "difference": _f(value - init_value) if init_value is not None else None,
                               "verdict": f"{what} {_fmt(value)} vs {_fmt(init_value)} at initialisation "
                                          f"(one prompt-level number each: described, not tested)."}
    for name, reason in (omitted or {}).items():
        out["null"].setdefault(name, {"omitted": reason})
    return out

"""Re-reads an importance calibration (the JSON ``calibration_importance.py`` writes) against its removal null
with two variants of the claim's test, to see whether either would buy power without false claims.  No model
runs: the prompts' removal effects are in the JSON, the null's in the cache file (``removal-v2-*.npz`` under
``~/.cache/softprompt-analyzer/importance-null/``; the one whose norm profile matches the reference).

* ``tail``: a p-value beyond the null's resolution from a generalised Pareto fit to the standardised null's upper
  tail (Knijnenburg et al. 2009: with fewer than 10 exceedances, fit the top 50/40/30/20 and keep the first fit a
  Cramer-von Mises test does not reject).
* ``centred``: every prompt's (and pseudo-prompt's) removal effects minus its own median away from the first
  position ("matters more than this prompt's typical position").

Usage: ``python benchmarks/importance_test_variants.py CAL.json NULL.npz [CAL2.json NULL2.npz ...]``; prints
false claims on the meaningless families and planted positions found, for each variant."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np


def _centre(d, pos, who):
    out = d.copy()
    for j in np.unique(who):
        out[who == j] -= np.median(d[(who == j) & (pos != 0)])
    return out


def _standardised(x, strata):
    """Leave-one-out standardisation within each stratum, as ``analyzer.stats.stratified_test`` does."""
    z = np.empty_like(x)
    for g in np.unique(strata):
        v = x[strata == g]
        k = v.size
        mu = (v.sum() - v) / (k - 1)
        var = ((v ** 2).sum() - v ** 2 - (k - 1) * mu ** 2) / (k - 2)
        z[strata == g] = (v - mu) / np.sqrt(np.maximum(var, 1e-300))
    return z


def gpd_p(z_null, z) -> float:
    from scipy import stats as ss

    n = z_null.size
    k = int((z_null >= z).sum())
    if k >= 10:
        return (k + 1) / (n + 1)
    s = np.sort(z_null)[::-1]
    for m in (50, 40, 30, 20):
        t = (s[m - 1] + s[m]) / 2
        exc = s[:m] - t
        c, _, scale = ss.genpareto.fit(exc, floc=0)
        if ss.cramervonmises(exc, "genpareto", args=(c, 0, scale)).pvalue > 0.05:
            return float(max(m / n * ss.genpareto.sf(z - t, c, 0, scale), 1e-12)) if z > t else (k + 1) / (n + 1)
    return (k + 1) / (n + 1)


def claims(delta, null, *, centred: bool, tail: bool) -> list[int]:
    from analyzer.stats import adjust_positions, stratified_test

    d, pos, who = null
    strata = (pos != 0).astype(np.int64)
    nd = _centre(d, pos, who) if centred else d
    delta = np.asarray(delta, np.float64)
    if centred:
        delta = delta - np.median(delta[1:])
    tests = [stratified_test(f"position {i}", "model", "removal", float(v), nd, strata, int(i != 0),
                             direction="greater") for i, v in enumerate(delta)]
    if tail:
        z = _standardised(nd, strata)
        tests = [replace(t, p=gpd_p(z, t.effect)) for t in tests]
    return [i for i, t in enumerate(adjust_positions(tests, 0.05)) if t.significant]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or len(argv) % 2:
        raise SystemExit(__doc__.rsplit("Usage: ", 1)[1])
    pairs = [(json.load(open(argv[i])), np.load(argv[i + 1])) for i in range(0, len(argv), 2)]
    pairs = [(cal, (z["delta_nll"], z["position"], z["pseudo"])) for cal, z in pairs]
    for centred in (False, True):
        for tail in (False, True):
            fp = fpp = npos = det = nd = oth = no = 0
            for cal, null in pairs:
                for fam in cal.get("families", {}).values():
                    for pr in fam["prompts"]:
                        c = claims(pr["delta_nll"], null, centred=centred, tail=tail)
                        fp, fpp, npos = fp + bool(c), fpp + len(c), npos + len(pr["delta_nll"])
                planted = cal.get("planted") or {}
                where = set(planted.get("positions", []))
                for pr in planted.get("prompts", []):
                    c = set(claims(pr["delta_nll"], null, centred=centred, tail=tail))
                    det, nd = det + len(where & c), nd + len(where)
                    oth, no = oth + len(c - where), no + len(pr["delta_nll"]) - len(where)
            print(f"centred={centred!s:5} tail={tail!s:5}  meaningless: prompts with a claim {fp}, positions "
                  f"{fpp}/{npos}  planted: found {det}/{nd}, other positions claimed {oth}/{no}")


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    main(sys.argv[1:])

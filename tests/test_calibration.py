"""The reduced calibration benchmark (``benchmarks/bench_calibration.py``, same prompt generators): meaningless
prompts rarely get a claim, and planted task words are found.

Binomial tolerances, not exact rates: with a true false-claim rate of 0.05 the number of meaningless prompts
with any claim stays at or below ``binom.ppf(0.999, n, 0.05)`` with probability >= 0.999; with a true power of
0.9 the planted detections reach ``binom.ppf(0.001, n, 0.9)`` with probability >= 0.999."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import calibration_families as cf  # noqa: E402

pytestmark = pytest.mark.integration

FAMILIES = ("vocabulary-shaped Gaussian", "random-weight token mixtures", "dimension-permuted trained prompts",
            "heavy-tailed noise", "near-copies of a few tokens")
PER_FAMILY = 4
PLANTED_LEVEL = 0.3
PLANTED_N = 6


@pytest.fixture(scope="module")
def setup(smollm2_available):
    from analyzer import load_vocabulary
    from analyzer.analysis import analysis_settings
    from analyzer.neighbors import NeighborIndex

    vocab = load_vocabulary("smollm2-135m")
    index = NeighborIndex(k=10).fit(vocab)
    return vocab, index, analysis_settings(full=False), cf.Context(vocab, seed=0)


def test_meaningless_prompts_rarely_get_a_claim(setup):
    from scipy.stats import binom

    vocab, index, settings, ctx = setup
    hits = []
    n = 0
    for name in FAMILIES:
        fam = cf.FAMILY_BY_NAME[name]
        for i in range(PER_FAMILY):
            p, task, _ = fam.make(ctx, i)
            tests = cf.run_one(p, task, vocab, index, settings, k=10)
            assert cf.claim_rows(tests), f"{p.name}: no claim rows in the table of tests"
            n += 1
            f = cf.fired(tests)
            if f:
                hits.append((p.name, [cf.row_key(r) for r in f]))
    limit = int(binom.ppf(0.999, n, 0.05))
    assert len(hits) <= limit, f"{len(hits)}/{n} meaningless prompts got a claim (limit {limit}): {hits}"


def test_planted_task_words_are_detected(setup):
    from scipy.stats import binom

    vocab, index, settings, ctx = setup
    misses = []
    for i in range(PLANTED_N):
        p, task, params = cf.planted(ctx, i, PLANTED_LEVEL)
        tests = cf.run_one(p, task, vocab, index, settings, k=10)
        if not cf.detects_task(tests):
            row = next((r for r in tests if "task specificity" in r["measure"] and r["null"] == "matched"), None)
            misses.append((p.name, row and {k: row[k] for k in ("value", "null_mean", "p", "q")}))
    need = int(binom.ppf(0.001, PLANTED_N, 0.9))
    assert PLANTED_N - len(misses) >= need, (f"{PLANTED_N - len(misses)}/{PLANTED_N} planted prompts detected "
                                             f"(need {need}): missed {misses}")


def test_the_full_reading_claims_exactly_what_the_quick_reading_claims(setup):
    """The calibration runs the quick reading; the CLI's default is the full one (adds the MiniLM text space,
    the vocabulary's neighbour graph and the CSLS side reading).  For a prompt without an initialisation, what
    the full reading adds is described, never claimed, so its claim rows -- and their p and q -- are the quick
    reading's: the calibration carries over.  (A prompt with an init also gets the text space's claim vs init.)"""
    from analyzer.analysis import analysis_settings

    vocab, index, quick, ctx = setup
    for name, i in (("heavy-tailed noise", 5),):
        p, task, _ = cf.FAMILY_BY_NAME[name].make(ctx, i)
        q_rows = cf.run_one(p, task, vocab, index, quick, k=10)
        f_rows = cf.run_one(p, task, vocab, index, analysis_settings(full=True), k=10)
        assert any(r["space"] == "text" for r in f_rows) and not any(r["space"] == "text" for r in q_rows)
        key = lambda r: (r["measure"], r["space"], r["null"])            # noqa: E731
        q_claims = {key(r): r for r in cf.claim_rows(q_rows)}
        f_claims = {key(r): r for r in cf.claim_rows(f_rows)}
        assert set(f_claims) == set(q_claims) and q_claims
        for k_, r in q_claims.items():
            s = f_claims[k_]
            # same statistic, same null draws: equal up to float summation order
            assert s["p"] == pytest.approx(r["p"], abs=1e-9) and s["q"] == pytest.approx(r["q"], abs=1e-9)
            assert s["value"] == pytest.approx(r["value"], rel=1e-6, abs=1e-9)
            assert s["significant"] == r["significant"]

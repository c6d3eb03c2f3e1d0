"""The statistics layer (analyzer/stats.py, analyzer/nulls.py): rows, Benjamini-Hochberg, honest words, p-value
printing, and pseudo-prompts that respect repeated positions."""

import math
import re

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from analyzer import NeighborIndex, Vocabulary
from analyzer import stats as S
from analyzer.exceptions import AnalyzerError


def test_empirical_p_directions():
    null = np.arange(10.0)
    assert S.empirical_p(9.5, null, "greater") == pytest.approx(1 / 11)
    assert S.empirical_p(-1, null, "less") == pytest.approx(1 / 11)
    assert S.empirical_p(9.5, null) == pytest.approx(2 / 11)            # two-sided by default
    assert math.isnan(S.empirical_p(float("nan"), null)) and math.isnan(S.empirical_p(1.0, []))
    with pytest.raises(AnalyzerError, match="direction"):
        S.empirical_p(1.0, null, "up")


def test_format_p_says_the_resolution_of_the_null():
    assert S.format_p(0.0312) == "p=0.031"
    assert S.format_p(0.0004) == "p<0.001"
    assert S.format_p(2 / 1001, 1000) == "p≤0.002"                      # two-sided floor of 1,000 samples
    assert S.format_p(1 / 1001, 1000, direction="greater") == "p<0.001"
    assert S.format_p(1 / 201, 200, direction="greater") == "p≤0.005"
    assert S.format_p(None) == "p=n/a" and S.format_p(0.5, name="q") == "q=0.5"


def test_adjust_is_benjamini_hochberg_over_claims_only():
    rng = np.random.default_rng(0)
    null = rng.normal(size=999)
    values = [4.0, 2.2, 0.1, -3.5]
    rows = [S.make_test("m", "model", "matched", v, null) for v in values]
    rows.append(S.make_test("m", "model", "random_vectors", 4.0, null))        # a reference
    out = S.adjust(rows, alpha=0.05)
    claims = [r for r in out if r.claim]
    want = false_discovery_control([r.p for r in rows[:4]], method="bh")
    np.testing.assert_allclose([r.q for r in claims], want)
    assert [r.significant for r in claims] == [bool(q < 0.05) for q in want]
    ref = out[-1]
    assert ref.q is None and not ref.significant and "a reference, not a claim" in ref.verdict
    assert out[0].direction == "two-sided" and out[0].significant
    assert out[0].verdict.endswith("higher than chance.") and ", q" in out[0].verdict
    # significant the other way: "lower than chance", never "not distinguishable"
    assert out[3].significant and out[3].verdict.endswith("lower than chance.")
    assert out[2].verdict.endswith("not distinguishable from chance.")
    d = out[0].to_dict()
    assert set(d) >= {"measure", "space", "null", "value", "null_mean", "null_sd", "effect", "p", "q", "direction",
                      "significant", "verdict"}
    assert S.Test.from_dict(d).to_dict() == d


def test_the_table_is_the_one_home_of_q_and_the_verdict():
    t = S.TestTable()
    detail = {"value": 5.0, "significant": False, "verdict": ""}
    t.add(S.make_test("m", "-", "matched", 5.0, np.random.default_rng(1).normal(size=500)))
    rows = t.adjust()
    assert detail == {"value": 5.0, "significant": False, "verdict": ""}      # the details are not written to
    shown = S.with_row(detail, rows[0])
    assert shown["q"] == rows[0].q and shown["verdict"] == rows[0].verdict and shown["claim"]
    assert list(shown) == ["value", "significant", "verdict", "q", "claim", "direction"]   # keys keep their places


def test_position_groups_and_grouped_sign_flips():
    v = np.array([[1, 0], [0, 1], [1, 0], [2, 0], [0, 1]], np.float32)
    g = S.position_groups(v)
    assert g.tolist() == [0, 1, 0, 2, 1]
    flips = S.sign_flip_null(np.array([1.0, 1.0, 1.0, 1.0, 1.0]), g, n_perm=2000, seed=0)
    # 3 groups -> the mean takes few values: +-1 for all groups equal, +-1/5 or +-3/5 otherwise
    assert set(np.round(np.abs(flips), 6)) <= {0.2, 0.6, 1.0}


def test_positions_that_see_the_same_neighbours_are_one_group():
    v = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    ids = np.array([[1, 2, 3, 4, 5], [1, 2, 3, 4, 9], [6, 7, 8, 9, 10], [1, 2, 3, 11, 12], [2, 3, 4, 5, 1]])
    # positions 0, 1 and 4 share >= 4 of 5 neighbours (0-1 and 0-4 directly); 3 shares only 3 with 0
    assert S.position_groups(v, ids=ids).tolist() == [0, 0, 1, 2, 0]
    assert S.position_groups(v, ids=ids, overlap=0.5).tolist() == [0, 0, 1, 0, 0]
    assert S.position_groups(v).tolist() == [0, 1, 2, 3, 4]              # without neighbours: exact copies only


def test_near_copies_share_one_matched_draw(tmp_path, monkeypatch):
    from analyzer.nulls import match, reference_pool

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    v = _vocab()
    idx = NeighborIndex(k=5).fit(v)
    pool = reference_pool(v, idx, 5, per_construction=200)
    base = v.embeddings[[3, 3, 9]].astype(np.float32)
    q = base + np.float32(1e-3) * np.random.default_rng(4).normal(size=base.shape).astype(np.float32)
    s, i = idx.kneighbors(q, 5)
    groups = S.position_groups(q, ids=i)
    assert groups.tolist() == [0, 0, 1]                   # not equal vectors, the same neighbours
    rows = match(pool, s, i, groups, q, v, m=8, n_boot=200, seed=1).rows()
    np.testing.assert_array_equal(rows[:, 0], rows[:, 1])
    assert not np.array_equal(rows[:, 0], rows[:, 2])


def test_pseudo_prompt_means_do_not_narrow_for_repeated_positions():
    rng = np.random.default_rng(0)
    vals = rng.normal(size=(4, 64))
    distinct = S.MatchedPool(vals, np.arange(4))
    tiled = S.MatchedPool(vals, np.tile(np.arange(4), 5))                # 20 positions, 4 distinct
    independent = S.MatchedPool(np.repeat(vals, 5, axis=0), np.arange(20))
    sd_d = S.pseudo_prompt_means(distinct, 4000, 0).std()
    sd_t = S.pseudo_prompt_means(tiled, 4000, 0).std()
    sd_i = S.pseudo_prompt_means(independent, 4000, 0).std()
    assert sd_t == pytest.approx(sd_d, rel=0.1)         # repeating a position repeats its draw
    assert sd_i < 0.6 * sd_t                            # what treating repeats as independent would give


def _vocab(n=600, d=24, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d)).astype(np.float32)
    return Vocabulary(name=f"toy-{n}-{d}", source="-", embeddings=emb, tokens=tuple(f"␣t{i}" for i in range(n)),
                      raw_tokens=tuple(f"t{i}" for i in range(n)), excluded=np.zeros(n, bool), tied=False,
                      key=f"toy-stats-{n}-{d}-{seed}")


def test_matched_null_shares_the_features_and_repeats_repeated_positions(tmp_path, monkeypatch):
    from analyzer.nulls import CONSTRUCTIONS, features, match, reference_pool

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    v = _vocab()
    idx = NeighborIndex(k=5).fit(v)
    pool = reference_pool(v, idx, 5, per_construction=300)
    assert pool.size == 300 * len(CONSTRUCTIONS) and list(tmp_path.rglob("null-pool-*.npz"))
    again = reference_pool(v, idx, 5, per_construction=300)
    assert again is pool
    q = np.concatenate([v.embeddings[[3, 3, 9]], np.random.default_rng(2).normal(size=(2, 24))]).astype(np.float32)
    s, i = idx.kneighbors(q, 5)
    groups = S.position_groups(q)
    mn = match(pool, s, i, groups, q, v, m=8, n_boot=300, seed=1)
    assert mn.sets.shape == (len(CONSTRUCTIONS), 5, 8)
    rows = mn.rows()
    np.testing.assert_array_equal(rows[:, 0], rows[:, 1])              # the repeated position repeats its draw
    assert not np.array_equal(rows[:, 0], rows[:, 2])
    # each construction's matched draws are nearer in feature space than the construction's pool on average
    f = features(s, i, q, v)
    for c in range(len(CONSTRUCTIONS)):
        cols = np.flatnonzero(pool.construction == c)
        d_all = np.abs((pool.features[cols] - f[4]) / pool.scale).sum(axis=1).mean()
        d_m = np.abs((pool.features[mn.sets[c, 4]] - f[4]) / pool.scale).sum(axis=1).mean()
        assert d_m < d_all
    # one construction per pseudo-prompt, among those that reach the prompt's features (the caliper rule)
    from analyzer.nulls import _REACH_FACTOR, CALIPER

    usable = set(np.flatnonzero(mn.reach <= max(CALIPER, _REACH_FACTOR * mn.reach.min())).tolist())
    assert set(np.unique(mn.draw_c).tolist()) == usable and int(np.argmin(mn.reach)) in usable
    assert mn.constructions_used == [CONSTRUCTIONS[c] for c in sorted(usable)]
    # every construction that reaches the prompt makes the same number of pseudo-prompts (a composite null)
    _, per = np.unique(mn.draw_c, return_counts=True)
    assert (per == 300).all() and mn.n_boot == 300 * len(usable)


def test_composite_null_needs_the_prompt_to_beat_every_process():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, 400), rng.normal(3.0, 1.0, 400)      # two processes that make meaningless prompts
    samples, labels = np.concatenate([a, b]), np.repeat([0, 1], 400)
    # 3.2 is far out in process 0, ordinary in process 1: the pooled null calls it unusual, the composite does not
    pooled = S.make_test("m", "-", "matched", 3.2, samples)
    comp = S.make_test("m", "-", "matched", 3.2, samples, null_groups=labels)
    assert comp.p == max(S.empirical_p(3.2, a), S.empirical_p(3.2, b)) and comp.p > 0.5 > pooled.p
    assert comp.null_mean == pytest.approx(b.mean()) and comp.n_null == 400
    # beyond both processes it is unusual under each: the composite p is the larger of two small ones
    far = S.make_test("m", "-", "matched", 4.8, samples, null_groups=labels, direction="greater")
    assert far.p == S.empirical_p(4.8, b, "greater") > S.empirical_p(4.8, a, "greater")
    assert far.p < 0.05 and far.null_mean == pytest.approx(b.mean())
    # NaN samples are dropped together with their labels
    with_nan = S.make_test("m", "-", "matched", 3.2, np.r_[samples, np.nan], null_groups=np.r_[labels, 0])
    assert with_nan.p == comp.p


def test_a_one_sided_claim_beyond_chance_the_other_way_says_lower_not_indistinguishable():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, 400), rng.normal(0.5, 1.0, 400)
    samples, labels = np.concatenate([a, b]), np.repeat([0, 1], 400)
    low = S.make_test("task specificity", "model", "matched", -4.0, samples, null_groups=labels, direction="greater")
    # the tested direction finds nothing; the other way is checked against every construction too
    assert low.p > 0.99 and low.p_other == max(S.empirical_p(-4.0, a, "less"), S.empirical_p(-4.0, b, "less"))
    assert low.p_other < 0.01
    ordinary = S.make_test("task specificity", "model", "matched", 0.2, samples, null_groups=labels,
                           direction="greater")
    high = S.make_test("task specificity", "model", "matched", 5.0, samples, null_groups=labels, direction="greater")
    two = S.make_test("tightness", "model", "matched", -4.0, samples, null_groups=labels)
    assert two.p_other is None
    low, ordinary, high, two = S.adjust([low, ordinary, high, two])
    assert not low.significant and "lower than chance" in low.verdict and "not a claim" in low.verdict
    assert "not distinguishable" not in low.verdict
    assert "not distinguishable from chance" in ordinary.verdict and not ordinary.significant
    assert high.significant and "higher than chance" in high.verdict
    assert two.significant and "lower than chance" in two.verdict       # two-sided rows claim either way
    # the other way never enters the FDR family: the q of the claims is BH over the tested p-values only
    from scipy.stats import false_discovery_control
    q = false_discovery_control([low.p, ordinary.p, high.p, two.p], method="bh")
    assert [low.q, ordinary.q, high.q, two.q] == pytest.approx(np.minimum(q, 1.0))
    assert S.Test.from_dict(low.to_dict()) == low
    # the compact table (dashboard, Markdown, HTML) says the same words
    from analyzer._format import short_verdict
    assert short_verdict(low.to_dict()).startswith("lower than chance")
    assert short_verdict(ordinary.to_dict()) == "not distinguishable"
    assert short_verdict(high.to_dict()) == "higher than chance"


def test_parameters_are_checked_in_the_one_message_shape():
    from analyzer.analysis import analysis_settings

    with pytest.raises(AnalyzerError, match=re.escape("The 'direction' parameter of empirical_p must be one of "
                                                      "'greater', 'less', 'two-sided'. Got 'up' instead.")):
        S.empirical_p(1.0, np.zeros(3), "up")
    with pytest.raises(AnalyzerError, match=re.escape("The 'null' parameter of make_test must be one of 'matched', ")):
        S.make_test("m", "-", "nope", 1.0, np.zeros(3))
    with pytest.raises(AnalyzerError, match=re.escape(f"The 'seed' parameter of analyzer must be an int in "
                                                      f"[0, {S.SEED_MAX}]. Got -1 instead.")):
        S.check_seed(-1)
    with pytest.raises(AnalyzerError, match=re.escape("The 'n_null' parameter of AnalysisSettings must be an int "
                                                      ">= 2. Got 1 instead.")):
        analysis_settings(n_null=1)
    with pytest.raises(AnalyzerError, match=re.escape("The 'seed' parameter of AnalysisSettings must be an int in")):
        analysis_settings(seed=True)
    assert type(analysis_settings(seed=np.int64(3), n_null=np.int64(9)).seed) is int

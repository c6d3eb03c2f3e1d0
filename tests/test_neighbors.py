import numpy as np
import pytest

from analyzer import AnalyzerError, NeighborIndex, ShapeMismatchError, Vocabulary


def make_vocab(n=200, d=16, seed=0, excluded=(0, 1, 2)):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d)).astype(np.float32)
    emb[5] *= 10  # a long row: dot prefers it, cosine does not care
    mask = np.zeros(n, dtype=bool)
    mask[list(excluded)] = True
    toks = tuple(f"t{i}" for i in range(n))
    return Vocabulary(name="synthetic", source="memory", embeddings=emb, tokens=toks, raw_tokens=toks,
                      excluded=mask, tied=False, key=f"test-synthetic-{n}-{d}-{seed}")


def brute_cosine(v, q, ids):
    e = v.embeddings[ids] / np.linalg.norm(v.embeddings[ids], axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = qn @ e.T
    order = np.argsort(-s, axis=1)
    return np.take_along_axis(s, order, 1), ids[order]


def test_cosine_matches_brute_force_and_excludes_special(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    v = make_vocab()
    q = np.random.default_rng(1).normal(size=(7, 16)).astype(np.float32)
    idx = NeighborIndex(k=10).fit(v)
    scores, ids = idx.kneighbors(q)
    keep = np.where(~v.excluded)[0]
    bs, bi = brute_cosine(v, q, keep)
    np.testing.assert_array_equal(ids, bi[:, :10])
    np.testing.assert_allclose(scores, bs[:, :10], atol=1e-5)
    assert not np.isin(ids, [0, 1, 2]).any()


def test_vocab_row_is_its_own_top1_with_score_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    v = make_vocab()
    rows = [3, 10, 150]
    scores, ids = NeighborIndex(k=3).fit(v).kneighbors(v.embeddings[rows] * 3.7)  # scale does not matter
    assert ids[:, 0].tolist() == rows
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_include_special_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    v = make_vocab()
    s, i = NeighborIndex(k=1, include_special=True).fit(v).kneighbors(v.embeddings[[1]])
    assert i[0, 0] == 1
    s, i = NeighborIndex(k=1).fit(v).kneighbors(v.embeddings[[1]])
    assert i[0, 0] != 1


def test_l2_and_dot_differ_from_cosine_as_they_should(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    v = make_vocab()
    q = v.embeddings[[7]] + 0.01
    _, dot_ids = NeighborIndex(metric="dot", k=5).fit(v).kneighbors(v.embeddings[[5]] * 0 + q)
    s_l2, l2_ids = NeighborIndex(metric="l2", k=5).fit(v).kneighbors(q)
    assert l2_ids[0, 0] == 7
    assert s_l2[0, 0] == pytest.approx(np.linalg.norm(q - v.embeddings[7]), abs=1e-4)
    assert np.all(np.diff(s_l2[0]) >= 0)  # distances ascend
    # the 10x-long row 5 wins dot products far more often than cosine
    qs = np.random.default_rng(3).normal(size=(200, 16)).astype(np.float32)
    _, d_ids = NeighborIndex(metric="dot", k=1).fit(v).kneighbors(qs)
    _, c_ids = NeighborIndex(metric="cosine", k=1).fit(v).kneighbors(qs)
    assert (d_ids == 5).sum() > 3 * max(1, (c_ids == 5).sum())


def test_index_is_cached_on_disk_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    v = make_vocab()
    NeighborIndex().fit(v)
    files = list(tmp_path.rglob("index-cosine-filtered.faiss"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    q = v.embeddings[[9]]
    a = NeighborIndex().fit(v).kneighbors(q)
    assert files[0].stat().st_mtime_ns == mtime
    b = NeighborIndex(cache=False).fit(v).kneighbors(q)
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("k", [0, -1, 1000, 2.5, "3", True])
def test_bad_k_message(k, tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    with pytest.raises(AnalyzerError, match=r"The 'k' parameter of NeighborIndex must be an int in \[1, 197\]\. Got"):
        NeighborIndex(k=k).fit(make_vocab())


def test_bad_metric_dim_nan_and_unfitted(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    v = make_vocab()
    with pytest.raises(AnalyzerError, match="'metric'.*Got 'manhattan'"):
        NeighborIndex(metric="manhattan").fit(v)
    with pytest.raises(AnalyzerError, match="not fitted"):
        NeighborIndex().kneighbors(v.embeddings[:1])
    idx = NeighborIndex().fit(v)
    with pytest.raises(ShapeMismatchError, match="dim 8 .* dim 16"):
        idx.kneighbors(np.zeros((2, 8), np.float32))
    bad = np.ones((3, 16), np.float32)
    bad[2, 4] = np.nan
    with pytest.raises(AnalyzerError, match=r"rows \[2\]"):
        idx.kneighbors(bad)


def test_init_stores_params_only():
    idx = NeighborIndex(metric="nonsense", k=-5)  # no validation, no work in __init__
    assert idx.metric == "nonsense" and idx.k == -5 and not hasattr(idx, "index_")

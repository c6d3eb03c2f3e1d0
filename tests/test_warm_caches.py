"""What a second analysis of the same vocabulary reads back instead of computing (issue 23: ``analyze`` warm
within 10 s on a 152k x 1,536 vocabulary): the row norms, the principal basis of the matching null, the two
reference pools' neighbours, and the answer to a repeated small search.  Each must give exactly what computing
it gives, and a damaged cache entry must be rebuilt, never trusted."""

from __future__ import annotations

import numpy as np
import pytest

from analyzer import NeighborIndex, Vocabulary
from analyzer.cache import entry_dir


def _vocab(n=400, d=32, seed=0) -> Vocabulary:
    rng = np.random.default_rng(seed)
    emb = (rng.normal(size=(n, d)) * rng.lognormal(0, 0.5, size=(n, 1))).astype(np.float32)
    mask = np.zeros(n, bool)
    mask[:3] = True
    toks = tuple(f"t{i}" for i in range(n))
    return Vocabulary(name="warm", source="memory", embeddings=emb, tokens=toks, raw_tokens=toks, excluded=mask,
                      tied=False, key=f"test-warm-{n}-{d}-{seed}")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    return tmp_path


def test_row_norms_are_computed_once_and_equal_numpy(cache):
    v = _vocab()
    n = v.norms
    # float32 sums in another order than numpy's pairwise reduction: equal to a few float32 ulps
    np.testing.assert_allclose(n, np.linalg.norm(v.embeddings, axis=1), rtol=1e-6)
    assert v.norms is n and not n.flags.writeable
    idx = NeighborIndex().fit(v)
    assert idx.norms_ is n and idx.median_norm_ == pytest.approx(float(np.median(n[3:])))


def test_principal_basis_is_read_back_equal_and_a_damaged_entry_is_rebuilt(cache):
    from analyzer import nulls

    v = _vocab()
    mu, basis = nulls.principal_basis(v, 20)
    [entry] = list(entry_dir("vocab", v.key).glob("principal-*.npz"))
    nulls._MOMENTS.clear()                                      # a new process: only the disk entry is left
    mu2, basis2 = nulls.principal_basis(v, 20)
    assert np.array_equal(mu, mu2) and np.array_equal(basis, basis2)
    entry.write_bytes(b"not an npz")
    nulls._MOMENTS.clear()
    mu3, basis3 = nulls.principal_basis(v, 20)
    assert np.array_equal(basis, basis3)
    z = np.load(entry)                                          # rewritten whole
    assert z["basis"].shape == (min(32, 200), 32)


@pytest.mark.parametrize("metric", ["cosine", "csls"])
def test_reference_pools_neighbours_read_back_equal(cache, metric):
    from analyzer.baselines import build_baselines

    v = _vocab()
    prompt = np.random.default_rng(3).normal(size=(5, 32)).astype(np.float32)
    first = build_baselines(prompt, v, NeighborIndex(metric=metric).fit(v), k=5, n_null=40, seed=2,
                            matched=False)
    assert len(list(entry_dir("vocab", v.key).glob("reference-neighbours-*.npz"))) == 1
    again = build_baselines(prompt, v, NeighborIndex(metric=metric).fit(v), k=5, n_null=40, seed=2,
                            matched=False)                      # a fresh index: read from the disk entry
    for name in ("random_vectors", "vocab_tokens"):
        a, b = first.nulls[name], again.nulls[name]
        for field in ("vectors", "scores", "ids"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), (name, field)
    assert np.array_equal(first.nulls["vocab_tokens"].token_ids, again.nulls["vocab_tokens"].token_ids)
    # another seed or pool size is another entry, not a stale read
    other = build_baselines(prompt, v, NeighborIndex(metric=metric).fit(v), k=5, n_null=30, seed=2,
                            matched=False)
    assert other.nulls["vocab_tokens"].size == 30
    assert len(list(entry_dir("vocab", v.key).glob("reference-neighbours-*.npz"))) == 2


def test_a_repeated_small_search_is_answered_again_and_cannot_be_changed_by_the_caller(cache):
    v = _vocab()
    idx = NeighborIndex(k=4).fit(v)
    q = np.random.default_rng(5).normal(size=(6, 32)).astype(np.float32)
    s1, i1 = idx.kneighbors(q)
    s1[:] = -1.0                                                # the caller writes into its answer
    i1[:] = 0
    s2, i2 = idx.kneighbors(q.copy())
    fresh = NeighborIndex(k=4, cache=False).fit(v).kneighbors(q)
    assert np.array_equal(s2, fresh[0]) and np.array_equal(i2, fresh[1])
    s3, _ = idx.kneighbors(q, 2)                                # another k: searched, not the kept answer cut
    assert s3.shape == (6, 2) and np.array_equal(s3, fresh[0][:, :2])
    q[0, 0] += 1.0                                              # another query: searched again
    assert not np.array_equal(idx.kneighbors(q)[0][0], fresh[0][0])


def test_csls_view_reads_the_cosine_rows_and_gives_the_csls_index_neighbours(cache):
    from numeric import assert_same_neighbors

    v = _vocab(n=600, d=24)
    cos = NeighborIndex(k=7).fit(v)
    view = cos.csls_view(csls_k=5)
    assert view.index_ is cos.index_                                # the same storage, no second matrix
    assert not list(entry_dir("vocab", v.key).glob("index-csls*"))     # nor a second index on disk
    alone = NeighborIndex(metric="csls", k=7, csls_k=5).fit(v)
    for n in (3, 100):                                              # the small-batch and the batched path
        q = np.random.default_rng(n).normal(size=(n, 24)).astype(np.float32)
        (sv, iv), (sa, ia) = view.kneighbors(q), alone.kneighbors(q)
        assert_same_neighbors(iv, sv, ia, sa)
    with pytest.raises(Exception, match="csls_view needs a cosine index"):
        NeighborIndex(metric="l2").fit(v).csls_view()


@pytest.mark.parametrize("include_special", [False, True])
def test_nearest_token_and_ranks_from_the_index_rows_equal_the_matrix_pass(cache, include_special):
    from analyzer.measures import nearest_token, token_ranks

    v = _vocab(n=500, d=20, seed=3)
    q = np.random.default_rng(8).normal(size=(30, 20)).astype(np.float32) * 2.0
    q[:5] = v.embeddings[[10, 20, 30, 40, 50]]                     # rows of the vocabulary: their own nearest
    idx = NeighborIndex(include_special=include_special).fit(v)
    a = nearest_token(q, v, include_special=include_special, norms=v.norms)
    b = nearest_token(q, v, include_special=include_special, norms=v.norms, index=idx)
    np.testing.assert_allclose(a["cosine"], b["cosine"], rtol=0, atol=1e-5)
    # distance from |q|^2 + |e|^2 - 2 q.e in float32: near 0 the cancellation leaves ~sqrt(1e-7 |e|^2) either way
    np.testing.assert_allclose(a["distance"], b["distance"], rtol=1e-4, atol=0.02)
    for key in ("cosine_id", "distance_id"):
        assert np.array_equal(a[key], b[key]), key
    assert list(b["cosine_id"][:5]) == [10, 20, 30, 40, 50] == list(b["distance_id"][:5])
    if not include_special:
        assert not np.isin(b["cosine_id"], [0, 1, 2]).any()
    # ranks read the same unit rows: a vocabulary row is rank 1 of its own token; under CSLS too
    assert list(token_ranks(idx, q[:5], [10, 20, 30, 40, 50])) == [1] * 5
    view = idx.csls_view(5)
    brute = 2.0 * (q[:5] / np.linalg.norm(q[:5], axis=1, keepdims=True)) @ (
        v.embeddings[idx.ids_] / v.norms[idx.ids_, None]).T - view.r_[idx.ids_][None, :]
    own = brute[np.arange(5), np.searchsorted(idx.ids_, [10, 20, 30, 40, 50])]
    assert list(token_ranks(view, q[:5], [10, 20, 30, 40, 50])) == list((brute > own[:, None] + 1e-6).sum(1) + 1)

"""UMAP layouts (analyzer.projection) and the figures built on them, on a small synthetic vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
from numeric import SCORE_TOL

from analyzer.exceptions import AnalyzerError, ShapeMismatchError
from analyzer.types import SoftPrompt, Vocabulary

N_CLUSTERS, PER_CLUSTER, DIM = 6, 80, 16


@pytest.fixture(scope="module")
def vocab():
    """480 tokens in 6 well-separated directions (+ 4 special rows that must never be sampled)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(N_CLUSTERS, DIM)) * 3
    emb = np.concatenate([c + rng.normal(scale=0.4, size=(PER_CLUSTER, DIM)) for c in centres]
                         + [rng.normal(size=(4, DIM))]).astype(np.float32)
    n = emb.shape[0]
    tokens = tuple(f"c{i // PER_CLUSTER}_{i % PER_CLUSTER}" if i < N_CLUSTERS * PER_CLUSTER else f"<special{i}>"
                   for i in range(n))
    excluded = np.zeros(n, dtype=bool)
    excluded[-4:] = True
    return Vocabulary(name="synthetic", source="memory", embeddings=emb, tokens=tokens, raw_tokens=tokens,
                      excluded=excluded, tied=True, key="synthetic-test-vocab", architecture=None)


@pytest.fixture(scope="module")
def layout(vocab):
    from analyzer.projection import UmapLayout

    return UmapLayout(n_sample=300, n_epochs=60, cache=False).fit(vocab)


def cluster_of(ids):
    return np.asarray(ids) // PER_CLUSTER


def test_fit_samples_only_usable_rows(layout, vocab):
    assert layout.sample_ids_.shape == (300,)
    assert layout.embedding_.shape == (300, 2) and layout.embedding_.dtype == np.float32
    assert not vocab.excluded[layout.sample_ids_].any()
    assert np.isfinite(layout.embedding_).all()


def test_transform_places_points_in_their_cluster(layout, vocab):
    emb = np.asarray(vocab.embeddings)
    held_out = np.setdiff1d(np.arange(N_CLUSTERS * PER_CLUSTER), layout.sample_ids_)[:40]
    xy = layout.transform(emb[held_out] * 5.0)  # any norm: placement is by cosine
    centres = np.stack([layout.embedding_[cluster_of(layout.sample_ids_) == c].mean(0) for c in range(N_CLUSTERS)])
    nearest = np.argmin(np.linalg.norm(xy[:, None] - centres[None], axis=2), axis=1)
    assert (nearest == cluster_of(held_out)).mean() >= 0.9


def test_transform_is_deterministic_and_snaps_sample_tokens(layout, vocab):
    emb = np.asarray(vocab.embeddings)
    a = layout.transform(emb[:50])
    np.testing.assert_array_equal(layout.transform(emb[:50]), a)   # same inputs, same batch: the same bits
    b = layout.transform(emb[10:50])
    # another batch: BLAS blocks the products by batch size and CPU, so equal to float32 rounding, not bit for bit
    np.testing.assert_allclose(a[10:], b, rtol=SCORE_TOL, atol=SCORE_TOL)
    tid = int(layout.sample_ids_[7])
    np.testing.assert_allclose(layout.transform(emb[tid]), layout.embedding_[7:8], atol=1e-6)
    np.testing.assert_allclose(layout.token_coords([tid]), layout.embedding_[7:8])


def test_refined_transform_runs(vocab, layout):
    from analyzer.projection import UmapLayout

    refined = UmapLayout(n_sample=300, n_epochs=60, refine=True, cache=False).fit(vocab)
    xy = refined.transform(np.asarray(vocab.embeddings)[:20] + 0.01)
    assert xy.shape == (20, 2) and np.isfinite(xy).all()


def test_three_components(vocab):
    from analyzer.projection import UmapLayout

    lay3 = UmapLayout(n_components=3, n_sample=200, n_epochs=30, cache=False).fit(vocab)
    assert lay3.embedding_.shape == (200, 3)
    assert lay3.transform(np.asarray(vocab.embeddings)[:3]).shape == (3, 3)


def test_cache_roundtrip(vocab, tmp_path, monkeypatch):
    from analyzer.projection import UmapLayout

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    first = UmapLayout(n_sample=150, n_epochs=20).fit(vocab)
    assert not first.from_cache_
    files = list(tmp_path.rglob("umap-*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as z:  # plain arrays, no pickle
        assert set(z.files) == {"sample_ids", "embedding", "a", "b"}
    second = UmapLayout(n_sample=150, n_epochs=20).fit(vocab)
    assert second.from_cache_
    np.testing.assert_array_equal(first.embedding_, second.embedding_)
    other = UmapLayout(n_sample=150, n_epochs=21).fit(vocab)  # other parameters: another entry
    assert not other.from_cache_
    files[0].write_bytes(b"garbage")                          # a damaged entry is refitted
    third = UmapLayout(n_sample=150, n_epochs=20).fit(vocab)
    assert not third.from_cache_


@pytest.mark.parametrize("kwargs, match", [
    ({"n_components": 4}, "'n_components' parameter of UmapLayout must be one of 2, 3. Got 4 instead"),
    ({"n_sample": 2}, "'n_sample' parameter of UmapLayout must be an int >= 3. Got 2"),
    ({"n_neighbors": 1.5}, "'n_neighbors'"),
    ({"min_dist": 2.0}, "'min_dist'"),
])
def test_bad_parameters_name_the_value(vocab, kwargs, match):
    from analyzer.projection import UmapLayout

    with pytest.raises(AnalyzerError, match=match):
        UmapLayout(cache=False, **kwargs).fit(vocab)


def test_errors_for_unfitted_and_wrong_dim(layout):
    from analyzer.projection import UmapLayout

    with pytest.raises(AnalyzerError, match="not fitted"):
        UmapLayout().transform(np.zeros((1, DIM)))
    with pytest.raises(ShapeMismatchError, match=f"dim 7 but the vocabulary of synthetic has dim {DIM}"):
        layout.transform(np.ones((2, 7)))
    with pytest.raises(AnalyzerError, match="NaN"):
        layout.transform(np.full((1, DIM), np.nan))


def test_project_prompts_and_map_figure(layout, vocab):
    from analyzer import NeighborIndex
    from analyzer.plotting import plot_prompt_map
    from analyzer.projection import project_prompts

    emb = np.asarray(vocab.embeddings)
    prompts = [SoftPrompt(name="a", vectors=emb[[0, 100, 200]].copy(), source="mem", kind="TENSOR"),
               SoftPrompt(name="b", vectors=emb[[300, 400]].copy() * 2, source="mem", kind="TENSOR")]
    index = NeighborIndex(k=3, cache=False).fit(vocab)
    pmap = project_prompts(layout, prompts, index, k=3, highlight=[5, 6])
    assert [p.name for p in pmap.prompts] == ["a", "b"]
    assert pmap.prompts[0].neighbor_ids[:, 0].tolist() == [0, 100, 200]   # each vector's own token first
    assert pmap.prompts[0].neighbor_coords.shape == (3, 3, 2)
    # a virtual token equal to a vocabulary embedding sits on that token
    np.testing.assert_allclose(pmap.prompts[0].coords, pmap.prompts[0].neighbor_coords[:, 0], atol=1e-5)
    fig = plot_prompt_map(pmap, vocab, width=700, height=500)
    names = [t.name for t in fig.data]
    assert names[0] == "vocabulary sample" and "a" in names and "b neighbours" in names and "search" in names
    assert fig.layout.width == 700 and fig.layout.height == 500
    virtual = next(t for t in fig.data if t.name == "a")
    assert "c0_0" in virtual.hovertext[0] and "norm" in virtual.hovertext[0]
    isolated = plot_prompt_map(pmap, vocab, show_background=False)
    assert "vocabulary sample" not in [t.name for t in isolated.data]


def test_trajectory_figure(layout, vocab):
    from analyzer.plotting import plot_trajectory
    from analyzer.projection import project_trajectory

    emb = np.asarray(vocab.embeddings)
    snaps = {0: emb[[0, 100]], 10: (emb[[0, 100]] + emb[[200, 300]]) / 2, 20: emb[[200, 300]]}
    steps, coords = project_trajectory(layout, snaps)
    assert steps == [0, 10, 20] and coords.shape == (3, 2, 2)
    fig = plot_trajectory(layout, snaps, steps=steps, coords=coords, height=400)
    assert [f.name for f in fig.frames] == ["0", "10", "20"]
    moving = next(t for t in fig.data if t.name == "prompt")            # the last snapshot unless a step is chosen
    np.testing.assert_allclose(np.asarray(moving.x, dtype=float), coords[-1, :, 0])
    chosen = next(t for t in plot_trajectory(layout, snaps, steps=steps, coords=coords, step=10).data
                  if t.name == "prompt")
    np.testing.assert_allclose(np.asarray(chosen.y, dtype=float), coords[1, :, 1])
    with pytest.raises(AnalyzerError, match="not one of the run's snapshots"):
        plot_trajectory(layout, snaps, steps=steps, coords=coords, step=5)
    with pytest.raises(AnalyzerError, match="different shapes"):
        project_trajectory(layout, {0: emb[:2], 1: emb[:3]})


def test_search_tokens(vocab):
    from analyzer.projection import search_tokens

    assert search_tokens(vocab, "c1_5")[0] == PER_CLUSTER + 5
    assert search_tokens(vocab, "  ") == []
    assert all(not vocab.excluded[i] for i in search_tokens(vocab, "special"))


def test_other_figures_accept_size():
    from analyzer.plotting import plot_norms, plot_projection_gap, plot_training_curves

    rows = [{"step": 0, "eval_accuracy": 0.5}] + [{"step": s, "loss": 1.0 / s} for s in range(1, 20)] + \
           [{"step": 19, "eval_accuracy": 0.8}]
    fig = plot_training_curves(rows, chance=0.5, width=500, height=250)
    assert fig.layout.width == 500 and [t.name for t in fig.data][:3] == ["loss", "loss (running mean)",
                                                                          "validation accuracy"]
    p = SoftPrompt(name="p", vectors=np.ones((3, 4), np.float32), source="m", kind="TENSOR")
    assert plot_norms([p], median_norm=1.0, height=200).layout.height == 200
    # the map's one unit: times the vocabulary's median norm (line at 1), the raw L2 in the hover; raw without it
    fig = plot_norms([p], median_norm=4.0, names=["shown name"])
    assert np.allclose(fig.data[0].y, 0.5) and fig.data[0].name == "shown name" and list(fig.data[1].y) == [1, 1]
    assert fig.layout.yaxis.title.text == "norm ×median" and "L2 %{customdata:.2f}" in fig.data[0].hovertemplate
    assert np.allclose(plot_norms([p]).data[0].y, 2.0) and plot_norms([p]).layout.yaxis.title.text == "L2 norm"
    gap = {"chance": 0.5, "majority": 0.55,
           "accuracy": {c: {"condition": c, "accuracy": a, "ci_low": a - 0.05, "ci_high": a + 0.05}
                        for c, a in (("none", 0.5), ("projection", 0.6), ("soft", 0.85))}}
    fig = plot_projection_gap(gap, width=400)
    assert list(fig.data[0].y) == ["no prompt", "projection", "soft prompt"]


def test_transform_matches_umaps_own_initialisation(layout, vocab):
    """The numpy transform is umap's smooth_knn_dist + membership strengths + init_graph_transform."""
    import scipy.sparse

    from analyzer.projection import _exact_knn, _import_umap, _normalize, _smooth_knn_sigmas

    umap_, _ = _import_umap()
    x = np.asarray(vocab.embeddings)[:50] * 1.3 + 0.05
    ids, d = _exact_knn(_normalize(x), layout._sample_unit_, layout._k(301))
    sig, rho = umap_.smooth_knn_dist(d, float(ids.shape[1]), local_connectivity=0.0)
    np.testing.assert_allclose(_smooth_knn_sigmas(d, float(ids.shape[1])), sig, rtol=1e-4)
    rows, cols, vals, _ = umap_.compute_membership_strengths(ids, d, sig, rho, bipartite=True)
    g = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(50, layout.embedding_.shape[0])).tocsr()
    g.eliminate_zeros()
    np.testing.assert_allclose(layout.transform(x), umap_.init_graph_transform(g, layout.embedding_), atol=1e-4)


# ------------------------------------------------------------------------------- the whole-vocabulary map
def test_vocabulary_map_places_every_usable_row_and_labels_its_clusters(layout, vocab):
    from analyzer.vocab_map import VocabularyMap

    vmap = VocabularyMap(n_clusters=N_CLUSTERS, cache=False).fit(layout)
    n = N_CLUSTERS * PER_CLUSTER
    assert vmap.coords_.shape == (vocab.size, 2)
    assert np.isfinite(vmap.coords_[:n]).all() and np.isnan(vmap.coords_[n:]).all()   # special rows left out
    np.testing.assert_allclose(vmap.coords_[layout.sample_ids_], layout.embedding_)   # sample rows keep their place
    assert (vmap.cluster_[n:] == -1).all() and vmap.sizes_.sum() == n
    # the map's regions are the true clusters, and each label names tokens of its own region
    truth = cluster_of(np.arange(n))
    for j in range(N_CLUSTERS):
        members = truth[vmap.cluster_[:n] == j]
        assert np.bincount(members).max() / members.size >= 0.9
        words = vmap.labels_[j].split(" · ")
        assert len(words) == 3
        assert {w.split("_")[0] for w in words} == {f"c{np.bincount(members).argmax()}"}
    z, xs, ys = vmap.density(bins=40)
    assert z.shape == (40, 40) and xs.shape == ys.shape == (40,) and z.max() > 0


def test_vocabulary_map_is_cached_on_disk(layout, vocab, tmp_path, monkeypatch):
    from analyzer.vocab_map import VocabularyMap

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    first = VocabularyMap(n_clusters=4).fit(layout)
    again = VocabularyMap(n_clusters=4).fit(layout)
    assert not first.from_cache_ and again.from_cache_
    np.testing.assert_array_equal(first.coords_, again.coords_)
    assert first.labels_ == again.labels_ and list(tmp_path.rglob("vocabmap-*.npz"))
    assert not VocabularyMap(n_clusters=5).fit(layout).from_cache_       # other parameters, another entry
    with pytest.raises(AnalyzerError, match="n_clusters"):
        VocabularyMap(n_clusters=0).fit(layout)


def test_typical_tokens_prefer_common_whole_words():
    from analyzer.vocab_map import typical_tokens

    tokens = ["␣good", "␣Good", "good", "ing", "␣great", "␣fine", "##", "␣zzgoodish"]
    rows = np.eye(len(tokens), dtype=np.float32) + 0.5
    members = np.arange(len(tokens))
    words = typical_tokens(tokens, rows, members, top=3, share=1.0)
    assert words == ["good", "great", "fine"]                   # case/space variants once, fragments left out


def test_map_background_never_takes_the_hover_and_isolation_links_true_cosines(layout, vocab):
    from analyzer import NeighborIndex
    from analyzer.plotting import plot_prompt_map
    from analyzer.plotting._map import declutter
    from analyzer.projection import project_prompts
    from analyzer.vocab_map import VocabularyMap

    emb = np.asarray(vocab.embeddings)
    prompt = SoftPrompt(name="a", vectors=emb[[0, 100, 200]] + 0.3, source="mem", kind="TENSOR")
    index = NeighborIndex(metric="csls", k=4, cache=False).fit(vocab)
    pmap = project_prompts(layout, [prompt], index, k=4)
    cos = pmap.prompts[0].neighbor_cosines
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)   # noqa: E731
    np.testing.assert_allclose(cos[1], unit(emb[pmap.prompts[0].neighbor_ids[1]]) @ unit(prompt.vectors[1]),
                               atol=SCORE_TOL)
    vmap = VocabularyMap(n_clusters=N_CLUSTERS, cache=False).fit(layout)
    for style in ("density", "points"):
        fig = plot_prompt_map(pmap, vocab, vocab_map=vmap, background_style=style, names=["trained/a"])
        bg = fig.data[0]
        assert bg.hoverinfo == "skip" and bg.type == ("heatmap" if style == "density" else "scattergl")
        assert "trained/a" in [t.name for t in fig.data]                        # the sidebar's name
        names = [t.name for t in fig.data]
        shown = list(fig.data[names.index("cluster labels")].text)          # a text trace beneath the prompts
        assert shown and set(shown) <= {html_escape(lab) for lab in vmap.labels_}
        assert names.index("cluster labels") < names.index("trained/a")
    fig = plot_prompt_map(pmap, vocab, vocab_map=vmap, isolate=(0, 1), names=["trained/a"])
    texts = [a.text for a in fig.layout.annotations]
    for r in range(4):            # one label per neighbour: its token and its true cosine
        token = html_escape(vocab.tokens[int(pmap.prompts[0].neighbor_ids[1, r])])
        assert any(token in t and f"{cos[1, r]:.2f}" in t for t in texts)
    virtual = next(t for t in fig.data if t.name == "trained/a")
    assert list(virtual.marker.opacity) == [pytest.approx(0.12), 0.0, pytest.approx(0.12)]   # the rest dimmed
    iso = next(t for t in fig.data if t.name == "trained/a v1")
    assert list(iso.customdata[0]) == [0, 1]
    # labels that would overlap are left out, in order
    keep = declutter(np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]]), ["abc", "abd", "xyz"], char_w=0.1, line_h=0.5)
    assert keep.tolist() == [True, False, True]


def html_escape(s: str) -> str:
    import html

    return html.escape(s)


def test_spread_angles_keeps_labels_apart():
    from analyzer.plotting._map import spread_angles

    out = spread_angles(np.array([0.0, 0.05, 0.1, 3.0]), min_sep=np.radians(30))
    assert out[0] == 0.0 and out[3] == pytest.approx(3.0)
    gaps = np.diff(np.sort(out[:3]))
    assert (gaps >= np.radians(30) - 1e-9).all()
    assert spread_angles(np.array([1.0])).tolist() == [1.0]

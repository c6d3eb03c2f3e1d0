"""The Explore map and the trajectory read at a glance: whole-word cluster names (on the real SmolLM2
vocabulary), byte and special tokens hidden from the map's neighbours, ``prompt·vN`` labels, virtual tokens
drawn above the cluster names, isolation labels that never collide, one norm unit, the trajectory on the map's
own projection with its step marked on the metric plots, and distance axes from zero."""

from __future__ import annotations

import html
import itertools
import re
from types import SimpleNamespace

import numpy as np
import pytest

from analyzer.types import SoftPrompt, Vocabulary

WORDS = ("good", "great", "fine", "happy", "river", "water", "ocean", "stream", "music", "song", "piano", "violin")


@pytest.fixture(scope="module")
def vocab():
    """3 well-separated directions of 40 word tokens each, 12 byte tokens beside the first one, 2 specials."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 12)) * 3
    rows, tokens = [], []
    for c, centre in enumerate(centres):
        for i in range(40):
            rows.append(centre + rng.normal(scale=0.3, size=12))
            tokens.append(f"␣{WORDS[4 * c + i % 4]}" if i < 4 else f"␣{WORDS[4 * c + i % 4]}{i}")
    for b in range(12):                                        # bytes sitting right next to cluster 0
        rows.append(centres[0] + rng.normal(scale=0.05, size=12))
        tokens.append(f"<0x{0x80 + b:02X}>")
    rows += [rng.normal(size=12), rng.normal(size=12)]
    tokens += ["<|endoftext|>", "<|im_start|>"]
    excluded = np.zeros(len(tokens), dtype=bool)
    excluded[-2:] = True
    emb = np.asarray(rows, dtype=np.float32)
    return Vocabulary(name="glance", source="memory", embeddings=emb, tokens=tuple(tokens), raw_tokens=tuple(tokens),
                      excluded=excluded, tied=True, key="glance-test-vocab", architecture=None)


@pytest.fixture(scope="module")
def layout(vocab):
    from analyzer.projection import UmapLayout

    return UmapLayout(n_sample=120, n_epochs=60, cache=False).fit(vocab)


@pytest.fixture(scope="module")
def vmap(layout):
    from analyzer.vocab_map import VocabularyMap

    return VocabularyMap(n_clusters=3, cache=False).fit(layout)


def _prompt(vocab, rows, name="p", shift=0.2):
    return SoftPrompt(name=name, vectors=np.asarray(vocab.embeddings)[rows] + shift, source="mem", kind="TENSOR")


# ------------------------------------------------------------------------------------------ cluster names
FRAGMENTS = {"includ", "produ", "exper", "experi", "comple", "differe", "incre", "contin", "toget", "indic",
             "compon", "veget", "concent", "breat", "membr", "carbohyd", "algorith", "paralle", "conclud", "bacter"}


@pytest.mark.integration
def test_cluster_names_are_whole_words_on_the_real_smollm2_vocabulary(smollm2_available):
    """The labelling path of VocabularyMap (its ``_names``) on SmolLM2's 49k tokens, grouped into 28 regions by
    k-means on a random projection (the UMAP itself is not needed to name groups of tokens): every word of every
    name is a listed English word, none is a subword piece seen in the old names, a byte or a special token."""
    from analyzer.loaders import load_vocabulary
    from analyzer.vocab_map import VocabularyMap, _stems, english_words, hidden_tokens, kmeans

    vocab = load_vocabulary("smollm2-135m")
    words = english_words()
    assert words is not None and {"include", "experience"} <= words and not {"includ", "experi"} & words
    included = np.flatnonzero(~np.asarray(vocab.excluded))
    proj = np.asarray(vocab.embeddings)[included] @ np.random.default_rng(0).normal(size=(vocab.dim, 8))
    assign, centres = kmeans(proj, 28)
    coords = np.full((vocab.size, 8), np.nan, dtype=np.float32)
    coords[included] = proj
    cluster = np.full(vocab.size, -1, dtype=np.int32)
    cluster[included] = assign
    vm = VocabularyMap(n_clusters=28)
    vm.layout_, vm.coords_, vm.cluster_, vm.centers_ = SimpleNamespace(vocab_=vocab), coords, cluster, centres
    names = vm._names()
    hidden_text = {vocab.tokens[i].lstrip("␣").lower() for i in np.flatnonzero(hidden_tokens(vocab))}
    stems = _stems(tuple(vocab.tokens), words)
    for name in names:
        parts = name.split(" · ")
        assert len(parts) == 3, name
        for w in parts:
            assert w.lower() in words and w.lower() not in FRAGMENTS and w.lower() not in hidden_text, name
            assert w.isalpha() and len(w) >= 3, name
    # pieces of longer words (govern of ␣Government) name a cluster only when nothing else does: here, never
    assert sum(w.lower() in stems for n in names for w in n.split(" · ")) == 0


def test_names_skip_pieces_and_bytes_and_fall_back_to_shape_without_a_word_list():
    from analyzer.vocab_map import typical_tokens

    tokens = ["␣includ", "␣include", "␣experi", "␣experience", "␣river", "<0x85>", "␣zzq"]
    rows = np.ones((len(tokens), 4), dtype=np.float32)
    members = np.arange(len(tokens))
    words = frozenset({"include", "experience", "river", "experi"})      # "experi" listed, but a piece here
    hidden = np.array([t.startswith("<0x") for t in tokens])
    assert typical_tokens(tokens, rows, members, top=3, share=1.0, words=words, hidden=hidden) == \
        ["include", "experience", "river"]
    # a cluster with no listed word (CJK, code): the shape rule, never a byte
    only = np.array([5, 6])
    assert typical_tokens(tokens, rows, only, top=2, share=1.0, words=words, hidden=hidden) == ["zzq"]


def test_hidden_tokens_are_bytes_and_specials(vocab):
    from analyzer.vocab_map import hidden_tokens

    mask = hidden_tokens(vocab)
    assert [vocab.tokens[i] for i in np.flatnonzero(mask)] == [t for t in vocab.tokens if t.startswith("<")]
    fake = SimpleNamespace(key=None, excluded=np.zeros(5, dtype=bool),
                           tokens=("<0xE2><0x80>", "\ufffd", "␣<0x85>x", "<0x0A>", "␣<0xC2>"))
    assert hidden_tokens(fake).tolist() == [True, True, False, True, True]


# ------------------------------------------------------------------------------- readable neighbours
def test_readable_neighbours_leave_bytes_out_and_move_the_next_tokens_up(vocab, layout, vmap):
    from analyzer import NeighborIndex
    from analyzer.projection import project_prompts
    from analyzer.ui._explore import readable_neighbours
    from analyzer.vocab_map import hidden_tokens

    p = _prompt(vocab, [0, 1, 45], shift=0.05)
    q = _prompt(vocab, [50, 90], name="q")                        # far from the bytes: nothing to hide
    index = NeighborIndex(metric="cosine", cache=False).fit(vocab)
    pmap = project_prompts(layout, [p, q], index, k=5)
    hidden = hidden_tokens(vocab)
    assert hidden[pmap.prompts[0].neighbor_ids].any()              # bytes crowd the first prompt's neighbours
    out = readable_neighbours(pmap, [p.vectors, q.vectors], index, vocab, 5, hidden, lambda ids: vmap.coords_[ids])
    a = out.prompts[0]
    assert not hidden[a.neighbor_ids].any() and a.neighbor_ids.shape == (3, 5)
    assert (np.diff(a.neighbor_scores, axis=1) <= 1e-6).all()      # still best first
    # the readable tokens that were already there keep their order, the next readable ones follow
    for i in range(3):
        before = [t for t in pmap.prompts[0].neighbor_ids[i] if not hidden[t]]
        assert list(a.neighbor_ids[i][:len(before)]) == before
    emb = np.asarray(vocab.embeddings)
    unit = emb[a.neighbor_ids[1]] / np.linalg.norm(emb[a.neighbor_ids[1]], axis=1, keepdims=True)
    np.testing.assert_allclose(a.neighbor_cosines[1], unit @ (p.vectors[1] / np.linalg.norm(p.vectors[1])),
                               atol=1e-5)
    np.testing.assert_allclose(a.neighbor_coords[1], vmap.coords_[a.neighbor_ids[1]])
    assert out.prompts[1] is pmap.prompts[1]
    with pytest.raises(ValueError, match="one matrix per prompt"):
        readable_neighbours(pmap, [p.vectors], index, vocab, 5, hidden, lambda ids: vmap.coords_[ids])


# ------------------------------------------------------------------------------------------- the map
def test_virtual_tokens_are_drawn_above_the_cluster_names(vocab, layout, vmap):
    import dataclasses

    from analyzer import NeighborIndex
    from analyzer.plotting import plot_prompt_map
    from analyzer.projection import project_prompts

    index = NeighborIndex(metric="cosine", cache=False).fit(vocab)
    pmap = project_prompts(layout, [_prompt(vocab, [0, 50, 90])], index, k=3)

    def with_coords(c):
        return dataclasses.replace(pmap, prompts=(dataclasses.replace(pmap.prompts[0], coords=np.asarray(c)),))

    corner = vmap.bulk_range(2)[0]                      # virtual tokens off to a corner: every name has room
    fig = plot_prompt_map(with_coords(np.repeat(corner[None], 3, axis=0)), vocab, vocab_map=vmap, names=["a"])
    names = [t.name for t in fig.data]
    labels = names.index("cluster labels")
    assert fig.data[labels].mode == "text" and fig.data[labels].hoverinfo == "skip"
    assert len(fig.data[labels].text) == 3
    assert names.index(next(n for n in names if n.startswith("vocabulary"))) < labels
    assert all(labels < names.index(n) for n in ("a", "a neighbours", "a links"))
    assert not any(html.escape(lab) == a.text for lab in vmap.labels_ for a in fig.layout.annotations)
    # a name that would cover a virtual token is left out: put a virtual token on each cluster's centre
    covered = plot_prompt_map(with_coords(vmap.centers_.copy()), vocab, vocab_map=vmap, names=["a"])
    assert "cluster labels" not in [t.name for t in covered.data]


def test_several_prompts_label_each_marker_prompt_vn_and_one_prompt_vn(vocab, layout, vmap):
    from analyzer import NeighborIndex
    from analyzer.plotting import plot_prompt_map
    from analyzer.plotting._map import virtual_labels
    from analyzer.projection import project_prompts

    index = NeighborIndex(metric="cosine", cache=False).fit(vocab)
    ps = [_prompt(vocab, [0], name="a"), _prompt(vocab, [50], name="b"), _prompt(vocab, [90], name="c")]
    names = ["first/a", "second", "third"]                  # one virtual token per cluster: room for every label
    pmap = project_prompts(layout, ps, index, k=3)
    fig = plot_prompt_map(pmap, vocab, vocab_map=vmap, names=names, height=700)
    for name in names:
        t = next(t for t in fig.data if t.name == name)
        assert t.mode == "markers+text" and list(t.text) == [f"{name}·v0"]
        assert "<b>" + html.escape(name) + "·v0</b>" in t.hovertext[0]
    # labels that would overlap: the first on the right, the next on the left; with five prompts on one point the
    # four sides are taken, so the fifth is left out (its hover still names it)
    twice = project_prompts(layout, [ps[0], ps[0]], index, k=3)
    texts, sides, boxes = virtual_labels(twice, ["x", "y"], (0.05, 0.1))
    assert texts == [["x·v0"], ["y·v0"]] and sides == [["middle right"], ["middle left"]] and len(boxes) == 2
    five = project_prompts(layout, [ps[0]] * 5, index, k=3)
    texts, sides, _ = virtual_labels(five, list("abcde"), (0.05, 0.1))
    assert texts == [["a·v0"], ["b·v0"], ["c·v0"], ["d·v0"], [""]]
    assert [s[0] for s in sides[:4]] == ["middle right", "middle left", "top center", "bottom center"]
    for (x, y, w, h), (x2, y2, w2, h2) in itertools.combinations(_, 2):      # the four placed never overlap
        assert abs(x - x2) >= w + w2 - 1e-9 or abs(y - y2) >= h + h2 - 1e-9
    one = plot_prompt_map(project_prompts(layout, ps[:1] * 1, index, k=3), vocab, vocab_map=vmap, names=["a"])
    assert list(next(t for t in one.data if t.name == "a").text) == ["v0"]


def test_marker_labels_take_a_free_side_inside_the_view():
    """A label next to the view's right edge goes left instead of being clipped; one whose right side holds another
    marker goes to a free side; with no free side it is dropped, or kept on the right when every one must stay."""
    from analyzer.plotting._map_layers import marker_boxes, place_marker_labels

    units = (6.5, 16.0)                                         # one data unit per pixel
    extent = ((0.0, 400.0), (0.0, 300.0))
    pts = np.array([[390.0, 150.0], [100.0, 150.0], [125.0, 150.0]])
    sides, boxes = place_marker_labels(pts, ["edge·v0", "v1", "v2"], units, extent=extent,
                                       taken=marker_boxes(pts, units))
    assert sides == ["middle left", "middle left", "middle right"]
    assert all(extent[0][0] <= x - w and x + w <= extent[0][1] for x, _, w, _ in boxes)
    crowd = np.array([[200.0, 150.0]] * 5)
    assert place_marker_labels(crowd, ["a"] * 5, units, taken=marker_boxes(crowd, units))[0][4] is None
    assert place_marker_labels(crowd, ["a"] * 5, units, taken=marker_boxes(crowd, units),
                               keep_all=True)[0][4] == "middle right"


def _overlaps(a, b) -> bool:
    return abs(a[0] - b[0]) < a[2] + b[2] - 1e-9 and abs(a[1] - b[1]) < a[3] + b[3] - 1e-9


@pytest.mark.parametrize("isolate", [None, (0, 1)])
def test_cluster_names_keep_clear_of_every_label(vocab, layout, vmap, isolate):
    """No cluster name drawn overlaps a virtual token's label, the search star's label or, in the isolated view,
    the isolated token's name, its neighbours or their labels (boxes as the map places them)."""
    import dataclasses

    from analyzer import NeighborIndex
    from analyzer.plotting import plot_prompt_map
    from analyzer.plotting._map import isolation_boxes, search_boxes, virtual_labels
    from analyzer.plotting._map_layers import text_units
    from analyzer.projection import project_prompts

    index = NeighborIndex(metric="cosine", cache=False).fit(vocab)
    pmap = project_prompts(layout, [_prompt(vocab, [0, 45, 50, 90, 95], name="a", shift=0.05)], index, k=4,
                           highlight=[2])
    fig = plot_prompt_map(pmap, vocab, vocab_map=vmap, names=["a"], isolate=isolate, chosen=2)
    x0, x1 = fig.layout.xaxis.range
    y0, y1 = fig.layout.yaxis.range
    units = text_units(((x0, x1), (y0, y1)), 600)
    boxes = isolation_boxes(pmap, vocab, isolate, ["a"], units) if isolate else virtual_labels(pmap, ["a"], units)[2]
    boxes = boxes + search_boxes(pmap, vocab, 2, units)
    assert boxes
    names = next((t for t in fig.data if t.name == "cluster labels"), None)
    for x, y, t in zip(*(([], [], []) if names is None else (names.x, names.y, names.text))):
        box = (x, y, len(html.unescape(t)) * units[0] / 2, units[1] / 2)
        assert not any(_overlaps(box, b) for b in boxes), (t, box)


def test_isolation_labels_carry_the_cosine_and_never_collide():
    from analyzer.plotting._map import LABEL_CHAR_PX, LABEL_LINE_PX, place_isolation_labels

    units = (6.5, 16.0)                         # one data unit per pixel
    v = np.array([0.0, 0.0])
    nb = np.array([[30.0, 2.0], [32.0, -4.0], [28.0, 6.0], [-20.0, 1.0], [0.0, 25.0], [3.0, 24.0], [31.0, 0.0]])
    texts = [f"␣token{r}  0.{r}1" for r in range(len(nb))]
    offsets = place_isolation_labels(v, nb, texts, units, own="some-prompt·v3")
    boxes = [((q[0] + ax), (-q[1] + ay), len(t) * LABEL_CHAR_PX / 2 + 4, LABEL_LINE_PX / 2)
             for q, (ax, ay), t in zip(nb, offsets, texts)]
    own = (14 + len("some-prompt·v3") * 7.8 / 2, 0.0, len("some-prompt·v3") * 7.8 / 2, 9.0)
    for n, (x, y, w, h) in enumerate(boxes):
        for x2, y2, w2, h2 in boxes[n + 1:] + [own]:
            assert abs(x - x2) >= w + w2 or abs(y - y2) >= h + h2, (n, boxes)


def test_one_norm_unit_in_the_hover_and_the_table(vocab, layout, vmap):
    from analyzer import NeighborIndex
    from analyzer.plotting import plot_prompt_map
    from analyzer.plotting._map import NORM_UNIT
    from analyzer.projection import project_prompts
    from analyzer.ui._explore import neighbour_rows

    index = NeighborIndex(metric="cosine", cache=False).fit(vocab)
    pmap = project_prompts(layout, [_prompt(vocab, [0, 50])], index, k=3)
    fig = plot_prompt_map(pmap, vocab, vocab_map=vmap, names=["a"], median_norm=index.median_norm_)
    hover = next(t for t in fig.data if t.name == "a").hovertext[1]
    value = float(re.search(r"norm ([0-9.]+) ×median", hover).group(1))
    assert value == pytest.approx(pmap.prompts[0].norms[1] / index.median_norm_, abs=0.006)   # 2 decimals shown
    assert NORM_UNIT == "×median"
    row = neighbour_rows([{"index": 0, "norm": 2.0, "norm_ratio": 1.5, "neighbors": []}])[0]
    assert f"norm {NORM_UNIT}" in row                                   # the table's column: the same unit


# ------------------------------------------------------------------------------------------ trajectory
def test_the_trajectory_is_drawn_on_the_maps_own_projection(vocab, layout, vmap):
    from analyzer.plotting import plot_trajectory
    from analyzer.plotting._trajectory import trajectory_extent
    from analyzer.projection import project_trajectory

    emb = np.asarray(vocab.embeddings)
    snaps = {0: emb[[0, 50]] + 0.1, 5: emb[[20, 70]] + 0.1, 10: emb[[40, 100]] + 0.1}
    steps, coords = project_trajectory(layout, snaps)
    fig = plot_trajectory(layout, snaps, steps=steps, coords=coords, vocab_map=vmap, step=5, name="run")
    names = [t.name for t in fig.data]
    assert fig.data[0].type == "heatmap" and names[0] == names[0].replace("sample", "") and "vocabulary" in names[0]
    assert set(fig.data[names.index("cluster labels")].text) <= {html.escape(lab) for lab in vmap.labels_}
    moving = fig.data[names.index("run")]
    np.testing.assert_allclose(np.c_[moving.x, moving.y], layout.transform(snaps[5]), atol=1e-5)   # the same UMAP
    ext = trajectory_extent(vmap, coords)
    bulk = vmap.bulk_range(2)
    assert ext[0][0] <= bulk[0, 0] and ext[0][1] >= bulk[1, 0] and list(fig.layout.xaxis.range) == ext[0]
    assert fig.layout.yaxis.scaleanchor is None                         # fills the page's width


def test_metric_plots_mark_the_step_and_distance_axes_start_at_zero():
    from analyzer.dynamics import TrainingDynamics
    from analyzer.plotting import plot_training_curves, plot_training_dynamics

    rows = [{"step": s, "loss": 2.0 / (s + 1)} for s in range(0, 30, 3)] + [{"step": 27, "eval_accuracy": 0.7}]
    fig = plot_training_curves(rows, mark_step=12)
    assert fig.layout.yaxis.rangemode == "tozero"
    assert [s.x0 for s in fig.layout.shapes] == [12]
    steps = (0, 10, 20)
    dyn = TrainingDynamics(steps=steps, k=3, init_token_ids=(1, None), init_source="adapter",
                           init_rank=np.array([[1, 0], [4, 0], [9, 0]]), in_top_k=np.array([[1, 0], [0, 0], [0, 0]],
                                                                                          dtype=bool),
                           leave_step=(10, None), returned=(False, False), tightness=np.full((3, 2), 0.3),
                           relatedness=None, drift=np.array([0.0, 1.5, 2.5]))
    fig = plot_training_dynamics(dyn, mark_step=10)
    assert [s.x0 for s in fig.layout.shapes] == [10, 10, 10]           # one line per panel
    drift_axis = next(t for t in fig.data if t.name == "drift from step 0 (L2)").yaxis
    axis = fig.layout[drift_axis.replace("y", "yaxis")]
    assert axis.rangemode == "tozero" and axis.range[0] == 0 and axis.range[1] >= 2.5
    assert not plot_training_dynamics(dyn).layout.shapes


def test_geometry_leaves_out_bars_that_all_read_100():
    from analyzer.plotting import plot_geometry

    def fig_for(pct):
        return plot_geometry({"name": "p", "geometry": {"norm": {"percentile_in_vocab": pct}}})

    top = fig_for([100.0, 99.9, 100.0])
    assert not [t for t in top.data if t.type == "bar"] and "no bars" in top.layout.annotations[0].text
    assert [t.type for t in fig_for([100.0, 40.0, 80.0]).data] == ["bar"]


def test_embedding_atlas_table_holds_the_map_and_the_prompts(vocab, layout, vmap):
    """The export for Embedding Atlas: a row per placed token (specials left out) with the map's coordinates and
    its cluster's name, a row per virtual token at its place on the map with its norm in xmedian and neighbours;
    the Parquet bytes read back to the same table."""
    import io

    import pandas as pd

    from analyzer import NeighborIndex
    from analyzer.atlas import ATLAS_COMMAND, atlas_parquet, atlas_table
    from analyzer.projection import project_prompts

    index = NeighborIndex(metric="cosine", cache=False).fit(vocab)
    pmap = project_prompts(layout, [_prompt(vocab, [0, 50, 90], name="p")], index, k=3)
    t = atlas_table(vmap, pmap, ["shown"], median_norm=2.0)
    words = t[t["kind"] == "vocabulary"]
    assert len(words) == vocab.size - 2 and not {"<|endoftext|>", "<|im_start|>"} & set(words["token"])
    i = int(words["id"].iloc[5])
    assert words["token"].iloc[5] == vocab.tokens[i]
    assert np.allclose(words[["x", "y"]].iloc[5], vmap.coords_[i, :2])
    assert words["cluster"].iloc[5] == vmap.labels_[vmap.cluster_[i]]
    v = t[t["kind"] == "virtual token"]
    assert list(v["token"]) == ["shown·v0", "shown·v1", "shown·v2"] and list(v["position"]) == [0, 1, 2]
    assert np.allclose(v[["x", "y"]], pmap.prompts[0].coords[:, :2])
    assert np.allclose(v["norm_x_median"], pmap.prompts[0].norms / 2.0)
    assert v["neighbours"].iloc[0].split(", ")[0] == vocab.tokens[int(pmap.prompts[0].neighbor_ids[0, 0])]
    back = pd.read_parquet(io.BytesIO(atlas_parquet(vmap, pmap, ["shown"], median_norm=2.0)))
    pd.testing.assert_frame_equal(back, t)
    assert "{file}" in ATLAS_COMMAND and "--x x --y y --text token" in ATLAS_COMMAND

"""Explore: the UMAP map of the selected prompts, and beside it the neighbour table, tightness against null
baselines, task-relatedness, geometry/drift and (on request) faithfulness."""

from __future__ import annotations

import streamlit as st

from . import resources
from ._common import Selection, guard, module_available, not_available, prompts_of, wait_for

MAP_HEIGHT = 640


def explore(sel: Selection) -> None:
    if not sel.sources:
        st.info("Choose one or more prompts in the sidebar (or train one in the Train section).")
        return
    left, right = st.columns([3, 2], gap="medium")
    with left:
        prompt_map(sel)
    with right:
        tabs = st.tabs(["Neighbours", "Tightness", "Relatedness", "Geometry", "Faithfulness"])
        with tabs[0], guard("the neighbour table"):
            neighbour_table(sel)
        with tabs[1], guard("tightness"):
            tightness(sel)
        with tabs[2], guard("task-relatedness"):
            relatedness(sel)
        with tabs[3], guard("geometry"):
            geometry(sel)
        with tabs[4], guard("faithfulness"):
            faithfulness(sel)


def prompt_map(sel: Selection) -> None:
    from ..plotting import plot_prompt_map
    from ..projection import search_tokens

    c1, c2, c3, c4 = st.columns([0.95, 1.15, 0.9, 1.6], vertical_alignment="bottom")
    view = c1.segmented_control("View", ["2-D", "3-D"], default="2-D", key="view", required=True)
    background = c2.toggle("Background", value=True, key="show_background",
                           help="The vocabulary sample behind the prompts; off isolates the prompts and their "
                                "neighbours.")
    labels = c3.toggle("Labels", value=False, key="label_neighbours", help="Write each neighbour's token on the map.")
    query = c4.text_input("Find a token", key="find", placeholder="e.g. good", bind="query-params",
                          help="Highlight vocabulary tokens on the map (exact match first, then substrings).")
    with guard("the map"):
        vocab = resources.vocabulary(sel.model)
        highlight = tuple(search_tokens(vocab, query)) if query.strip() else ()
        if query.strip() and not highlight:
            st.caption(f"No token matches {query!r}.")
        n_components = 3 if view == "3-D" else 2
        pmap = resources.prompt_map(sel.model, sel.metric, sel.k, n_components, sel.sources, highlight)
        fig = plot_prompt_map(pmap, vocab, show_background=background, label_neighbors=labels, height=MAP_HEIGHT)
        st.plotly_chart(fig, key="umap", config={"displaylogo": False, "scrollZoom": True})
        lay = resources.layout(sel.model, n_components)
        st.caption(f"UMAP ({n_components}-D, cosine) of {lay.embedding_.shape[0]:,} sampled tokens of "
                   f"{vocab.name} ({vocab.size:,} × {vocab.dim}); virtual tokens and neighbours placed with "
                   f"transform. Hover a point for its token and scores; click legend items to hide them.")


def neighbour_table(sel: Selection) -> None:
    rep = resources.report(sel.model, sel.metric, sel.k, sel.sources, sel.task)
    metric = "CSLS" if sel.metric == "csls" else "cosine"
    st.caption(f"Top-{sel.k} vocabulary neighbours of each virtual token ({metric}). "
               f"×median: the token's norm over the vocabulary's median norm.")
    rows = []
    several = len(rep.prompts) > 1
    for p in rep.prompts:
        for t in p["tokens"]:
            row = {"prompt": p["name"]} if several else {}
            row |= {"v": f"v{t['index']}",
                   "×median": f"{t['norm_ratio']:.2f}" if t.get("norm_ratio") is not None else ""}
            for r, n in enumerate(t["neighbors"], 1):
                row[f"#{r}"] = f"{n['token']} ({n['score']:.2f})"
            rows.append(row)
    st.table(rows, hide_index=True)


def tightness(sel: Selection) -> None:
    if not module_available("analyzer.metrics"):
        not_available("Tightness against null baselines", "analyzer.metrics")
        return
    from . import _metrics_view

    _metrics_view.tightness(sel)


def geometry(sel: Selection) -> None:
    from ..plotting import plot_norms

    fig = plot_norms(prompts_of(sel), resources.neighbor_index(sel.model, "cosine"), height=300,
                     title="Virtual-token norms")
    st.plotly_chart(fig, key="norms", config={"displaylogo": False})
    if not module_available("analyzer.metrics"):
        not_available("Geometry and drift measures", "analyzer.metrics")
        return
    from . import _metrics_view

    _metrics_view.geometry(sel)


def relatedness(sel: Selection) -> None:
    from . import _metrics_view

    _metrics_view.relatedness(sel)


def faithfulness(sel: Selection) -> None:
    from ..plotting import plot_logit_lens, plot_projection_gap

    items = [(path, stamp, p) for path, stamp in sel.sources for p in resources.prompts(path)]
    names = [p.name for *_, p in items]
    c1, c2 = st.columns([2, 1])
    name = c1.selectbox("Prompt", names, key="faith_prompt")
    limit = c2.select_slider("Test examples", [50, 100, 200, 500], value=100, key="faith_limit")
    path, stamp, prompt = items[names.index(name)]
    st.caption("Runs the frozen model: accuracy of the soft prompt vs its nearest-token projection, its init and "
               f"no prompt (task: {sel.task}), the logit lens and the model's own description.")
    args = (sel.model, path, stamp, prompt.name, sel.task, int(limit))
    fut = resources.known_future("faithfulness", *args)
    if fut is None:
        if not st.button("Compute faithfulness", key="faith_run", type="primary"):
            return
        with st.spinner("Loading the frozen model (once per server)…"):
            fut = resources.faithfulness(*args)
    if not wait_for(fut, "Running the frozen model (a minute or two on 2 cores)"):
        return
    res = fut.result()
    gap = res.get("projection_gap")
    if gap:
        st.plotly_chart(plot_projection_gap(gap, height=280, title="Accuracy by condition (95% CI)"),
                        key="faith_gap", config={"displaylogo": False})
        g = gap.get("gap") or {}
        if g:
            st.markdown(f"**soft − projection** = {g.get('diff', float('nan')):+.3f} "
                        f"(95% CI {g.get('ci_low', float('nan')):+.3f} … {g.get('ci_high', float('nan')):+.3f}), "
                        f"McNemar p = {(g.get('mcnemar') or {}).get('p_value', float('nan')):.3g}, "
                        f"agreement {g.get('agreement', float('nan')):.0%}")
    proj = res.get("projection") or {}
    if proj:
        st.markdown("**Hard projection:** " + " ".join(f"`{t}`" for t in proj.get("tokens", [])))
    f1 = res.get("prompt_f1") or {}
    if f1:
        st.table([{"reference": k, **{m: f"{v:.2f}" for m, v in d.items() if isinstance(v, float)}}
                  for k, d in f1.items()], hide_index=True)
    if res.get("logit_lens"):
        st.plotly_chart(plot_logit_lens(res["logit_lens"], height=360, title="Logit lens"), key="faith_lens",
                        config={"displaylogo": False})
    rows = []
    for r in res.get("self_description") or []:
        row = {"question": r.get("question")}
        for cond in ("soft", "none", "init", "projection"):
            if isinstance(r.get(cond), dict):
                row[cond] = r[cond].get("text")
        rows.append(row)
    if rows:
        st.markdown("**Self-description** (greedy continuation after the prompt)")
        st.table(rows, hide_index=True)

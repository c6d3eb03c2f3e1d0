"""Explore: the UMAP map of the selected prompts over the whole vocabulary (with cluster labels), an
inspector beside it (search, the isolated virtual token's distances), and below, at full width, the neighbour
tables (one tab per prompt), tightness against null baselines, task-relatedness, geometry/drift and, on
request, the readings that run the frozen model: evaluation, faithfulness, importance (which then sizes the
prompt's virtual tokens on the map) and the model's description (:mod:`analyzer.ui._model_readings`).

Linked views, as in TensorBoard's Embedding Projector: clicking a virtual token (or one of its neighbours) on
the map, or picking its row in the neighbour table, *isolates* it -- its k neighbours are linked to it with
their true cosine, the rest is dimmed, its table row is highlighted and the inspector lists the distances; a
second click, a double click on empty space or the Reset button leaves isolation.  The state lives in
``st.session_state["isolate"] = (prompt name, position)``; the logic is in :mod:`analyzer.ui._explore`."""

from __future__ import annotations

import functools

import streamlit as st

from . import _decode_view, _explore, _model_readings, resources
from ._common import Selection, guard, module_available, named_prompts, not_available, wait_for
from ._markdown import code_span, escape_markdown

MAP_HEIGHT = 700
TABS = ["Neighbours", "Tightness", "Relatedness", "Geometry", "Evaluate", "Faithfulness", "Importance", "Describe",
        "Decode"]
TABLE_MAX_HEIGHT = 560


def explore(sel: Selection) -> None:
    if not sel.sources:
        st.info("Choose one or more prompts in the sidebar (or train one in the Train section).")
        return
    items = named_prompts(sel)
    names = [n for n, *_ in items]
    st.session_state["_map_names"] = names
    found, chosen = _search_state(sel)
    with guard("the verdict"):
        verdicts(sel, items)
    left, right = st.columns([5, 2], gap="medium")
    with left:
        pmap = prompt_map(sel, items, found, chosen)
    with right, guard("the inspector"):
        inspector(sel, items, pmap, found, chosen)
    tabs = st.tabs(TABS)
    with tabs[0], guard("the neighbour table"):
        neighbour_table(sel, items)
    with tabs[1], guard("tightness"):
        tightness(sel)
    with tabs[2], guard("task-relatedness"):
        relatedness(sel)
    with tabs[3], guard("geometry"):
        geometry(sel)
    with tabs[4], guard("the evaluation"):
        _model_readings.evaluate(sel)
    with tabs[5], guard("faithfulness"):
        faithfulness(sel)
    with tabs[6], guard("importance"):
        _model_readings.importance(sel)
    with tabs[7], guard("the description"):
        _model_readings.describe(sel)
    with tabs[8], guard("the decode"):
        _decode_view.decode_tab(sel)


# ---------------------------------------------------------------------------------------------- verdict
def verdicts(sel: Selection, items) -> None:
    """One plain-language verdict per prompt, from its table of tests (the same analysis as the metric tabs:
    :func:`analyzer.ui._verdict.prompt_verdict` words it; nothing is tested here)."""
    from ..analysis import analysis_settings
    from ..exceptions import AnalyzerError
    from ._markdown import escape_markdown
    from ._metrics_view import analysis_future
    from ._verdict import prompt_verdict, skipped_sections

    with st.container(border=True, key="verdicts"):
        readings = set()
        for name, path, stamp, p in items:
            fut, full, _ = analysis_future(sel, path, stamp, p)
            if not wait_for(fut, f"Reading the table of tests of {escape_markdown(name)}", quiet=True):
                continue
            try:
                a = fut.result().prompts[0]
            except AnalyzerError as e:
                st.caption(f"{escape_markdown(name)}: no verdict ({escape_markdown(e)})")
                continue
            v = prompt_verdict(f"**{escape_markdown(name)}**", a.tests, skipped_sections(a, omit=("faithfulness",)))
            st.markdown(v.text, help=v.note or None)
            readings.add(full)
        if readings:
            st.caption(" ".join(analysis_settings(full=f).describe() for f in sorted(readings)) + " Each claim's "
                       "row, and the reference rows, are in the Tightness, Relatedness and Geometry tabs below.")


# -------------------------------------------------------------------------------------------- isolation
def _isolated(items) -> tuple[int, int] | None:
    return _explore.isolation_index([n for n, *_ in items], st.session_state.get("isolate"),
                                    [p.num_virtual_tokens for *_, p in items])


def _on_map_select() -> None:
    event = st.session_state.get("umap")
    points = list(((event or {}).get("selection") or {}).get("points") or [])
    st.session_state["isolate"] = _explore.after_click(st.session_state.get("isolate"), points,
                                                       st.session_state.get("_map_names", []))


def _on_row_pick(name: str, key: str) -> None:
    event = st.session_state.get(key)
    rows = list(((event or {}).get("selection") or {}).get("rows") or [])
    st.session_state["isolate"] = _explore.after_row_pick(st.session_state.get("isolate"), name, rows)


def _reset() -> None:
    st.session_state["isolate"] = None


def _search_state(sel: Selection) -> tuple[tuple, int | None]:
    """The token ids matching the search box (read before the box is drawn, so the map shows them in the same
    run) and the chosen one: the picked row of the result list, else the first result."""
    query = str(st.session_state.get("find", st.query_params.get("find", "")) or "").strip()
    if not query:
        return (), None
    found = resources.search(sel.model, query)
    if not found:
        return (), None
    event = st.session_state.get("find_results")
    rows = list(((event or {}).get("selection") or {}).get("rows") or [])
    return found, found[rows[0]] if rows and rows[0] < len(found) else found[0]


# -------------------------------------------------------------------------------------------------- map
BACKGROUNDS = {"density": "Density", "points": "Points", "off": "Off"}


def prompt_map(sel: Selection, items, found: tuple = (), chosen: int | None = None):
    from ..plotting import plot_prompt_map

    c1, c2, c3, c4, c5 = st.columns([0.9, 1.7, 0.9, 1.3, 1.1], vertical_alignment="bottom")
    view = c1.segmented_control("View", ["2-D", "3-D"], default="2-D", key="view", required=True)
    background = c2.segmented_control(
        "Vocabulary", list(BACKGROUNDS), format_func=BACKGROUNDS.get, default="density", key="background",
        required=True, help="Every token of the vocabulary behind the prompts: a density layer (light, works "
                            "everywhere) or one WebGL point per token; off shows only the prompts. The background "
                            "never takes the hover or a click.")
    labels = c3.toggle("Labels", value=False, key="label_neighbours",
                       help="Write each virtual token's nearest neighbour on the map (labels that would overlap "
                            "are left out). An isolated token's neighbours are always labelled.")
    clusters = c4.toggle("Cluster labels", value=True, key="cluster_labels",
                         help="Regions of the map (k-means on the layout) named by three of their most typical "
                              "tokens that are whole English words; computed once per model and cached on disk.")
    readable = c5.toggle("Hide bytes", value=True, key="hide_bytes",
                         help="Leave byte tokens (such as `<0x85>`) and special tokens out of the neighbours the map "
                              "draws, its hover and the side list: the next readable tokens move up. The tables "
                              "and measures below keep every token.")
    with guard("the map"):
        vocab = resources.vocabulary(sel.model)
        n_components = 3 if view == "3-D" else 2
        pmap = resources.prompt_map(sel.model, sel.metric, sel.k, n_components, sel.sources, tuple(found))
        vmap = resources.vocab_map(sel.model, n_components) if background != "off" else None
        index = resources.neighbor_index(sel.model, sel.metric)
        if readable:
            from ..vocab_map import hidden_tokens

            place = (lambda ids: vmap.coords_[ids]) if vmap is not None else \
                resources.layout(sel.model, n_components).token_coords
            pmap = _explore.readable_neighbours(pmap, [p.vectors for *_, p in items], index, vocab, sel.k,
                                                hidden_tokens(vocab), place)
        iso = _isolated(items)
        imp = _importance_readings(sel, items)
        fig = plot_prompt_map(pmap, vocab, vocab_map=vmap, show_background=background != "off",
                              background_style=background, cluster_labels=clusters, label_neighbors=labels,
                              isolate=iso, names=[n for n, *_ in items], chosen=chosen, height=MAP_HEIGHT,
                              importance=imp if any(r is not None for r in imp) else None,
                              median_norm=getattr(index, "median_norm_", None))
        st.plotly_chart(fig, key="umap", on_select=_on_map_select, selection_mode="points",
                        config={"displaylogo": False, "scrollZoom": True})
        lay = resources.layout(sel.model, n_components)
        what = (f"the whole vocabulary of {vocab.name} ({vocab.size:,} tokens × {vocab.dim}) placed on a UMAP "
                f"({n_components}-D, cosine) fitted on {lay.embedding_.shape[0]:,} sampled tokens"
                if vmap is not None else f"a UMAP ({n_components}-D, cosine) of {vocab.name}")
        st.caption(f"Background: {what}. Virtual tokens (diamonds) and their neighbours (circles) are placed the "
                   "same way. Hover a point for its scores (norms in ×median: over the vocabulary's median token "
                   "norm, as in the neighbour table), click a virtual token to isolate it; distances on the map "
                   "are only a picture -- the number beside each linked token is its true cosine."
                   + (" Byte and special tokens are left out of the map's neighbours." if readable else "")
                   + _importance_caption(items, imp))
        return pmap
    return None


def _importance_readings(sel: Selection, items) -> list:
    """Per prompt, its latest importance reading on the sidebar's task (computed in the Importance tab), or None."""
    if not sel.task:
        return [None] * len(items)
    return [resources.latest_result("importance", sel.model, path, stamp, p.name, sel.task)
            for _, path, stamp, p in items]


def _importance_caption(items, imp) -> str:
    sized = [n for (n, *_), r in zip(items, imp) if r is not None]
    if not sized:
        return ""
    return (f" Sized by importance: {', '.join(sized)} (a virtual token's marker area grows with its removal ΔNLL, "
            "clipped at 0; outlined: its removal matters more than chance; see the Importance tab).")


# ------------------------------------------------------------------------------------------- inspector
def inspector(sel: Selection, items, pmap, found: tuple = (), chosen: int | None = None) -> None:
    """The side panel: the isolated token's distances, then search."""
    vocab = resources.vocabulary(sel.model)
    iso = _isolated(items)
    if iso is not None and pmap is not None:
        j, i = iso
        st.markdown(f"**{escape_markdown(items[j][0])} · v{i}**")
        st.caption(f"Its {sel.k} nearest vocabulary tokens ({'CSLS' if sel.metric == 'csls' else 'cosine'} "
                   "ranking), with the true cosine.")
        st.container(key="iso_distances").dataframe(
                     _explore.distance_rows(pmap.prompts[j], vocab, i, sel.metric), hide_index=True, width="stretch",
                     column_config={"#": st.column_config.NumberColumn(width="small"),
                                    "id": st.column_config.NumberColumn(width="small", format="%d")})
        st.button("Reset", key="iso_reset", on_click=_reset, icon=":material/restart_alt:",
                  help="Leave isolation (or click the isolated token again).")
    else:
        st.caption("Click a virtual token on the map, or a row of the neighbour table, to isolate it with its "
                   "neighbours and their distances.")
    st.divider()
    query = st.text_input("Find a token", key="find", placeholder="e.g. good", bind="query-params",
                          help="Tokens matching the text (exact first, then any case, then substrings; a leading "
                               "space may be typed or written ␣). Pick one to see which virtual tokens are "
                               "nearest to it.")
    if not query.strip():
        return
    if not found:
        st.caption(f"No token matches {escape_markdown(repr(query))}.")
        return
    named = [(n, p) for n, _, _, p in items]
    rows = _explore.search_rows(vocab, list(found), named, RESULT_CHARS)
    st.caption(f"{len(rows)} matching token{'s' if len(rows) > 1 else ''} (starred on the map); pick one.")
    st.dataframe(rows, hide_index=True, width="stretch", key="find_results", on_select="rerun",
                 selection_mode="single-row", row_height=(row_h := _row_height(
                     [r["nearest virtual token"] for r in rows], RESULT_CHARS)),
                 height=min(row_h * len(rows) + 38, 250),
                 column_order=["token", "nearest virtual token", "cosine"],     # its id: once picked
                 column_config={"token": st.column_config.TextColumn(width=62),
                                "nearest virtual token": st.column_config.TextColumn(
                                    "nearest", width=RESULT_WIDTH, help="The virtual token of the selected prompts "
                                                                        "nearest to this token (cosine)."),
                                "cosine": st.column_config.NumberColumn(width=48)})
    token = chosen
    nb = {n: pp.neighbor_ids for n, pp in zip([n for n, *_ in items], pmap.prompts)} if pmap is not None else None
    near = _explore.nearest_virtual(vocab, named, token, neighbor_ids=nb)
    st.markdown(f"**Virtual tokens nearest to** {code_span(vocab.tokens[token])} (id {token})")
    missing = f"not in top-{sel.k}" if nb is not None else "?"        # a blank rank read as a missing value
    shown = [{"virtual token": _explore.virtual_label(r["prompt"], r["v"], LABEL_CHARS), "cosine": r["cosine"],
              "rank": r["rank"] or missing} for r in near]
    row_h = _row_height([r["virtual token"] for r in shown], LABEL_CHARS)
    st.container(key="find_nearest").dataframe(
                 shown, hide_index=True, width="stretch", row_height=row_h, height=row_h * len(shown) + 38,
                 column_config={"virtual token": st.column_config.TextColumn(width=LABEL_WIDTH),
                                "cosine": st.column_config.NumberColumn(width=48),
                                "rank": st.column_config.TextColumn(width=84,
                     help="Where the token stands among that virtual token's neighbours (#1: its nearest; "
                          f"not in top-{sel.k}: outside the k = {sel.k} the sidebar asks for).")})


#: the inspector's tables (the panel is ~310 px): the virtual-token column of "Virtual tokens nearest to" and the
#: "nearest" column of the search results, in px and in the characters of the grid's font that fit on one line
LABEL_WIDTH, LABEL_CHARS = 176, 23
RESULT_WIDTH, RESULT_CHARS = 150, 19


def _row_height(texts, chars: int) -> int | None:
    """The row height of an inspector table whose cells hold ``texts``: the default when every one fits on one
    line, else tall enough for the most lines one wraps onto (the grid wraps a cell's text only in rows taller
    than 4rem, and otherwise cuts it with "…")."""
    lines = max((_explore.wrapped_lines(t, chars) for t in texts), default=1)
    return 35 if lines <= 1 else max(66, 20 * lines + 10)


# ------------------------------------------------------------------------------------- neighbour table
def neighbour_table(sel: Selection, items) -> None:
    import pandas as pd

    rep = resources.report(sel.model, sel.metric, sel.k, sel.sources, sel.task)
    metric = "CSLS" if sel.metric == "csls" else "cosine"
    from ._glossary import TERMS

    st.caption(f"Top-{sel.k} vocabulary neighbours of each virtual token, with their {metric} score"
               + (f" ({TERMS['CSLS']})" if sel.metric == "csls" else "") +
               ". norm ×median: the token's norm over the vocabulary's median norm. Pick a row to isolate that "
               "virtual token on the map.")
    iso = _isolated(items)
    names = [n for n, *_ in items]
    tabs = st.tabs([escape_markdown(n) for n in names]) if len(names) > 1 else [st.container()]
    for j, (tab, p) in enumerate(zip(tabs, rep.prompts)):
        with tab:
            df = pd.DataFrame(_explore.neighbour_rows(p.tokens))
            row = iso[1] if iso is not None and iso[0] == j else None
            styled = df.style.apply(lambda r: ["background-color: #fff3c4; font-weight: 600" if r.name == row
                                               else "" for _ in r], axis=1) if row is not None else df
            key = f"nb_table_{j}"
            st.dataframe(styled, hide_index=True, width="stretch", key=key,
                         on_select=functools.partial(_on_row_pick, names[j], key), selection_mode="single-row",
                         height=min(35 * (len(df) + 1) + 3, TABLE_MAX_HEIGHT),
                         column_config={"v": st.column_config.TextColumn(width="small", pinned=True),
                                        "norm ×median": st.column_config.NumberColumn(
                                            width="small", format="%.2f",
                                            help="The virtual token's L2 norm over the median norm of the "
                                                 "vocabulary's token embeddings.")})


def tightness(sel: Selection) -> None:
    if not module_available("analyzer.metrics"):
        not_available("Tightness against null baselines", "analyzer.metrics")
        return
    from . import _metrics_view

    _metrics_view.tightness(sel)


def geometry(sel: Selection) -> None:
    from ..plotting import plot_norms

    named = named_prompts(sel)
    fig = plot_norms([p for *_, p in named], resources.neighbor_index(sel.model, "cosine"),
                     names=[n for n, *_ in named], height=300, title="Virtual-token norms")
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

    items = named_prompts(sel)
    names = [n for n, *_ in items]
    c1, c2 = st.columns([2, 1])
    name = c1.selectbox("Prompt", names, key="faith_prompt")
    limit = c2.select_slider("Test examples", [50, 100, 200, 500], value=100, key="faith_limit")
    _, path, stamp, prompt = items[names.index(name)]
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
    from ..result_groups import Faithfulness

    res = Faithfulness.from_dict(fut.result())
    gap = res.projection_gap
    if gap is not None:
        st.plotly_chart(plot_projection_gap(gap, height=280, title="Accuracy by condition (95% CI)"),
                        key="faith_gap", config={"displaylogo": False})
        g = gap.gap
        if g is not None:
            from ..stats import format_p
            from ._glossary import TERMS

            nan = float("nan")
            st.markdown(f"**soft − projection** = {_or(g.diff, nan):+.3f} "
                        f"(95% CI {_or(g.ci_low, nan):+.3f} … {_or(g.ci_high, nan):+.3f}), "
                        f"McNemar {format_p(g.mcnemar_p)}, agreement {_or(g.agreement, nan):.0%}",
                        help=f"{TERMS['projection gap']} {TERMS['McNemar']}")
    if res.projection_tokens or res.projection_text is not None:
        st.markdown("**Hard projection:** " + " ".join(code_span(t) for t in res.projection_tokens))
    if res.prompt_f1:
        from ._glossary import TERMS

        st.markdown("**Projection vs reference text** (token-overlap F1)", help=TERMS["f1_loose"])
        st.table([{"reference": escape_markdown(k), **{m: f"{v:.2f}" for m, v in d.items()}}
                  for k, d in res.prompt_f1.items()],
                 hide_index=True)
    if res.logit_lens:
        from ._glossary import TERMS

        st.plotly_chart(plot_logit_lens(res.logit_lens, height=360, title="Logit lens"), key="faith_lens",
                        config={"displaylogo": False})
        st.caption(TERMS["logit lens"])
    rows = [{"question": escape_markdown(q.question), **{k: escape_markdown(v) for k, v in q.texts.items()}}
            for q in res.self_description]
    if rows:
        st.markdown("**Self-description** (greedy continuation after the prompt)")
        st.table(rows, hide_index=True)


def _or(x, default):
    return default if x is None else x

"""The metric tabs of Explore: tightness with its null baselines, geometry/drift, task-relatedness."""

from __future__ import annotations

import streamlit as st

from . import resources
from ._common import Selection, module_available, not_available, wait_for


def _choose_prompt(sel: Selection, key: str):
    """A prompt picker; returns ``(path, stamp, prompt)``."""
    from ._common import named_prompts

    items = named_prompts(sel)
    names = [n for n, *_ in items]
    name = st.selectbox("Prompt", names, key=key) if len(names) > 1 else names[0]
    return items[names.index(name)][1:]


def _result(sel: Selection, key: str, kind: str = "metrics") -> dict | None:
    """The ``kind`` (``metrics`` or ``relatedness``) result of the chosen prompt, or None (with a note) while it
    is computed in the background.  Both come from one ``analyzer.analyze`` job: the quick reading first (it
    says what it leaves out), and on request the full analysis -- the CLI's ``analyze``, the same claims."""
    from ..analysis import analysis_settings

    path, stamp, p = _choose_prompt(sel, key)
    full_wanted = st.session_state.get("_full", set())
    fk = (sel.model, sel.metric, sel.k, path, p.name, sel.task)
    full = fk in full_wanted
    fut = resources.prompt_analysis(sel.model, sel.metric, sel.k, path, stamp, p.name, sel.task, full=full)
    if not wait_for(fut, "Computing " + ("tightness, null baselines and geometry" if kind == "metrics"
                                          else "task-relatedness")):
        return None
    d = fut.result().prompts[0]  # an AnalyzerError is shown by the section's guard
    settings = analysis_settings(full=full)
    if not full:
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.caption(settings.describe())
        if c2.button(FULL_LABEL, key=f"{key}_full", help=FULL_HELP):
            st.session_state.setdefault("_full", set()).add(fk)
            st.rerun()
    else:
        st.caption(settings.describe())
    if kind == "metrics":
        return d
    rel = d.get("relatedness") or {}
    if "skipped" in rel:
        st.info(f"Task-relatedness was not computed: {rel['skipped']}.")
        return None
    return {**rel, "tests": d.get("tests") or []}


FULL_LABEL = "Full analysis"
FULL_HELP = ("What softprompt-analyzer analyze computes: adds the MiniLM text space, the vocabulary's own "
             "neighbour graph (hubness) and the CSLS side reading (minutes the first time per model; cached).")


def tests_table(rows: list[dict], key: str) -> None:
    """The prompt's table of tests, compact: measure | value | null | q | verdict (claims first, then the
    labelled references); the same rows as the CLI's ``analyze``."""
    from .._format import compact_rows

    from ._glossary import glossary_lines

    if not rows:
        st.caption("No tests for this prompt.")
        return
    compact = compact_rows(rows)
    st.table(compact, hide_index=True)    # full width; long verdicts wrap instead of being cut
    st.caption(TESTS_HELP)
    with st.popover("What the measures mean", icon=":material/help:"):
        for line in glossary_lines([r["measure"] for r in compact]):
            st.markdown(line)


TESTS_HELP = ("Claims rest on the matched null (meaningless queries matched to each virtual token on how far it is "
              "from the vocabulary, how dense the vocabulary is there and how frequent its nearest token is) or on "
              "the prompt's initialisation; q is Benjamini-Hochberg over the prompt's claims, significant when "
              "q < 0.05. Reference rows (random vectors, vocabulary tokens) show their p and are never claims.")


def tightness(sel: Selection) -> None:
    from ..plotting import plot_tightness

    res = _result(sel, "tight_prompt", "metrics")
    if res is None:
        return
    st.plotly_chart(plot_tightness(res, space="model", height=330, title="Tightness (model space)"),
                    key="tightness_model", config={"displaylogo": False})
    text = (res.get("tightness") or {}).get("text") or {}
    if "omitted" not in text and text.get("value") is not None:
        st.plotly_chart(plot_tightness(res, space="text", height=330, title="Tightness (text space, MiniLM)"),
                        key="tightness_text", config={"displaylogo": False})
    nulls = []
    for name, d in (res.get("null") or {}).items():
        if isinstance(d, dict) and "description" in d:
            nulls.append(f"{d['description']} ({d['n']} queries)" if "n" in d else
                         f"{d['description']} ({d['n_pseudo_prompts']} pseudo-prompts)" if "n_pseudo_prompts" in d
                         else f"{d['description']} (omitted: {d.get('omitted')})")
    st.caption(f"Tightness: how similar each virtual token's top-{res['k']} neighbours are to each other. "
               f"Null baselines: {'; '.join(nulls)}.")
    with st.expander("What is more than chance", expanded=True):
        tests_table(res.get("tests") or [], "tests_all")
    hubs = (res.get("hubness") or {}).get("top_hubs") or []
    if hubs:
        st.markdown("**Hub tokens** (neighbour of several virtual tokens)",
                    help="A hub is a vocabulary token that is near many vectors at once; the expected count is "
                         "how often random vectors of the same number would have it as a neighbour.")
        st.table([{"token": h["token"], "count": h["count"], "positions": ", ".join(f"v{i}" for i in h["positions"]),
                   "expected (random vectors)": f"{(h.get('expected_count') or {}).get('random_vectors') or 0:.2f}"}
                  for h in hubs], hide_index=True)


def geometry(sel: Selection) -> None:
    from ..plotting import plot_geometry

    res = _result(sel, "geo_prompt", "metrics")
    if res is None:
        return
    st.plotly_chart(plot_geometry(res, height=320, title="Geometry and drift"), key="geometry",
                    config={"displaylogo": False})
    geo = res.get("geometry") or {}
    norm = geo.get("norm") or {}
    if norm.get("mean_percentile") is not None:
        st.markdown(f"Mean norm percentile in the vocabulary: **{norm['mean_percentile']:.0f}**.")
    drift = geo.get("drift") or {}
    if "omitted" in drift:
        st.caption(f"Drift from the initialisation: {drift['omitted']}")
    else:
        c = (drift.get("cosine") or {}).get("mean")
        r = (drift.get("relative_l2") or {}).get("mean")
        if c is not None:
            st.markdown(f"Drift from the initialisation: mean cosine **{c:.3f}**" +
                        (f", relative L2 **{r:.3f}**" if r is not None else "") + ".")
    pers = (res.get("persistence") or {}).get("init") or {}
    if "rate" in pers:
        st.markdown(f"Init token still among the top-{res['k']} neighbours: **{pers['rate']:.0%}** of positions.")


def relatedness(sel: Selection) -> None:
    from ..plotting import plot_relatedness

    if not module_available("analyzer.relatedness"):
        not_available("The task-relatedness report", "analyzer.relatedness")
        return
    if not sel.task:
        st.info("Choose a task in the sidebar to judge how task-related the neighbours are.")
        return
    res = _result(sel, "rel_prompt", "relatedness")
    if res is None:
        return
    st.plotly_chart(plot_relatedness(res, space="model", height=330, title=f"Related to '{res.get('task')}' "
                                     "(model space)"), key="rel_model", config={"displaylogo": False})
    text = res.get("text_space") or {}
    if "omitted" not in text and text.get("share"):
        st.plotly_chart(plot_relatedness(res, space="text", height=330, title="Related (text space, MiniLM)"),
                        key="rel_text", config={"displaylogo": False})
    definition = (res.get("model_space") or {}).get("definition")
    if definition:
        st.caption(definition[0].upper() + definition[1:] + ".")
    with st.expander("What is more than chance", expanded=True):
        from .._format import description_lines

        for line in description_lines(res.get("summary") or []):
            st.markdown(line)
        tests_table([r for r in res.get("tests") or [] if "task" in r["measure"]], "tests_related")
    top = (res.get("model_space") or {}).get("top_related") or []
    if top:
        st.markdown("**Most related neighbours**")
        st.table([{"token": t.get("token"), "count": t.get("count"),
                   "positions": ", ".join(f"v{i}" for i in t.get("positions", [])),
                   "matches": f"{(t.get('match') or {}).get('word', '')} ({(t.get('match') or {}).get('kind', '')})"}
                  for t in top[:12]], hide_index=True)
    kws = res.get("keywords") or []
    if kws:
        st.caption("Task keywords: " + ", ".join(k.get("word", "") for k in kws[:25]))

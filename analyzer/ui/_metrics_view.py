"""The metric tabs of Explore: tightness with its null baselines, geometry/drift, task-relatedness."""

from __future__ import annotations

import streamlit as st

from . import resources
from ._common import Selection, module_available, not_available


def _choose_prompt(sel: Selection, key: str):
    """A prompt picker; returns ``(path, stamp, prompt)``."""
    items = [(path, stamp, p) for path, stamp in sel.sources for p in resources.prompts(path)]
    names = [p.name for *_, p in items]
    name = st.selectbox("Prompt", names, key=key) if len(names) > 1 else names[0]
    return items[names.index(name)]


def _full_key(sel: Selection, path: str, name: str) -> tuple:
    return ("full", sel.model, sel.metric, sel.k, path, name, sel.task)


def _result(sel: Selection, key: str) -> dict | None:
    """The metrics of the chosen prompt, or None (with a note) while they are computed in the background."""
    path, stamp, p = _choose_prompt(sel, key)
    full_wanted = st.session_state.get("_full_metrics", set())
    fk = _full_key(sel, path, p.name)
    fut = resources.prompt_metrics(sel.model, sel.metric, sel.k, path, stamp, p.name, sel.task,
                                   full=fk in full_wanted)
    if not fut.done():
        st.info("Computing tightness, null baselines and geometry in the background…", icon="⏳")
        st.fragment(run_every=1.0)(_rerun_when_done)(fut)
        return None
    res = fut.result()  # an AnalyzerError is shown by the section's guard
    if fk not in full_wanted and st.button("Full analysis: text-space tightness, hubness, CSLS", key=f"{key}_full",
                                           help="Embeds neighbour tokens with MiniLM and builds the vocabulary's "
                                                "own neighbour graph (minutes the first time per model; cached)."):
        st.session_state.setdefault("_full_metrics", set()).add(fk)
        st.rerun()
    return res


def _rerun_when_done(fut) -> None:
    if fut.done():
        st.rerun(scope="app")


def _verdicts(lines: list[str]) -> None:
    for line in lines:
        icon = "✅" if ("higher than" in line or "lower than" in line) and "not distinguishable" not in line else "➖"
        st.markdown(f"{icon} {line}")


def tightness(sel: Selection) -> None:
    from ..plotting import plot_tightness

    res = _result(sel, "tight_prompt")
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
                         f"{d['description']} (omitted: {d.get('omitted')})")
    st.caption(f"Tightness: how similar each virtual token's top-{res['k']} neighbours are to each other. "
               f"Null baselines: {'; '.join(nulls)}.")
    with st.expander("What is more than chance", expanded=True):
        _verdicts(res.get("summary") or [])
    hubs = (res.get("hubness") or {}).get("top_hubs") or []
    if hubs:
        st.markdown("**Hub tokens** (neighbour of several virtual tokens)")
        st.table([{"token": h["token"], "count": h["count"], "positions": ", ".join(f"v{i}" for i in h["positions"]),
                   "expected (random vectors)": f"{(h.get('expected_count') or {}).get('random_vectors') or 0:.2f}"}
                  for h in hubs], hide_index=True)


def geometry(sel: Selection) -> None:
    from ..plotting import plot_geometry

    res = _result(sel, "geo_prompt")
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
    if not module_available("analyzer.relatedness"):
        not_available("The task-relatedness report", "analyzer.relatedness")
        return
    from . import _relatedness_view

    _relatedness_view.relatedness(sel)

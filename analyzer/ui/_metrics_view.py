"""The metric tabs of Explore: tightness with its null baselines, geometry/drift, task-relatedness."""

from __future__ import annotations

import streamlit as st

from ..results import Skipped
from . import resources
from ._common import Selection, module_available, not_available, wait_for
from ._markdown import escape_markdown, escape_rows


def _choose_prompt(sel: Selection, key: str):
    """A prompt picker; returns ``(path, stamp, prompt)``."""
    from ._common import named_prompts

    items = named_prompts(sel)
    names = [n for n, *_ in items]
    name = st.selectbox("Prompt", names, key=key) if len(names) > 1 else names[0]
    return items[names.index(name)][1:]


def _result(sel: Selection, key: str, kind: str = "metrics"):
    """The :class:`~analyzer.results.PromptAnalysis` of the chosen prompt, or None (with a note) while it is
    computed in the background or, for ``kind="relatedness"``, when its relatedness was skipped.  Both kinds come
    from one ``analyzer.analyze`` job: the quick reading first (it says what it leaves out), and on request the
    full analysis -- the CLI's ``analyze``, the same claims."""
    from ..analysis import analysis_settings

    path, stamp, p = _choose_prompt(sel, key)
    fut, full, fk = analysis_future(sel, path, stamp, p)
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
    if kind == "relatedness" and isinstance(d.relatedness, Skipped):
        st.info(f"Task-relatedness was not computed: {d.relatedness.reason}.")
        return None
    return d


def analysis_future(sel: Selection, path: str, stamp: tuple, prompt) -> tuple[object, bool, tuple]:
    """``(future, full, key)``: the background ``analyzer.analyze`` of one prompt that every view of it shares
    (the verdict at the top of Explore and the metric tabs), the full analysis once the user asked for it."""
    fk = (sel.model, sel.metric, sel.k, path, prompt.name, sel.task)
    full = fk in st.session_state.get("_full", set())
    fut = resources.prompt_analysis(sel.model, sel.metric, sel.k, path, stamp, prompt.name, sel.task, full=full)
    return fut, full, fk


FULL_LABEL = "Full analysis"
FULL_HELP = ("What softprompt-analyzer analyze computes: adds the MiniLM text space, the vocabulary's own "
             "neighbour graph (hubness) and the CSLS side reading (minutes the first time per model; cached).")


def tests_table(rows, key: str) -> None:
    """A metric tab's claims, compact: measure | value | null | q | verdict (the same rows as the CLI's
    ``analyze``)."""
    from .._format import compact_rows

    if not rows:
        st.caption("No claim of this tab's measures in this reading: only the labelled reference rows above.")
        return
    st.table(escape_rows(compact_rows(rows)), hide_index=True)    # full width; long verdicts wrap, never cut
    st.caption(TESTS_HELP)


def glossary(measures) -> None:
    """"What the measures mean": the glossary entry of every measure the tab shows (its claims and its folded
    reference rows alike), then the statistical words."""
    from ._glossary import glossary_lines

    with st.popover("What the measures mean", icon=":material/help:"):
        for line in glossary_lines(measures):
            st.markdown(line)


def reference_rows(rows, key: str, *, sentences: bool = False) -> None:
    """The tab's labelled reference rows (random vectors, vocabulary tokens, a matched null that only describes),
    folded away: they show where the value sits, never a claim.  ``sentences``: each row's own verdict sentence
    instead of the compact table (for a tab whose measures are never claimed, so there is no table to match)."""
    from .._format import compact_rows

    if not rows:
        return
    with st.expander(f"Reference rows ({len(rows)}): where the values sit, never claims", expanded=False):
        if sentences:
            st.markdown("\n".join(f"- {escape_markdown(r.verdict)}" for r in rows))
        else:
            st.table(escape_rows(compact_rows(rows)), hide_index=True)
        st.caption(REFERENCE_HELP)


def metric_tests(tests, tab: str, key: str, extra: tuple[str, ...] = ()) -> None:
    """The rows of the prompt's table of tests that belong to the metric tab ``tab`` (only its own measures,
    :data:`analyzer.ui._verdict.TAB_MEASURES`): the references folded away, then the claims, then the glossary of
    every measure shown (``extra``: measures the tab shows outside the table, e.g. in a chart)."""
    from ._verdict import tab_rows

    claims, references = tab_rows(tests, tab)
    reference_rows(references, f"{key}_refs", sentences=not claims)
    st.markdown("**What is more than chance**")
    tests_table(claims, key)
    glossary([r.measure for r in (*references, *claims)] + list(extra))


TESTS_HELP = ("Claims rest on the matched null (meaningless queries matched to each virtual token on how far it is "
              "from the vocabulary, how dense the vocabulary is there and how frequent its nearest token is) or on "
              "the prompt's initialisation; q is Benjamini-Hochberg over all the prompt's claims (every tab's), "
              "significant when q < 0.05.")
REFERENCE_HELP = ("Random Gaussian vectors and vocabulary tokens are labelled references, and a matched row here is "
                  "one the analysis describes rather than claims: each shows its plain p and never enters the "
                  "false-discovery correction.")


def tightness(sel: Selection) -> None:
    from ..plotting import plot_tightness

    res = _result(sel, "tight_prompt", "metrics")
    if res is None:
        return
    st.plotly_chart(plot_tightness(res, space="model", height=330, title="Tightness (model space)"),
                    key="tightness_model", config={"displaylogo": False})
    if res.tightness.space("text").computed:
        st.plotly_chart(plot_tightness(res, space="text", height=330, title="Tightness (text space, MiniLM)"),
                        key="tightness_text", config={"displaylogo": False})
    nulls = [b.size_text() for b in res.null.baselines.values()]
    st.caption(f"Tightness: how similar each virtual token's top-{res.k} neighbours are to each other. "
               f"Null baselines: {'; '.join(nulls)}.")
    metric_tests(res.tests, "Tightness", "tests_tight")
    hubs = res.hubness.top_hubs
    if hubs:
        st.markdown("**Hub tokens** (neighbour of several virtual tokens)",
                    help="A hub is a vocabulary token that is near many vectors at once; the expected count is "
                         "how often random vectors of the same number would have it as a neighbour.")
        st.table([{"token": escape_markdown(h.token), "count": h.count,
                   "positions": ", ".join(f"v{i}" for i in h.positions),
                   "expected (random vectors)": f"{h.expected_random or 0:.2f}"} for h in hubs], hide_index=True)


def geometry(sel: Selection) -> None:
    from ..plotting import plot_geometry

    res = _result(sel, "geo_prompt", "metrics")
    if res is None:
        return
    st.plotly_chart(plot_geometry(res, height=320, title="Geometry and drift"), key="geometry",
                    config={"displaylogo": False})
    geo = res.geometry
    if geo.mean_norm_percentile is not None:
        st.markdown(f"Mean norm percentile in the vocabulary: **{geo.mean_norm_percentile:.0f}**.")
    if geo.drift.omitted is not None:
        st.caption(f"Drift from the initialisation: {geo.drift.omitted}")
    else:
        c, r = geo.drift.mean_cosine, geo.drift.mean_relative_l2
        if c is not None:
            st.markdown(f"Drift from the initialisation: mean cosine **{c:.3f}**" +
                        (f", relative L2 **{r:.3f}**" if r is not None else "") + ".")
    rate = res.persistence.init_rate
    if rate is not None:
        st.markdown(f"Init token still among the top-{res.k} neighbours: **{rate:.0%}** of positions.")
    metric_tests(res.tests, "Geometry", "tests_geometry", extra=("norm", "drift", "init persistence"))


def relatedness(sel: Selection) -> None:
    from ..plotting import plot_relatedness

    if not module_available("analyzer.relatedness"):
        not_available("The task-relatedness report", "analyzer.relatedness")
        return
    if not sel.task:
        st.info("Choose a task in the sidebar to judge how task-related the neighbours are.")
        return
    p = _result(sel, "rel_prompt", "relatedness")
    if p is None:
        return
    res = p.relatedness
    st.plotly_chart(plot_relatedness(res, space="model", height=330, title=f"Related to '{res.task}' "
                                     "(model space)"), key="rel_model", config={"displaylogo": False})
    text = res.spaces.get("text")
    if text is not None and text.omitted is None and text.share.computed:
        st.plotly_chart(plot_relatedness(res, space="text", height=330, title="Related (text space, MiniLM)"),
                        key="rel_text", config={"displaylogo": False})
    definition = res.space("model").definition
    if definition:
        st.caption(definition[0].upper() + definition[1:] + ".")
    from .._format import description_lines

    for line in description_lines(res.summary):
        st.markdown(line)
    metric_tests(p.tests, "Relatedness", "tests_related")
    top = res.space("model").top_related
    if top:
        st.markdown("**Most related neighbours**")
        st.table([{"token": escape_markdown(t.token), "count": t.count,
                   "positions": ", ".join(f"v{i}" for i in t.positions),
                   "matches": f"{escape_markdown(t.match_word)} ({t.match_kind})"} for t in top[:12]],
                 hide_index=True)
    if res.keywords:
        st.caption("Task keywords: " + ", ".join(escape_markdown(k.word or "") for k in res.keywords[:25]))

"""Explore's tabs that run the frozen model on request: **Evaluate** (accuracy beside zero-shot, the instruction
and the majority class, optionally on evaluation-only data), **Importance** (which positions matter, the
partial-projection curve) and **Describe** (what the model says the prompt means: Patchscopes/InSPEcT against a
null of meaningless prompts, with a planted control).

Nothing runs until its button is pressed; the job then runs on the model lane (:mod:`.resources`), the tab shows
its latest progress line, and a failure is one error box with a "Try again" button.  The rows and sentences come
from :mod:`._readings` (streamlit-free)."""

from __future__ import annotations

import logging

import streamlit as st

from . import resources
from ._common import Selection, named_prompts, wait_for
from ._glossary import TERMS
from ._markdown import escape_markdown, escape_rows

log = logging.getLogger("analyzer.ui")

#: choices and settings of the readings (the CLI's defaults; the tests make them tiny)
EVAL_LIMITS = (50, 100, 200, 500)
EVAL_DEFAULT_LIMIT = 200
EVAL_MAX_PROMPTS = 6
IMPORTANCE_LIMITS = (50, 100, 200)
IMPORTANCE_DEFAULT_LIMIT = 100
IMPORTANCE_SETTINGS: dict = {}
DESCRIBE_SETTINGS: dict = {}
CHART = {"displaylogo": False}


def _need_task(sel: Selection, what: str) -> bool:
    if sel.task:
        return True
    st.info(f"Choose a task in the sidebar: {what} is read on that task's test examples.", icon=":material/info:")
    return False


def _job(kind: str, key: tuple, start, *, label: str, button_key: str, what: str, note: str):
    """The finished result of the background job ``(kind, *key)``; None (with the button, or a waiting box with
    its progress, or an error box) while there is none.  ``start(*key)`` submits it (a :mod:`.resources`
    function)."""
    fut = resources.known_future(kind, *key)
    if fut is None:
        c1, c2 = st.columns([1, 3], vertical_alignment="center")
        pressed = c1.button(label, key=button_key, type="primary")
        c2.caption(note)
        if not pressed:
            return None
        with st.spinner("Loading the frozen model (once per server)…"):
            fut = start(*key)
    if not wait_for(fut, what, detail=lambda: resources.progress_of(kind, *key)):
        return None
    err = fut.exception()
    if err is not None:
        from ..exceptions import AnalyzerError

        if not isinstance(err, AnalyzerError):
            log.error("dashboard job %s failed", kind, exc_info=err)
        first = (str(err).splitlines() or [""])[0]
        st.error(first if isinstance(err, AnalyzerError) else f"{what} failed: {type(err).__name__}: {first}",
                 icon=":material/warning:")
        st.button("Try again", key=f"{button_key}_retry", on_click=resources.forget, args=(kind, *key),
                  icon=":material/restart_alt:")
        return None
    return fut.result()


def _glossary(*terms: str) -> None:
    with st.popover("What these mean", icon=":material/help:"):
        for t in terms:
            st.markdown(f"**{t}**: {TERMS[t]}")


def _pick_prompt(sel: Selection, key: str):
    """A prompt picker (when several are selected): ``(display name, path, stamp, prompt)``."""
    items = named_prompts(sel)
    names = [n for n, *_ in items]
    name = st.selectbox("Prompt", names, key=key) if len(names) > 1 else names[0]
    return items[names.index(name)]


# ------------------------------------------------------------------------------------------------- evaluate
def evaluate(sel: Selection) -> None:
    from ..plotting import plot_evaluation
    from ._readings import evaluation_rows

    if not _need_task(sel, "accuracy"):
        return
    items = named_prompts(sel)
    names = [n for n, *_ in items]
    extra_tasks = resources.evaluation_only_tasks(sel.task)
    cols = st.columns([3, 2, 2] if extra_tasks else [3, 2])
    chosen = cols[0].multiselect("Prompts", names, default=names[:EVAL_MAX_PROMPTS], key="eval_prompts",
                                 max_selections=EVAL_MAX_PROMPTS)
    extra = []
    if extra_tasks:
        extra = cols[1].multiselect("Also on evaluation-only data", list(extra_tasks), default=[], key="eval_extra",
                                    help=TERMS["evaluation-only task"], placeholder="none")
    limit = cols[-1].select_slider("Test examples per task", EVAL_LIMITS, value=EVAL_DEFAULT_LIMIT, key="eval_limit")
    if not chosen:
        st.info("Pick at least one prompt to evaluate.", icon=":material/info:")
        return
    tasks = (sel.task, *[t for t in extra if t != sel.task])
    first = next(it[3] for it in items if it[0] == chosen[0])       # a run's task file: its recorded columns
    instruction = resources.task_for(sel.task, first).instruction if len(tasks) == 1 else None
    st.caption(f"Runs the frozen model: each prompt, the template alone (zero-shot), the task's instruction as a "
               f"hard prompt{f' (“{instruction}”)' if instruction else ''} and always answering the majority class, "
               f"on the same first {limit} test examples of {', '.join(tasks)}. vs zero-shot: exact McNemar test on "
               "those examples, Benjamini-Hochberg over the prompt-task pairs.")
    columns = tuple((n, it[1], it[2], it[3].name) for n in chosen for it in items if it[0] == n)
    key = (sel.model, columns, tasks, int(limit))
    n_cols = (len(columns) + 2) * len(tasks)
    res = _job("evaluation", key, resources.evaluation, label="Evaluate", button_key="eval_run",
               what="Scoring the prompts and the baselines on the frozen model",
               note=f"{n_cols} scoring passes over {limit} examples each (minutes on 2 cores).")
    if res is None:
        return
    st.plotly_chart(plot_evaluation(res, title=f"Accuracy on the first {res.limit} {res.split} examples "
                                              "(95% Wilson interval)"), key="eval_plot", config=CHART)
    st.table(escape_rows(evaluation_rows(res)), hide_index=True)
    st.markdown("\n".join(f"- {escape_markdown(s)}" for s in res.summary()))
    recall = [f"{escape_markdown(r.prompt)} on {r.task}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.score.per_class.items())
              for r in res.results]
    st.caption("Recall per class: " + "; ".join(recall) + ".")
    _glossary("balanced accuracy", "gold-label NLL", "evaluation-only task", "q")


# ----------------------------------------------------------------------------------------------- importance
def importance(sel: Selection) -> None:
    from ..plotting import plot_importance, plot_projection_curve
    from ._readings import importance_rows, mattering

    if not _need_task(sel, "importance"):
        return
    if len(named_prompts(sel)) > 1:
        c1, right = st.columns([2, 1])
        with c1:
            name, path, stamp, prompt = _pick_prompt(sel, "imp_prompt")
    else:
        name, path, stamp, prompt = _pick_prompt(sel, "imp_prompt")
        right, _ = st.columns([1, 2])
    limit = right.select_slider("Test examples", IMPORTANCE_LIMITS, value=IMPORTANCE_DEFAULT_LIMIT, key="imp_limit")
    st.caption(f"Runs the frozen model on the first {limit} test examples of {sel.task}: each of the "
               f"{prompt.num_virtual_tokens} virtual tokens removed, replaced by its nearest vocabulary token, or by "
               "the vocabulary mean, one at a time (changed − original). A position *matters* when removing it "
               "raises the gold label's NLL more than removing a position of a matched meaningless prompt "
               "(Benjamini-Hochberg over the positions).")
    key = (sel.model, path, stamp, prompt.name, sel.task, int(limit), tuple(sorted(IMPORTANCE_SETTINGS.items())))
    res = _job("importance", key, resources.importance, label="Compute importance",
               button_key="imp_run", what=f"Changing each position of {name} on the frozen model",
               note="Slow the first time: the removal null (200 removals from matched meaningless prompts) is "
                    "built once per model and prompt shape and cached on disk (several minutes on 2 cores); "
                    "then a few minutes per prompt.")
    if res is None:
        return
    st.markdown(mattering(res), help=TERMS["importance"])
    st.plotly_chart(plot_importance(res, height=420, title=f"ΔNLL of the gold label when each position of {name} "
                                                           "is changed (95% CI)"), key="imp_bars", config=CHART)
    st.dataframe(importance_rows(res), hide_index=True, width="stretch", key="imp_table",
                 height=min(35 * (len(res.positions) + 1) + 3, 740),
                 column_config={"v": st.column_config.TextColumn(width="small", pinned=True),
                                "removed ΔNLL": st.column_config.NumberColumn(format="%+.3f"),
                                "removed Δacc": st.column_config.NumberColumn(format="%+.3f"),
                                "nearest ΔNLL": st.column_config.NumberColumn(format="%+.3f"),
                                "mean ΔNLL": st.column_config.NumberColumn(format="%+.3f"),
                                "q": st.column_config.NumberColumn(format="%.3g", help=TERMS["q"]),
                                "matters": st.column_config.CheckboxColumn(
                                    help="Removing it hurts more than removing a position of a matched "
                                         "meaningless prompt (q < 0.05).")})
    if res.projection_curve:
        st.plotly_chart(plot_projection_curve(res, height=360, title="Partial-projection curve: positions projected "
                                                                     "to their nearest token, least important "
                                                                     "first"),
                        key="imp_curve", config=CHART)
        st.caption(TERMS["partial-projection curve"])
    st.markdown("\n".join(f"- {escape_markdown(s)}" for s in res.summary()))
    st.caption(f"The map above sizes the virtual tokens of {name} by their removal ΔNLL (clipped at 0) and outlines "
               "the positions that matter.")
    _glossary("importance", "partial-projection curve", "q")


# ------------------------------------------------------------------------------------------------- describe
def describe(sel: Selection) -> None:
    from .._format import compact_rows
    from ..plotting import plot_description
    from ._readings import best_description, description_claim, other_readings_rows, planted_lines

    if not _need_task(sel, "the description"):
        return
    name, path, stamp, prompt = _pick_prompt(sel, "desc_prompt")
    st.caption(f"Runs the frozen model (Patchscopes / InSPEcT): the hidden states of {name} at a source layer are "
               "patched into a few-shot description prompt at a target layer and the model writes what the "
               "instruction is, over a grid of layer pairs; each text is scored by how many of the classes of "
               f"{sel.task} it names, "
               "against the same grid on matched meaningless prompts, with the task's instruction planted as a "
               "control.")
    key = (sel.model, path, stamp, prompt.name, sel.task, tuple(sorted(DESCRIBE_SETTINGS.items())))
    res = _job("description", key, resources.description, label="Describe the prompt",
               button_key="desc_run", what=f"Asking the frozen model what {name} means",
               note="Slow the first time: the null (80 meaningless prompts through the layer grid, and again for the "
                    "planted control) is built once per model and prompt shape, about 5 min each on 2 idle cores, and "
                    "cached on disk; later runs take a minute or two.")
    if res is None:
        return
    heading, text, detail = best_description(res)
    st.markdown(f"**{escape_markdown(heading)}**", help=TERMS["class rate"])
    st.markdown(f"> {escape_markdown(text)}")       # the model's own words, quoted: never read as Markdown
    if detail:
        st.caption(detail)
    claim, sentence = description_claim(res)
    (st.success if claim else st.info)(sentence, icon=":material/check_circle:" if claim else ":material/remove:")
    st.plotly_chart(plot_description(res, title=f"Class rate of the description of {name} over the layer grid"),
                    key="desc_grid", config=CHART)
    st.caption("Each cell: the text the model wrote with the prompt's state read at the source layer (rows) and "
               "patched in at the target layer (columns), coloured by its class rate; the best cell is outlined. "
               "Hover a cell for the whole text and the null's rate there.")
    for detected, line in planted_lines(res):
        st.markdown(line, help=TERMS["planted control"])
    if res.planted and st.toggle("Show the planted control's grid", key="desc_show_planted"):
        st.plotly_chart(plot_description(res, planted=res.planted[0].kind), key="desc_planted_grid", config=CHART)
    nl = res.null
    st.caption(f"Null: {nl.n} meaningless prompts ({len(nl.constructions)} constructions × "
               f"{nl.per_construction}: {', '.join(nl.constructions)}), matched to the prompt's length and "
               f"norms{'; read from the cache' if nl.cached else ''}; their mean class rate "
               f"{nl.class_rate_mean:.3f}.")
    st.table(compact_rows(res.tests), hide_index=True)
    others = other_readings_rows(res)
    if others:
        with st.expander("Other readings (not claims): self-description"):
            st.table(escape_rows(others), hide_index=True)
    _glossary("Patchscopes description", "class rate", "keyword share", "planted control", "q")


__all__ = ["evaluate", "importance", "describe"]

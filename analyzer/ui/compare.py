"""Compare: several prompts side by side -- for one task at a time (swap the task to swap the prompts)."""

from __future__ import annotations

import streamlit as st

from . import _sources, resources
from ._common import Selection, guard, wait_for
from ._markdown import code_span, escape_markdown

MAX_COLUMNS = 4


def compare(sel: Selection) -> None:
    from ..plotting import plot_norms

    if not sel.sources:
        st.info("Choose prompts in the sidebar to compare them.")
        return
    items = []  # (label, path, prompt, run info)
    for label, (path, _) in zip(sel.labels, sel.sources):
        with guard(f"loading {label}"):
            info = _sources.run_info(path)
            for p in resources.prompts(path):
                items.append((label, path, p, info))
    if not items:
        return
    if len(items) > 1:
        with guard("the similarity map"):
            _similarity(sel, items)
    tasks = sorted({i.task or "(unknown task)" for *_, i in items}, key=lambda t: (t.startswith("("), t))
    task = st.segmented_control("Prompts trained for", tasks, default=tasks[0], key="compare_task",
                                required=True) if len(tasks) > 1 else tasks[0]
    group = [it for it in items if (it[3].task or "(unknown task)") == task]
    shown = f"; showing the first {MAX_COLUMNS}" if len(group) > MAX_COLUMNS else ""
    st.caption(f"{len(group)} prompt{'s' if len(group) != 1 else ''} for task **{escape_markdown(task)}**{shown}. "
               f"Neighbours: top-{min(sel.k, 5)} by {'CSLS' if sel.metric == 'csls' else 'cosine'}.")
    index = resources.neighbor_index(sel.model, sel.metric)
    vocab = resources.vocabulary(sel.model)
    cols = st.columns(min(MAX_COLUMNS, len(group)))
    for col, (label, path, p, info) in zip(cols, group[:MAX_COLUMNS]):
        with col, guard(p.name):
            st.subheader(escape_markdown(_name(label, p, items)), divider="gray")
            facts = [f"{p.num_virtual_tokens} tokens", f"init {escape_markdown(info.init or p.init or '?')}"]
            if info.steps:
                facts.append(f"{info.steps} steps")
            if info.accuracy is not None:
                facts.append(f"val. acc. {info.accuracy:.1%}")
            st.caption(" · ".join(facts))
            k = min(sel.k, 5)
            scores, ids = index.kneighbors(p.vectors, k)
            # each cell is Markdown: a token such as ">," would open a quote and vanish unless escaped
            st.table([{"v": f"v{i}", "neighbours": ", ".join(f"{escape_markdown(vocab.tokens[int(t)])} ({s:.2f})"
                                                             for t, s in zip(ids[i], scores[i]))}
                      for i in range(p.num_virtual_tokens)], hide_index=True)
    with guard("the norm chart"):
        st.plotly_chart(plot_norms([it[2] for it in group[:MAX_COLUMNS]], resources.neighbor_index(sel.model),
                                   names=[_name(label, p, items) for label, _, p, _ in group[:MAX_COLUMNS]],
                                   height=300, title="Virtual-token norms"), key="compare_norms",
                        config={"displaylogo": False})
    with guard("the prompt swap"):
        _swap(sel, items)


SWAP_LIMITS = (50, 100, 200)


def _swap(sel: Selection, items) -> None:
    """One model, a prompt per task: every selected prompt (and zero-shot) on every selected prompt's task."""
    from ..swap import swap_table_html
    from . import _compare

    st.subheader("One model, a prompt per task", divider="gray")
    named = [(_name(label, p, items), p) for label, _, p, _ in items]
    known, unknown = _compare.swap_columns(named)
    st.caption("The frozen model and the template stay the same; only the prompt in front of them changes. Each "
               "prompt, and the template alone (zero-shot), is scored on the test examples of every task the "
               "selected prompts were trained for -- the same examples across a row, so a row's cells are paired "
               "(exact McNemar test).")
    if unknown:
        st.caption("Left out (no record of the task they were trained for): "
                   f"{', '.join(map(escape_markdown, unknown))}.")
    if len(known) < 2:
        st.info("Select at least two prompts that record the task they were trained for (their training_meta.json,"
                " e.g. sentiment-labels, question-type-text and spam-labels, or the multitask adapter "
                "three-task-multitask) to score each of them on every task.",
                icon=":material/info:")
        return
    found = _compare.stored_swap(known, _compare.swap_folders([path for _, path, _, _ in items]),
                                 model=sel.model)
    if found is not None:
        res, path = found
        writer = _compare.SWAP_WRITERS.get(path.name)
        st.caption(f"From {code_span(path.name)} in {escape_markdown(path.parent.name)}/ "
                   f"({f'written by `{writer}`; ' if writer else ''}"
                   f"matched to the selected prompts by their contents), {res.model}.")
    else:
        res = _computed_swap(sel, items, known)
        if res is None:
            return
    st.markdown(swap_table_html(res), unsafe_allow_html=True)
    st.caption("Each cell: accuracy over the task's label words, its 95% Wilson interval below (and on hover). "
               "Bold on green: the prompt trained for that row's task.")
    st.markdown("\n".join(f"- {escape_markdown(s)}" for s in res.summary()))
    with guard("the transfer matrix"):
        _transfer(res, known)


def _transfer(res, known) -> None:
    """The swap read prompt against prompt (relative transfer) beside how well the similarities predict it."""
    from ..decode.similarity import MEASURES
    from ..plotting import plot_transfer
    from ..stats import format_p
    from ._compare import transfer_reading

    vectors = {name: p.vectors for name, p in known.items()}
    if any(p.name not in vectors for p in res.prompts):
        return
    t = transfer_reading(res, vectors)
    st.subheader("Does similarity predict transfer?", divider="gray")
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(plot_transfer(list(t.names), t.relative, list(t.own_tasks), height=170 + 34 * len(t.names),
                                      title="Relative transfer (from the swap above)"),
                        key="compare_transfer", config={"displaylogo": False})
    with right:
        if not t.correlations:
            st.caption("With four or more prompts, each similarity above is tested against this matrix.")
            return
        st.table([{"similarity": MEASURES[r["similarity"]], "Spearman rho": f"{r['rho']:+.2f}",
                   "95% CI": f"[{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]", "q": format_p(r["q"], name="q")}
                  for r in t.correlations], hide_index=True)
        st.caption(f"Each cell: prompt (row) on the task of prompt (column), over that prompt's own accuracy. rho: "
                   f"Spearman over the {t.correlations[0]['n_pairs']} ordered pairs; one-sided Mantel permutation "
                   f"test (prompt identities permuted), Benjamini-Hochberg over the similarities. The activation "
                   f"overlap (ON) runs the model: `softprompt-analyzer compare`.")


def _computed_swap(sel: Selection, items, known):
    """The swap computed on the frozen model in the background (on request), or None while it is not done."""
    stamps = dict(sel.sources)
    cols = tuple((name, path, stamps.get(path, ()), p.name)
                 for (label, path, p, _) in items for name in [_name(label, p, items)] if name in known)
    limit = st.select_slider("Test examples per task", SWAP_LIMITS, value=200, key="swap_limit")
    fut = resources.known_future("swap", sel.model, cols, int(limit))
    if fut is None:
        n_tasks = len({_task(p) for p in known.values()})
        st.caption(f"No stored swap holds exactly these prompts: computing it runs the frozen model "
                   f"{(len(known) + 1) * n_tasks} times over {limit} examples (minutes on 2 cores).")
        if not st.button("Compute the swap", key="swap_run", type="primary"):
            return None
        with st.spinner("Loading the frozen model (once per server)…"):
            fut = resources.swap(sel.model, cols, int(limit))
    if not wait_for(fut, "Scoring every prompt on every task on the frozen model"):
        return None
    return fut.result()


def _task(prompt) -> str | None:
    from ..report import prompt_task

    return prompt_task(prompt)


def _name(label: str, prompt, items) -> str:
    """The sidebar's label, or ``label/name`` when the source holds several prompts."""
    return label if sum(1 for lab, *_ in items if lab == label) == 1 else f"{label}/{prompt.name}"


def _similarity(sel: Selection, items) -> None:
    from ..plotting import plot_prompt_similarity
    from ._compare import prompt_similarity

    names = [_name(label, p, items) for label, _, p, _ in items]
    sims = prompt_similarity([p.vectors for _, _, p, _ in items])
    st.plotly_chart(plot_prompt_similarity(names, sims, height=2 * (130 + 38 * len(names)),
                                           title="How similar the selected prompts are"),
                    key="compare_similarity", config={"displaylogo": False})
    st.caption("Top left: the cosine between the prompts' mean vectors (their overall direction, SPoT's task "
               "embedding). Top right: the mean cosine over every pair of virtual tokens, one from each prompt (on "
               "the diagonal: between the distinct tokens of one prompt) -- high only when the tokens themselves are "
               "alike. Below: the token-wise max inner product (each token's best match in the other prompt, "
               "averaged both ways; it grows with the norms). Whether any of them predicts transfer between tasks: "
               "`softprompt-analyzer compare PROMPT...` measures it, with the activated-neuron overlap (ON).")

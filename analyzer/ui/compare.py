"""Compare: several prompts side by side -- for one task at a time (swap the task to swap the prompts)."""

from __future__ import annotations

import streamlit as st

from . import _sources, resources
from ._common import Selection, guard

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
    st.caption(f"{len(group)} prompt(s) for task **{task}**; showing the first {MAX_COLUMNS}. "
               f"Neighbours: top-{min(sel.k, 5)} by {'CSLS' if sel.metric == 'csls' else 'cosine'}.")
    index = resources.neighbor_index(sel.model, sel.metric)
    vocab = resources.vocabulary(sel.model)
    cols = st.columns(min(MAX_COLUMNS, len(group)))
    for col, (label, path, p, info) in zip(cols, group[:MAX_COLUMNS]):
        with col, guard(p.name):
            st.subheader(_name(label, p, items), divider="gray")
            facts = [f"{p.num_virtual_tokens} tokens", f"init {info.init or p.init or '?'}"]
            if info.steps:
                facts.append(f"{info.steps} steps")
            if info.accuracy is not None:
                facts.append(f"val. acc. {info.accuracy:.1%}")
            st.caption(" · ".join(facts))
            k = min(sel.k, 5)
            scores, ids = index.kneighbors(p.vectors, k)
            st.table([{"v": f"v{i}", "neighbours": ", ".join(f"{vocab.tokens[int(t)]} ({s:.2f})"
                                                             for t, s in zip(ids[i], scores[i]))}
                      for i in range(p.num_virtual_tokens)], hide_index=True)
    with guard("the norm chart"):
        st.plotly_chart(plot_norms([it[2] for it in group[:MAX_COLUMNS]], resources.neighbor_index(sel.model),
                                   height=300, title="Virtual-token norms"), key="compare_norms",
                        config={"displaylogo": False})


def _name(label: str, prompt, items) -> str:
    """The sidebar's label, or ``label/name`` when the source holds several prompts."""
    return label if sum(1 for lab, *_ in items if lab == label) == 1 else f"{label}/{prompt.name}"


def _similarity(sel: Selection, items) -> None:
    from ..plotting import plot_prompt_similarity
    from ._compare import prompt_similarity

    names = [_name(label, p, items) for label, _, p, _ in items]
    sims = prompt_similarity([p.vectors for _, _, p, _ in items])
    st.plotly_chart(plot_prompt_similarity(names, sims, height=150 + 38 * len(names),
                                           title="How similar the selected prompts are"),
                    key="compare_similarity", config={"displaylogo": False})
    st.caption("Left: the cosine between the prompts' mean vectors (their overall direction). Right: the mean "
               "cosine over every pair of virtual tokens, one from each prompt (on the diagonal: between the "
               "distinct tokens of one prompt) -- high only when the tokens themselves are alike.")

"""Export: the report of the selected prompts (HTML, JSON, Markdown) -- the neighbour report at once, or the
full analysis (metrics, null baselines, relatedness, optionally faithfulness) built in the background --, each
adapter as a zip, and the map as a table for Embedding Atlas."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from . import resources
from ._common import Selection, guard, wait_for
from ._uploads import sanitize_name, zip_adapter

MODES = {"neighbours": "Neighbours (instant)",
         "full": "Full analysis: metrics, null baselines, task-relatedness"}


def export(sel: Selection) -> None:
    if not sel.sources:
        st.info("Choose prompts in the sidebar to export their report.")
        return
    st.subheader("Report")
    mode = st.radio("Contents", list(MODES), format_func=MODES.get, key="export_mode", horizontal=True)
    with guard("the report"):
        rep = _neighbour_report(sel) if mode == "neighbours" else _full_report(sel)
        if rep is not None:
            _downloads(sel, rep, suffix="" if mode == "neighbours" else "-analysis")
    st.subheader("Adapters")
    adapters = [(lab, p) for lab, (p, _) in zip(sel.labels, sel.sources) if (Path(p) / "adapter_config.json").is_file()]
    if not adapters:
        st.caption("No adapter directories among the selected prompts (tensor files are not zipped).")
    for i, (label, path) in enumerate(adapters):
        with guard(label):
            st.download_button(f"{label} (zip)", zip_adapter(path), file_name=f"{sanitize_name(Path(path).name)}.zip",
                               mime="application/zip", key=f"dl_zip_{i}", icon=":material/folder_zip:",
                               on_click="ignore")
    st.subheader("Embedding Atlas")
    with guard("the Embedding Atlas file"):
        _atlas(sel)


def _atlas(sel: Selection) -> None:
    """The vocabulary map with the selected prompts on it as a Parquet file Embedding Atlas opens."""
    from ..atlas import ATLAS_COMMAND, atlas_parquet
    from ._common import named_prompts
    from ._explore import report_basename
    from ._markdown import escape_markdown

    st.caption(f"The whole vocabulary of {escape_markdown(sel.model)} as placed on the Explore map (coordinates and "
               "cluster names) and the selected prompts' virtual tokens, one row each, for Apple's Embedding Atlas, "
               "an optional viewer with full-text search, histograms and a linked table. Install it in an environment "
               "of its own (it brings CUDA torch, ~7 GB); its current release draws the map only in a browser with "
               "WebGPU (the trial: Export a report, in the documentation).")
    if not st.toggle("Build the file", key="export_atlas", help="Places the vocabulary like the Explore map does "
                     "(cached after its first time per model)."):
        return
    named = named_prompts(sel)
    pmap = resources.prompt_map(sel.model, sel.metric, sel.k, 2, sel.sources, ())
    data = atlas_parquet(resources.vocab_map(sel.model), pmap, [n for n, *_ in named],
                         median_norm=float(resources.neighbor_index(sel.model).median_norm_))
    name = f"{report_basename(sel.labels)}-atlas.parquet"
    st.download_button(f"Embedding Atlas table (.parquet, {len(data) / 1e6:.1f} MB)", data, file_name=name,
                       mime="application/vnd.apache.parquet", key="dl_atlas", icon=":material/download:",
                       on_click="ignore")
    st.code(ATLAS_COMMAND.format(file=name), language="bash")


def _neighbour_report(sel: Selection):
    st.caption(f"The report of `softprompt-analyzer report` for {len(sel.sources)} prompt source(s): "
               f"k = {sel.k}, {sel.metric}.")
    return resources.report(sel.model, sel.metric, sel.k, sel.sources, sel.task)


def _full_report(sel: Selection):
    st.caption(f"The report of `softprompt-analyzer analyze` (task {sel.task}, k = {sel.k}, {sel.metric}): every "
               "score beside its chance level. Built in the background; a few seconds per prompt, minutes with the "
               "text space or faithfulness the first time.")
    c1, c2 = st.columns(2)
    text_space = c1.toggle("MiniLM text space", value=False, key="export_text")
    faith = c2.toggle("Faithfulness (runs the model)", value=False, key="export_faith")
    args = (sel.model, sel.metric, sel.k, sel.sources, sel.task, text_space, faith)
    fut = resources.known_future("report", *args)
    if fut is None:
        if not st.button("Build the full report", key="export_build", type="primary"):
            return None
        fut = resources.full_report(*args)
    if not wait_for(fut, "Building the report"):
        return None
    return fut.result()


def _downloads(sel: Selection, rep, *, suffix: str) -> None:
    from ._explore import report_basename

    base = report_basename(sel.labels) + suffix
    c1, c2, c3 = st.columns(3)
    c1.download_button("HTML", rep.to_html(), file_name=f"{base}.html", mime="text/html", key="dl_html",
                       icon=":material/download:", on_click="ignore")
    c2.download_button("JSON", rep.to_json(), file_name=f"{base}.json", mime="application/json",
                       key="dl_json", icon=":material/download:", on_click="ignore")
    c3.download_button("Markdown", rep.to_markdown(), file_name=f"{base}.md", mime="text/markdown",
                       key="dl_md", icon=":material/download:", on_click="ignore")
    with st.expander("Preview (Markdown)"):
        st.markdown(rep.to_markdown())

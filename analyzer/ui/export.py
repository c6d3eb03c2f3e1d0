"""Download: the report of the selected prompts (HTML, JSON, Markdown) and each adapter as a zip."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from . import resources
from ._common import Selection, guard
from ._uploads import sanitize_name, zip_adapter


def export(sel: Selection) -> None:
    if not sel.sources:
        st.info("Choose prompts in the sidebar to export their report.")
        return
    st.subheader("Report")
    st.caption(f"The same report as `softprompt-analyzer report` for {len(sel.sources)} prompt source(s), "
               f"k = {sel.k}, {sel.metric}.")
    with guard("the report"):
        rep = resources.report(sel.model, sel.metric, sel.k, sel.sources, sel.task)
        base = sanitize_name("-".join(sel.labels)[:48] or "report", default="report")
        c1, c2, c3 = st.columns(3)
        c1.download_button("HTML", rep.to_html(), file_name=f"{base}.html", mime="text/html", key="dl_html",
                           icon=":material/download:", on_click="ignore")
        c2.download_button("JSON", rep.to_json(), file_name=f"{base}.json", mime="application/json",
                           key="dl_json", icon=":material/download:", on_click="ignore")
        c3.download_button("Markdown", rep.to_markdown(), file_name=f"{base}.md", mime="text/markdown",
                           key="dl_md", icon=":material/download:", on_click="ignore")
        with st.expander("Preview (Markdown)"):
            st.markdown(rep.to_markdown())
    st.subheader("Adapters")
    adapters = [(lab, p) for lab, (p, _) in zip(sel.labels, sel.sources) if (Path(p) / "adapter_config.json").is_file()]
    if not adapters:
        st.caption("No adapter directories among the selected prompts (tensor files are not zipped).")
    for i, (label, path) in enumerate(adapters):
        with guard(label):
            st.download_button(f"{label} (zip)", zip_adapter(path), file_name=f"{sanitize_name(Path(path).name)}.zip",
                               mime="application/zip", key=f"dl_zip_{i}", icon=":material/folder_zip:",
                               on_click="ignore")

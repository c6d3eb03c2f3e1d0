"""The dashboard's page: layout and navigation only; everything else lives in the rest of ``analyzer.ui``.

:func:`render` is the whole page.  Streamlit runs it from a script: the package's own
``analyzer/ui/_app/dashboard.py`` (what ``softprompt-analyzer app`` starts, from a wheel or a checkout) or the
repository's ``app.py`` shim (``streamlit run app.py``).

    softprompt-analyzer app [--port P]
    streamlit run app.py --server.address 0.0.0.0 -- --allow-paths   # off loopback, typed paths stay on

Environment: SOFTPROMPT_ANALYZER_MODEL (default smollm2-135m), SOFTPROMPT_ANALYZER_PROMPTS (the prompt folder,
default ./sample_prompts), SOFTPROMPT_ANALYZER_RUNS (where in-app training writes), SOFTPROMPT_ANALYZER_CACHE,
SOFTPROMPT_ANALYZER_ALLOW_PATHS=1 (what `app --allow-paths` sets)."""

from __future__ import annotations

import importlib


def render() -> None:
    """Lay out one run of the page (Streamlit calls the script, and so this, on every interaction)."""
    import streamlit as st

    from .. import __version__
    from . import SECTIONS
    from ._common import guard, model_note

    st.set_page_config(page_title="softprompt-analyzer", page_icon=":material/manage_search:", layout="wide",
                       initial_sidebar_state="expanded",
                       menu_items={"About": f"softprompt-analyzer {__version__}: look inside learned soft prompts."})

    # -- navigation -----------------------------------------------------------------------------------
    st.sidebar.title("softprompt-analyzer")
    section = st.sidebar.radio(
        "Section", SECTIONS, key="section", bind="query-params",
        captions=["map · neighbours · metrics", "prompts side by side, per task", "training animation",
                  "prompt tuning in the background", "report and adapters"])

    # -- inputs ---------------------------------------------------------------------------------------
    sel = None
    with guard("the sidebar"):
        from .sidebar import sidebar

        sel = sidebar()
    if sel is None:
        st.stop()

    # -- the chosen section ---------------------------------------------------------------------------
    st.title(section)
    if sel.labels:
        st.caption(f"{sel.model} · " + " · ".join(sel.labels))
    note = model_note(sel)
    if note:
        st.caption(note)
    with guard(section):
        name = section.lower()
        getattr(importlib.import_module(f"analyzer.ui.{name}"), name)(sel)

    st.sidebar.caption(f"softprompt-analyzer {__version__} · one cached vocabulary, index, map and model, "
                       "shared by every session")


__all__ = ["render"]

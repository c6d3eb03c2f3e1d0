"""softprompt-analyzer dashboard: layout and navigation only; everything else lives in ``analyzer.ui``.

    streamlit run app.py                    # or: softprompt-analyzer app [--port P]
    streamlit run app.py --server.address 0.0.0.0 -- --allow-paths   # off loopback, typed paths stay on

Environment: SOFTPROMPT_ANALYZER_MODEL (default smollm2-135m), SOFTPROMPT_ANALYZER_PROMPTS (the prompt folder,
default ./sample_prompts), SOFTPROMPT_ANALYZER_RUNS (where in-app training writes), SOFTPROMPT_ANALYZER_CACHE,
SOFTPROMPT_ANALYZER_ALLOW_PATHS=1 (what `app --allow-paths` sets)."""

import importlib

import streamlit as st

from analyzer import __version__
from analyzer.ui import SECTIONS
from analyzer.ui._common import guard

st.set_page_config(page_title="softprompt-analyzer", page_icon="🔎", layout="wide",
                   initial_sidebar_state="expanded",
                   menu_items={"About": f"softprompt-analyzer {__version__}: look inside learned soft prompts."})

# -- navigation ---------------------------------------------------------------------------------------
st.sidebar.title("softprompt-analyzer")
section = st.sidebar.radio(
    "Section", SECTIONS, key="section", bind="query-params",
    captions=["map · neighbours · metrics", "prompts side by side, per task", "training animation",
              "prompt tuning in the background", "report and adapters"])

# -- inputs -------------------------------------------------------------------------------------------
sel = None
with guard("the sidebar"):
    from analyzer.ui.sidebar import sidebar

    sel = sidebar()
if sel is None:
    st.stop()

# -- the chosen section -------------------------------------------------------------------------------
st.title(section)
if sel.labels:
    st.caption(f"{sel.model} · " + " · ".join(sel.labels))
with guard(section):
    name = section.lower()
    getattr(importlib.import_module(f"analyzer.ui.{name}"), name)(sel)

st.sidebar.caption(f"softprompt-analyzer {__version__} · one cached vocabulary, index, map and model, "
                   "shared by every session")

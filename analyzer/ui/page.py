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
    from ._markdown import escape_markdown

    # the icon is drawn here, not named: a ":material/...:" icon is fetched from a font server by the browser
    st.set_page_config(page_title="softprompt-analyzer", page_icon=page_icon(), layout="wide",
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
        st.caption(" · ".join(escape_markdown(s) for s in (sel.model, *sel.labels)))
    note = model_note(sel)
    if note:
        st.caption(note)
    with guard(section):
        name = section.lower()
        getattr(importlib.import_module(f"analyzer.ui.{name}"), name)(sel)

    st.sidebar.caption(f"softprompt-analyzer {__version__} · one cached vocabulary, index, map and model, "
                       "shared by every session")


def page_icon(size: int = 64):
    """The tab's icon, drawn (a magnifying glass in the theme's red on transparent), so the page asks no other
    host for it: a ``size`` x ``size`` RGBA ``PIL.Image``, which Streamlit serves from its own media endpoint."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    c, r, w = size * 0.40, size * 0.27, size * 0.09                       # the lens: centre, radius, rim width
    ring = np.abs(np.hypot(x - c, y - c) - r) < w
    t = np.clip(((x - c) + (y - c)) / 2, 0, None)                          # the handle, along the diagonal
    handle = (np.abs((x - c) - (y - c)) / np.sqrt(2) < w * 1.2) & (t > r * 0.8) & (t < size * 0.52)
    img = np.zeros((size, size, 4), np.uint8)
    img[ring | handle] = (255, 75, 75, 255)
    return Image.fromarray(img, "RGBA")


__all__ = ["render", "page_icon"]

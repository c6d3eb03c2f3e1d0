"""Renderers of the typed results (:mod:`analyzer.results`): the terminal table (:mod:`.text`), Markdown
(:mod:`.markdown`) and the self-contained HTML page (:mod:`.html`).  They read attributes, never a result's
JSON by key, and compute nothing: every number and verdict comes from the result.  Computation modules never
import this package; a result's ``to_table``/``to_markdown``/``to_html`` import it when called."""

from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {"report_table": ".text", "text_console": ".text", "report_markdown": ".markdown", "md_escape": ".markdown",
         "report_html": ".html", "page": ".html"}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, globals(), _LAZY)

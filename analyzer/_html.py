"""Where :func:`page` was: the HTML page the results' ``to_html`` build on now lives in
:mod:`analyzer.render.html`; this name stays importable for the modules that still import it from here."""

from __future__ import annotations

from .render.html import page

__all__ = ["page"]

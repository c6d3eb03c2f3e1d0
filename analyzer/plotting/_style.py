"""Shared look of the figures: the prompt palette and the common layout arguments."""

from __future__ import annotations

# Plotly's "Plotly" + "D3" qualitative colours, prompts take them in order.
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
           "#FF97FF", "#FECB52", "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B")
BACKGROUND = "rgba(150,150,150,0.35)"
HIGHLIGHT = "#111111"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def layout_args(width: int | None, height: int | None, title: str | None) -> dict:
    """Keyword arguments for ``fig.update_layout``: size (``None`` lets the container decide) and title."""
    args: dict = {"margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10}, "template": "plotly_white"}
    if width is not None:
        args["width"] = int(width)
    if height is not None:
        args["height"] = int(height)
    if title:
        args["title"] = {"text": title, "x": 0.01}
    return args


def short(s: str, n: int = 14) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"

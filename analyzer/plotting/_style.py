"""Shared look of the figures: the prompt palette and the common layout arguments."""

from __future__ import annotations

# Plotly's "Plotly" + "D3" qualitative colours, prompts take them in order.
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
           "#FF97FF", "#FECB52", "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B")
BACKGROUND = "rgba(150,150,150,0.35)"
HIGHLIGHT = "#111111"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def layout_args(width: int | None, height: int | None, title: str | None, *, subplot_titles: bool = False) -> dict:
    """Keyword arguments for ``fig.update_layout`` shared by every figure: size (``None`` lets the container
    decide), the title at the top left with room below it (more when the figure has subplot titles, so they
    never overlap), the margins and the font."""
    top = (44 if title else 10) + (26 if subplot_titles else 0)
    args: dict = {"margin": {"l": 10, "r": 10, "t": top, "b": 10}, "template": "plotly_white",
                  "font": {"size": 12}}
    if width is not None:
        args["width"] = int(width)
    if height is not None:
        args["height"] = int(height)
    if title:
        args["title"] = {"text": title, "x": 0.01, "xanchor": "left", "y": 1.0, "yanchor": "top",
                         "pad": {"t": 10}, "font": {"size": 15}}
    return args


# Tick formats: fractions as percentages, cosines and scores with at most two decimals (no 0.475 / 0.184)
PERCENT_AXIS = {"tickformat": ".0%", "tickvals": [0, 0.25, 0.5, 0.75, 1.0]}
SCORE_AXIS = {"tickformat": ".2~f", "nticks": 6}


def short(s: str, n: int = 14) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def short_labels(names, n: int = 14) -> list[str]:
    """:func:`short` of each name, unless two would read the same (``three-task-multitask/task0`` and ``/task1``):
    then those keep their ends instead (``…multitask/task0``), so no two axis labels merge."""
    out = [short(s, n) for s in names]
    if len(set(out)) == len(out):
        return out
    tails = [s if len(s) <= n else "…" + s[-(n - 1):] for s in names]
    return [t if out.count(o) > 1 else o for o, t in zip(out, tails)]

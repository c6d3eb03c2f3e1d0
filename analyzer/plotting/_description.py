"""Description figure: the class rate of the model's description of a soft prompt over the (source, target)
layer grid, beside the null's mean class rate in each cell (Patchscopes / InSPEcT)."""

from __future__ import annotations

from html import escape
from typing import Mapping

from ._style import layout_args, short


def _as_result(result):
    from ..faithfulness._description_result import DescriptionResult

    if isinstance(result, DescriptionResult):
        return result
    if isinstance(result, Mapping):
        return DescriptionResult.from_dict(dict(result))
    raise TypeError(f"Expected a DescriptionResult or its to_dict(); got {type(result).__name__}.")


def plot_description(result, *, width: int | None = None, height: int | None = None, title: str | None = None,
                     planted: str | None = None, max_label: int = 18):
    """A heat map of source layer (rows) × target layer (columns): the colour is the class rate of the text the
    model wrote in that cell, the cell text the description (cut to ``max_label`` characters), the hover the
    whole text, keyword share, the null's mean class rate there and the cell's p and q (shown, not claimed).
    The best cell is outlined.

    result: a :class:`~analyzer.faithfulness.DescriptionResult` or its ``to_dict()``; ``planted``: draw the grid
    of that planted signal (``instruction``, ``label_words``) instead of the prompt's.  Returns a
    ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    r = _as_result(result)
    grid, best, what = r.grid, r.best, r.prompt.name
    if planted is not None:
        match = [p for p in r.planted if p.kind == planted]
        if not match:
            raise ValueError(f"No planted signal {planted!r} in this result; it has "
                             f"{[p.kind for p in r.planted]}.")
        grid, best, what = match[0].grid, match[0].best, f"planted {planted.replace('_', ' ')}"
    sources = sorted({c.source_layer for c in grid})
    targets = sorted({c.target_layer for c in grid})
    at = {(c.source_layer, c.target_layer): c for c in grid}
    z, text, hover = [], [], []
    for s in sources:
        zr, tr, hr = [], [], []
        for t in targets:
            c = at.get((s, t))
            if c is None:
                zr.append(None), tr.append(""), hr.append("")
                continue
            zr.append(c.class_rate)
            tr.append(escape(short(c.text or "∅", max_label)))
            kw = "–" if c.keyword_share is None else f"{c.keyword_share:.2f}"
            p = "n/a" if c.p is None else f"{c.p:.3g}"
            q = "n/a" if c.q is None else f"{c.q:.3g}"
            hr.append(f"source {s} → target {t}<br>{escape(c.text or '(empty)')}<br>class rate "
                      f"{c.class_rate:.2f} (null {c.null_class_rate:.2f}), keywords {kw}<br>p {p}, q {q} "
                      f"(shown, not claimed)")
        z.append(zr), text.append(tr), hover.append(hr)
    fig = go.Figure(go.Heatmap(z=z, x=[str(t) for t in targets], y=[str(s) for s in sources], text=text,
                               texttemplate="%{text}", textfont=dict(size=9), customdata=hover,
                               hovertemplate="%{customdata}<extra></extra>", colorscale="Greens", zmin=0, zmax=1,
                               colorbar=dict(title="class rate")))
    bi, bj = sources.index(best.source_layer), targets.index(best.target_layer)
    fig.add_shape(type="rect", x0=bj - 0.5, x1=bj + 0.5, y0=bi - 0.5, y1=bi + 0.5,
                  line=dict(color="black", width=2))
    args = layout_args(width, height or max(300, 60 * len(sources) + 160),
                       title or f"Description class rate of {what} ({r.task}) over the layer grid")
    fig.update_layout(**args, xaxis=dict(title="target layer (patched into)", type="category"),
                      yaxis=dict(title="source layer (read from)", type="category"))
    return fig

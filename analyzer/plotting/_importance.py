"""Importance figures: the NLL change of every position under each replacement (with its 95% interval; positions
whose removal matters more than chance marked), and the partial-projection curve beside random orders."""

from __future__ import annotations

from ._style import PERCENT_AXIS, color, layout_args

_NAMES = {"removed": "removed", "nearest": "nearest token", "mean": "vocabulary mean"}


def plot_importance(result, *, width: int | None = None, height: int | None = None, title: str | None = None):
    """Grouped bars, one group per position: the mean change of the gold label's NLL (changed − original; up =
    the position helps) when it is removed, replaced by its nearest token, or by the vocabulary mean, with paired
    bootstrap 95% intervals.  A star above a position: its removal hurts more than removing a position of a
    matched meaningless prompt (BH over positions).  The dotted line: the null's mean removal effect.

    result: an :class:`~analyzer.faithfulness.ImportanceResult` or its ``to_dict()``.  Returns a
    ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    from ..faithfulness._importance_result import as_importance

    r = as_importance(result)
    pos = r.positions
    fig = go.Figure()
    x = [p.index for p in pos]
    for j, key in enumerate(("removed", "nearest", "mean")):
        effects = [p.effect(key) for p in pos]
        if not pos or effects[0] is None:
            continue
        y = [e.delta_nll for e in effects]
        lo = [e.ci_nll[0] for e in effects]
        hi = [e.ci_nll[1] for e in effects]
        text = [e.token or "" for e in effects]
        fig.add_trace(go.Bar(
            x=x, y=y, name=_NAMES[key], marker_color=color(j),
            error_y=dict(type="data", symmetric=False, array=[h - v for h, v in zip(hi, y)],
                         arrayminus=[v - lw for v, lw in zip(y, lo)], thickness=1),
            customdata=[[e.delta_accuracy, a, b, t] for e, a, b, t in zip(effects, lo, hi, text)],
            hovertemplate=("position %{x}<br>ΔNLL %{y:+.3f} [%{customdata[1]:+.3f}, %{customdata[2]:+.3f}]<br>"
                           "Δaccuracy %{customdata[0]:+.3f}<br>%{customdata[3]}<extra>" + _NAMES[key] + "</extra>")))
    sig = [p for p in pos if p.significant]
    if sig:
        top = max([p.removed.ci_nll[1] for p in pos] + [0.0])
        fig.add_trace(go.Scatter(x=[p.index for p in sig], y=[top * 1.08 + 1e-3] * len(sig), mode="markers",
                                 marker=dict(symbol="star", size=12, color="#111111"),
                                 name="removal matters (q < α)",
                                 customdata=[[p.q] for p in sig],
                                 hovertemplate="position %{x}: q=%{customdata[0]:.3g}<extra></extra>"))
    null_mean = r.null.mean if r.null else None
    if null_mean is not None:
        # a legend entry, not an annotation: a label on the plot would sit on the first positions' bars
        lo_x, hi_x = (min(x) - 0.5, max(x) + 0.5) if x else (-0.5, 0.5)
        fig.add_trace(go.Scatter(x=[lo_x, hi_x], y=[null_mean] * 2, mode="lines",
                                 line=dict(color="gray", dash="dot", width=1),
                                 name="null: removing a meaningless position (mean)",
                                 hovertemplate="null mean %{y:+.3f}<extra></extra>"))
    title = title or f"Importance of each position — {r.prompt} on {r.task} ({r.n or '?'} examples)"
    args = layout_args(width, height, title)
    args["margin"]["b"] = 40
    fig.update_layout(**args, barmode="group", xaxis=dict(title="position", dtick=1 if len(pos) <= 30 else None),
                      yaxis=dict(title="ΔNLL of the gold label (changed − original)"),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def plot_projection_curve(result, *, width: int | None = None, height: int | None = None, title: str | None = None):
    """Accuracy against the number of positions projected to their nearest tokens, least important first (by the
    nearest replacement's NLL change), beside the band of random orders (its percentiles and median): the
    projection gap's source.  Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    from ..faithfulness._importance_result import as_importance

    r = as_importance(result)
    c = r.projection_curve
    fig = go.Figure()
    if c:
        band = c.random_band
        if band.n_orders:
            lo_p, hi_p = band.percentiles
            counts = list(band.counts)
            fig.add_trace(go.Scatter(x=counts, y=list(band.high), mode="lines", line=dict(width=0),
                                     showlegend=False, hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=counts, y=list(band.low), mode="lines", line=dict(width=0),
                                     fill="tonexty", fillcolor="rgba(150,150,150,0.3)",
                                     name=f"random orders ({lo_p:g}–{hi_p:g}%, {band.n_orders} orders)"))
            fig.add_trace(go.Scatter(x=counts, y=list(band.median), mode="lines",
                                     line=dict(color="gray", dash="dash"), name="random orders, median"))
        order = c.order
        fig.add_trace(go.Scatter(
            x=list(c.counts), y=list(c.accuracy), mode="lines+markers", name="least important first",
            line=dict(color=color(0)), customdata=[["–" if k == 0 else order[k - 1], nll]
                                                   for k, nll in zip(c.counts, c.nll)],
            hovertemplate="%{x} projected (last: position %{customdata[0]})<br>accuracy %{y:.3f}<br>"
                          "NLL %{customdata[1]:.3f}<extra></extra>"))
    title = title or f"Partial projection — {r.prompt} on {r.task}"
    fig.update_layout(**layout_args(width, height, title),
                      xaxis=dict(title="positions projected to their nearest token"),
                      yaxis=dict(title="accuracy", range=[0, 1.02], **PERCENT_AXIS),
                      legend=dict(orientation="h", y=-0.25))
    return fig


__all__ = ["plot_importance", "plot_projection_curve"]

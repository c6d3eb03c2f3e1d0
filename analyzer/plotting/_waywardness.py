"""Waywardness stress test figure: accuracy of the trained soft prompt against the Prompt-F1 of its projection
with the target text, one point per γ, beside the chance levels (Khashabi et al. 2022)."""

from __future__ import annotations

from html import escape
from typing import Mapping

from ._style import color, layout_args


def _as_result(result):
    from ..faithfulness.waywardness import WaywardnessResult

    if isinstance(result, WaywardnessResult):
        return result
    if isinstance(result, Mapping):
        return WaywardnessResult.from_dict(result)
    if isinstance(result, (list, tuple)):
        return WaywardnessResult.from_dict({"rows": [r.to_dict() if hasattr(r, "to_dict") else r for r in result]})
    raise TypeError(f"Expected a WaywardnessResult, its to_dict() or a list of rows; got {type(result).__name__}.")


def plot_waywardness(result, *, width: int | None = None, height: int | None = None,
                     title: str | None = None, show_projection: bool = True):
    """A scatter of accuracy (y, Wilson 95% error bars) against Prompt-F1 of the projection vs the target text
    (x), one point per γ (labelled), for the soft prompt and, when ``show_projection``, for its projection fed
    as tokens.  Horizontal lines: chance (1/K), majority class, no prompt, the target text itself.

    result: a :class:`~analyzer.faithfulness.WaywardnessResult`, its ``to_dict()``, or just its rows.
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    res = _as_result(result)
    rows = res.sorted_rows()
    fig = go.Figure()

    def trace(key, name, symbol, col):
        accs = [getattr(r, key) for r in rows]
        acc = [a.accuracy for a in accs]
        fig.add_trace(go.Scatter(
            x=[r.prompt_f1 for r in rows], y=acc, mode="markers+text+lines", name=name,
            text=[f"γ={r.gamma:g}" for r in rows], textposition="top center",
            marker=dict(size=10, symbol=symbol, color=col), line=dict(color=col, width=1, dash="dot"),
            error_y=dict(type="data", symmetric=False,
                         array=[a.ci_high - a.accuracy for a in accs],
                         arrayminus=[a.accuracy - a.ci_low for a in accs]),
            customdata=[[r.gamma, a.n, a.ci_low, a.ci_high, r.distance, r.init_f1] for r, a in zip(rows, accs)],
            hovertemplate=("γ=%{customdata[0]:g}<br>Prompt-F1 %{x:.2f}<br>accuracy %{y:.3f} "
                           "[%{customdata[2]:.3f}, %{customdata[3]:.3f}], n=%{customdata[1]}<br>"
                           "mean distance to target %{customdata[4]:.3f}<br>F1 vs start %{customdata[5]:.2f}"
                           "<extra>" + name + "</extra>")))

    if rows:
        trace("accuracy", "soft prompt", "circle", color(0))
        if show_projection and all(r.projection_accuracy is not None for r in rows):
            trace("projection_accuracy", "its projection (as tokens)", "diamond-open", color(1))
    refs = [("chance (1/K)", res.chance, "gray", "dash"), ("majority class", res.majority, "gray", "dot")]
    if res.none_accuracy:
        refs.append(("no prompt", res.none_accuracy.accuracy, color(2), "dashdot"))
    if res.target_accuracy:
        refs.append(("target text as prompt", res.target_accuracy.accuracy, color(3), "longdash"))
    for name, y, col, dash in refs:
        if y is None:
            continue
        fig.add_hline(y=y, line=dict(color=col, dash=dash, width=1), annotation_text=name,
                      annotation_position="bottom right", annotation_font_size=10)
    target = res.target_text
    title = title or ("Waywardness: accuracy vs Prompt-F1 with the target text"
                      + (f" ({res.task})" if res.task else ""))
    args = layout_args(width, height, title)
    args["margin"]["b"] = 60
    fig.update_layout(
        **args,
        xaxis=dict(title="Prompt-F1 of the projection vs the target text" + (f"<br><sub>target: {escape(repr(target))}</sub>"
                                                                            if target else ""),
                   range=[-0.05, 1.05]),
        yaxis=dict(title="accuracy (95% CI)", range=[0, 1.02]), legend=dict(orientation="h", y=-0.3))
    return fig


__all__ = ["plot_waywardness"]

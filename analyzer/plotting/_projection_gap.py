"""Projection gap: accuracy of the soft prompt, its nearest-token projection, its init, the hand-written
instruction and no prompt, each with its Wilson 95% interval, beside the chance levels."""

from __future__ import annotations

from typing import Mapping

from ._style import PERCENT_AXIS, color, layout_args

_LABELS = {"none": "no prompt", "instruction": "instruction", "init": "init", "projection": "projection",
           "soft": "soft prompt"}


def plot_projection_gap(gap, *, width: int | None = None, height: int | None = 320, title: str | None = None):
    """Horizontal bars with 95% intervals from a :class:`~analyzer.result_groups.ProjectionGap` (a faithfulness
    result's ``projection_gap``, or the ``projection_gap(...)`` dict); dotted lines at chance (1/classes) and the
    majority class.  Returns a ``plotly.graph_objects.Figure``."""
    import plotly.graph_objects as go

    from ..result_groups import ProjectionGap

    gap = ProjectionGap.from_dict(gap) if isinstance(gap, Mapping) else gap
    rows = gap.conditions
    names = [_LABELS.get(r.condition, r.condition) for r in rows]
    acc = [r.accuracy for r in rows]
    lo = [float(a if r.ci_low is None else r.ci_low) for r, a in zip(rows, acc)]
    hi = [float(a if r.ci_high is None else r.ci_high) for r, a in zip(rows, acc)]
    fig = go.Figure(go.Bar(y=names, x=acc, orientation="h", marker={"color": [color(i) for i in range(len(rows))]},
                           error_x={"type": "data", "symmetric": False, "array": [h - a for a, h in zip(acc, hi)],
                                    "arrayminus": [a - lw for a, lw in zip(acc, lo)]},
                           # the % at the bar's start, clear of the interval drawn at its end
                           text=[f"{a:.1%}" for a in acc], textposition="inside", insidetextanchor="start",
                           textfont={"color": "white"}, name="accuracy"))
    # chance above the plot, the majority class below it: never on top of each other however close
    for v, label, where in ((gap.chance, "chance", "top"), (gap.majority, "majority class", "bottom")):
        if v is not None:
            fig.add_vline(x=float(v), line={"dash": "dot", "color": "grey"}, annotation_text=label,
                          annotation_position=where, annotation_font_size=11, annotation_font_color="#555")
    lay = layout_args(width, height, title)
    lay["margin"] = {**lay["margin"], "t": lay["margin"]["t"] + 16, "b": 30}
    fig.update_layout(**lay, xaxis={"title": "accuracy", "range": [0, 1], **PERCENT_AXIS}, showlegend=False)
    return fig

"""Tightness against its null baselines: the prompt's value beside each null distribution (mean ± 1.96 sd),
and each virtual token's own value."""

from __future__ import annotations

from typing import Any, Mapping

from ._style import color, layout_args

_NULL_LABELS = {"random_vectors": "random vectors", "vocab_tokens": "vocabulary tokens", "init": "initialisation"}


def plot_tightness(result: Mapping[str, Any], *, space: str = "model", width: int | None = None,
                   height: int | None = 340, title: str | None = None):
    """Two panels from an :func:`analyzer.metrics.analyze_prompt` result (``space``: ``model`` or ``text``):
    left, the prompt's mean tightness (diamond) beside each null's mean with a 95% band and its p-value;
    right, the tightness of each virtual token with the null means as dotted lines.
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sec = (result.get("tightness") or {}).get(space) or {}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.38, 0.62], horizontal_spacing=0.1,
                        subplot_titles=("prompt vs null baselines", "per virtual token"))
    if "omitted" in sec or sec.get("value") is None:
        fig.add_annotation(text=sec.get("omitted", "not computed"), showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_layout(**layout_args(width, height, title))
        return fig
    value = float(sec["value"])
    nulls = [(k, v) for k, v in (sec.get("null") or {}).items() if isinstance(v, Mapping) and "omitted" not in v
             and v.get("null_mean") is not None]
    names = [_NULL_LABELS.get(k, k) for k, _ in nulls]
    means = [float(v["null_mean"]) for _, v in nulls]
    band = [1.96 * float(v.get("null_std") or 0.0) for _, v in nulls]
    ptxt = [f"p={v['p']:.3g}" + (" ✓" if v.get("significant") else "") if v.get("p") is not None else ""
            for _, v in nulls]
    fig.add_trace(go.Scatter(x=names, y=means, mode="markers+text", name="null mean ± 1.96 sd",
                             marker={"size": 10, "color": "grey"}, text=ptxt, textposition="middle right",
                             error_y={"type": "data", "array": band, "visible": True},
                             hovertext=[v.get("verdict", "") for _, v in nulls], hoverinfo="text"), 1, 1)
    fig.add_trace(go.Scatter(x=names, y=[value] * len(names), mode="lines+markers", name="this prompt",
                             marker={"symbol": "diamond", "size": 12, "color": color(1)},
                             line={"color": color(1), "dash": "dash", "width": 1}), 1, 1)
    per = sec.get("per_position") or []
    fig.add_trace(go.Bar(x=[f"v{i}" for i in range(len(per))], y=per, name="virtual token",
                         marker={"color": color(0)}, showlegend=False), 1, 2)
    for j, ((k, _), m) in enumerate(zip(nulls, means)):
        fig.add_hline(y=m, line={"dash": "dot", "color": "grey", "width": 1}, row=1, col=2,
                      annotation_text=_NULL_LABELS.get(k, k), annotation_position="top left" if j % 2 else
                      "bottom left", annotation_font_size=10)
    fig.update_yaxes(title_text=f"tightness ({space} space)", row=1, col=1)
    fig.update_layout(**layout_args(width, height, title), legend={"orientation": "h", "y": -0.2})
    return fig

"""The shared shape of a score tested against null baselines (``analyzer.metrics.per_token_test`` output):
the prompt's value beside each null (mean ± 1.96 sd, p-value), and the score of each virtual token."""

from __future__ import annotations

from typing import Any, Mapping

from ._style import color, layout_args

NULL_LABELS = {"matched": "matched", "init": "init", "random_vectors": "random (ref.)", "vocab_tokens": "vocab (ref.)"}


def null_test_figure(sec: Mapping[str, Any], ylabel: str, *, width: int | None = None, height: int | None = 340,
                     title: str | None = None, y_range: tuple[float, float] | None = None):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.38, 0.62], horizontal_spacing=0.1,
                        subplot_titles=("prompt vs null baselines", "per virtual token"))
    if not isinstance(sec, Mapping) or "omitted" in sec or sec.get("value") is None:
        why = sec.get("omitted", "not computed") if isinstance(sec, Mapping) else "not computed"
        fig.add_annotation(text=str(why), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(**layout_args(width, height, title))
        return fig
    value = float(sec["value"])
    nulls = [(k, v) for k, v in (sec.get("null") or {}).items() if isinstance(v, Mapping) and "omitted" not in v
             and v.get("null_mean") is not None]
    names = [NULL_LABELS.get(k, k) for k, _ in nulls]
    means = [float(v["null_mean"]) for _, v in nulls]
    band = [1.96 * float(v.get("null_std") or 0.0) for _, v in nulls]
    from ..stats import format_p

    # claims carry q (Benjamini-Hochberg over the prompt's claims, * when q < 0.05); references their p
    ptxt = [(format_p(v.get("q"), None, "q") + (" *" if v.get("significant") else "")) if v.get("claim") else
            format_p(v.get("p"), v.get("n_null"), "p", v.get("alternative", "two-sided")) if v.get("p") is not None
            else "" for _, v in nulls]
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
                      annotation_text=NULL_LABELS.get(k, k), annotation_font_size=10,
                      annotation_position="top left" if j % 2 else "bottom left")
    fig.update_yaxes(title_text=ylabel, row=1, col=1)
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    fig.update_layout(**layout_args(width, height, title), legend={"orientation": "h", "y": -0.2})
    return fig

"""The shared shape of a score tested against null baselines (a :class:`~analyzer.result_groups.ScoreVsNulls`):
the prompt's value beside each null (mean ± 1.96 sd, p-value), and the score of each virtual token."""

from __future__ import annotations

from .._format import NULL_SHORT as NULL_LABELS      # the tables' names of the nulls: one name for each, everywhere
from ._style import SCORE_AXIS, color, layout_args


def null_test_figure(sec, ylabel: str, *, width: int | None = None, height: int | None = 340,
                     title: str | None = None, y_range: tuple[float, float] | None = None):
    """Two panels of a :class:`~analyzer.result_groups.ScoreVsNulls`: the prompt's value beside each null, and
    the value of each virtual token."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.38, 0.62], horizontal_spacing=0.1,
                        subplot_titles=("prompt vs null baselines", "per virtual token"))
    if sec.omitted is not None or sec.value is None:
        fig.add_annotation(text=str(sec.omitted or "not computed"), showarrow=False, x=0.5, y=0.5, xref="paper",
                           yref="paper")
        fig.update_layout(**layout_args(width, height, title))
        return fig
    value = float(sec.value)
    nulls = [(k, v) for k, v in sec.nulls.items() if v.omitted is None and v.null_mean is not None]
    names = [NULL_LABELS.get(k, k) for k, _ in nulls]
    means = [float(v.null_mean) for _, v in nulls]
    band = [1.96 * float(v.null_std or 0.0) for _, v in nulls]
    from ..stats import format_p

    # claims carry q (Benjamini-Hochberg over the prompt's claims, * when q < 0.05); references their p
    ptxt = [(format_p(v.q, None, "q") + (" *" if v.significant else "")) if v.claim else
            format_p(v.p, v.n_null, "p", v.alternative) if v.p is not None else "" for _, v in nulls]
    # the q / p of each null under its name (a tick label is never clipped, unlike text beside a point)
    ticks = [f"{n}<br><span style='font-size:10px'>{t}</span>" if t else n for n, t in zip(names, ptxt)]
    fig.add_trace(go.Scatter(x=names, y=means, mode="markers", name="null mean ± 1.96 sd",
                             marker={"size": 10, "color": "grey"},
                             error_y={"type": "data", "array": band, "visible": True},
                             hovertext=[f"{n}: {t}<br>{v.verdict}"
                                        for n, t, (_, v) in zip(names, ptxt, nulls)],
                             hoverinfo="text"), 1, 1)
    fig.add_trace(go.Scatter(x=names, y=[value] * len(names), mode="lines+markers", name="this prompt",
                             marker={"symbol": "diamond", "size": 12, "color": color(1)},
                             line={"color": color(1), "dash": "dash", "width": 1}), 1, 1)
    fig.update_xaxes(tickvals=names, ticktext=ticks, row=1, col=1)
    per = list(sec.per_position)
    xs = [f"v{i}" for i in range(len(per))]
    fig.add_trace(go.Bar(x=xs, y=per, name="virtual token", marker={"color": color(0)}, opacity=0.85), 1, 2)
    # the null means as lines drawn over the bars, named in the legend (labels on the plot hid behind bars)
    dashes = ("dot", "dash", "dashdot", "longdash")
    for j, ((k, _), m) in enumerate(zip(nulls, means)):
        if xs:
            fig.add_trace(go.Scatter(x=[xs[0], xs[-1]], y=[m, m], mode="lines", name=f"{NULL_LABELS.get(k, k)} mean",
                                     line={"dash": dashes[j % len(dashes)], "color": "#555", "width": 1.5},
                                     hoverinfo="name"), 1, 2)
    fig.update_yaxes(title_text=ylabel, row=1, col=1)
    fig.update_yaxes(**SCORE_AXIS)
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    fig.update_layout(**layout_args(width, height, title, subplot_titles=True),
                      legend={"orientation": "h", "y": -0.28, "x": 0, "font": {"size": 11}})
    return fig

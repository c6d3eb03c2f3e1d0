"""Geometry and drift of one prompt: where each virtual token's norm falls in the vocabulary's norm
distribution, how close it is to its nearest token, and how far it moved from its initialisation."""

from __future__ import annotations

from ._style import SCORE_AXIS, color, layout_args

ALL_TOP = 99.5      # norm percentiles all at or above this: the bars are left out (they would all read 100)


def plot_geometry(result, *, width: int | None = None, height: int | None = 320, title: str | None = None):
    """Per virtual token (from a prompt's analysis, a :class:`~analyzer.results.PromptAnalysis` or its
    ``to_dict()``): the norm's percentile among
    vocabulary norms (bars, left axis) and the cosine to the nearest token and -- when the init is known -- to
    the initialisation (lines, right axis).  When every norm is at the top of the vocabulary's (percentile
    >= 99.5: a trained prompt far off the token cloud) the bars would all read 100 and say nothing per position:
    they are left out and one line says so.  Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    from ..result_groups import Geometry
    from ..results import PromptAnalysis

    geo = PromptAnalysis.of(result).geometry
    geo = geo if isinstance(geo, Geometry) else Geometry()
    pct = list(geo.norm_percentile)
    x = [f"v{i}" for i in range(len(pct))]
    fig = go.Figure()
    all_top = bool(pct) and min(pct) >= ALL_TOP
    if not all_top:
        fig.add_trace(go.Bar(x=x, y=pct, name="norm percentile in vocabulary", marker={"color": color(0)},
                             opacity=0.6))
    near = list(geo.nearest_cosine.per_position)
    if near:
        # thick and underneath: an untrained prompt's nearest token is its init token, so the two lines can
        # coincide -- the init line (thin, dashed, open markers) stays visible on top of this one
        fig.add_trace(go.Scatter(x=x, y=near, name="cosine to nearest token", yaxis="y2", mode="lines+markers",
                                 line={"color": color(1), "width": 5}, marker={"size": 9}, opacity=0.55))
        rnd = geo.nearest_cosine.nulls.get("random_vectors")
        if rnd is not None and rnd.null_mean is not None:
            fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[rnd.null_mean] * 2, yaxis="y2", mode="lines",
                                     name="same for random vectors", line={"color": "grey", "dash": "dot"}))
    if geo.drift.cosine:
        fig.add_trace(go.Scatter(x=x, y=list(geo.drift.cosine), name="cosine to initialisation", yaxis="y2",
                                 mode="lines+markers", line={"color": color(2), "width": 1.5, "dash": "dash"},
                                 marker={"size": 7, "symbol": "circle-open", "line": {"width": 2}}))
    if all_top:
        fig.add_annotation(text="every virtual token's norm is above the vocabulary's (percentile 100): no bars",
                           xref="paper", yref="paper", x=0.0, y=1.0, xanchor="left", yanchor="bottom",
                           showarrow=False, font={"size": 11, "color": "#555"})
    fig.update_layout(**layout_args(width, height, title),
                      yaxis={"title": "norm percentile", "range": [0, 100], "tickvals": [0, 25, 50, 75, 100],
                             "visible": not all_top},
                      yaxis2={"title": "cosine", "overlaying": "y", "side": "right", "range": [-0.1, 1.05],
                              "showgrid": False, **SCORE_AXIS, "tickvals": [0, 0.25, 0.5, 0.75, 1.0]},
                      legend={"orientation": "h", "y": -0.25})
    return fig

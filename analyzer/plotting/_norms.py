"""Virtual-token norms of several prompts beside the vocabulary's norm range (a geometry glance)."""

from __future__ import annotations

import numpy as np

from ._style import color, layout_args


def plot_norms(prompts, index=None, *, median_norm: float | None = None, width: int | None = None,
               height: int | None = 320, title: str | None = None):
    """Grouped bars: the L2 norm of each virtual token, one colour per prompt; a dashed line at the vocabulary's
    median norm (from a fitted ``NeighborIndex`` ``index`` or ``median_norm``).  Prompts far above the line are
    off the vocabulary's manifold -- their nearest tokens say less.
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    if median_norm is None and index is not None:
        median_norm = float(index.median_norm_)
    fig = go.Figure()
    n_max = 0
    for j, p in enumerate(prompts):
        norms = np.linalg.norm(np.asarray(p.vectors, dtype=np.float32), axis=1)
        n_max = max(n_max, norms.size)
        fig.add_trace(go.Bar(x=[f"v{i}" for i in range(norms.size)], y=norms, name=p.name,
                             marker={"color": color(j)}))
    if median_norm is not None and n_max:  # a line over the bars, named in the legend (a label hid behind bars)
        fig.add_trace(go.Scatter(x=["v0", f"v{n_max - 1}"], y=[median_norm] * 2, mode="lines",
                                 name=f"vocabulary median {median_norm:.2f}", hoverinfo="name",
                                 line={"dash": "dash", "color": "#444", "width": 1.5}))
    fig.update_layout(**layout_args(width, height, title), barmode="group", yaxis={"title": "L2 norm"},
                      legend={"orientation": "h", "y": -0.2})
    return fig

"""Virtual-token norms of several prompts beside the vocabulary's norm range (a geometry glance)."""

from __future__ import annotations

import numpy as np

from ._style import color, layout_args


def plot_norms(prompts, index=None, *, median_norm: float | None = None, names=None, width: int | None = None,
               height: int | None = 320, title: str | None = None):
    """Grouped bars: the norm of each virtual token, one colour per prompt (``names``: their display names,
    default the prompts' own), in the map's one unit -- times the vocabulary's median norm (from a fitted
    ``NeighborIndex`` ``index`` or ``median_norm``), with a dashed line at 1 -- or as the raw L2 norm when the
    median is not known.  Prompts far above the line are off the vocabulary's manifold -- their nearest tokens
    say less.  Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    from ._map import NORM_UNIT

    if median_norm is None and index is not None:
        median_norm = float(index.median_norm_)
    scale = median_norm if median_norm and median_norm > 0 else None
    names = list(names) if names is not None else [p.name for p in prompts]
    fig = go.Figure()
    n_max = 0
    for j, (p, name) in enumerate(zip(prompts, names)):
        norms = np.linalg.norm(np.asarray(p.vectors, dtype=np.float32), axis=1)
        n_max = max(n_max, norms.size)
        fig.add_trace(go.Bar(x=[f"v{i}" for i in range(norms.size)], y=norms / scale if scale else norms, name=name,
                             marker={"color": color(j)}, customdata=norms,
                             hovertemplate=f"{name} %{{x}}: " + (f"%{{y:.2f}} {NORM_UNIT} (L2 %{{customdata:.2f}})"
                                                                 if scale else "L2 %{y:.2f}") + "<extra></extra>"))
    if scale and n_max:  # a line over the bars, named in the legend (a label hid behind bars)
        fig.add_trace(go.Scatter(x=["v0", f"v{n_max - 1}"], y=[1.0, 1.0], mode="lines",
                                 name=f"vocabulary median (L2 {median_norm:.2f})", hoverinfo="name",
                                 line={"dash": "dash", "color": "#444", "width": 1.5}))
    fig.update_layout(**layout_args(width, height, title), barmode="group",
                      yaxis={"title": f"norm {NORM_UNIT}" if scale else "L2 norm", "rangemode": "tozero"},
                      legend={"orientation": "h", "y": -0.2})
    return fig

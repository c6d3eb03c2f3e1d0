"""The training trajectory: virtual tokens moving over the UMAP map, one animation frame per snapshot."""

from __future__ import annotations

import html

import numpy as np

from ._style import BACKGROUND, color, layout_args


def plot_trajectory(layout, snapshots=None, *, steps=None, coords=None, name: str = "prompt", k: int = 1,
                    index=None, show_background: bool = True, width: int | None = None, height: int | None = 600,
                    title: str | None = None):
    """Animated 2-D map of a training run: the background vocabulary sample, the faint path of every virtual
    token, and a slider/play button stepping through the snapshots.

    layout:    a fitted 2-D :class:`~analyzer.projection.UmapLayout`.
    snapshots: ``{step: "n_virtual d_model"}`` (``analyzer.training.read_snapshots``); or pass precomputed
               ``steps`` and ``coords`` (``"n_steps n_virtual 2"``, from ``project_trajectory``).
    index:     optional fitted ``NeighborIndex``: the hover of each frame then shows each token's nearest
               vocabulary token at that step.
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    from ..projection import project_trajectory

    if layout.n_components != 2:
        from ..exceptions import AnalyzerError

        raise AnalyzerError(f"The trajectory animation is 2-D; got a layout with n_components={layout.n_components}.")
    if coords is None:
        steps, coords = project_trajectory(layout, snapshots)
    coords = np.asarray(coords, dtype=float)
    steps = list(steps)
    n_virtual = coords.shape[1]
    vocab = layout.vocab_
    hover = [[f"v{i}" for i in range(n_virtual)] for _ in steps]
    if index is not None and snapshots is not None:
        for si, s in enumerate(steps):
            sc, ids = index.kneighbors(np.asarray(snapshots[s], dtype=np.float32), k)
            hover[si] = [f"<b>v{i}</b> step {s}<br>" + "<br>".join(
                f"{html.escape(vocab.tokens[int(t)])} {float(v):.3f}" for t, v in zip(ids[i], sc[i]))
                for i in range(n_virtual)]

    fig = go.Figure()
    if show_background:
        # the background never takes the hover: pointing at a virtual token shows the virtual token
        fig.add_trace(go.Scatter(x=layout.embedding_[:, 0], y=layout.embedding_[:, 1], mode="markers",
                                 name="vocabulary sample", marker={"size": 4, "color": BACKGROUND},
                                 hoverinfo="skip"))
    # paths: one trace, tokens separated by gaps
    px, py = [], []
    for i in range(n_virtual):
        px += list(coords[:, i, 0]) + [None]
        py += list(coords[:, i, 1]) + [None]
    fig.add_trace(go.Scatter(x=px, y=py, mode="lines", name="paths", line={"color": color(0), "width": 1},
                             opacity=0.35, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=coords[0, :, 0], y=coords[0, :, 1], mode="markers+text", name=name,
                             marker={"size": 13, "color": color(1), "symbol": "diamond"},
                             text=[f"v{i}" for i in range(n_virtual)], textposition="middle right",
                             hovertext=hover[0], hoverinfo="text"))
    moving = len(fig.data) - 1
    fig.frames = [go.Frame(name=str(s), traces=[moving],
                           data=[go.Scatter(x=coords[si, :, 0], y=coords[si, :, 1], hovertext=hover[si])])
                  for si, s in enumerate(steps)]
    slider = {"active": 0, "currentvalue": {"prefix": "step "}, "pad": {"t": 30}, "x": 0.16, "len": 0.84,
              "steps": [{"label": str(s), "method": "animate",
                         "args": [[str(s)], {"mode": "immediate", "frame": {"duration": 0, "redraw": False},
                                             "transition": {"duration": 0}}]} for s in steps]}
    play = {"type": "buttons", "showactive": False, "x": 0.0, "y": 0.0, "xanchor": "left", "yanchor": "top",
            "direction": "left", "pad": {"t": 60, "r": 10},
            "buttons": [{"label": "Play", "method": "animate",
                         "args": [None, {"frame": {"duration": 300, "redraw": False}, "fromcurrent": True,
                                         "transition": {"duration": 150}}]},
                        {"label": "Pause", "method": "animate",
                         "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]}]}
    fig.update_layout(**layout_args(width, height, title), sliders=[slider], updatemenus=[play],
                      legend={"orientation": "h", "y": 1.05})
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False, scaleanchor="x", scaleratio=1)
    return fig

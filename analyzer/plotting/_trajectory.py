"""The training trajectory: virtual tokens moving over the Explore map itself (the same UMAP layout, its whole-
vocabulary density and cluster names), shown at one chosen step, with each token's path and a Play animation."""

from __future__ import annotations

import html

import numpy as np

from ._map_layers import add_background, add_cluster_labels, marker_boxes, place_marker_labels, text_units
from ._style import color, layout_args


def trajectory_extent(vocab_map, coords: np.ndarray, sample_coords=None) -> list[list[float]]:
    """Axis ranges holding the bulk of the map (``vocab_map.bulk_range``, as Explore draws it; else the layout
    sample's 0.2-99.8 percentiles) and every position of every snapshot ``"n_steps n_virtual 2"``, padded 4%."""
    if vocab_map is not None:
        bulk = np.asarray(vocab_map.bulk_range(2), dtype=float)
    else:
        bg = np.asarray(sample_coords, dtype=float)
        bulk = np.percentile(bg[np.isfinite(bg[:, 0])][:, :2], [0.2, 99.8], axis=0)
    c = np.asarray(coords, dtype=float).reshape(-1, 2)
    lo = np.minimum(bulk[0], c.min(axis=0))
    hi = np.maximum(bulk[1], c.max(axis=0))
    pad = 0.04 * (hi - lo)
    return [[float(lo[d] - pad[d]), float(hi[d] + pad[d])] for d in range(2)]


def plot_trajectory(layout, snapshots=None, *, steps=None, coords=None, name: str = "prompt", k: int = 1,
                    index=None, vocab_map=None, step: int | None = None, cluster_labels: bool = True,
                    show_background: bool = True, width: int | None = None, height: int | None = 600,
                    title: str | None = None):
    """2-D map of a training run on the Explore map's own projection: the vocabulary behind it (``vocab_map``, a
    fitted :class:`~analyzer.vocab_map.VocabularyMap` of the same ``layout``: its density and cluster names, as
    Explore draws them; without it, the layout's sample as points), the faint path of every virtual token, its
    start (hollow) and its place at ``step`` (default: the last snapshot), and a Play button animating from
    there to the end.

    layout:    the fitted 2-D :class:`~analyzer.projection.UmapLayout` the Explore map uses.
    snapshots: ``{step: "n_virtual d_model"}`` (``analyzer.training.read_snapshots``); or pass precomputed
               ``steps`` and ``coords`` (``"n_steps n_virtual 2"``, from ``project_trajectory``).
    index:     optional fitted ``NeighborIndex``: the hover of each frame then shows each token's nearest
               vocabulary token at that step.
    Traces: the background, ``cluster labels``, ``paths``, ``start``, then ``name`` (the virtual tokens at the
    chosen step; the animated trace).  Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    from ..projection import project_trajectory

    if layout.n_components != 2:
        from ..exceptions import AnalyzerError

        raise AnalyzerError(f"The trajectory map is 2-D; got a layout with n_components={layout.n_components}.")
    if coords is None:
        steps, coords = project_trajectory(layout, snapshots)
    coords = np.asarray(coords, dtype=float)
    steps = [int(s) for s in steps]
    if step is not None and int(step) not in steps:
        from ..exceptions import AnalyzerError

        raise AnalyzerError(f"Step {step} is not one of the run's snapshots; expected one of {steps[:5]}"
                            f"{' …' if len(steps) > 5 else ''} (from snapshots.safetensors).")
    at = steps.index(int(step)) if step is not None else len(steps) - 1
    n_virtual = coords.shape[1]
    vocab = layout.vocab_
    hover = [[f"<b>{html.escape(name)}·v{i}</b> step {s}" for i in range(n_virtual)] for s in steps]
    if index is not None and snapshots is not None:
        for si, s in enumerate(steps):
            sc, ids = index.kneighbors(np.asarray(snapshots[s], dtype=np.float32), k)
            hover[si] = [f"<b>{html.escape(name)}·v{i}</b> step {s}<br>" + "<br>".join(
                f"{html.escape(vocab.tokens[int(t)])} {float(v):.3f}" for t, v in zip(ids[i], sc[i]))
                for i in range(n_virtual)]

    extent = trajectory_extent(vocab_map, coords, layout.embedding_)
    fig = go.Figure()
    if show_background:
        add_background(fig, vocab_map, "density", False, extent, height, sample_coords=layout.embedding_,
                       plain=True)
        if cluster_labels and vocab_map is not None:
            units = text_units(extent, height)
            px = (units[0] / 6.5, units[1] / 16.0)
            taken = [(float(x), float(y), 9 * px[0], 9 * px[1]) for x, y in coords[at, :, :2]]
            # full strength (a faded name on the dark density read as washed-out white)
            add_cluster_labels(fig, vocab_map, False, faded=False, units=units, extent=extent, taken=taken)
    # paths: one trace, tokens separated by gaps
    px_, py_ = [], []
    for i in range(n_virtual):
        px_ += list(coords[:, i, 0]) + [None]
        py_ += list(coords[:, i, 1]) + [None]
    # the prompt in its Explore colour (the first prompt's); paths and the start paler, the step strong
    fig.add_trace(go.Scatter(x=px_, y=py_, mode="lines", name="paths", line={"color": color(0), "width": 1.2},
                             opacity=0.35, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=coords[0, :, 0], y=coords[0, :, 1], mode="markers", name=f"step {steps[0]}",
                             marker={"size": 9, "color": "#7a7f8c", "symbol": "diamond-open",
                                     "line": {"width": 1.5}},
                             hovertext=hover[0], hoverinfo="text"))
    # each label on a free side of its marker, clear of the step's and the start's markers (as on the Explore map)
    units = text_units(extent, height)
    sides, _ = place_marker_labels(coords[at, :, :2], [f"v{i}" for i in range(n_virtual)], units, extent=extent,
                                   taken=marker_boxes(np.concatenate([coords[at, :, :2], coords[0, :, :2]]), units),
                                   keep_all=True)
    fig.add_trace(go.Scatter(x=coords[at, :, 0], y=coords[at, :, 1], mode="markers+text", name=name,
                             marker={"size": 13, "color": color(0), "symbol": "diamond",
                                     "line": {"width": 1, "color": "white"}},
                             text=[f"v{i}" for i in range(n_virtual)], textposition=sides,
                             textfont={"size": 11, "color": "#333"}, hovertext=hover[at], hoverinfo="text"))
    moving = len(fig.data) - 1
    # frames as plain lists: plotly.js decodes the typed arrays plotly.py writes for numpy only in a figure's
    # data, not in its frames (a frame of typed arrays blanks the map)
    fig.frames = [go.Frame(name=str(s), traces=[moving],
                           data=[go.Scatter(x=coords[si, :, 0].tolist(), y=coords[si, :, 1].tolist(),
                                            hovertext=hover[si])])
                  for si, s in enumerate(steps)]
    play = {"type": "buttons", "showactive": False, "x": 1.0, "y": 1.0, "xanchor": "right", "yanchor": "bottom",
            "direction": "left", "pad": {"b": 4},
            "buttons": [{"label": f"Play from step {steps[at]}" if at < len(steps) - 1 else "Play from the start",
                         "method": "animate",
                         "args": [[str(s) for s in (steps[at:] if at < len(steps) - 1 else steps)],
                                  {"frame": {"duration": 300, "redraw": True}, "mode": "immediate",
                                   "transition": {"duration": 150}}]}]}
    fig.update_layout(**layout_args(width, height, title), updatemenus=[play], hovermode="closest",
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.01, "yanchor": "top"},
                      annotations=[{"text": f"<b>step {steps[at]}</b>", "xref": "paper", "yref": "paper", "x": 0.995,
                                    "y": 0.99, "xanchor": "right", "yanchor": "top", "showarrow": False,
                                    "font": {"size": 14, "color": "#222"}, "bgcolor": "rgba(255,255,255,0.85)"}])
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False, range=extent[0])
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False, range=extent[1])
    return fig


__all__ = ["plot_trajectory", "trajectory_extent"]

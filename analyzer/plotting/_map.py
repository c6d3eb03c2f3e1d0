"""The UMAP map: a background sample of the vocabulary, each prompt's virtual tokens and their nearest
vocabulary neighbours, coloured by prompt; searched tokens highlighted.  2-D (SVG, works without WebGL) or 3-D."""

from __future__ import annotations

import html

import numpy as np

from ._style import BACKGROUND, HIGHLIGHT, color, layout_args, short


def _hover_virtual(vocab, p, i: int, metric: str, top: int = 5) -> str:
    nb = "<br>".join(f"{html.escape(vocab.tokens[int(t)])}  {s:.3f}"
                     for t, s in zip(p.neighbor_ids[i][:top], p.neighbor_scores[i][:top]))
    return f"<b>{html.escape(p.name)} · v{i}</b><br>norm {p.norms[i]:.2f}<br><i>nearest ({metric})</i><br>{nb}"


def plot_prompt_map(pmap, vocab, *, show_background: bool = True, show_neighbors: bool = True,
                    neighbor_lines: bool = True, label_neighbors: bool = False, width: int | None = None,
                    height: int | None = 600, title: str | None = None):
    """Scatter of a :class:`~analyzer.projection.PromptMap` (from ``project_prompts``).

    Traces, in order: ``vocabulary sample`` (grey; hover = token), per prompt ``<name>`` (its virtual tokens,
    large, labelled ``v0 v1 …``; hover = norm and top neighbours with scores) and ``<name> neighbours`` (hover =
    token, rank, score; thin lines join each virtual token to its nearest neighbour), then ``search`` (the
    highlighted tokens, labelled).  ``show_background=False`` isolates the prompts and their neighbours.
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    three_d = pmap.n_components == 3
    Scatter = go.Scatter3d if three_d else go.Scatter

    def xyz(c: np.ndarray) -> dict:
        c = np.asarray(c, dtype=float).reshape(-1, pmap.n_components)
        d = {"x": c[:, 0], "y": c[:, 1]}
        if three_d:
            d["z"] = c[:, 2]
        return d

    def lines(a: np.ndarray, b: np.ndarray) -> dict:
        # segments a[i] → b[i], separated by NaN gaps
        n = a.shape[0]
        pts = np.full((3 * n, pmap.n_components), np.nan)
        pts[0::3], pts[1::3] = a, b
        return xyz(pts)

    fig = go.Figure()
    if show_background:
        toks = [html.escape(vocab.tokens[int(t)]) for t in pmap.background_ids]
        fig.add_trace(Scatter(**xyz(pmap.background_coords), mode="markers", name="vocabulary sample",
                              marker={"size": 2 if three_d else 4, "color": BACKGROUND}, text=toks,
                              hovertemplate="%{text}<extra>vocabulary</extra>"))
    for j, p in enumerate(pmap.prompts):
        c = color(j)
        n, k = p.neighbor_ids.shape
        if show_neighbors and k:
            nb_xy = p.neighbor_coords.reshape(n * k, -1)
            hov = [f"{html.escape(vocab.tokens[int(p.neighbor_ids[i, r])])}<br>#{r + 1} neighbour of "
                   f"{html.escape(p.name)} v{i}<br>{pmap.metric} {p.neighbor_scores[i, r]:.3f}"
                   for i in range(n) for r in range(k)]
            if neighbor_lines:
                fig.add_trace(Scatter(**lines(p.coords, p.neighbor_coords[:, 0]), mode="lines",
                                      line={"color": c, "width": 1}, opacity=0.45, hoverinfo="skip",
                                      showlegend=False, name=f"{p.name} links", legendgroup=p.name))
            mode = "markers+text" if label_neighbors else "markers"
            fig.add_trace(Scatter(**xyz(nb_xy), mode=mode, name=f"{p.name} neighbours", legendgroup=p.name,
                                  marker={"size": 4 if three_d else 7, "color": c, "opacity": 0.55,
                                          "symbol": "circle-open" if not three_d else "circle"},
                                  text=[short(vocab.tokens[int(t)]) for t in p.neighbor_ids.ravel()],
                                  textposition="top center", hovertext=hov, hoverinfo="text"))
        fig.add_trace(Scatter(**xyz(p.coords), mode="markers+text", name=p.name, legendgroup=p.name,
                              marker={"size": 7 if three_d else 13, "color": c, "symbol": "diamond",
                                      "line": {"width": 1, "color": "white"}},
                              text=[f"v{i}" for i in range(n)], textposition="middle right",
                              hovertext=[_hover_virtual(vocab, p, i, pmap.metric) for i in range(n)],
                              hoverinfo="text"))
    if pmap.highlight_ids.size:
        fig.add_trace(Scatter(**xyz(pmap.highlight_coords), mode="markers+text", name="search",
                              marker={"size": 8 if three_d else 14, "color": HIGHLIGHT, "symbol": "x" if three_d
                                      else "star"},
                              text=[short(vocab.tokens[int(t)]) for t in pmap.highlight_ids],
                              textposition="bottom center", hoverinfo="text",
                              hovertext=[f"{html.escape(vocab.tokens[int(t)])} (id {int(t)})"
                                         for t in pmap.highlight_ids]))
    fig.update_layout(**layout_args(width, height, title), legend={"itemsizing": "constant"},
                      hoverlabel={"align": "left"})
    if three_d:
        fig.update_layout(scene={"xaxis": {"showticklabels": False, "title": ""},
                                 "yaxis": {"showticklabels": False, "title": ""},
                                 "zaxis": {"showticklabels": False, "title": ""}})
    else:
        fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False)
        fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False, scaleanchor="x", scaleratio=1)
    return fig

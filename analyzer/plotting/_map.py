"""The UMAP map: the vocabulary as background (a density layer of every token, or WebGL points, with cluster
labels; it never takes the hover or the click), each prompt's virtual tokens and their nearest vocabulary
neighbours, coloured by prompt; one virtual token can be *isolated* (its k neighbours linked and labelled with
their true cosine, everything else dimmed); searched tokens highlighted; once a prompt's importance is known,
its virtual tokens sized by it.  2-D or 3-D."""

from __future__ import annotations

import html

import numpy as np

from ._map_layers import (LABEL_SIDES, add_background, add_cluster_labels, declutter, marker_boxes,
                          place_marker_labels, spread_angles, text_units)
from ._style import HIGHLIGHT, color, layout_args, short

DIM = 0.12          # opacity of what an isolation leaves out
#: marker diameters (px) of the virtual tokens: (default, smallest and largest when sized by importance)
SIZES_2D, SIZES_3D = (13, 8, 30), (7, 4, 14)
#: the one norm unit of the map, its hover and the neighbour table: a virtual token's L2 norm over the median
#: L2 norm of the vocabulary's token embeddings (scale-free: 1.0 is a typical token, on any model)
NORM_UNIT = "×median"


def norm_text(norm: float, median_norm: float | None) -> str:
    """A virtual token's norm in the map's one unit (:data:`NORM_UNIT`), or the raw L2 norm when the vocabulary's
    median norm is not known."""
    if median_norm and median_norm > 0:
        return f"norm {norm / median_norm:.2f} {NORM_UNIT}"
    return f"L2 norm {norm:.2f}"


def _hover_virtual(vocab, p, i: int, metric: str, name: str, top: int = 5, median_norm: float | None = None) -> str:
    cos = p.neighbor_cosines
    nb = "<br>".join(f"{html.escape(vocab.tokens[int(t)])}  {s:.3f}" + (f" (cos {cos[i, r]:.2f})"
                                                                       if cos is not None and metric != "cosine"
                                                                       else "")
                     for r, (t, s) in enumerate(zip(p.neighbor_ids[i][:top], p.neighbor_scores[i][:top])))
    return (f"<b>{html.escape(name)}·v{i}</b><br>{norm_text(float(p.norms[i]), median_norm)}<br>"
            f"<i>nearest ({metric})</i><br>{nb}<br><i>click to isolate</i>")


def virtual_labels(pmap, names, units, extent=None) -> tuple[list[list[str]], list[list[str]], list[tuple]]:
    """``(texts, sides, boxes)``: per prompt, the text beside each virtual token -- ``vN`` with one prompt; with
    several, ``prompt·vN`` (which prompt, at a glance) -- and the side of its marker it is written on
    (:func:`place_marker_labels`, position by position across the prompts, clear of every virtual token's and
    search star's marker and inside ``extent``).  Where no side is free, one prompt's label is written on the right
    all the same (a number is small, and every position stays named); with several prompts it is left out (the
    hover always names it).  ``boxes``: the labels' boxes in data units, which the cluster names keep clear of."""
    one = len(pmap.prompts) < 2
    order = sorted(((i, j) for j, p in enumerate(pmap.prompts) for i in range(p.coords.shape[0])))
    pts = [pmap.prompts[j].coords[i, :2] for i, j in order]
    labels = [_own_label(names, j, i, not one) for i, j in order]
    markers = marker_boxes(np.concatenate([p.coords[:, :2] for p in pmap.prompts]), units)
    if pmap.highlight_ids.size:
        markers += marker_boxes(np.asarray(pmap.highlight_coords)[:, :2], units)
    sides_, boxes = place_marker_labels(pts, labels, units, extent=extent, taken=markers, keep_all=one)
    texts = [[""] * p.coords.shape[0] for p in pmap.prompts]
    sides = [[LABEL_SIDES[0]] * p.coords.shape[0] for p in pmap.prompts]
    for (i, j), t, side in zip(order, labels, sides_):
        if side is not None:
            texts[j][i], sides[j][i] = t, side
    return texts, sides, boxes


def importance_values(reading) -> tuple[np.ndarray, np.ndarray]:
    """``(removal ΔNLL "n", matters "n" bool)`` of one prompt's importance reading: an
    :class:`~analyzer.faithfulness.ImportanceResult`, its ``to_dict()``, or plain per-position values (then
    nothing is marked as mattering)."""
    if isinstance(reading, dict) and "positions" in reading:
        from ..faithfulness._importance_result import ImportanceResult

        reading = ImportanceResult.from_dict(reading)
    positions = getattr(reading, "positions", None)
    if positions is None:
        v = np.asarray(reading, dtype=float).ravel()
        return v, np.zeros(v.size, dtype=bool)
    if any(p.removed is None for p in positions):
        raise ValueError("Sizing the map by importance needs the 'removed' replacement of every position; this "
                         "reading was run without it.")
    return (np.array([float(p.removed.delta_nll) for p in positions]),
            np.array([bool(p.significant) for p in positions]))


def importance_sizes(values, vmax: float, smallest: float, largest: float) -> np.ndarray:
    """Marker diameters whose *area* grows linearly with ``values`` clipped at 0: ``smallest`` at 0 or below (and
    for NaN), ``largest`` at ``vmax`` and above; all ``smallest`` when ``vmax <= 0``."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=float), nan=0.0), 0.0, None)
    frac = np.clip(v / vmax, 0.0, 1.0) if vmax > 0 else np.zeros_like(v)
    return np.sqrt(smallest ** 2 + (largest ** 2 - smallest ** 2) * frac)


def _importance_of(importance, pmap) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """One ``(values, matters)`` or None per prompt of ``pmap``; lengths checked."""
    if importance is None:
        return [None] * len(pmap.prompts)
    readings = list(importance)
    if len(readings) != len(pmap.prompts):
        raise ValueError(f"importance has {len(readings)} entries but the map holds {len(pmap.prompts)} prompts; "
                         f"give one per prompt (None where unknown).")
    out = []
    for p, r in zip(pmap.prompts, readings):
        if r is None:
            out.append(None)
            continue
        v, sig = importance_values(r)
        n = p.coords.shape[0]
        if v.size != n:
            raise ValueError(f"The importance reading of {p.name!r} has {v.size} positions but the prompt has {n} "
                             f"virtual tokens.")
        out.append((v, sig))
    return out


def plot_prompt_map(pmap, vocab, *, vocab_map=None, show_background: bool = True, background_style: str = "density",
                    cluster_labels: bool = True, show_neighbors: bool = True, neighbor_lines: bool = True,
                    label_neighbors: bool = False, isolate: tuple[int, int] | None = None,
                    names=None, chosen: int | None = None, importance=None, median_norm: float | None = None,
                    width: int | None = None, height: int | None = 600, title: str | None = None):
    """Scatter of a :class:`~analyzer.projection.PromptMap` (from ``project_prompts``).

    ``vocab_map``: a fitted :class:`~analyzer.vocab_map.VocabularyMap` -- the background is then the whole
    vocabulary (``background_style="density"``: a density layer; ``"points"``: every token as a WebGL point;
    3-D: points) with its cluster labels; without it, the layout's sample as points.  The density is binned on
    the view itself (the whole map, or the zoom of an isolation), one cell per 4 px.  Background traces skip the
    hover and take no clicks.  Trace order, bottom to top: the background, ``cluster labels`` (a text trace, so
    virtual tokens are drawn above it; a name that would cover a virtual token is left out), then the prompts.

    Traces per prompt ``<name>`` (virtual tokens, customdata ``[prompt, position]``; hover = norm and top
    neighbours) and ``<name> neighbours`` (customdata ``[prompt, position, rank]``; thin lines join each virtual
    token to its nearest neighbour), then ``search`` (highlighted tokens).  Each virtual token is written ``vN``
    beside its marker; with several prompts ``prompt·vN`` (labels that would overlap left out).
    ``isolate=(prompt, position)``: that virtual token's k neighbours linked to it and labelled ``token
    cosine`` (one label per neighbour, placed so that no two collide), the rest dimmed.  ``label_neighbors``: the nearest neighbour of each virtual token labelled (labels that would
    collide are left out).  ``names``: display names per prompt (default: the prompts' names).  ``chosen``: a
    token id drawn as a labelled star.  ``importance``: one entry per prompt, None where unknown, else its
    importance reading (an :class:`~analyzer.faithfulness.ImportanceResult`, its ``to_dict()`` or the per-position
    removal ΔNLL): that prompt's virtual tokens get a marker *area* growing linearly with the removal ΔNLL clipped
    at 0 (one scale for every prompt on the map; :func:`importance_sizes`), positions whose removal matters
    (q < α) a black outline, the value in the hover, and a legend entry says so; without it the look is
    unchanged.  ``median_norm``: the vocabulary's median token norm (``NeighborIndex.median_norm_``): the hover
    then gives norms in the map's one unit, ×median (:func:`norm_text`).  Returns a
    ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    three_d = pmap.n_components == 3
    Scatter = go.Scatter3d if three_d else go.Scatter
    names = list(names) if names is not None else [p.name for p in pmap.prompts]
    if isolate is not None and not (0 <= isolate[0] < len(pmap.prompts)
                                    and 0 <= isolate[1] < pmap.prompts[isolate[0]].coords.shape[0]):
        isolate = None

    def xyz(c: np.ndarray) -> dict:
        c = np.asarray(c, dtype=float).reshape(-1, pmap.n_components)
        d = {"x": c[:, 0], "y": c[:, 1]}
        if three_d:
            d["z"] = c[:, 2]
        return d

    def lines(a: np.ndarray, b: np.ndarray) -> dict:
        # segments a[i] → b[i], separated by NaN gaps
        a = np.asarray(a, dtype=float).reshape(-1, pmap.n_components)
        b = np.asarray(b, dtype=float).reshape(-1, pmap.n_components)
        pts = np.full((3 * a.shape[0], pmap.n_components), np.nan)
        pts[0::3], pts[1::3] = a, b
        return xyz(pts)

    imp = _importance_of(importance, pmap)
    known = [np.clip(np.nan_to_num(r[0], nan=0.0), 0, None) for r in imp if r is not None]
    vmax = float(max((k.max() for k in known if k.size), default=0.0))
    base, smallest, largest = SIZES_3D if three_d else SIZES_2D
    fig = go.Figure()
    annotations: list[dict] = []
    extent = _extent(pmap, vocab_map)
    if isolate is not None and not three_d:   # zoom onto the isolated token and its neighbours (Projector-like)
        extent = _zoom(extent, pmap.prompts[isolate[0]], isolate[1])
    units = text_units(extent, height)
    if three_d:
        vlabels = [[_own_label(names, j, i, len(pmap.prompts) > 1) for i in range(p.coords.shape[0])]
                   for j, p in enumerate(pmap.prompts)]
        vsides, vboxes = [LABEL_SIDES[0]] * len(pmap.prompts), []
    else:
        vlabels, vsides, vboxes = virtual_labels(pmap, names, units, extent)
    if show_background:
        add_background(fig, vocab_map, background_style, three_d, extent, height,
                       sample_coords=pmap.background_coords)
        if cluster_labels and vocab_map is not None:
            px = (units[0] / 6.5, units[1] / 16.0)
            taken = [(float(x), float(y), 9 * px[0], 9 * px[1]) for p in pmap.prompts for x, y in p.coords[:, :2]]
            if isolate is not None:     # the isolated token, its neighbours and their labels stay clear too
                taken += isolation_boxes(pmap, vocab, isolate, names, units)
            else:
                taken += vboxes
            taken += search_boxes(pmap, vocab, chosen, units)
            add_cluster_labels(fig, vocab_map, three_d, faded=isolate is not None, units=units, extent=extent,
                               taken=taken)
    several = len(pmap.prompts) > 2
    for j, p in enumerate(pmap.prompts):
        c = color(j)
        n, k = p.neighbor_ids.shape
        op_v = np.ones(n)
        if isolate is not None:
            op_v[:] = DIM
            if isolate[0] == j:
                op_v[isolate[1]] = 0.0  # drawn by the isolation traces
        if show_neighbors and k:
            nb_xy = p.neighbor_coords.reshape(n * k, -1)
            hov = [f"{html.escape(vocab.tokens[int(p.neighbor_ids[i, r])])}<br>#{r + 1} neighbour of "
                   f"{html.escape(names[j])} v{i}<br>{pmap.metric} {p.neighbor_scores[i, r]:.3f}"
                   for i in range(n) for r in range(k)]
            if neighbor_lines and isolate is None and not several:  # many prompts: links only on isolation
                fig.add_trace(Scatter(**lines(p.coords, p.neighbor_coords[:, 0]), mode="lines",
                                      line={"color": c, "width": 1}, opacity=0.45, hoverinfo="skip",
                                      showlegend=False, name=f"{names[j]} links", legendgroup=names[j]))
            op_n = np.repeat(op_v, k) * (0.55 if isolate is None else 1.0)
            fig.add_trace(Scatter(**xyz(nb_xy), mode="markers", name=f"{names[j]} neighbours",
                                  legendgroup=names[j],
                                  marker={"size": 4 if three_d else 7, "color": c,
                                          **({} if three_d else {"opacity": op_n.tolist()}),
                                          "symbol": "circle-open" if not three_d else "circle"},
                                  customdata=[[j, i, r] for i in range(n) for r in range(k)],
                                  hovertext=hov, hoverinfo="text"))
            if label_neighbors and isolate is None:
                _first_labels(annotations, vocab, p, three_d, c, units)
        show_v = isolate is None
        hover = [_hover_virtual(vocab, p, i, pmap.metric, names[j], median_norm=median_norm) for i in range(n)]
        size, outline = base, {"width": 1, "color": "white"}
        if imp[j] is not None:
            values, sig = imp[j]
            size = importance_sizes(values, vmax, smallest, largest).round(2).tolist()
            outline = {"width": 2 if three_d else [2.5 if s else 1 for s in sig],   # 3-D: one width only
                       "color": ["#111111" if s else "white" for s in sig]}
            hover = [h.replace("<br><i>click", f"<br>removal ΔNLL {values[i]:+.3f}"
                               + (" (matters)" if sig[i] else "") + "<br><i>click") for i, h in enumerate(hover)]
        fig.add_trace(Scatter(**xyz(p.coords), mode="markers+text" if show_v else "markers", name=names[j],
                              legendgroup=names[j],
                              marker={"size": size, "color": c, "symbol": "diamond",
                                      **({} if three_d else {"opacity": op_v.tolist()}),
                                      "line": outline},
                              text=vlabels[j], textposition=vsides[j],
                              textfont={"size": 11, "color": "#333"},
                              customdata=[[j, i] for i in range(n)],
                              hovertext=hover, hoverinfo="text"))
    if known:
        _importance_legend(fig, Scatter, three_d, vmax, any(r[1].any() for r in imp if r is not None))
    if isolate is not None:
        _isolation(fig, annotations, pmap, vocab, isolate, names, Scatter, three_d, lines, xyz, units, median_norm)
    if pmap.highlight_ids.size:
        hl = [int(t) for t in pmap.highlight_ids]
        fig.add_trace(Scatter(**xyz(pmap.highlight_coords), mode="markers+text", name="search",
                              marker={"size": 8 if three_d else 12, "color": HIGHLIGHT, "symbol": "x" if three_d
                                      else "star", "opacity": 0.9},
                              text=_search_texts(vocab, hl, chosen),
                              textposition="bottom center", hoverinfo="text",
                              hovertext=[f"{html.escape(vocab.tokens[t])} (id {t})" for t in hl]))
    lay = layout_args(width, height, title)
    lay["margin"] = {**lay["margin"], "b": 10}
    fig.update_layout(**lay, hoverlabel={"align": "left"}, hovermode="closest", dragmode="pan",
                      legend={"itemsizing": "constant", "orientation": "h", "x": 0, "xanchor": "left",
                              "y": -0.01, "yanchor": "top", "font": {"size": 12}},
                      # a new view for each isolation (its zoom applies), the user's zoom kept otherwise
                      uirevision="map" if isolate is None else f"isolate-{isolate[0]}-{isolate[1]}")
    if three_d:
        rng = _extent(pmap, vocab_map, dims=3)
        axis = {"showticklabels": False, "title": "", "showbackground": False, "gridcolor": "rgba(0,0,0,0.06)"}
        fig.update_layout(scene={"xaxis": {**axis, "range": rng[0]}, "yaxis": {**axis, "range": rng[1]},
                                 "zaxis": {**axis, "range": rng[2]}, "aspectmode": "cube",
                                 "annotations": [a for a in annotations if "z" in a]})
    else:
        fig.update_layout(annotations=annotations)
        fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False, range=extent[0])
        fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False, range=extent[1])
    return fig


def _importance_legend(fig, Scatter, three_d: bool, vmax: float, any_sig: bool) -> None:
    """A legend-only entry saying what the virtual tokens' size (and outline) means."""
    empty = {"x": [None], "y": [None], **({"z": [None]} if three_d else {})}
    text = (f"size: importance (removal ΔNLL clipped at 0; largest {vmax:+.3f})" if vmax > 0 else
            "size: importance (no removal raises the NLL)")
    if any_sig:
        text += "; outlined: removal matters more than chance"
    fig.add_trace(Scatter(**empty, mode="markers", name=text, hoverinfo="skip", showlegend=True,
                          marker={"size": 10, "color": "rgba(120,120,120,0.6)", "symbol": "diamond",
                                  "line": {"width": 2 if any_sig else 1,
                                           "color": "#111111" if any_sig else "white"}}))


def _extent(pmap, vocab_map, dims: int = 2) -> list[list[float]]:
    """Axis ranges holding the bulk of the background (0.2-99.8 percentiles) and every prompt point."""
    if vocab_map is not None:
        pts = [vocab_map.bulk_range(dims)]
    else:
        bg = pmap.background_coords
        pts = [np.percentile(bg[np.isfinite(bg[:, 0])][:, :dims], [0.2, 99.8], axis=0)]
    for p in pmap.prompts:
        c = np.concatenate([p.coords[:, :dims], p.neighbor_coords.reshape(-1, p.coords.shape[1])[:, :dims]])
        pts.append(np.stack([c.min(axis=0), c.max(axis=0)]))
    lo = np.min([q[0] for q in pts], axis=0)
    hi = np.max([q[1] for q in pts], axis=0)
    pad = 0.04 * (hi - lo)
    return [[float(lo[d] - pad[d]), float(hi[d] + pad[d])] for d in range(dims)]


def _zoom(extent, p, i: int, *, pad: float = 0.35, least: float = 0.18) -> list[list[float]]:
    """Axis ranges around virtual token ``i`` of ``p`` and its neighbours: their bounding box padded by ``pad``
    of its size, at least ``least`` of the full ``extent`` per axis, inside it."""
    pts = np.concatenate([p.coords[i:i + 1, :2], p.neighbor_coords[i][:, :2]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    out = []
    for d in range(2):
        full = extent[d][1] - extent[d][0]
        size = max((hi[d] - lo[d]) * (1 + 2 * pad), least * full)
        mid = (lo[d] + hi[d]) / 2
        out.append([float(mid - size / 2), float(mid + size / 2)])
    return out


def _first_labels(annotations, vocab, p, three_d: bool, c: str, units) -> None:
    """Label each virtual token's nearest neighbour, leaving out labels that would collide."""
    xy = p.neighbor_coords[:, 0]
    texts = [short(vocab.tokens[int(t)]) for t in p.neighbor_ids[:, 0]]
    keep = np.ones(len(texts), dtype=bool) if three_d else declutter(xy, texts, char_w=units[0], line_h=units[1])
    for i in np.flatnonzero(keep):
        a = {"x": float(xy[i, 0]), "y": float(xy[i, 1]), "text": html.escape(texts[i]), "showarrow": False,
             "yshift": 11, "font": {"size": 11, "color": c}, "bgcolor": "rgba(255,255,255,0.75)"}
        if three_d:
            a["z"] = float(p.neighbor_coords[i, 0, 2])
            a.pop("yshift")
        annotations.append(a)


def _isolation(fig, annotations, pmap, vocab, isolate, names, Scatter, three_d: bool, lines, xyz, units,
               median_norm=None) -> None:
    j, i = isolate
    p = pmap.prompts[j]
    c = color(j)
    k = p.neighbor_ids.shape[1]
    v = p.coords[i]
    nbc = p.neighbor_coords[i]
    cos = p.neighbor_cosines[i] if p.neighbor_cosines is not None else p.neighbor_scores[i]
    fig.add_trace(Scatter(**lines(np.repeat(v[None], k, axis=0), nbc), mode="lines", hoverinfo="skip",
                          line={"color": c, "width": 2}, opacity=0.8, showlegend=False,
                          name=f"{names[j]} v{i} links"))
    toks = [vocab.tokens[int(t)] for t in p.neighbor_ids[i]]
    fig.add_trace(Scatter(**xyz(nbc), mode="markers+text" if three_d else "markers",
                          name=f"{names[j]} v{i} neighbours", showlegend=False,
                          marker={"size": 6 if three_d else 11, "color": c, "line": {"width": 1, "color": "white"}},
                          text=[short(t) for t in toks] if three_d else None, textposition="top center",
                          customdata=[[j, i, r] for r in range(k)],
                          hovertext=[f"{html.escape(t)}<br>#{r + 1} neighbour of {html.escape(names[j])} v{i}<br>"
                                     f"{pmap.metric} {p.neighbor_scores[i, r]:.3f} · cosine {cos[r]:.3f}"
                                     for r, t in enumerate(toks)], hoverinfo="text"))
    own = _own_label(names, j, i)
    fig.add_trace(Scatter(**xyz(v[None]), mode="markers+text", name=f"{names[j]} v{i}", showlegend=False,
                          marker={"size": 9 if three_d else 18, "color": c, "symbol": "diamond",
                                  "line": {"width": 2, "color": "#222"}},
                          text=[html.escape(own)], textposition="middle right",
                          textfont={"size": 13, "color": "#222"}, customdata=[[j, i]],
                          hovertext=[_hover_virtual(vocab, p, i, pmap.metric, names[j], top=k, median_norm=median_norm)
                                     .replace("click to isolate", "click again to leave")], hoverinfo="text"))
    if three_d:
        return
    # one label per neighbour, "token  cosine", pushed outwards from the virtual token with an arrow to its
    # neighbour, each at the first place (direction, then distance) where it overlaps no label, no marker and
    # not the virtual token's own name: the numbers never sit on one another or on a token
    texts = _isolation_texts(toks, cos)
    for r, (ax, ay) in enumerate(place_isolation_labels(v[:2], nbc[:, :2], texts, units, own=own)):
        annotations.append({"x": float(nbc[r, 0]), "y": float(nbc[r, 1]),
                            "text": f"<b>{html.escape(short(toks[r], 18))}</b>  "
                                    f"<span style='color:{c}'>{cos[r]:.2f}</span>",
                            "showarrow": True, "arrowhead": 0, "arrowwidth": 1, "arrowcolor": "rgba(60,60,60,0.6)",
                            "ax": float(ax), "ay": float(ay), "font": {"size": 12, "color": "#222"},
                            "bgcolor": "rgba(255,255,255,0.9)"})


def _search_texts(vocab, hl: list[int], chosen) -> list[str]:
    """The labels of the search stars: the chosen token's, or every one when there are at most five."""
    return [short(vocab.tokens[t]) if t == chosen or len(hl) <= 5 else "" for t in hl]


def search_boxes(pmap, vocab, chosen, units) -> list[tuple[float, float, float, float]]:
    """The boxes (data units) of the search stars and their labels, written below them."""
    if not pmap.highlight_ids.size:
        return []
    sy = units[1] / 16.0
    xy = np.asarray(pmap.highlight_coords)[:, :2]
    out = marker_boxes(xy, units)
    for (x, y), t in zip(xy, _search_texts(vocab, [int(t) for t in pmap.highlight_ids], chosen)):
        if t:
            out.append((float(x), float(y) - 8 * sy - units[1] / 2, len(t) * units[0] / 2, units[1] / 2))
    return out


def _own_label(names, j: int, i: int, several: bool = True) -> str:
    """A virtual token's label: ``prompt·vN``, or ``vN`` where one prompt is drawn (``several`` False)."""
    return f"{names[j]}·v{i}" if several else f"v{i}"


def _isolation_texts(toks, cos) -> list[str]:
    return [f"{short(t, 18)}  {cs:.2f}" for t, cs in zip(toks, cos)]


def isolation_boxes(pmap, vocab, isolate, names, units) -> list[tuple[float, float, float, float]]:
    """The boxes ``(x, y, half width, half height)`` in data units that the isolation view writes on: the
    isolated token, its name, its neighbours and their labels where :func:`place_isolation_labels` puts them (the
    cluster names keep clear of all of them)."""
    j, i = isolate
    p = pmap.prompts[j]
    v, nbc = p.coords[i][:2], p.neighbor_coords[i][:, :2]
    cos = p.neighbor_cosines[i] if p.neighbor_cosines is not None else p.neighbor_scores[i]
    texts = _isolation_texts([vocab.tokens[int(t)] for t in p.neighbor_ids[i]], cos)
    own = _own_label(names, j, i)
    sx, sy = units[0] / 6.5, units[1] / 16.0                        # data units per pixel
    w = len(own) * 7.8
    boxes = [(float(v[0]), float(v[1]), 12 * sx, 12 * sy),
             (float(v[0] + (14 + w / 2) * sx), float(v[1]), (w / 2 + 2) * sx, 10 * sy)]
    boxes += [(float(q[0]), float(q[1]), 7 * sx, 7 * sy) for q in nbc]
    for q, t, (ax, ay) in zip(nbc, texts, place_isolation_labels(v, nbc, texts, units, own=own)):
        hw, hh = len(t) * LABEL_CHAR_PX / 2 + 4, LABEL_LINE_PX / 2
        boxes.append((float(q[0] + ax * sx), float(q[1] - ay * sy), hw * sx, hh * sy))
    return boxes


#: pixel size of one character and one line of an isolation label (12 px font, bold token)
LABEL_CHAR_PX, LABEL_LINE_PX = 7.4, 18.0


def place_isolation_labels(v, nb, texts, units, *, own: str = "") -> list[tuple[float, float]]:
    """Where the label of each neighbour ``nb[r]`` of the isolated virtual token at ``v`` goes, as the
    annotation's ``(ax, ay)`` pixel offset from its neighbour: pushed out from ``v`` along the neighbour's own
    direction (directions spread apart, :func:`spread_angles`), at the first of a few directions and distances
    where its box overlaps no label placed before it, no neighbour marker, the virtual token and its own name
    (``own``, written right of it).  Boxes in pixels: ``len(text) * 7.4`` by 18."""
    span = np.array([units[0] / 6.5, units[1] / 16.0])             # data units per pixel, x and y

    def screen(xy):                                                # pixels, y downwards
        return np.array([xy[0] / span[0], -xy[1] / span[1]])

    vp = screen(v)
    taken = [(vp[0], vp[1], 12.0, 12.0)]                          # the diamond
    if own:
        w = len(own) * 7.8
        taken.append((vp[0] + 14 + w / 2, vp[1], w / 2 + 2, 10.0))
    pts = [screen(q) for q in nb]
    taken += [(q[0], q[1], 7.0, 7.0) for q in pts]
    base = spread_angles(np.array([np.arctan2(-(q[1] - vp[1]), q[0] - vp[0]) for q in pts]))
    out = []
    for r, (q, t) in enumerate(zip(pts, texts)):
        hw, hh = len(t) * LABEL_CHAR_PX / 2 + 4, LABEL_LINE_PX / 2
        best = None
        for radius in (36, 54, 74, 96, 120):
            for turn in (0, 25, -25, 50, -50, 80, -80, 120, -120, 180):
                a = base[r] + np.radians(turn)
                ax, ay = radius * np.cos(a), -radius * np.sin(a)
                cx, cy = q[0] + ax, q[1] + ay
                if not any(abs(cx - x) < hw + w and abs(cy - y) < hh + h for x, y, w, h in taken):
                    best = (ax, ay)
                    break
            if best is not None:
                break
        if best is None:                                           # crowded all round: the farthest spot
            best = (120 * np.cos(base[r]), -120 * np.sin(base[r]))
        taken.append((q[0] + best[0], q[1] + best[1], hw, hh))
        out.append((float(best[0]), float(best[1])))
    return out


__all__ = ["plot_prompt_map", "virtual_labels", "place_isolation_labels", "norm_text", "importance_values",
           "importance_sizes", "declutter", "spread_angles", "NORM_UNIT"]

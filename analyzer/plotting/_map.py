"""The UMAP map: the vocabulary as background (a density layer of every token, or WebGL points, with cluster
labels; it never takes the hover or the click), each prompt's virtual tokens and their nearest vocabulary
neighbours, coloured by prompt; one virtual token can be *isolated* (its k neighbours linked and labelled with
their true cosine, everything else dimmed); searched tokens highlighted; once a prompt's importance is known,
its virtual tokens sized by it.  2-D or 3-D."""

from __future__ import annotations

import html

import numpy as np

from ._style import BACKGROUND, HIGHLIGHT, color, layout_args, short

DIM = 0.12          # opacity of what an isolation leaves out
#: marker diameters (px) of the virtual tokens: (default, smallest and largest when sized by importance)
SIZES_2D, SIZES_3D = (13, 8, 30), (7, 4, 14)
DENSITY_SCALE = [[0.0, "rgba(235,237,242,0.0)"], [0.15, "rgb(225,228,236)"], [0.5, "rgb(190,196,210)"],
                 [1.0, "rgb(120,128,150)"]]


def _hover_virtual(vocab, p, i: int, metric: str, name: str, top: int = 5) -> str:
    cos = p.neighbor_cosines
    nb = "<br>".join(f"{html.escape(vocab.tokens[int(t)])}  {s:.3f}" + (f" (cos {cos[i, r]:.2f})"
                                                                       if cos is not None and metric != "cosine"
                                                                       else "")
                     for r, (t, s) in enumerate(zip(p.neighbor_ids[i][:top], p.neighbor_scores[i][:top])))
    return (f"<b>{html.escape(name)} · v{i}</b><br>norm {p.norms[i]:.2f}<br><i>nearest ({metric})</i><br>{nb}"
            "<br><i>click to isolate</i>")


def declutter(xy, texts, *, char_w: float, line_h: float) -> np.ndarray:
    """Greedy collision avoidance for text labels centred at ``xy``: a boolean mask keeping, in order, each label
    whose box (``len(text) * char_w`` wide, ``line_h`` high, in data units) overlaps no label kept before it."""
    kept: list[tuple[float, float, float, float]] = []
    keep = np.zeros(len(texts), dtype=bool)
    for n, ((x, y), t) in enumerate(zip(np.asarray(xy, dtype=float)[:, :2], texts)):
        if not (np.isfinite(x) and np.isfinite(y)) or not t:
            continue
        hw, hh = len(t) * char_w / 2, line_h / 2
        if any(abs(x - kx) < hw + kw and abs(y - ky) < hh + kh for kx, ky, kw, kh in kept):
            continue
        kept.append((x, y, hw, hh))
        keep[n] = True
    return keep


def spread_angles(angles: np.ndarray, min_sep: float = np.radians(28)) -> np.ndarray:
    """Directions (radians) for labels pushed out from a point: each label's own direction, moved apart so that
    no two are closer than ``min_sep`` (in the order of the directions, all the way round)."""
    a = np.mod(np.asarray(angles, dtype=float), 2 * np.pi)
    if a.size < 2:
        return a
    sep = min(min_sep, 2 * np.pi / a.size)
    order = np.argsort(a, kind="stable")
    out = a.copy()
    for prev, cur in zip(order[:-1], order[1:]):
        out[cur] = max(out[cur], out[prev] + sep)
    return out


def _text_units(extent, height: int | None, width_px: float = 900.0) -> tuple[float, float]:
    """Data units per character (11 px font: ~6.5 px wide) and per line (~16 px) on a plot of this extent."""
    h_px = max(200.0, float(height or 600) - 60.0)
    return (6.5 * (extent[0][1] - extent[0][0]) / width_px, 16.0 * (extent[1][1] - extent[1][0]) / h_px)


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
                    names=None, chosen: int | None = None, importance=None, width: int | None = None,
                    height: int | None = 600, title: str | None = None):
    """Scatter of a :class:`~analyzer.projection.PromptMap` (from ``project_prompts``).

    ``vocab_map``: a fitted :class:`~analyzer.vocab_map.VocabularyMap` -- the background is then the whole
    vocabulary (``background_style="density"``: a density layer; ``"points"``: every token as a WebGL point;
    3-D: points) with its cluster labels; without it, the layout's sample as points.  Background traces skip the
    hover and take no clicks.

    Traces per prompt ``<name>`` (virtual tokens, customdata ``[prompt, position]``; hover = norm and top
    neighbours) and ``<name> neighbours`` (customdata ``[prompt, position, rank]``; thin lines join each virtual
    token to its nearest neighbour), then ``search`` (highlighted tokens).  ``isolate=(prompt, position)``: that
    virtual token's k neighbours linked to it with their true cosine written on the links, labelled, the rest
    dimmed.  ``label_neighbors``: the nearest neighbour of each virtual token labelled (labels that would
    collide are left out).  ``names``: display names per prompt (default: the prompts' names).  ``chosen``: a
    token id drawn as a labelled star.  ``importance``: one entry per prompt, None where unknown, else its
    importance reading (an :class:`~analyzer.faithfulness.ImportanceResult`, its ``to_dict()`` or the per-position
    removal ΔNLL): that prompt's virtual tokens get a marker *area* growing linearly with the removal ΔNLL clipped
    at 0 (one scale for every prompt on the map; :func:`importance_sizes`), positions whose removal matters
    (q < α) a black outline, the value in the hover, and a legend entry says so; without it the look is
    unchanged.  Returns a ``plotly.graph_objects.Figure``; never shows it."""
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
    units = _text_units(extent, height)
    if show_background:
        _background(fig, pmap, vocab_map, background_style, three_d, Scatter)
        if cluster_labels and vocab_map is not None:
            _cluster_labels(fig, annotations, vocab_map, three_d, faded=isolate is not None, units=units,
                            extent=extent)
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
        show_v = isolate is None and not several
        hover = [_hover_virtual(vocab, p, i, pmap.metric, names[j]) for i in range(n)]
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
                              text=[f"v{i}" for i in range(n)], textposition="middle right",
                              textfont={"size": 11, "color": "#333"},
                              customdata=[[j, i] for i in range(n)],
                              hovertext=hover, hoverinfo="text"))
    if known:
        _importance_legend(fig, Scatter, three_d, vmax, any(r[1].any() for r in imp if r is not None))
    if isolate is not None:
        _isolation(fig, annotations, pmap, vocab, isolate, names, Scatter, three_d, lines, xyz, units)
    if pmap.highlight_ids.size:
        hl = [int(t) for t in pmap.highlight_ids]
        fig.add_trace(Scatter(**xyz(pmap.highlight_coords), mode="markers+text", name="search",
                              marker={"size": 8 if three_d else 12, "color": HIGHLIGHT, "symbol": "x" if three_d
                                      else "star", "opacity": 0.9},
                              text=[short(vocab.tokens[t]) if t == chosen or len(hl) <= 5 else "" for t in hl],
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


def _background(fig, pmap, vocab_map, style: str, three_d: bool, Scatter) -> None:
    import plotly.graph_objects as go

    if vocab_map is None:  # the layout's sample only
        c = np.asarray(pmap.background_coords, dtype=float)
        kw = {"x": c[:, 0], "y": c[:, 1], **({"z": c[:, 2]} if three_d else {})}
        fig.add_trace(Scatter(**kw, mode="markers", name="vocabulary sample", hoverinfo="skip",
                              marker={"size": 2 if three_d else 4, "color": BACKGROUND}))
        return
    c = vocab_map.coords_
    c = c[np.isfinite(c[:, 0])]
    n = c.shape[0]
    if three_d:
        if n > 60_000:  # a browser's WebGL scene stays responsive; the density is the same
            c = c[np.random.default_rng(0).choice(n, 60_000, replace=False)]
        fig.add_trace(go.Scatter3d(x=c[:, 0], y=c[:, 1], z=c[:, 2], mode="markers", hoverinfo="skip",
                                   name=f"vocabulary ({n:,} tokens)",
                                   marker={"size": 2, "color": "rgba(95,104,128,0.42)"}))
        return
    if style == "points":
        fig.add_trace(go.Scattergl(x=c[:, 0], y=c[:, 1], mode="markers", hoverinfo="skip",
                                   name=f"vocabulary ({n:,} tokens)",
                                   marker={"size": 2.5, "color": "rgba(120,128,150,0.25)"}))
        return
    z, xs, ys = vocab_map.density()
    z = np.log1p(z)
    z[z == 0] = np.nan
    fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, colorscale=DENSITY_SCALE, showscale=False, hoverinfo="skip",
                             zsmooth="best", name=f"vocabulary ({n:,} tokens)", showlegend=True))


def _cluster_labels(fig, annotations: list, vocab_map, three_d: bool, *, faded: bool, units, extent) -> None:
    """The clusters' labels at their centres, largest clusters first; a label overlapping one already placed,
    or not wholly inside the view (``extent``), is left out (2-D)."""
    colour = "rgba(70,76,92,0.45)" if faded else "rgba(45,50,65,0.95)"
    order = np.argsort(-np.asarray(vocab_map.sizes_), kind="stable")
    texts = [vocab_map.labels_[o] for o in order]
    cen = np.asarray(vocab_map.centers_)[order]
    keep = (np.arange(len(order)) < 12) if three_d else declutter(cen, texts, char_w=units[0], line_h=units[1])
    for c, text, k in zip(cen, texts, keep):
        if not k or not text:
            continue
        hw, hh = len(text) * units[0] / 2, units[1] / 2
        if not three_d and not (extent[0][0] + hw <= c[0] <= extent[0][1] - hw
                                and extent[1][0] + hh <= c[1] <= extent[1][1] - hh):
            continue
        a = {"x": float(c[0]), "y": float(c[1]), "text": html.escape(text), "showarrow": False,
             "font": {"size": 11, "color": colour}, "bgcolor": "rgba(255,255,255,0.6)", "borderpad": 1}
        if three_d:
            a["z"] = float(c[2])
        annotations.append(a)


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


def _isolation(fig, annotations, pmap, vocab, isolate, names, Scatter, three_d: bool, lines, xyz, units) -> None:
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
    fig.add_trace(Scatter(**xyz(v[None]), mode="markers+text", name=f"{names[j]} v{i}", showlegend=False,
                          marker={"size": 9 if three_d else 18, "color": c, "symbol": "diamond",
                                  "line": {"width": 2, "color": "#222"}},
                          text=[f"{short(names[j], 24)} · v{i}"], textposition="middle right",
                          textfont={"size": 13, "color": "#222"}, customdata=[[j, i]],
                          hovertext=[_hover_virtual(vocab, p, i, pmap.metric, names[j], top=k)
                                     .replace("click to isolate", "click again to leave")], hoverinfo="text"))
    if three_d:
        return
    # labels pushed outwards from the virtual token (an arrow to each neighbour), cosines on the links; a
    # cosine that would sit on another is left out (the side list has them all)
    span = np.array([units[0] / 6.5, units[1] / 16.0])          # data units per pixel, x and y
    mids = (nbc[:, :2] + v[None, :2]) / 2
    keep = declutter(mids, [f"{c:.2f}" for c in cos], char_w=units[0], line_h=units[1])
    angles = spread_angles(np.arctan2((nbc[:, 1] - v[1]) / span[1], (nbc[:, 0] - v[0]) / span[0]))
    for r in range(k):
        x, y = float(nbc[r, 0]), float(nbc[r, 1])
        radius = 38 + 14 * (r % 2)         # alternate lengths, so neighbours close together keep apart labels
        annotations.append({"x": x, "y": y, "text": f"<b>{html.escape(short(toks[r], 18))}</b>", "showarrow": True,
                            "arrowhead": 0, "arrowwidth": 1, "arrowcolor": "rgba(60,60,60,0.6)",
                            "ax": float(radius * np.cos(angles[r])), "ay": float(-radius * np.sin(angles[r])),
                            "font": {"size": 12, "color": "#222"}, "bgcolor": "rgba(255,255,255,0.88)"})
        if keep[r]:
            annotations.append({"x": float(mids[r, 0]), "y": float(mids[r, 1]), "text": f"{cos[r]:.2f}",
                                "showarrow": False, "font": {"size": 10, "color": c},
                                "bgcolor": "rgba(255,255,255,0.8)"})

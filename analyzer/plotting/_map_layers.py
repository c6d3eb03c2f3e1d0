"""The layers the Explore map and the training trajectory share: the vocabulary background (a density of every
token binned on the view itself, or WebGL points), the cluster names as a text trace drawn *beneath* the
prompts (annotations would sit above every trace and hide virtual tokens), and label placement (greedy
collision avoidance in data units)."""

from __future__ import annotations

import html

import numpy as np

from ._style import BACKGROUND

DENSITY_SCALE = [[0.0, "rgba(235,237,242,0.0)"], [0.15, "rgb(225,228,236)"], [0.5, "rgb(190,196,210)"],
                 [1.0, "rgb(120,128,150)"]]
#: one density cell every 4 px of the view (a 900 px wide plot gets 225 columns), whatever its range
CELL_PX = 4.0
PLOT_WIDTH_PX = 900.0
CLUSTER_TRACE = "cluster labels"


def text_units(extent, height: int | None, width_px: float = PLOT_WIDTH_PX) -> tuple[float, float]:
    """Data units per character (11 px font: ~6.5 px wide) and per line (~16 px) on a plot of this extent."""
    h_px = max(200.0, float(height or 600) - 60.0)
    return (6.5 * (extent[0][1] - extent[0][0]) / width_px, 16.0 * (extent[1][1] - extent[1][0]) / h_px)


def declutter(xy, texts, *, char_w: float, line_h: float, taken=()) -> np.ndarray:
    """Greedy collision avoidance for text labels centred at ``xy``: a boolean mask keeping, in order, each label
    whose box (``len(text) * char_w`` wide, ``line_h`` high, in data units) overlaps no label kept before it and
    none of the ``taken`` boxes ``(x, y, half width, half height)`` (markers, labels placed elsewhere)."""
    kept: list[tuple[float, float, float, float]] = [tuple(map(float, b)) for b in taken]
    keep = np.zeros(len(texts), dtype=bool)
    for n, ((x, y), t) in enumerate(zip(np.asarray(xy, dtype=float).reshape(-1, 2) if len(texts) else
                                        np.zeros((0, 2)), texts)):
        if not (np.isfinite(x) and np.isfinite(y)) or not t:
            continue
        hw, hh = len(t) * char_w / 2, line_h / 2
        if any(abs(x - kx) < hw + kw and abs(y - ky) < hh + kh for kx, ky, kw, kh in kept):
            continue
        kept.append((x, y, hw, hh))
        keep[n] = True
    return keep


#: where a virtual token's label may sit, in the order tried (plotly's ``textposition`` values)
LABEL_SIDES = ("middle right", "middle left", "top center", "bottom center")


def _label_box(x: float, y: float, text: str, side: str, units, px) -> tuple[float, float, float, float]:
    """The box ``(x, y, half width, half height)`` in data units of ``text`` written on ``side`` of a marker."""
    hw, hh = len(text) * units[0] / 2, units[1] / 2
    dx, dy = {"middle right": (9 * px[0] + hw, 0.0), "middle left": (-9 * px[0] - hw, 0.0),
              "top center": (0.0, 9 * px[1] + hh), "bottom center": (0.0, -9 * px[1] - hh)}[side]
    return x + dx, y + dy, hw, hh


def place_marker_labels(points, texts, units, *, extent=None, taken=(), keep_all: bool = False):
    """``(sides, boxes)``: for each marker at ``points[n]`` (data units) the side its label ``texts[n]`` is written
    on -- the first of :data:`LABEL_SIDES` where the label overlaps no label placed before it, none of the ``taken``
    boxes (markers) and, given ``extent``, stays inside the view -- or None where no side is free (``keep_all``:
    then the right side all the same).  ``boxes``: the placed labels' boxes ``(x, y, half width, half height)``."""
    px = np.array([units[0] / 6.5, units[1] / 16.0])                      # data units per pixel
    taken = list(taken)
    sides: list[str | None] = []
    placed: list[tuple] = []

    def inside(b) -> bool:
        return extent is None or (extent[0][0] <= b[0] - b[2] and b[0] + b[2] <= extent[0][1]
                                  and extent[1][0] <= b[1] - b[3] and b[1] + b[3] <= extent[1][1])

    for (x, y), t in zip(np.asarray(points, dtype=float).reshape(-1, 2), texts):
        side = None
        if t and np.isfinite(x) and np.isfinite(y):
            for cand in LABEL_SIDES:
                b = _label_box(x, y, t, cand, units, px)
                if inside(b) and not any(abs(b[0] - kx) < b[2] + kw and abs(b[1] - ky) < b[3] + kh
                                         for kx, ky, kw, kh in taken):
                    side = cand
                    break
            if side is None and keep_all:
                side = LABEL_SIDES[0]
            if side is not None:
                box = _label_box(x, y, t, side, units, px)
                taken.append(box)
                placed.append(box)
        sides.append(side)
    return sides, placed


def marker_boxes(points, units, half_px: float = 8.0) -> list[tuple[float, float, float, float]]:
    """Boxes ``(x, y, half width, half height)`` in data units of markers ``half_px`` pixels from centre to edge."""
    px = (units[0] / 6.5, units[1] / 16.0)
    return [(float(x), float(y), half_px * px[0], half_px * px[1])
            for x, y in np.asarray(points, dtype=float).reshape(-1, 2)[:, :2]]


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


def density_grid(extent, height: int | None, width_px: float = PLOT_WIDTH_PX) -> tuple[int, int]:
    """``(nx, ny)`` cells for a density on a view of ``height`` px: one cell per ``CELL_PX`` pixels, whatever
    the view's range (a zoomed view is binned again at the same pixel size, so it stays sharp)."""
    h_px = max(200.0, float(height or 600) - 60.0)
    return int(round(width_px / CELL_PX)), int(round(h_px / CELL_PX))


def density_trace(vocab_map, extent, height: int | None, name: str, *, plain: bool = False):
    """The whole vocabulary as a density layer over ``extent`` (the view): counts binned on the view, smoothed
    (more passes the further the view is zoomed in), log-scaled and sent as one byte per cell (0 = no token, drawn
    transparent).  ``plain``: as JSON lists instead of typed arrays (an animated figure: plotly.js drops a
    typed-array heatmap when it plays frames)."""
    import plotly.graph_objects as go

    full = np.asarray(vocab_map.bulk_range(2), dtype=float)
    zoom = max(1.0, float(full[1, 0] - full[0, 0]) / max(1e-9, float(extent[0][1] - extent[0][0])))
    # a zoomed view holds fewer tokens per cell: a little more smoothing, so it reads as a density and not as
    # scattered cells (5x zoom: 4 passes of 4 px cells, still 7x finer than the whole map's cells blown up)
    smooth = 2 + int(round(np.log2(zoom)))
    z, xs, ys = vocab_map.density(bins=density_grid(extent, height), smooth=smooth, extent=extent)
    z = np.log1p(z)
    top = float(z.max()) if z.size else 0.0
    z8 = np.where(z > 0, 1 + np.round(254 * z / top), 0).astype(np.uint8) if top > 0 else z.astype(np.uint8)
    if plain:
        xs, ys, z8 = np.round(xs, 5).tolist(), np.round(ys, 5).tolist(), z8.tolist()
    return go.Heatmap(x=xs, y=ys, z=z8, zmin=0, zmax=255, colorscale=DENSITY_SCALE, showscale=False,
                      hoverinfo="skip", zsmooth="best", name=name, showlegend=True)


def add_background(fig, vocab_map, style: str, three_d: bool, extent, height: int | None,
                   sample_coords=None, plain: bool = False) -> None:
    """The vocabulary behind the map: ``vocab_map`` (a fitted :class:`~analyzer.vocab_map.VocabularyMap`) as a
    density on the view (``style="density"``) or one WebGL point per token (``"points"``; 3-D: points, at most
    60,000); without it, the layout's ``sample_coords`` as points.  Never takes the hover or a click.
    ``plain``: the density as JSON lists (:func:`density_trace`)."""
    import plotly.graph_objects as go

    if vocab_map is None:  # the layout's sample only
        c = np.asarray(sample_coords, dtype=float)
        kw = {"x": c[:, 0], "y": c[:, 1], **({"z": c[:, 2]} if three_d else {})}
        scatter = go.Scatter3d if three_d else go.Scatter
        fig.add_trace(scatter(**kw, mode="markers", name="vocabulary sample", hoverinfo="skip",
                              marker={"size": 2 if three_d else 4, "color": BACKGROUND}))
        return
    c = vocab_map.coords_
    c = c[np.isfinite(c[:, 0])]
    n = c.shape[0]
    name = f"vocabulary ({n:,} tokens)"
    if three_d:
        if n > 60_000:  # a browser's WebGL scene stays responsive; the density is the same
            c = c[np.random.default_rng(0).choice(n, 60_000, replace=False)]
        fig.add_trace(go.Scatter3d(x=c[:, 0], y=c[:, 1], z=c[:, 2], mode="markers", hoverinfo="skip", name=name,
                                   marker={"size": 2, "color": "rgba(95,104,128,0.42)"}))
        return
    if style == "points":
        fig.add_trace(go.Scattergl(x=c[:, 0], y=c[:, 1], mode="markers", hoverinfo="skip", name=name,
                                   marker={"size": 2.5, "color": "rgba(120,128,150,0.25)"}))
        return
    fig.add_trace(density_trace(vocab_map, extent, height, name, plain=plain))


def add_cluster_labels(fig, vocab_map, three_d: bool, *, faded: bool, units, extent, taken=()) -> None:
    """The clusters' names at their centres as one text trace (``"cluster labels"``, no hover, no click), added
    *before* the prompts so their markers are drawn above it.  2-D: largest clusters first; a name overlapping one
    already placed or a ``taken`` box (virtual tokens), or not wholly inside the view, is left out.  3-D: the
    twelve largest."""
    import plotly.graph_objects as go

    order = np.argsort(-np.asarray(vocab_map.sizes_), kind="stable")
    texts = [vocab_map.labels_[o] for o in order]
    cen = np.asarray(vocab_map.centers_)[order]
    if three_d:
        keep = np.arange(len(order)) < 12
    else:
        keep = declutter(cen[:, :2], texts, char_w=units[0], line_h=units[1], taken=taken)
        for n, (c, text) in enumerate(zip(cen, texts)):
            hw, hh = len(text) * units[0] / 2, units[1] / 2
            if not (extent[0][0] + hw <= c[0] <= extent[0][1] - hw and extent[1][0] + hh <= c[1] <= extent[1][1] - hh):
                keep[n] = False
    keep &= np.array([bool(t) for t in texts], dtype=bool)
    if not keep.any():
        return
    sel = cen[keep]
    colour = "rgba(70,76,92,0.5)" if faded else "rgba(40,44,58,0.95)"
    font = {"size": 11, "color": colour}
    kw = {"x": sel[:, 0], "y": sel[:, 1]}
    if three_d:
        kw["z"] = sel[:, 2]
    else:   # a white halo instead of a box: legible on the density, and a box would hide markers beneath
        font["shadow"] = "1px 1px 1px white, -1px -1px 1px white, 1px -1px 1px white, -1px 1px 1px white"
    trace = (go.Scatter3d if three_d else go.Scatter)(
        **kw, mode="text", text=[html.escape(t) for t, k in zip(texts, keep) if k], textposition="middle center",
        textfont=font, hoverinfo="skip", showlegend=False, name=CLUSTER_TRACE)
    fig.add_trace(trace)


__all__ = ["declutter", "place_marker_labels", "marker_boxes", "LABEL_SIDES", "spread_angles", "text_units",
           "density_grid", "density_trace", "add_background", "add_cluster_labels", "DENSITY_SCALE", "CLUSTER_TRACE"]

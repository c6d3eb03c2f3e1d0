"""Prompt-to-prompt similarity as heat maps (one panel per measure), values written in the cells; and the relative
transfer of prompts between tasks as one more heat map."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ._style import layout_args, short_labels

TITLES = {"mean_vector": "cosine of mean vectors", "token_pairs": "mean token-pair cosine",
          "max_inner": "token-wise max inner product", "activation_overlap": "activated-neuron overlap (ON)"}
#: measures on a cosine's scale, drawn from -1 to 1; the others on their own range
BOUNDED = ("mean_vector", "token_pairs", "activation_overlap")


def plot_prompt_similarity(names: Sequence[str], matrices: Mapping[str, np.ndarray], *, width: int | None = None,
                           height: int | None = None, title: str | None = None):
    """Heat maps of ``matrices`` (any of :data:`TITLES`, e.g. from ``analyzer.decode.similarity``) over the prompts
    ``names``, two panels a row; cosine-like measures on one scale from -1 to 1.  Returns a
    ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = [k for k in TITLES if k in matrices]
    labels = axis_labels(names)
    cols = min(2, len(keys)) or 1
    rows = (len(keys) + cols - 1) // cols
    h = height if height is not None else 60 + 330 * rows
    # the x labels, slanted under each panel, and the next panel's title must fit in the gap between rows
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[TITLES[k] for k in keys], horizontal_spacing=0.2,
                        vertical_spacing=min(0.45, (label_depth(labels) + 36) / max(h - 110, 1)) if rows > 1 else 0.1)
    for i, k in enumerate(keys):
        r, c = i // cols + 1, i % cols + 1
        m = np.asarray(matrices[k], dtype=float)
        scale = {"zmin": -1, "zmax": 1} if k in BOUNDED else {}
        fig.add_trace(go.Heatmap(z=m.tolist(), x=labels, y=labels, colorscale="RdBu", reversescale=True, **scale,
                                 text=[[f"{v:.2f}" for v in row] for row in m], texttemplate="%{text}",
                                 hovertemplate="%{y} vs %{x}: %{z:.3f}<extra>" + TITLES[k] + "</extra>",
                                 showscale=False), r, c)
        fig.update_yaxes(autorange="reversed", row=r, col=c)
        fig.update_xaxes(tickangle=TICK_ANGLE, row=r, col=c)
    fig.update_layout(**layout_args(width, h, title, subplot_titles=True))
    return fig


#: the slant of the heat maps' x labels (degrees)
TICK_ANGLE = -30


def axis_labels(names: Sequence[str]) -> list[str]:
    """Whole prompt names as axis labels, a line per ``/`` part (``transfer-study/<br>question-type-random``):
    never cut, and no wider than their longest part."""
    return [n.replace("/", "/<br>") for n in short_labels(names, 60)]


def label_depth(labels: Sequence[str], char_px: float = 6.6, line_px: float = 15.0) -> float:
    """The height in px that x labels slanted by :data:`TICK_ANGLE` take under a panel (their longest line's
    slanted extent plus their lines)."""
    import math

    parts = [line for t in labels for line in t.split("<br>")] or [""]
    lines = max((t.count("<br>") + 1 for t in labels), default=1)
    return max(len(p) for p in parts) * char_px * math.sin(math.radians(abs(TICK_ANGLE))) + lines * line_px


def plot_transfer(names: Sequence[str], relative: np.ndarray, tasks_of: Sequence[str], *, width: int | None = None,
                  height: int | None = None, title: str | None = None):
    """Relative transfer: row ``i``, column ``j`` is prompt ``i``'s accuracy on the task of prompt ``j`` over prompt
    ``j``'s own accuracy there (1: as good as the prompt trained for it)."""
    import plotly.graph_objects as go

    m = np.asarray(relative, dtype=float)
    ylab = axis_labels(names)
    xlab = [f"{n}<br>({t})" for n, t in zip(axis_labels(names), tasks_of)]
    fig = go.Figure(go.Heatmap(z=m.tolist(), x=xlab, y=ylab, colorscale="Viridis", zmin=0,
                               zmax=max(1.0, float(np.nanmax(m)) if m.size else 1.0),
                               text=[[f"{v:.2f}" for v in row] for row in m], texttemplate="%{text}",
                               hovertemplate="%{y} on the task of %{x}: %{z:.3f}<extra>relative transfer</extra>"))
    fig.update_yaxes(autorange="reversed", title="prompt scored")
    fig.update_xaxes(title="on the task of (relative to that prompt)")
    title = title or "Relative transfer: each prompt on the task of each other prompt, over that prompt's own accuracy"
    fig.update_layout(**layout_args(width, height if height is not None else 160 + 34 * len(names), title))
    return fig

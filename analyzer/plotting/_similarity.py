"""Prompt-to-prompt similarity as heat maps (one panel per measure), values written in the cells."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ._style import layout_args, short

TITLES = {"mean_vector": "cosine of mean vectors", "token_pairs": "mean token-pair cosine"}


def plot_prompt_similarity(names: Sequence[str], matrices: Mapping[str, np.ndarray], *, width: int | None = None,
                           height: int | None = 360, title: str | None = None):
    """Heat maps of ``matrices`` (``{"mean_vector": "p p", "token_pairs": "p p"}``, e.g. from
    ``analyzer.ui._compare.prompt_similarity``) over the prompts ``names``, on one colour scale from -1 to 1.
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = [k for k in TITLES if k in matrices]
    labels = [short(n, 22) for n in names]
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[TITLES[k] for k in keys], horizontal_spacing=0.16)
    for c, k in enumerate(keys, 1):
        m = np.asarray(matrices[k], dtype=float)
        fig.add_trace(go.Heatmap(z=m.tolist(), x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu",
                                 reversescale=True,
                                 text=[[f"{v:.2f}" for v in row] for row in m], texttemplate="%{text}",
                                 hovertemplate="%{y} vs %{x}: %{z:.3f}<extra>" + TITLES[k] + "</extra>",
                                 showscale=c == len(keys), colorbar={"thickness": 12, "len": 0.9}), 1, c)
        fig.update_yaxes(autorange="reversed", row=1, col=c)
    fig.update_layout(**layout_args(width, height, title, subplot_titles=True))
    return fig

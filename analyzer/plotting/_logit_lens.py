"""Logit-lens figure: for each layer (rows) and position (columns), the top-1 token read through the final
norm and output layer, coloured by its probability."""

from __future__ import annotations

from html import escape
from typing import Mapping

from ._style import layout_args, short


def _as_lens(lens):
    from ..faithfulness.logit_lens import LogitLens

    if isinstance(lens, LogitLens):
        return lens
    if isinstance(lens, Mapping):
        return LogitLens.from_dict(lens)
    raise TypeError(f"Expected a LogitLens or its to_dict(); got {type(lens).__name__}.")


def plot_logit_lens(lens, *, width: int | None = None, height: int | None = None, title: str | None = None,
                    virtual_only: bool = False, max_label: int = 10):
    """A heatmap of layers × positions: the colour is the top-1 token's probability, the cell text the token
    (cut to ``max_label`` characters), the hover the top-k tokens with probabilities and the entropy.

    lens: a :class:`~analyzer.faithfulness.LogitLens` or its ``to_dict()``; ``virtual_only`` drops the
    positions of the text after the prompt.  Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    lens = _as_lens(lens)
    nv = lens.n_virtual
    positions = list(lens.positions)
    keep = nv if virtual_only else len(positions)
    positions = positions[:keep]
    layers = list(lens.layers)
    entropy = lens.entropy.round(5)          # as the JSON carries it
    z, text, hover = [], [], []
    for li in range(len(layers)):
        zr, tr, hr = [], [], []
        for pi in range(keep):
            probs = [float(p) for p in lens.top_probs[li, pi]]
            tokens = lens.top_tokens[li][pi]
            zr.append(probs[0])
            tr.append(escape(short(tokens[0], max_label)))
            lines = "<br>".join(f"{escape(repr(t))} {p:.3f}" for t, p in zip(tokens, probs))
            hr.append(f"layer {layers[li]}, {escape(positions[pi])}<br>{lines}<br>"
                      f"entropy {float(entropy[li, pi]):.2f} nats")
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    # unique column labels (suffix tokens can repeat)
    cols = [escape(p) if i < nv else f"{i}:{escape(p)}" for i, p in enumerate(positions)]
    fig = go.Figure(go.Heatmap(z=z, x=cols, y=[str(layer) for layer in layers], text=text,
                               texttemplate="%{text}", textfont=dict(size=9), customdata=hover,
                               hovertemplate="%{customdata}<extra></extra>", colorscale="Blues", zmin=0, zmax=1,
                               colorbar=dict(title="top-1 prob")))
    if keep > nv > 0:
        fig.add_vline(x=nv - 0.5, line=dict(color="black", width=2))
    args = layout_args(width, height or max(300, 22 * len(layers) + 160),
                       title or "Logit lens: top token of each position after each layer")
    fig.update_layout(**args, xaxis=dict(title="position (v = virtual token)", tickangle=-45),
                      yaxis=dict(title="layer (0 = input embeddings)"))
    return fig


__all__ = ["plot_logit_lens"]

"""The accuracy-readability frontier of a decode sweep: test accuracy (with its 95% interval) against the hard
prompt's perplexity under the frozen model, the decodes joined in order of their fluency weight, beside the soft
prompt (no perplexity: drawn as a horizontal band), its nearest-token projection, the instruction and zero-shot."""

from __future__ import annotations

import math

from ._style import PERCENT_AXIS, color, layout_args

REF_STYLE = {"projection": ("#757575", "square"), "instruction": ("#424242", "diamond"),
             "zero-shot": ("#9e9e9e", "x")}


def plot_decode_frontier(result, *, width: int | None = None, height: int | None = None, title: str | None = None):
    """From a :class:`~analyzer.decode.FrontierResult`; returns a ``go.Figure``."""
    import plotly.graph_objects as go

    pts = sorted(result.rows(), key=lambda p: (p.length, p.fluency))
    fig = go.Figure()
    refs = result.references
    soft = refs.get("soft")
    if soft is not None:
        fig.add_hrect(y0=soft.ci[0], y1=soft.ci[1], fillcolor=color(0), opacity=0.12, line_width=0)
        fig.add_hline(y=soft.accuracy, line={"color": color(0), "dash": "dash"},
                      annotation_text=f"soft prompt {soft.accuracy:.0%}", annotation_position="top left")
    for j, length in enumerate(sorted({p.length for p in pts})):
        row = [p for p in pts if p.length == length and p.perplexity is not None]
        if not row:
            continue
        fig.add_trace(go.Scatter(
            x=[p.perplexity for p in row], y=[p.accuracy for p in row], mode="lines+markers+text",
            name=f"decoded, {length} tokens", marker={"size": 10, "color": color(j + 1)},
            line={"color": color(j + 1)}, text=[f"λ={p.fluency:g}" for p in row], textposition="top right",
            error_y={"type": "data", "symmetric": False, "array": [p.ci[1] - p.accuracy for p in row],
                     "arrayminus": [p.accuracy - p.ci[0] for p in row]},
            customdata=[p.text for p in row],
            hovertemplate="λ=%{text}<br>accuracy %{y:.3f}<br>perplexity %{x:,.1f}<br>%{customdata}<extra></extra>"))
    for name, (shade, symbol) in REF_STYLE.items():
        ref = refs.get(name)
        if ref is None:
            continue
        x = ref.perplexity
        if x is None:       # zero-shot has no prompt text: drawn as a line, like the soft prompt
            fig.add_hline(y=ref.accuracy, line={"color": shade, "dash": "dot"},
                          annotation_text=f"{name} {ref.accuracy:.0%}", annotation_position="bottom right")
            continue
        fig.add_trace(go.Scatter(x=[x], y=[ref.accuracy], mode="markers+text", name=name, text=[name],
                                 textposition="middle right", marker={"size": 12, "color": shade, "symbol": symbol},
                                 error_y={"type": "data", "symmetric": False, "array": [ref.ci[1] - ref.accuracy],
                                          "arrayminus": [ref.accuracy - ref.ci[0]]},
                                 hovertemplate=f"{name}<br>accuracy %{{y:.3f}}<br>perplexity %{{x:,.1f}}<extra></extra>"))
    lay = layout_args(width, height if height is not None else 440, title)
    xs = [p.perplexity for p in pts if p.perplexity] + [r.perplexity for r in refs.values() if r.perplexity]
    xaxis = {"title": "perplexity of the hard prompt under the frozen model (log scale; left = more readable)",
             "type": "log"}
    if xs:      # room on the right for the labels written beside the rightmost markers ("λ=0", "projection")
        lo, hi = math.log10(min(xs)), math.log10(max(xs))
        span = max(hi - lo, 0.5)
        xaxis["range"] = [lo - 0.1 * span, hi + 0.35 * span]
    fig.update_traces(cliponaxis=False, selector={"type": "scatter"})
    fig.update_layout(**lay, xaxis=xaxis,
                      yaxis={"title": "test accuracy", "range": [0, 1.02], **PERCENT_AXIS},
                      legend={"orientation": "h", "y": -0.25})
    return fig

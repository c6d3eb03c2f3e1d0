"""The training-dynamics figure: when each position's init token leaves its top-k neighbours, and how the
neighbours' tightness and task relatedness change over training (``analyzer.dynamics.training_dynamics``)."""

from __future__ import annotations

import numpy as np

from ._style import color, layout_args


def plot_training_dynamics(dyn, *, mark_step: int | None = None, width: int | None = None, height: int | None = 620,
                           title: str | None = None):
    """Three panels over the snapshot steps of a :class:`~analyzer.dynamics.TrainingDynamics`:

    1. a heatmap, one row per position, of the init token's rank among all tokens (log colour scale; the
       positions' leave steps are marked, a dashed line is top-k) -- absent when the init was not tokens;
    2. the share of positions whose init token is still in their top-k, and the mean task relatedness of the
       neighbours (both 0-1);
    3. the mean tightness of the neighbours, and the mean drift from step 0 (right axis, from 0: a distance).
    ``mark_step``: a vertical line at that step on every panel (the step the trajectory map shows).  Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps = list(dyn.steps)
    n = dyn.num_virtual_tokens
    has = [i for i, t in enumerate(dyn.init_token_ids) if t is not None]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.45, 0.27, 0.28],
                        specs=[[{}], [{}], [{"secondary_y": True}]],
                        subplot_titles=(f"init token's rank per position (top-{dyn.k} or better: in the neighbours)",
                                        "shares", "neighbourhood"))
    if has:
        r = dyn.init_rank[:, has].T.astype(float)            # positions x steps
        z = np.log10(np.maximum(r, 1))
        fig.add_trace(go.Heatmap(x=steps, y=[f"v{i}" for i in has], z=z, name="init token rank",
                                 customdata=r, colorscale="Viridis", zmin=0, colorbar={"title": "log10 rank",
                                                                                     "len": 0.42, "y": 0.8},
                                 hovertemplate="%{y} step %{x}<br>init token rank %{customdata:.0f}<extra></extra>"),
                      row=1, col=1)
        lx = [dyn.leave_step[i] for i in has if dyn.leave_step[i] is not None]
        ly = [f"v{i}" for i in has if dyn.leave_step[i] is not None]
        fig.add_trace(go.Scatter(x=lx, y=ly, mode="markers", name="leaves the top-k",
                                 marker={"symbol": "x", "size": 8, "color": "white", "line": {"width": 1}},
                                 hovertemplate="%{y} leaves its top-k at step %{x}<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=steps, y=dyn.share_in_top_k(), mode="lines+markers",
                                 name=f"init token in top-{dyn.k}", line={"color": color(0), "width": 2}),
                      row=2, col=1)
    else:
        fig.add_annotation(text="no init tokens (random init): no leave steps", showarrow=False, xref="x domain",
                           yref="y domain", x=0.5, y=0.5, row=1, col=1)
    if dyn.relatedness is not None:
        fig.add_trace(go.Scatter(x=steps, y=np.nanmean(dyn.relatedness, axis=1), mode="lines+markers",
                                 name=f"related to {dyn.task} (share of neighbours)",
                                 line={"color": color(2), "width": 2}), row=2, col=1)
    t = dyn.tightness
    for i in range(n):                       # faint per-position lines, then the mean
        fig.add_trace(go.Scatter(x=steps, y=t[:, i], mode="lines", line={"color": color(1), "width": 0.6},
                                 opacity=0.25, showlegend=False, hoverinfo="skip"), row=3, col=1)
    fig.add_trace(go.Scatter(x=steps, y=np.nanmean(t, axis=1), mode="lines+markers", name="tightness",
                             line={"color": color(1), "width": 2}), row=3, col=1)
    fig.add_trace(go.Scatter(x=steps, y=dyn.drift, mode="lines", name="drift from step 0 (L2)",
                             line={"color": color(3), "width": 1.5, "dash": "dot"}), row=3, col=1, secondary_y=True)
    fig.update_yaxes(range=[0, 1.02], title_text="share", row=2, col=1)
    fig.update_yaxes(title_text="mean pairwise cos", row=3, col=1)
    top = float(np.nanmax(dyn.drift)) if np.size(dyn.drift) and np.isfinite(dyn.drift).any() else 0.0
    fig.update_yaxes(title_text="L2", row=3, col=1, secondary_y=True, showgrid=False, rangemode="tozero",
                     range=[0, 1.05 * top if top > 0 else 1], tickmode="auto")     # a distance: from 0
    fig.update_xaxes(title_text="step", row=3, col=1)
    fig.update_layout(**layout_args(width, height, title), legend={"orientation": "h", "y": -0.12})
    if mark_step is not None:
        from ._training import mark

        for row in (1, 2, 3):
            mark(fig, mark_step, label=row == 2, row=row, col=1)     # written where no panel title is
    return fig

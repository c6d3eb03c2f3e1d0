"""Training curves: the loss of every step (with a running mean) and the validation accuracy, with the step
the trajectory shows marked."""

from __future__ import annotations

from typing import Iterable, Mapping

from ._style import PERCENT_AXIS, color, layout_args


def _ema(xs: list[float], alpha: float = 0.1) -> list[float]:
    out, m = [], None
    for x in xs:
        m = x if m is None else (1 - alpha) * m + alpha * x
        out.append(m)
    return out


def plot_training_curves(rows: Iterable[Mapping], *, chance: float | None = None, mark_step: int | None = None,
                         width: int | None = None, height: int | None = 320, title: str | None = None):
    """Loss per step (faint), its running mean, and validation accuracy (right axis) from the rows of
    ``training_log.jsonl`` (``analyzer.training.read_training_log``) or the live rows of a running job
    (``{"step", "loss"}`` and ``{"step", "eval_accuracy"}``).  ``chance`` draws the chance accuracy;
    ``mark_step`` a vertical line at that step (the step the trajectory map shows).
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    import plotly.graph_objects as go

    rows = list(rows)
    steps = [int(r["step"]) for r in rows if r.get("loss") is not None]
    loss = [float(r["loss"]) for r in rows if r.get("loss") is not None]
    ev = [(int(r["step"]), float(r["eval_accuracy"])) for r in rows if r.get("eval_accuracy") is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=loss, mode="lines", name="loss", line={"color": color(0), "width": 1},
                             opacity=0.35))
    fig.add_trace(go.Scatter(x=steps, y=_ema(loss), mode="lines", name="loss (running mean)",
                             line={"color": color(0), "width": 2}))
    if ev:
        fig.add_trace(go.Scatter(x=[s for s, _ in ev], y=[a for _, a in ev], mode="lines+markers",
                                 name="validation accuracy", yaxis="y2", line={"color": color(2), "width": 2}))
    if chance is not None:
        fig.add_trace(go.Scatter(x=[min(steps + [s for s, _ in ev] or [0]), max(steps + [s for s, _ in ev] or [1])],
                                 y=[chance, chance], mode="lines", name="chance", yaxis="y2",
                                 line={"color": "grey", "dash": "dot", "width": 1}))
    every = steps + [s for s, _ in ev]
    span = (max(every) - min(every)) if every else 0
    xaxis = {"title": "step", "tickformat": "d", **({"dtick": 1} if span <= 10 else {})}   # no "step 4.5"
    fig.update_layout(**layout_args(width, height, title), xaxis=xaxis,
                      yaxis={"title": "loss", "rangemode": "tozero"},
                      yaxis2={"title": "accuracy", "overlaying": "y", "side": "right", "range": [0, 1],
                              "showgrid": False, **PERCENT_AXIS},
                      legend={"orientation": "h", "y": -0.25})
    if mark_step is not None:
        mark(fig, mark_step)
    return fig


def mark(fig, step: int, *, label: bool = True, **where) -> None:
    """A dashed vertical line at ``step`` across the figure, written ``step N`` at its top when ``label``
    (``where``: ``row``/``col`` of a subplot figure)."""
    text = {"annotation_text": f"step {step}", "annotation_position": "top right",
            "annotation_font": {"size": 11}} if label else {}
    fig.add_vline(x=step, line={"color": "#222", "width": 1.5, "dash": "dash"}, **text, **where)

"""Evaluation: each prompt's accuracy on each task with its Wilson 95% interval, beside the task's baselines
(zero-shot, the instruction as a hard prompt, the majority class) on the same examples."""

from __future__ import annotations

from ._style import PERCENT_AXIS, color, layout_args

GREYS = ("#9e9e9e", "#bdbdbd", "#e0e0e0")  # the baselines' bars (dark text on them)


def plot_evaluation(result, *, width: int | None = None, height: int | None = None, title: str | None = None):
    """Grouped horizontal bars from an :class:`~analyzer.faithfulness.EvaluationResult`: one group per task,
    the prompts in colour and the baselines in grey, each with its 95% interval.  Returns a
    ``plotly.graph_objects.Figure``."""
    import plotly.graph_objects as go

    fig = go.Figure()
    names = list(dict.fromkeys(r.prompt for r in result.results))
    rows_per_task = len(names) + 3
    for task, b in result.baselines.items():
        entries = [(r.prompt, r.score, color(names.index(r.prompt))) for r in result.results if r.task == task]
        entries += [(label, s, shade) for label, s, shade in
                    (("zero-shot", b.zero_shot, GREYS[0]), ("instruction", b.instruction, GREYS[1]),
                     (f"majority ({b.majority_label})", b.majority, GREYS[2])) if s is not None]
        ys = [f"{task} · {label}" for label, _, _ in entries]
        acc = [s.accuracy for _, s, _ in entries]
        fig.add_trace(go.Bar(
            y=ys, x=acc, orientation="h", marker={"color": [c for _, _, c in entries]}, showlegend=False,
            error_x={"type": "data", "symmetric": False, "array": [s.ci_high - s.accuracy for _, s, _ in entries],
                     "arrayminus": [s.accuracy - s.ci_low for _, s, _ in entries]},
            text=[f"{a:.1%}" for a in acc], textposition="inside", insidetextanchor="start",
            textfont={"size": 12, "color": ["#333333" if c in GREYS else "white" for _, _, c in entries]},
            hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    n_rows = max(1, len(result.baselines) * rows_per_task)
    lay = layout_args(width, height if height is not None else 60 + 26 * n_rows, title)
    fig.update_layout(**lay, xaxis={"title": "accuracy", "range": [0, 1], **PERCENT_AXIS},
                      yaxis={"autorange": "reversed"}, bargap=0.25, uniformtext={"minsize": 11, "mode": "show"})
    return fig

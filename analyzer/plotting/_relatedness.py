"""Task-relatedness: each virtual token's share of task-related neighbours beside the same share for the
null baselines (from ``analyzer.relatedness.task_relatedness``)."""

from __future__ import annotations

from typing import Mapping

from ._nulls import null_test_figure


def plot_relatedness(result, *, space: str = "model", width: int | None = None, height: int | None = 340,
                     title: str | None = None):
    """Two panels from a prompt's task-relatedness (a :class:`~analyzer.result_groups.Relatedness`, or the
    :func:`analyzer.relatedness.task_relatedness` dict; ``space``: ``model`` or ``text``): the prompt's mean
    share of task-related neighbours beside each null (mean ± 1.96 sd, p-value), and the share of each virtual
    token.  Returns a ``plotly.graph_objects.Figure``; never shows it."""
    from ..result_groups import Relatedness

    rel = Relatedness.from_dict(result) if isinstance(result, Mapping) else result
    rel = rel if isinstance(rel, Relatedness) else Relatedness()     # a Skipped section: nothing to draw
    return null_test_figure(rel.space(space).share, f"task-related share ({space} space)", width=width,
                            height=height, title=title, y_range=(0, 1.05))

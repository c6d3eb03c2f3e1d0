"""Task-relatedness: each virtual token's share of task-related neighbours beside the same share for the
null baselines (from ``analyzer.relatedness.task_relatedness``)."""

from __future__ import annotations

from typing import Any, Mapping

from ._nulls import null_test_figure


def plot_relatedness(result: Mapping[str, Any], *, space: str = "model", width: int | None = None,
                     height: int | None = 340, title: str | None = None):
    """Two panels from a :func:`analyzer.relatedness.task_relatedness` result (``space``: ``model`` or
    ``text``): the prompt's mean share of task-related neighbours beside each null (mean ± 1.96 sd, p-value),
    and the share of each virtual token.  Returns a ``plotly.graph_objects.Figure``; never shows it."""
    sec = result.get(f"{space}_space") or {}
    share = sec.get("share", sec) if isinstance(sec, Mapping) else {}
    return null_test_figure(share, f"task-related share ({space} space)", width=width, height=height, title=title,
                            y_range=(0, 1.05))

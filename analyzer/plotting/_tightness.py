"""Tightness against its null baselines: the prompt's value beside each null distribution (mean ± 1.96 sd),
and each virtual token's own value."""

from __future__ import annotations

from ._nulls import null_test_figure


def plot_tightness(result, *, space: str = "model", width: int | None = None, height: int | None = 340,
                   title: str | None = None):
    """Two panels from a prompt's analysis (a :class:`~analyzer.results.PromptAnalysis`, or its ``to_dict()``;
    ``space``: ``model`` or ``text``): left, the prompt's mean tightness (diamond) beside each null's mean with a
    95% band and its p-value; right, the tightness of each virtual token with the null means as dotted lines.
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    from ..result_groups import ScoreVsNulls, Tightness
    from ..results import PromptAnalysis

    t = PromptAnalysis.of(result).tightness
    sec = t.space(space) if isinstance(t, Tightness) else ScoreVsNulls()
    return null_test_figure(sec, f"tightness ({space} space)", width=width, height=height, title=title)

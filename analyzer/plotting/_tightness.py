"""Tightness against its null baselines: the prompt's value beside each null distribution (mean ± 1.96 sd),
and each virtual token's own value."""

from __future__ import annotations

from typing import Any, Mapping

from ._nulls import null_test_figure


def plot_tightness(result: Mapping[str, Any], *, space: str = "model", width: int | None = None,
                   height: int | None = 340, title: str | None = None):
    """Two panels from an :func:`analyzer.metrics.analyze_prompt` result (``space``: ``model`` or ``text``):
    left, the prompt's mean tightness (diamond) beside each null's mean with a 95% band and its p-value;
    right, the tightness of each virtual token with the null means as dotted lines.
    Returns a ``plotly.graph_objects.Figure``; never shows it."""
    sec = (result.get("tightness") or {}).get(space) or {}
    return null_test_figure(sec, f"tightness ({space} space)", width=width, height=height, title=title)

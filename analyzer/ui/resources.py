"""Every cached object of the dashboard, in one place.

``st.cache_resource`` objects are shared by all sessions of the server (one vocabulary, one index, one UMAP
layout and one frozen model per model name, however many browser tabs are open): memory does not grow per tab.
Each function is keyed by plain values (model name, metric, paths with a change stamp), so a rerun is a
dictionary lookup.  Errors (``AnalyzerError``) are not cached: they propagate to the section, which shows them."""

from __future__ import annotations

import streamlit as st

from . import _sources


@st.cache_resource(show_spinner="Loading the vocabulary…", max_entries=4)
def vocabulary(model: str):
    from .. import load_vocabulary

    return load_vocabulary(model)


def neighbor_index(model: str, metric: str = "cosine"):
    """The fitted ``NeighborIndex`` of ``model`` for ``metric`` (``cosine`` or ``csls``)."""
    return _csls_index(model) if metric == "csls" else _index(model, metric)


@st.cache_resource(show_spinner="Building the neighbour index…", max_entries=8)
def _index(model: str, metric: str):
    from .. import NeighborIndex

    return NeighborIndex(metric=metric, k=10).fit(vocabulary(model))


@st.cache_resource(show_spinner="Computing every token's CSLS neighbourhood (once per model, cached on disk; "
                                "a minute or two on 2 cores)…", max_entries=4)
def _csls_index(model: str):
    from .. import NeighborIndex

    return NeighborIndex(metric="csls", k=10).fit(vocabulary(model))


@st.cache_resource(show_spinner="Fitting the UMAP map of the vocabulary (once per model, cached on disk)…",
                   max_entries=8)
def layout(model: str, n_components: int = 2):
    from ..projection import UmapLayout

    return UmapLayout(n_components=n_components).fit(vocabulary(model))


@st.cache_resource(show_spinner="Loading the frozen model…", max_entries=2)
def frozen_model(model: str):
    from ..models import load_frozen_model

    return load_frozen_model(model)


@st.cache_resource
def training_runner():
    from ._runner import TrainingRunner

    return TrainingRunner()


@st.cache_resource(max_entries=128, show_spinner=False)
def _prompts(path: str, stamp: tuple, task):
    from .. import load_prompts

    return tuple(load_prompts(path, task=task))


def prompts(path: str, task=None) -> tuple:
    """The soft prompts stored at ``path`` (reloaded when its files change)."""
    return _prompts(path, _sources.stamp(path), task)


@st.cache_resource(max_entries=16, show_spinner=False)
def task(name: str):
    from ..tasks import get_task

    return get_task(name)


@st.cache_resource(max_entries=1, show_spinner=False)
def task_names() -> tuple:
    from ..tasks import list_tasks

    return tuple(r["name"] for r in list_tasks())


@st.cache_resource(max_entries=32, show_spinner="Placing the prompts on the map…")
def prompt_map(model: str, metric: str, k: int, n_components: int, sources: tuple, highlight: tuple):
    """The :class:`~analyzer.projection.PromptMap` of the prompts at ``sources`` (``((path, stamp), ...)``)."""
    from ..projection import project_prompts

    ps = [p for path, _ in sources for p in prompts(path)]
    return project_prompts(layout(model, n_components), ps, neighbor_index(model, metric), k=k,
                           highlight=list(highlight))


@st.cache_resource(max_entries=32, show_spinner=False)
def report(model: str, metric: str, k: int, sources: tuple, task_name: str | None):
    """The report of the selected prompts (the same ``build_report`` the CLI calls)."""
    import inspect

    from .. import build_report

    ps = [p for path, _ in sources for p in prompts(path)]
    kwargs = {"k": k}
    params = inspect.signature(build_report).parameters
    if task_name and "task" in params:
        kwargs["task"] = task_name
    return build_report(ps, vocabulary(model), neighbor_index(model, metric), **kwargs)


@st.cache_resource(max_entries=16, show_spinner="Placing the training snapshots…")
def trajectory(model: str, path: str, stamp: tuple):
    from ..projection import project_trajectory
    from ..training import read_snapshots

    snaps = read_snapshots(path)
    steps, coords = project_trajectory(layout(model, 2), snaps)
    return snaps, steps, coords


__all__ = ["vocabulary", "neighbor_index", "layout", "frozen_model", "training_runner", "prompts", "task",
           "task_names", "prompt_map", "report", "trajectory"]


@st.cache_resource
def faithfulness_store() -> dict:
    """Faithfulness results by (model, prompt, task, limit), shared by the sessions (they are costly)."""
    return {}

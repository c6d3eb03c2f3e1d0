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
                                "~10 s for SmolLM2's 49k tokens, ~1.5 min for Gemma 3's 262k on 2 cores)…",
                   max_entries=4)
def _csls_index(model: str):
    return _index(model, "cosine").csls_view(10)        # over the cosine index's rows: no second matrix


@st.cache_resource(show_spinner="Fitting the UMAP map of the vocabulary (once per model, cached on disk)…",
                   max_entries=8)
def layout(model: str, n_components: int = 2):
    from ..projection import UmapLayout

    return UmapLayout(n_components=n_components).fit(vocabulary(model))


@st.cache_resource(show_spinner="Placing the whole vocabulary on the map and labelling its clusters (once per "
                                "model, cached on disk; ~15 s for SmolLM2's 49k tokens on 2 cores)…", max_entries=8)
def vocab_map(model: str, n_components: int = 2):
    """The :class:`~analyzer.vocab_map.VocabularyMap` of ``model`` on its ``n_components``-D layout."""
    from ..vocab_map import VocabularyMap

    return VocabularyMap().fit(layout(model, n_components))


@st.cache_resource(max_entries=64, show_spinner=False)
def search(model: str, query: str, limit: int = 30) -> tuple:
    """Row ids of the tokens of ``model`` matching ``query`` (``analyzer.projection.search_tokens``)."""
    from ..projection import search_tokens

    return tuple(search_tokens(vocabulary(model), query, limit=limit))


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
    """The tasks a prompt can be trained and analysed for (the evaluation-only ones are offered where prompts are
    evaluated)."""
    from ..tasks import list_tasks

    return tuple(r["name"] for r in list_tasks() if not r.get("evaluation_only"))


@st.cache_resource(max_entries=32, show_spinner="Placing the prompts on the map…")
def prompt_map(model: str, metric: str, k: int, n_components: int, sources: tuple, highlight: tuple):
    """The :class:`~analyzer.projection.PromptMap` of the prompts at ``sources`` (``((path, stamp), ...)``)."""
    from ..projection import project_prompts

    ps = [p for path, _ in sources for p in prompts(path)]
    return project_prompts(layout(model, n_components), ps, neighbor_index(model, metric), k=k,
                           highlight=list(highlight))


@st.cache_resource(max_entries=32, show_spinner=False)
def report(model: str, metric: str, k: int, sources: tuple, task_name: str | None):
    """The neighbour report of the selected prompts (the same ``build_report`` the CLI's ``report`` calls),
    read against the sidebar's task."""
    from .. import build_report

    ps = [p for path, _ in sources for p in prompts(path)]
    return build_report(ps, vocabulary(model), neighbor_index(model, metric), k=k, task=task_name or None)


@st.cache_resource(max_entries=16, show_spinner="Placing the training snapshots…")
def trajectory(model: str, path: str, stamp: tuple):
    from ..projection import project_trajectory
    from ..training import read_snapshots

    snaps = read_snapshots(path)
    steps, coords = project_trajectory(layout(model, 2), snaps)
    return snaps, steps, coords


__all__ = ["vocabulary", "neighbor_index", "layout", "vocab_map", "search", "frozen_model", "training_runner",
           "prompts", "task", "task_names", "prompt_map", "report", "trajectory", "background", "prompt_analysis",
           "faithfulness", "swap", "full_report", "known_future", "evaluation", "evaluation_only_tasks", "importance",
           "description", "progress_of", "forget", "latest_result", "task_for"]


def faithfulness(model: str, path: str, stamp: tuple, name: str, task_name: str | None, limit: int):
    """A ``Future`` of ``analyzer.analyze_faithfulness`` for one prompt (runs the frozen model, loaded here once
    and shared by every session), computed on the model lane."""
    from ..faithfulness import analyze_faithfulness

    key = ("faithfulness", model, path, stamp, name, task_name, int(limit))
    return _one_prompt_on_model(key, model, path, name, lambda frozen, tok, prompt: background(
        key, analyze_faithfulness, frozen, tok, prompt, neighbor_index(model, "cosine"),
        task=task_for(task_name, prompt) if task_name else None, limit=int(limit), model_name=model, lane="model"))


def swap(model: str, columns: tuple, limit: int):
    """A ``Future`` of ``analyzer.swap.prompt_swap`` (every prompt and zero-shot on every prompt's task) on the
    frozen model, on the model lane.  ``columns``: ``((display name, path, stamp, prompt name), ...)``."""
    from ..swap import prompt_swap

    key = ("swap", model, tuple(columns), int(limit))
    known = known_future(*key)
    if known is not None:
        return known
    frozen, tok = frozen_model(model)
    ps = {name: _prompt(path, pname) for name, path, _, pname in columns}
    return background(key, prompt_swap, frozen, tok, ps, limit=int(limit), model_name=model, lane="model")


def evaluation(model: str, columns: tuple, task_names: tuple, limit: int):
    """A ``Future`` of ``analyzer.faithfulness.evaluate_prompts`` (each prompt beside zero-shot, the instruction and
    the majority class on every task) on the frozen model, on the model lane.  ``columns``: ``((display name,
    path, stamp, prompt name), ...)``; ``task_names``: built-in names (evaluation-only ones too) or task files."""
    from ..faithfulness import evaluate_prompts

    key = ("evaluation", model, tuple(columns), tuple(task_names), int(limit))
    known = known_future(*key)
    if known is not None:
        return known
    frozen, tok = frozen_model(model)
    from ..task_record import resolve_tasks

    ps = {name: _prompt(path, pname) for name, path, _, pname in columns}
    return background(key, evaluate_prompts, frozen, tok, ps, resolve_tasks(list(task_names), ps.values()),
                      limit=int(limit),
                      model_name=model, progress=_progress(key), lane="model")


@st.cache_resource(max_entries=16, show_spinner=False)
def evaluation_only_tasks(task_name: str | None) -> tuple:
    """The evaluation-only built-in tasks made for prompts of ``task_name`` (same labels and label words, data from
    another source: ``sentiment-amazon`` for ``sentiment``)."""
    from ..tasks import HELD_OUT_TASKS

    return tuple(n for n, b in HELD_OUT_TASKS.items() if task_name and b.extra.get("like") == task_name)


def importance(model: str, path: str, stamp: tuple, name: str, task_name: str, limit: int, settings: tuple = ()):
    """A ``Future`` of ``analyzer.faithfulness.importance`` for one prompt (each position removed / replaced on
    the first ``limit`` test examples, against the cached removal null; the partial-projection curve) on the
    model lane.  ``settings``: further keyword arguments as ``((name, value), ...)``."""
    from ..faithfulness import importance as run

    key = ("importance", model, path, stamp, name, task_name, int(limit), tuple(settings))
    return _one_prompt_on_model(key, model, path, name, lambda frozen, tok, prompt: background(
        key, run, frozen, tok, prompt, task_for(task_name, prompt), vocabulary(model), limit=int(limit),
        model_name=model, progress=_progress(key), **dict(settings), lane="model"))


def decoding(model: str, path: str, stamp: tuple, name: str, task_name: str, fluencies: tuple, length: int,
             steps: int, limit: int, settings: tuple = ()):
    """A ``Future`` of ``analyzer.decode.decode_frontier`` for one prompt (one decode per fluency weight, PEZ-style,
    scored on the first ``limit`` test examples) on the model lane.  The decodes are written under the cache's
    ``decodes/`` folder, one sub-folder per weight, and read back (or resumed) when the same decode is asked for
    again, by any session or after a restart."""
    from ..cache import entry_dir, text_key
    from ..decode import DecodeConfig, decode_frontier
    from ._uploads import sanitize_name

    key = ("decode", model, path, stamp, name, task_name, tuple(fluencies), int(length), int(steps), int(limit),
           tuple(settings))
    cfg = DecodeConfig(length=int(length), steps=int(steps), **dict(settings))
    out = entry_dir("decodes") / f"{sanitize_name(name)}-{sanitize_name(task_name)}-{text_key(key[1:6], key[7:])}"
    return _one_prompt_on_model(key, model, path, name, lambda frozen, tok, prompt: background(
        key, decode_frontier, frozen, tok, prompt, task_for(task_name, prompt), vocabulary(model),
        fluencies=tuple(fluencies), config=cfg, out=out, resume=True, limit=int(limit), model_name=model,
        progress=_progress(key), lane="model"))


def description(model: str, path: str, stamp: tuple, name: str, task_name: str, settings: tuple = ()):
    """A ``Future`` of ``analyzer.faithfulness.describe_prompt`` for one prompt (Patchscopes/InSPEcT over the
    layer grid, against the meaningless-prompt null cached per model, with the planted instruction) on the model
    lane.  ``settings``: further keyword arguments as ``((name, value), ...)``."""
    from ..faithfulness import describe_prompt

    key = ("description", model, path, stamp, name, task_name, tuple(settings))
    return _one_prompt_on_model(key, model, path, name, lambda frozen, tok, prompt: background(
        key, describe_prompt, frozen, tok, prompt, task_for(task_name, prompt), vocab=vocabulary(model),
        model_name=model, progress=_progress(key), **dict(settings), lane="model"))


def _progress(key: tuple):
    """A ``progress`` callable for a background job: keeps its latest line for :func:`progress_of`."""
    lines = _background()["progress"]

    def say(msg: str) -> None:
        lines[key] = str(msg)

    return say


def progress_of(kind: str, *key) -> str | None:
    """The latest progress line of the background job ``(kind, *key)`` (None before its first)."""
    return _background()["progress"].get((kind, *key))


def forget(kind: str, *key) -> None:
    """Drop the finished background job ``(kind, *key)`` (a failed one, so that it can be run again)."""
    bg = _background()
    fut = bg["futures"].get((kind, *key))
    if fut is not None and fut.done():
        bg["futures"].pop((kind, *key), None)
        bg["progress"].pop((kind, *key), None)


def latest_result(kind: str, *prefix):
    """The result of the most recently started background job whose key begins ``(kind, *prefix)`` and that has
    finished without error; None when there is none (e.g. the importance of a prompt at any ``limit``)."""
    head = (kind, *prefix)
    for key, fut in reversed(list(_background()["futures"].items())):
        if key[:len(head)] == head and fut.done() and not fut.cancelled() and fut.exception() is None:
            return fut.result()
    return None


def _task_or_none(task_name: str | None):
    if not task_name:
        return None
    try:
        return task(task_name)
    except Exception:  # noqa: BLE001 — no task: the label-word test is reported as omitted
        return None


@st.cache_resource
def _background() -> dict:
    """One worker thread for the metrics (so they never compete with each other for the 2 cores) and the
    futures it holds, by key, shared by every session."""
    from collections import OrderedDict

    from ._runner import BackgroundLane

    return {"executor": BackgroundLane("softprompt-metrics"), "model": BackgroundLane("softprompt-model"),
            "futures": OrderedDict(), "progress": {}}


def background(key: tuple, fn, *args, lane: str = "executor", **kwargs):
    """A ``Future`` of ``fn(*args, **kwargs)`` run on a shared background worker, memoised by ``key``.
    ``lane="model"``: the worker for jobs that run the frozen model (minutes), so they never hold up metrics."""
    bg = _background()
    fut = bg["futures"].get(key)
    if fut is not None:
        bg["futures"].move_to_end(key)
        return fut
    fut = bg[lane].submit(fn, *args, **kwargs)
    bg["futures"][key] = fut
    while len(bg["futures"]) > 64:
        bg["futures"].popitem(last=False)
    return fut


def _one_prompt_on_model(key: tuple, model: str, path: str, name: str, submit):
    """The ``Future`` already running or done for ``key``, else ``submit(frozen model, tokenizer, prompt)`` with
    the frozen model loaded (once, shared) and the prompt ``name`` of ``path``: the start of every reading of one
    prompt on the model lane."""
    known = known_future(*key)
    if known is not None:
        return known
    frozen, tok = frozen_model(model)
    return submit(frozen, tok, _prompt(path, name))


def _prompt(path: str, name: str):
    return next(p for p in prompts(path) if p.name == name)


def task_for(task_name: str, prompt):
    """The task ``task_name`` for a reading of ``prompt``: a task file the prompt's run recorded keeps its
    columns and label words (:func:`analyzer.task_record.resolve_task`)."""
    from ..task_record import resolve_task

    return resolve_task(task_name, prompt)


def prompt_analysis(model: str, metric: str, k: int, path: str, stamp: tuple, name: str, task_name: str | None,
                    full: bool = False):
    """A ``Future`` of ``analyzer.analyze`` for one prompt -- the same function and settings
    (``analyzer.analysis.analysis_settings``) as the CLI's ``analyze`` -- computed in the background (the page
    renders at once; the metric tabs fill in when it is done).  ``full=False``: the quick first reading (a few
    seconds; ``AnalysisSettings.leaves_out`` says what it leaves out); ``full=True``: exactly the CLI's claims
    (minutes the first time for a model: MiniLM embeddings and the vocabulary's kNN graph, then cached on
    disk)."""
    from .. import analyze
    from ..analysis import analysis_settings

    key = ("analysis", model, metric, int(k), path, stamp, name, task_name, bool(full))
    known = known_future(*key)
    if known is not None:
        return known
    vocab, index = vocabulary(model), neighbor_index(model, metric)   # shared resources, built in this thread
    return background(key, analyze, _prompt(path, name), vocab, task=task_name or None, k=int(k), metric=metric,
                      settings=analysis_settings(full=bool(full)), index=index)


def full_report(model: str, metric: str, k: int, sources: tuple, task_name: str | None, text_space: bool,
                faithfulness: bool):
    """A ``Future`` of ``analyzer.analyze`` (the CLI's ``analyze`` report: metrics, null baselines, relatedness,
    optionally faithfulness) for the selected prompts, computed in the background."""
    from .. import analyze
    from ..analysis import analysis_settings

    key = ("report", model, metric, int(k), sources, task_name, bool(text_space), bool(faithfulness))
    known = known_future(*key)
    if known is not None:
        return known
    ps = [p for path, _ in sources for p in prompts(path)]
    frozen = frozen_model(model) if faithfulness else None
    return background(key, analyze, ps, vocabulary(model), task=task_name, k=int(k), metric=metric,
                      settings=analysis_settings(full=True, text_space=bool(text_space)),
                      index=neighbor_index(model, metric), faithfulness=bool(faithfulness), model=frozen)


def known_future(kind: str, *key) -> object | None:
    """The background future of ``(kind, *key)`` when one was started (None otherwise)."""
    return _background()["futures"].get((kind, *key))

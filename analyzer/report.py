"""``build_report``: the neighbours of each virtual token, as a :class:`~analyzer.results.Report`, and the
prompt and model facts every report starts from (``checked_prompts``, ``model_info``, ``prompt_info``,
``prompt_task``, ``neighbor_rows``).

``build_report`` is the single function the CLI, the dashboard and the notebook call to get neighbours of
each virtual token.  The result types are in :mod:`analyzer.results` (whose ``to_dict()`` is the JSON contract)
and their renderings in :mod:`analyzer.render`.  ``model.provenance``
(:func:`analyzer.provenance.model_provenance`) says which checkpoint's vocabulary was read and whether it stands
in for the model the adapter names; its sentence heads every rendering."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from .results import Report
from .types import SoftPrompt, Vocabulary


def model_info(vocab: Vocabulary, median_norm: float | None = None, prompts: Sequence[SoftPrompt] = ()
               ) -> dict[str, Any]:
    """The report's ``model`` dict; ``provenance`` (see :func:`analyzer.provenance.model_provenance`) says which
    model's vocabulary was read and whether it stands in for the one the prompts' adapters (or the user) named."""
    from .provenance import vocab_provenance

    info = {"name": vocab.name, "source": vocab.source, "vocab_size": vocab.size, "dim": vocab.dim,
            "tied": bool(vocab.tied), "architecture": vocab.architecture,
            "embed_scale": float(getattr(vocab, "embed_scale", 1.0)),
            "excluded_tokens": int(np.asarray(vocab.excluded).sum()),
            "provenance": vocab_provenance(vocab, prompts)}
    if median_norm is not None:
        info["median_norm"] = float(median_norm)
    return info


def prompt_task(prompt: SoftPrompt) -> str | None:
    """The task a prompt was trained on, when its adapter records it: our trainer writes it to
    ``training_meta.json`` beside the adapter (:class:`~analyzer.training.run_meta.RunMeta`; a multitask run's
    task at the prompt's ``task_index``), else its adapter config's."""
    from .training.run_meta import RunMeta

    meta = RunMeta.load(prompt.source)
    name = meta.task_name(prompt.task_index)
    if name or meta.multitask:
        return name
    cfg = prompt.config or {}
    for key in ("task", "task_name", "dataset"):
        v = cfg.get(key)
        if isinstance(v, str) and v:
            return v
    ours = cfg.get("softprompt_analyzer") if isinstance(cfg.get("softprompt_analyzer"), dict) else {}
    return ours.get("task") if isinstance(ours.get("task"), str) else None


def prompt_info(p: SoftPrompt) -> dict[str, Any]:
    return {"name": p.name, "source": p.source, "kind": p.kind, "num_virtual_tokens": p.num_virtual_tokens,
            "dim": p.dim, "init": p.init, "init_text": p.init_text, "base_model": p.base_model}


def neighbor_rows(prompt: SoftPrompt, vocab: Vocabulary, index, k: int) -> list[dict[str, Any]]:
    """Per virtual token: index, norm, ratio to the vocabulary's median norm, top-k neighbours."""
    scores, ids = index.kneighbors(prompt.vectors, k)
    norms = np.linalg.norm(prompt.vectors, axis=1)
    rows = []
    for i in range(prompt.num_virtual_tokens):
        rows.append({
            "index": i,
            "norm": float(norms[i]),
            "norm_ratio": float(norms[i] / index.median_norm_) if index.median_norm_ > 0 else None,
            "neighbors": [{"token_id": int(t), "token": vocab.tokens[int(t)], "score": float(s)}
                          for s, t in zip(scores[i], ids[i])],
        })
    return rows


def checked_prompts(prompts: Sequence[SoftPrompt] | SoftPrompt, vocab: Vocabulary, index=None, *, k: int = 10,
                    metric: str = "cosine", include_special: bool = False) -> tuple[list[SoftPrompt], Any]:
    """``(prompts, index)`` every reading of several prompts starts from: the prompts as a list (one
    ``SoftPrompt`` alone is a list of one), each checked against the vocabulary's dimension, and ``index`` or,
    when None, a ``NeighborIndex`` built from ``metric``/``k``/``include_special`` and fitted on ``vocab``."""
    from .loaders import check_compatible
    from .neighbors import NeighborIndex

    if isinstance(prompts, SoftPrompt):
        prompts = [prompts]
    prompts = list(prompts)
    for p in prompts:
        check_compatible(p, vocab)
    if index is None:
        index = NeighborIndex(metric=metric, k=k, include_special=include_special).fit(vocab)
    return prompts, index


def build_report(prompts: Sequence[SoftPrompt] | SoftPrompt, vocab: Vocabulary, index=None, *, k: int = 10,
                 metric: str = "cosine", include_special: bool = False, task: str | None = None) -> Report:
    """Neighbour report of one or more soft prompts against one vocabulary.

    ``index`` is a fitted ``NeighborIndex`` (built here from ``metric``/``include_special`` when omitted).
    ``task``: the task the prompts are read against (recorded with each prompt; default: the task each adapter
    records, if any).  Every prompt is checked against the vocabulary's dimension first."""
    prompts, index = checked_prompts(prompts, vocab, index, k=k, metric=metric, include_special=include_special)
    out = []
    for p in prompts:
        d = prompt_info(p)
        d["task"] = task or prompt_task(p)
        d["tokens"] = neighbor_rows(p, vocab, index, k)
        out.append(d)
    return Report(model=model_info(vocab, index.median_norm_, prompts), prompts=out,
                  settings={"metric": index.metric, "k": k, "include_special": index.include_special})


def iter_neighbors(report: Report) -> Iterable[tuple[str, int, list[dict]]]:
    """``(prompt name, position, neighbours)`` of every virtual token of ``report``."""
    for p in report.prompts:
        for t in p.tokens:
            yield p.name, t.index, [n.to_dict() for n in t.neighbors]


__all__ = ["model_info", "prompt_task", "prompt_info", "neighbor_rows", "checked_prompts", "build_report",
           "iter_neighbors"]

"""``analyze``: the full interpretation of one or more soft prompts, assembled into one :class:`Report`.

One function, three callers (CLI ``analyze``, the dashboard, the notebook).  Per prompt it adds to the
neighbour rows of :func:`~analyzer.report.build_report`:

* ``tightness``, ``null``, ``hubness``, ``geometry``, ``persistence``, ``redundancy``, ``summary`` —
  :func:`analyzer.metrics.analyze_prompt`, every number beside its chance level;
* ``relatedness`` — :func:`analyzer.relatedness.task_relatedness` when a task is known;
* ``faithfulness`` — :func:`analyzer.faithfulness.analyze_faithfulness` when asked (it runs the frozen model).

A section that was not computed says why (``{"skipped": "..."}``), so a reader never mistakes an absent number
for a zero.  Across several prompts, ``clusters`` holds scikit-learn cluster metrics of the virtual tokens
grouped by prompt, against shuffled labels."""

from __future__ import annotations

from typing import Callable, Sequence

from .report import Report, model_info, neighbor_rows, prompt_info
from .types import SoftPrompt, Vocabulary


def prompt_task(prompt: SoftPrompt) -> str | None:
    """The task a prompt was trained on, when its adapter records it: our trainer writes it to
    ``training_meta.json`` beside the adapter (``{"task": {"name": ...}}``)."""
    from .training.config import meta_task_name, read_training_meta

    name = meta_task_name(read_training_meta(prompt.source))
    if name:
        return name
    cfg = prompt.config or {}
    for key in ("task", "task_name", "dataset"):
        v = cfg.get(key)
        if isinstance(v, str) and v:
            return v
    meta = cfg.get("softprompt_analyzer") if isinstance(cfg.get("softprompt_analyzer"), dict) else {}
    return meta.get("task") if isinstance(meta.get("task"), str) else None


def analyze(prompts: Sequence[SoftPrompt] | SoftPrompt, vocab: Vocabulary, *, task: str | None = None,
            k: int = 10, metric: str = "cosine", include_special: bool = False, seed: int = 0, n_null: int = 500,
            text_space: bool = True, relatedness: bool = True, faithfulness: bool = False,
            faithfulness_limit: int = 200, model=None, progress: Callable[[str], None] | None = None) -> Report:
    """Analyse ``prompts`` against ``vocab``; see the module docstring for what each prompt gets.

    task:          a task name or data file for relatedness/faithfulness (default: the task each adapter
                   records, if any).
    text_space:    also measure tightness/relatedness in the external MiniLM sentence-embedding space.
    faithfulness:  run the frozen model (``model``: a ``(model, tokenizer)`` pair, loaded here when omitted).
    progress:      called with a short message before each step (the CLI prints it, the dashboard shows it).
    """
    from .loaders import check_compatible
    from .metrics import analyze_prompt, cluster_metrics
    from .neighbors import NeighborIndex

    say = progress or (lambda msg: None)
    if isinstance(prompts, SoftPrompt):
        prompts = [prompts]
    prompts = list(prompts)
    for p in prompts:
        check_compatible(p, vocab)
    index = NeighborIndex(metric=metric, k=k, include_special=include_special).fit(vocab)
    embedder = None
    if text_space:
        from .embedder import TextEmbedder

        embedder = TextEmbedder()
    out = []
    frozen = model
    for p in prompts:
        d = prompt_info(p)
        d["tokens"] = neighbor_rows(p, vocab, index, k)
        task_name = task or prompt_task(p)
        d["task"] = task_name
        label_ids = None
        task_obj = None
        if task_name:
            from .tasks import get_task

            task_obj = get_task(task_name)
            label_ids = label_token_groups(task_obj, vocab)
        say(f"{p.name}: neighbour metrics and null baselines")
        m = analyze_prompt(p, vocab, index, k=k, n_null=n_null, seed=seed, label_token_ids=label_ids,
                           text_embedder=embedder if text_space else False)
        for key in ("tightness", "null", "hubness", "geometry", "persistence", "redundancy", "summary", "timings"):
            d[key] = m.get(key)
        if task_obj is not None and relatedness:
            say(f"{p.name}: task-relatedness ({task_obj.name})")
            from .relatedness import task_relatedness

            d["relatedness"] = task_relatedness(p, vocab, index, task_obj, k=k, seed=seed, n_null=n_null,
                                                text_embedder=embedder if text_space else False)
        else:
            d["relatedness"] = {"skipped": "no task given (pass --task) and the adapter records none"
                                if task_obj is None else "relatedness not requested"}
        if faithfulness:
            say(f"{p.name}: faithfulness (runs the frozen model)")
            from .faithfulness import analyze_faithfulness

            if frozen is None:
                from .models import load_frozen_model

                frozen = load_frozen_model(vocab.name)
            fm, ftok = frozen
            d["faithfulness"] = analyze_faithfulness(fm, ftok, p, index, task=task_obj, limit=faithfulness_limit,
                                                     model_name=vocab.name)
        else:
            d["faithfulness"] = {"skipped": "not requested (pass --faithfulness; it runs the frozen model)"}
        out.append(d)
    clusters = None
    if len(prompts) >= 2:
        say("cluster metrics across prompts")
        clusters = cluster_metrics({p.name: p.vectors for p in prompts}, seed=seed)
    return Report(model=model_info(vocab, index.median_norm_), prompts=out,
                  settings={"metric": metric, "k": k, "include_special": include_special, "seed": seed,
                            "n_null": n_null, "text_space": text_space, "analysis": True},
                  extra={"clusters": clusters} if clusters is not None else {})


def label_token_groups(task, vocab: Vocabulary) -> dict[str, list[int]] | None:
    """``{label: [token id]}`` for the label-persistence test: the tokens training scores for each label word
    (:meth:`analyzer.tasks.Task.label_token_ids`, read from the vocabulary's token strings so no tokenizer or
    model is loaded).  None when a label word is not one token of this vocabulary (nothing to persist)."""
    from .exceptions import TaskError

    if task is None:
        return None
    try:
        ids = task.label_token_ids(vocab)
    except TaskError:
        return None
    return {label: [i] for label, i in zip(task.labels, ids)}

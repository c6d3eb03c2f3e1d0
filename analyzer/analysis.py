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

from dataclasses import asdict, dataclass, replace
from numbers import Integral
from typing import Callable, Mapping, Sequence

from .report import Report, checked_prompts, model_info, neighbor_rows, prompt_info
from .types import SoftPrompt, Vocabulary


@dataclass(frozen=True)
class AnalysisSettings:
    """What an analysis computes -- the one source of settings for the CLI, the dashboard and the notebook, so
    that the same prompt gets the same claims everywhere.  Build it with :func:`analysis_settings`.

    text_space:    tightness and relatedness also in the external MiniLM sentence-embedding space.
    neighborhood:  the vocabulary's own neighbour graph (mutual neighbours, vocabulary hubness).
    csls:          the hubness-corrected CSLS reading beside the chosen metric.
    relatedness:   task-relatedness when a task is known.
    n_null, seed:  size of each null pool (an int >= 2) and the seed of every draw (an int in [0, 2**32 - 1]);
                   both checked through :mod:`analyzer._params`."""

    text_space: bool = True
    neighborhood: bool = True
    csls: bool = True
    relatedness: bool = True
    n_null: int = 500
    seed: int = 0

    def __post_init__(self):
        from ._params import SEED, Interval, check_params

        checked = check_params("AnalysisSettings", {"n_null": self.n_null, "seed": self.seed},
                               {"n_null": [Interval(Integral, 2, None)], "seed": [SEED]})
        for name, value in checked.items():
            object.__setattr__(self, name, value)       # a numpy int stored as an int (frozen dataclass)

    @property
    def full(self) -> bool:
        return self.text_space and self.neighborhood and self.csls and self.relatedness

    @property
    def leaves_out(self) -> list[str]:
        """What this reading does not compute (empty for the full analysis of ``softprompt-analyzer analyze``)."""
        parts = [("the MiniLM text space", self.text_space),
                 ("the vocabulary's own neighbour graph (mutual neighbours, vocabulary hubness)", self.neighborhood),
                 ("the CSLS side reading", self.csls), ("task-relatedness", self.relatedness)]
        return [name for name, on in parts if not on]

    def describe(self) -> str:
        """One sentence for a reader: full, or what this quick reading leaves out."""
        if not self.leaves_out:
            return "Full analysis (the claims of softprompt-analyzer analyze)."
        return ("Quick reading: leaves out " + "; ".join(self.leaves_out) + ". Its claims are a subset of the "
                "full analysis (softprompt-analyzer analyze), which adds the readings left out.")

    def to_dict(self) -> dict:
        return {**asdict(self), "full": self.full, "leaves_out": self.leaves_out}


def analysis_settings(full: bool = True, **overrides) -> AnalysisSettings:
    """The settings of the full analysis (``full=True``: what ``softprompt-analyzer analyze`` computes) or of
    the quick first reading (a few seconds: no text space, no vocabulary neighbour graph, no CSLS side
    reading), with ``overrides`` (``text_space=False``, ``n_null=...``)."""
    base = AnalysisSettings() if full else AnalysisSettings(text_space=False, neighborhood=False, csls=False)
    return replace(base, **overrides)


def analyze(prompts: Sequence[SoftPrompt] | SoftPrompt, vocab: Vocabulary, *, task: str | None = None,
            label_words: Mapping[str, str] | None = None, text_column: str | None = None,
            label_column: str | None = None, k: int = 10, metric: str = "cosine", include_special: bool = False,
            settings: AnalysisSettings | None = None, faithfulness: bool = False, faithfulness_limit: int = 200,
            model=None, index=None, progress: Callable[[str], None] | None = None, **overrides) -> Report:
    """Analyse ``prompts`` against ``vocab``; see the module docstring for what each prompt gets.

    task:          a task name or data file for relatedness/faithfulness (default: the task each adapter
                   records, if any: a recorded task file is found again by content,
                   :func:`analyzer.task_record.resolve_task`).
    label_words, text_column, label_column: options of a CSV/JSONL task (default: the recorded ones).
    settings:      what to compute (default: the full analysis, :func:`analysis_settings`); ``overrides``
                   (``text_space=False``, ``n_null=300``, ``seed=1``, ``relatedness=False``) change single fields.
    faithfulness:  run the frozen model (``model``: a ``(model, tokenizer)`` pair, loaded here when omitted).
    index:         a fitted ``NeighborIndex`` of ``vocab`` with this ``metric`` and ``include_special`` (built
                   here when omitted).
    progress:      called with a short message before each step (the CLI prints it, the dashboard shows it).
    """
    from .baselines import build_baselines, prepare_prompt
    from .metrics import analyze_prompt, cluster_metrics, summarize
    from .stats import TestTable

    settings = replace(settings or analysis_settings(), **overrides)
    seed, n_null = settings.seed, settings.n_null
    say = progress or (lambda msg: None)
    prompts, index = checked_prompts(prompts, vocab, index, k=k, metric=metric, include_special=include_special)
    embedder = False
    if settings.text_space:
        from .embedder import TextEmbedder

        embedder = TextEmbedder()
    out = []
    frozen = model
    for p in prompts:
        d = prompt_info(p)
        d["tokens"] = neighbor_rows(p, vocab, index, k)
        from .task_record import resolve_task

        task_obj = resolve_task(task, p, label_words=label_words, text_column=text_column,   # the run's own task
                                label_column=label_column)                            # unless given
        d["task"] = task if isinstance(task, str) and task.strip() else (task_obj.name if task_obj else None)
        label_ids = None
        if task_obj is not None:
            label_ids = label_token_groups(task_obj, vocab)
        say(f"{p.name}: neighbour metrics and null baselines")
        table = TestTable()       # one family of tests per prompt: metrics and relatedness adjusted together
        prep = prepare_prompt(p, vocab, index, k)      # once per prompt: every reading below takes it
        B = build_baselines(prep.vectors, vocab, index, k=k, n_null=n_null, seed=seed, init_ids=prep.init_ids,
                            init_reason=prep.init_reason)
        m = analyze_prompt(p, vocab, index, k=k, n_null=n_null, seed=seed, label_token_ids=label_ids,
                           text_embedder=embedder, neighborhood=None if settings.neighborhood else False,
                           csls=settings.csls, table=table, baselines=B, prepared=prep)
        for key in ("k", "tightness", "null", "hubness", "geometry", "persistence", "redundancy", "timings"):
            d[key] = m.get(key)
        if task_obj is not None and settings.relatedness:
            say(f"{p.name}: task-relatedness ({task_obj.name})")
            from .relatedness import task_relatedness

            d["relatedness"] = task_relatedness(p, vocab, index, task_obj, k=k, seed=seed, n_null=n_null,
                                                text_embedder=embedder, table=table, baselines=B, prepared=prep)
        else:
            d["relatedness"] = {"skipped": "no task given (pass --task) and the adapter records none"
                                if task_obj is None else "relatedness not requested"}
        table.adjust()
        d["tests"] = table.to_list()
        d["summary"] = summarize(d)
        if "skipped" not in d["relatedness"]:
            from .relatedness import summarize as rel_summary

            d["relatedness"]["summary"] = rel_summary(d["relatedness"], table.rows)
        if faithfulness:
            say(f"{p.name}: faithfulness (runs the frozen model)")
            from .faithfulness import analyze_faithfulness

            if frozen is None:
                from ._progress import loading
                from .models import load_frozen_model

                with loading(progress, vocab.name):
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
    return Report(model=model_info(vocab, index.median_norm_, prompts), prompts=out,
                  settings={"metric": metric, "k": k, "include_special": include_special, **settings.to_dict(),
                            "analysis": True},
                  extra={"clusters": clusters} if clusters is not None else {})


def claims(report) -> dict[str, list[str]]:
    """Per prompt (by name), the verdicts of its table of tests (``tests``): the claims (matched null,
    initialisation; q after Benjamini-Hochberg), then the labelled references.  ``report``: a :class:`Report`
    or its JSON (``to_dict``)."""
    from .metrics import summarize

    prompts = report.prompts if isinstance(report, Report) else report["prompts"]
    return {d["name"]: summarize(d) for d in prompts}


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

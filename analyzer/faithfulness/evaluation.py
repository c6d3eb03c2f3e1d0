"""Is this prompt good on my data?  Accuracy of any prompt on any task, beside what no training gives.

:func:`evaluate_prompts` scores prompts (adapters of any origin, tensors, one task prompt of a multitask adapter)
on tasks (built-in or CSV/JSONL), each prompt-task pair on the same first ``limit`` examples of a split as three
baselines: **zero-shot** (the template alone), the task's **instruction** written as a hard prompt, and the
**majority class** of the training split.  Per pair: accuracy with its Wilson 95% interval, balanced accuracy,
recall per class, the mean negative log-likelihood of the gold label word (among the task's label words: the
rank classification the prompt was trained with), and an exact McNemar test against zero-shot on the same
examples, with Benjamini-Hochberg over the pairs of one call (all from :mod:`analyzer.stats`).

:func:`score_columns` is the one scoring loop: ``evaluate`` and the per-task prompt swap
(:mod:`analyzer.swap`) are two views of it.  :class:`Accuracy` is one condition's score for the projection gap and
the stress test; :func:`accuracy_from_eval` makes it from an :class:`~analyzer.training.scoring.EvalResult`.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from numbers import Integral
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._params import Interval, Options, check_params
from ..exceptions import AnalyzerError
from ..results import Renderable
from ..stats import ALPHA, benjamini_hochberg, format_p, mcnemar_exact, wilson_interval

@dataclass(frozen=True)
class Accuracy:
    """Rank-classification accuracy of one condition, beside its chance levels.

    condition:   ``none``, ``instruction``, ``init``, ``projection``, ``soft`` (or a stress-test label).
    accuracy, correct, n: the score and the counts it comes from; ci_low/ci_high: Wilson 95% interval.
    balanced_accuracy: mean per-class recall (chance = ``1/num_classes`` whatever the class balance).
    chance:      ``1/num_classes``.
    majority:    accuracy of always answering the majority class of the task's train split, on these examples.
    majority_label: that class.
    above_chance: the interval's lower end is above both chance levels.
    prompt:      what was fed (the text, or the readable tokens), for the report.
    """

    condition: str
    accuracy: float
    correct: int
    n: int
    ci_low: float
    ci_high: float
    balanced_accuracy: float
    chance: float
    majority: float
    majority_label: str
    above_chance: bool
    prompt: str | None = None
    loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "accuracy": self.accuracy, "correct": self.correct, "n": self.n,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "balanced_accuracy": self.balanced_accuracy,
                "chance": self.chance, "majority": self.majority, "majority_label": self.majority_label,
                "above_chance": self.above_chance, "prompt": self.prompt, "loss": self.loss}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Accuracy:
        """Read back a ``to_dict()``."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def accuracy_from_eval(result, task, condition: str, *, prompt: str | None = None) -> Accuracy:
    """An :class:`Accuracy` from an ``EvalResult`` of :func:`analyzer.training.scoring.evaluate`."""
    correct = int((np.asarray(result.predictions) == np.asarray(result.targets)).sum())
    n = int(result.n)
    lo, hi = wilson_interval(correct, n)
    counts = None if task.train else Counter(task.labels[int(t)] for t in np.asarray(result.targets))
    maj_idx, maj_label = majority_of(task, counts)   # no train split: the majority of the scored examples
    majority = float((np.asarray(result.targets) == maj_idx).mean()) if n else float("nan")
    chance = 1.0 / task.num_labels
    return Accuracy(condition=condition, accuracy=float(result.accuracy), correct=correct, n=n,
                    ci_low=float(lo), ci_high=float(hi), balanced_accuracy=float(result.balanced_accuracy),
                    chance=chance, majority=majority, majority_label=maj_label,
                    above_chance=bool(lo > max(chance, majority)), prompt=prompt,
                    loss=float(result.loss) if result.loss is not None else None)



# ================================================================================================ scoring
#: the column of the template alone (no prompt)
ZERO_SHOT = "zero-shot"


def score_columns(model, tokenizer, columns: Mapping[str, Any], tasks: Sequence, *, split: str = "test",
                  limit: int | None = 200, model_name: str | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[tuple[str, str], Any]:
    """``{(column, task name): EvalResult}``: every column (a prompt, a hard-prompt text, or ``None`` for the
    template alone) scored on the first ``limit`` examples of ``split`` of every task -- the same examples for
    every column of a task, so the columns of a task are paired.  The one loop ``evaluate`` and ``swap`` share."""
    from ..training.scoring import evaluate

    say = progress or (lambda msg: None)
    out: dict[tuple[str, str], Any] = {}
    total, j = len(columns) * len(tasks), 0
    for task in tasks:
        targets = None
        for name, feed in columns.items():
            j += 1
            say(f"{task.name}: {name} ({j}/{total})")
            r = evaluate(model, tokenizer, task, feed, split=split, limit=limit, model_name=model_name)
            t = np.asarray(r.targets)
            if targets is None:
                targets = t
            elif not np.array_equal(t, targets):  # pragma: no cover - evaluate scores split[:limit] in order
                raise AnalyzerError(f"The columns of task {task.name!r} were not scored on the same examples.")
            out[(name, task.name)] = r
        # nothing else: the callers turn the results into their own rows
    return out


def outcome_string(correct) -> str:
    """Per-example correctness as a string of ``0``/``1`` (compact paired data in a JSON file)."""
    return "".join("1" if x else "0" for x in np.asarray(correct, dtype=bool))


def outcome_array(outcomes: str) -> np.ndarray:
    return np.frombuffer(outcomes.encode(), dtype=np.uint8) == ord("1")


# ================================================================================================ results
@dataclass(frozen=True)
class Score:
    """One column on one task: ``accuracy`` (``correct``/``n``) with its Wilson 95% interval, ``balanced_accuracy``
    (mean recall per class), ``per_class`` recall, ``nll`` (mean −log p of the gold label word among the label
    words; None for the majority class, which gives no probabilities) and the per-example ``outcomes``."""

    accuracy: float
    correct: int
    n: int
    ci_low: float
    ci_high: float
    balanced_accuracy: float
    per_class: Mapping[str, float]
    nll: float | None
    outcomes: str

    @property
    def correct_array(self) -> np.ndarray:
        return outcome_array(self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "correct": self.correct, "n": self.n,
                "ci": [self.ci_low, self.ci_high], "balanced_accuracy": self.balanced_accuracy,
                "per_class": dict(self.per_class), "nll": self.nll}

    @classmethod
    def of(cls, correct, labels: Sequence[str], targets, nll: float | None) -> "Score":
        ok = np.asarray(correct, dtype=bool)
        t = np.asarray(targets)
        per = {lab: float(ok[t == i].mean()) for i, lab in enumerate(labels) if (t == i).any()}
        lo, hi = wilson_interval(int(ok.sum()), int(ok.size))
        return cls(accuracy=float(ok.mean()), correct=int(ok.sum()), n=int(ok.size), ci_low=float(lo),
                   ci_high=float(hi), balanced_accuracy=float(np.mean(list(per.values()))) if per else float("nan"),
                   per_class=per, nll=None if nll is None else float(nll), outcomes=outcome_string(ok))

    @classmethod
    def from_eval(cls, r) -> "Score":
        return cls.of(r.correct, r.labels, r.targets, r.loss)


@dataclass(frozen=True)
class Versus:
    """A prompt against a baseline on the same examples: ``diff`` in accuracy, exact McNemar (``a_only``/
    ``b_only``: examples only the prompt / only the baseline got right; ``p`` two-sided), ``q`` Benjamini-Hochberg
    over every comparison of the call, and the sentence."""

    baseline: str
    diff: float
    a_only: int
    b_only: int
    p: float
    q: float | None = None
    verdict: str = ""

    @property
    def significant(self) -> bool:
        return self.q is not None and self.q < ALPHA

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "diff": self.diff, "a_only": self.a_only, "b_only": self.b_only,
                "p": self.p, "q": self.q, "significant": self.significant, "verdict": self.verdict}


@dataclass(frozen=True)
class PromptEvaluation:
    """One prompt on one task (``score``) and against zero-shot on the same examples (``vs_zero_shot``)."""

    prompt: str
    task: str
    score: Score
    vs_zero_shot: Versus

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "task": self.task, "n": self.score.n, **{k: v for k, v in
                self.score.to_dict().items() if k != "n"}, "vs_zero_shot": self.vs_zero_shot.to_dict()}


@dataclass(frozen=True)
class Baselines:
    """What no training gives on a task, on the same examples: the template alone, the task's instruction as a
    hard prompt (None when the task has none), and always answering the training split's majority class."""

    zero_shot: Score
    instruction: Score | None
    majority: Score
    majority_label: str
    instruction_text: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"zero_shot": self.zero_shot.to_dict(),
                "instruction": None if self.instruction is None else
                {**self.instruction.to_dict(), "text": self.instruction_text},
                "majority": {**self.majority.to_dict(), "label": self.majority_label}}


@dataclass(frozen=True)
class EvaluationResult(Renderable):
    """Prompts × tasks: ``results`` (one :class:`PromptEvaluation` per pair, prompts in order within each task)
    and ``baselines`` per task; ``split``/``limit``: which examples every score was computed on."""

    model: str
    results: tuple[PromptEvaluation, ...]
    baselines: Mapping[str, Baselines]
    split: str = "test"
    limit: int | None = 200
    prompts: Mapping[str, str] = field(default_factory=dict)   # name -> source
    provenance: dict | None = None   # which model was run, and what it stands in for (analyzer.provenance)

    def result(self, prompt: str, task: str) -> PromptEvaluation:
        for r in self.results:
            if r.prompt == prompt and r.task == task:
                return r
        raise KeyError((prompt, task))

    def summary(self) -> list[str]:
        return [r.vs_zero_shot.verdict for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_provenance": self.provenance, "split": self.split, "limit": self.limit,
                "prompts": [{"name": k, "source": v} for k, v in self.prompts.items()],
                "results": [r.to_dict() for r in self.results],
                "baselines": {t: b.to_dict() for t, b in self.baselines.items()},
                "settings": {"metric": "rank classification over the task's label words",
                             "interval": "Wilson 95%", "test": "exact two-sided McNemar against zero-shot on the "
                             "same examples; Benjamini-Hochberg over the prompt-task pairs of this run",
                             "nll": "mean -log p(gold label word), softmax over the label words"}}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    # ---------------------------------------------------------------------------------------- renderers
    _HEAD = ["task", "prompt", "n", "accuracy [95% CI]", "balanced", "NLL", "vs zero-shot"]

    def _rows(self) -> list[list[str]]:
        rows = []
        for task, b in self.baselines.items():
            for r in self.results:
                if r.task == task:
                    v = r.vs_zero_shot
                    rows.append([task, r.prompt, str(r.score.n), _acc(r.score), _num(r.score.balanced_accuracy),
                                 _num(r.score.nll), f"{v.diff:+.3f} ({format_p(v.q, name='q')})"])
            for name, s in (("zero-shot", b.zero_shot), ("instruction", b.instruction),
                            (f"majority ({b.majority_label})", b.majority)):
                if s is not None:
                    rows.append([task, f"[{name}]", str(s.n), _acc(s), _num(s.balanced_accuracy), _num(s.nll), ""])
        return rows

    def _title(self) -> str:
        which = f"the first {self.limit}" if self.limit else "all"
        return (f"Evaluation on {self.model}: accuracy on {which} {self.split} examples of each task [95% Wilson "
                f"interval]; baselines in brackets")

    def _per_class(self) -> list[str]:
        return [f"{r.prompt} on {r.task}: recall " + ", ".join(f"{k} {v:.2f}" for k, v in r.score.per_class.items())
                for r in self.results]

    def to_table(self, width: int = 120) -> str:
        from ..render.tables import text_table

        return text_table(self._title(), self._HEAD, self._rows(), provenance=self.provenance,
                          left=("task", "prompt"), no_wrap=lambda h: h != "prompt",
                          bullets=self._per_class() + self.summary(), width=width)

    def to_markdown(self) -> str:
        from ..render.tables import markdown_table

        return markdown_table(self._title(), self._HEAD, self._rows(), provenance=self.provenance,
                              left=("task", "prompt"), bullets=self._per_class() + self.summary())

    def to_html(self) -> str:
        from ..plotting import plot_evaluation
        from ..render.tables import html_table_page

        return html_table_page(self._title(), self._HEAD, self._rows(), provenance=self.provenance,
                               before=[plot_evaluation(self)], bullets=self._per_class() + self.summary())


def _acc(s: Score) -> str:
    return f"{s.accuracy:.3f} [{s.ci_low:.2f}, {s.ci_high:.2f}]"


def _num(x) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.3f}"


# ================================================================================================ computing
def majority_of(task, counts: Mapping[str, int] | None = None) -> tuple[int, str]:
    """(index, label) of the most frequent class of the training split (or of ``counts``; ties: the first
    label)."""
    if counts is None:
        counts = task.label_counts("train") if task.train else {}
    label = max(task.labels, key=lambda lab: (counts.get(lab, 0), -task.labels.index(lab)))
    return task.labels.index(label), label


def versus(a: Score, b: Score, baseline: str) -> Versus:
    m = mcnemar_exact(a.correct_array, b.correct_array)
    return Versus(baseline=baseline, diff=a.accuracy - b.accuracy, a_only=m["a_only"], b_only=m["b_only"],
                  p=m["p_value"])


def paired_sentence(lead: str, s: Score, other: str, z: Score, diff: float, q: float, significant: bool) -> str:
    """One sentence for a paired accuracy comparison: "LEAD 0.870 vs OTHER 0.165 (n=200, q=...): higher than OTHER."."""
    head = f"{lead} {s.accuracy:.3f} vs {other} {z.accuracy:.3f} (n={s.n}, {format_p(q, name='q')})"
    if significant:
        return f"{head}: {'higher' if diff > 0 else 'lower'} than {other}."
    return f"{head}: not distinguishable from {other}."


def _verdict(prompt: str, task: str, s: Score, z: Score, v: Versus) -> str:
    return paired_sentence(f"{prompt} on {task}:", s, "zero-shot", z, v.diff, v.q, v.significant)


def evaluate_prompts(model, tokenizer, prompts: Mapping[str, Any], tasks: Sequence, *, split: str = "test",
                     limit: int | None = 200, model_name: str | None = None,
                     progress: Callable[[str], None] | None = None) -> EvaluationResult:
    """Score every prompt on every task beside zero-shot, the instruction and the majority class.

    model, tokenizer: the frozen model (:func:`analyzer.models.load_frozen_model`).
    prompts: ``{name: SoftPrompt or "n d" matrix}``; tasks: names or ``Task`` objects.
    split/limit: the first ``limit`` examples of ``split`` (``None``: all), the same for every column."""
    from ..tasks import Task, get_task
    from ..types import SoftPrompt

    if not isinstance(prompts, Mapping) or not prompts:
        raise AnalyzerError("evaluate needs at least one prompt: a mapping {name: SoftPrompt}.")
    split, limit = check_params("evaluate_prompts", {"split": split, "limit": limit}, {
        "split": [Options("test", "validation", "train")], "limit": [Interval(Integral, 1, None), None]}).values()
    reserved = [n for n in prompts if n in (ZERO_SHOT, "instruction")]
    if reserved:
        raise AnalyzerError(f"{reserved[0]!r} names a baseline column; give that prompt another name.")
    task_objs = [t if isinstance(t, Task) else get_task(t) for t in tasks]
    if not task_objs:
        raise AnalyzerError("evaluate needs at least one task (--task).")
    if len({t.name for t in task_objs}) != len(task_objs):
        raise AnalyzerError(f"Each task may appear once; got {[t.name for t in task_objs]}.")
    columns: dict[str, Any] = {ZERO_SHOT: None, **prompts}
    scored = score_columns(model, tokenizer, columns, task_objs, split=split, limit=limit, model_name=model_name,
                           progress=progress)
    instr = {t.name: score_columns(model, tokenizer, {"instruction": t.instruction}, [t], split=split, limit=limit,
                                   model_name=model_name, progress=progress)[("instruction", t.name)]
             for t in task_objs if t.instruction}
    results, baselines = [], {}
    for t in task_objs:
        zero = Score.from_eval(scored[(ZERO_SHOT, t.name)])
        targets = np.asarray(scored[(ZERO_SHOT, t.name)].targets)
        maj_idx, maj_label = majority_of(t)
        baselines[t.name] = Baselines(
            zero_shot=zero, instruction=Score.from_eval(instr[t.name]) if t.name in instr else None,
            majority=Score.of(targets == maj_idx, t.labels, targets, None), majority_label=maj_label,
            instruction_text=t.instruction or None)
        for name in prompts:
            s = Score.from_eval(scored[(name, t.name)])
            results.append(PromptEvaluation(prompt=name, task=t.name, score=s,
                                            vs_zero_shot=versus(s, zero, ZERO_SHOT)))
    qs = benjamini_hochberg([r.vs_zero_shot.p for r in results])
    final = []
    for r, q in zip(results, qs):
        v = replace(r.vs_zero_shot, q=q)
        v = replace(v, verdict=_verdict(r.prompt, r.task, r.score, baselines[r.task].zero_shot, v))
        final.append(replace(r, vs_zero_shot=v))
    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "the model"
    sources = {n: str(getattr(p, "source", "(matrix)")) if isinstance(p, SoftPrompt) else "(matrix)"
               for n, p in prompts.items()}
    return EvaluationResult(model=str(name), results=tuple(final), baselines=baselines, split=split, limit=limit,
                            prompts=sources)


def evaluate_for_model(model: str | None, paths: Sequence[str], tasks: Sequence[str] | None = None, *,
                       split: str = "test", limit: int | None = 200, task_index: int | None = None,
                       label_words=None, text_column: str = "text", label_column: str = "label",
                       progress: Callable[[str], None] | None = None) -> EvaluationResult:
    """:func:`evaluate_prompts` from names, as the ``evaluate`` command runs it: loads every prompt at ``paths``
    (anything :func:`analyzer.loaders.load_prompts` reads; a multitask adapter gives one prompt per task unless
    ``task_index``), the tasks (default: the tasks the prompts record) and the frozen ``model`` (default: the
    adapters' base model)."""
    from ..loaders import load_prompts
    from .._progress import loading
    from ..models import load_frozen_model, model_for_prompts
    from ..provenance import model_provenance
    from ..task_record import resolve_tasks

    loaded: dict[str, Any] = {}
    for path in paths:
        for p in load_prompts(path, task=task_index):
            name = p.name
            if name in loaded:
                name = f"{p.name} ({p.source})"
            if name in loaded:
                raise AnalyzerError(f"The prompt {p.source} is given twice; give each prompt once.")
            loaded[name] = p
    # the prompts' own tasks unless given (a recorded task file found again by content)
    task_objs = resolve_tasks(tasks, loaded.values(), label_words=label_words, text_column=text_column,
                              label_column=label_column)
    if not task_objs:
        raise AnalyzerError("No --task given and none of the prompts records the task it was trained for; "
                            "pass --task NAME (see `softprompt-analyzer tasks`) or a CSV/JSONL file.")
    model = model_for_prompts(list(loaded.values()), model)
    with loading(progress, model):
        frozen, tok = load_frozen_model(model)
    res = evaluate_prompts(frozen, tok, loaded, task_objs, split=split, limit=limit, model_name=model,
                           progress=progress)
    return replace(res, provenance=model_provenance(model, loaded.values(), what="model"))


__all__ = ["Accuracy", "accuracy_from_eval", "ZERO_SHOT", "score_columns", "Score", "Versus", "PromptEvaluation",
           "Baselines", "EvaluationResult", "evaluate_prompts", "evaluate_for_model", "majority_of",
           "outcome_string", "outcome_array"]

"""One frozen model, one soft prompt per task: the per-task prompt swap.

Every prompt (and no prompt at all, the zero-shot template) is scored on every task's held-out examples -- the
same examples for every cell of a task's row, so the cells of a row are paired -- by
:func:`analyzer.faithfulness.evaluation.score_columns`, the scoring loop of ``evaluate``: the swap is a view of
the same computation.  Per task, the prompt trained for it (the *right* prompt) is set
against the best of the others (the *wrong* prompts) and against zero-shot with an exact McNemar test on the
per-example correctness (:func:`analyzer.stats.mcnemar_exact`); every accuracy has its Wilson 95% interval.

A task for which no given prompt was trained still gets its row: every prompt is wrong there.

Importing this module pulls numpy only; torch is imported inside :func:`prompt_swap`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from numbers import Integral
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._params import Interval, check_param
from .exceptions import AnalyzerError
from .faithfulness.evaluation import ZERO_SHOT, Score, outcome_array, score_columns
from .provenance import model_line
from .results import Renderable
from .stats import mcnemar_exact
from .types import SoftPrompt

SCHEMA = "softprompt-analyzer/prompt-swap/1"


def prompt_hash(prompt: SoftPrompt) -> str:
    """A content hash of a prompt's matrix (float32 bytes and shape): what its adapter file stores, so the same
    prompt re-saved matches and a retrained one does not, whatever its name."""
    v = np.ascontiguousarray(np.asarray(prompt.vectors, dtype=np.float32))
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(v.shape).encode())
    h.update(v.tobytes())
    return h.hexdigest()


# ================================================================================================ result types
def _build(cls, d: Mapping[str, Any]):
    """``cls(**d)`` over ``cls``'s own fields (extra keys ignored; a missing one is a KeyError)."""
    return cls(**{f.name: d[f.name] for f in fields(cls)})


class _Flat:
    """A frozen dataclass of plain fields: ``to_dict`` is :func:`dataclasses.asdict`, ``from_dict`` its inverse."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        return _build(cls, d)


@dataclass(frozen=True)
class SwapCell(_Flat):
    """Accuracy of one column (a prompt, or ``zero-shot``) on one task.

    correct, n, accuracy: counts and score on the task's first ``n`` test examples; ci_low/ci_high: Wilson 95%.
    right:   the prompt was trained for this task.
    outcomes: per-example correctness as a string of ``0``/``1`` (the paired data the McNemar tests read)."""

    prompt: str
    task: str
    correct: int
    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    right: bool
    outcomes: str


    @property
    def correct_array(self) -> np.ndarray:
        return outcome_array(self.outcomes)


@dataclass(frozen=True)
class Pairing(_Flat):
    """Column ``a`` against column ``b`` on the same examples of ``task``: accuracy difference and exact McNemar
    (``a_only``/``b_only``: examples only one of them got right; ``p_value``: two-sided)."""

    task: str
    a: str
    b: str
    a_accuracy: float
    b_accuracy: float
    diff: float
    a_only: int
    b_only: int
    p_value: float



def _pair(task: str, a: SwapCell, b: SwapCell) -> Pairing:
    m = mcnemar_exact(a.correct_array, b.correct_array)
    return Pairing(task=task, a=a.prompt, b=b.prompt, a_accuracy=a.accuracy, b_accuracy=b.accuracy,
                   diff=a.accuracy - b.accuracy, a_only=m["a_only"], b_only=m["b_only"], p_value=m["p_value"])


@dataclass(frozen=True)
class TaskRow:
    """One task's row: its cells (zero-shot first, then the prompts in order), which prompts were trained for
    it, and the two paired comparisons of the best right prompt (or, with none, of the best prompt)."""

    task: str
    cells: tuple[SwapCell, ...]
    right: tuple[str, ...]
    vs_wrong: Pairing | None        # best right vs best wrong
    vs_zero_shot: Pairing | None    # best right (or best prompt, when none is right) vs zero-shot

    def cell(self, prompt: str) -> SwapCell:
        for c in self.cells:
            if c.prompt == prompt:
                return c
        raise KeyError(prompt)

    @property
    def best_right(self) -> SwapCell | None:
        return _best([c for c in self.cells if c.right])

    @property
    def best_wrong(self) -> SwapCell | None:
        return _best([c for c in self.cells if not c.right and c.prompt != ZERO_SHOT])

    def sentence(self) -> str:
        """One plain sentence on the row (``right prompt 0.84 vs best wrong 0.52, McNemar p<0.001``)."""
        from .stats import format_p

        zero = self.cell(ZERO_SHOT)
        r, w = self.best_right, self.best_wrong
        if r is None:
            best = _best([c for c in self.cells if c.prompt != ZERO_SHOT])
            if best is None:
                return f"{self.task}: zero-shot {zero.accuracy:.3f} (n={zero.n}); no prompt to compare."
            z = self.vs_zero_shot
            return (f"{self.task}: no prompt was trained for it; the best prompt, {best.prompt}, scores "
                    f"{best.accuracy:.3f} vs zero-shot {zero.accuracy:.3f}, McNemar {format_p(z.p_value)} "
                    f"(n={zero.n}).")
        s = f"{self.task}: right prompt {r.prompt} {r.accuracy:.3f}"
        if w is not None and self.vs_wrong is not None:
            s += f" vs best wrong {w.prompt} {w.accuracy:.3f}, McNemar {format_p(self.vs_wrong.p_value)}"
        if self.vs_zero_shot is not None:
            s += f"; vs zero-shot {zero.accuracy:.3f}, McNemar {format_p(self.vs_zero_shot.p_value)}"
        return s + f" (n={zero.n})."

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "right": list(self.right), "cells": [c.to_dict() for c in self.cells],
                "vs_wrong": self.vs_wrong.to_dict() if self.vs_wrong else None,
                "vs_zero_shot": self.vs_zero_shot.to_dict() if self.vs_zero_shot else None,
                "summary": self.sentence()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TaskRow":
        return cls(task=str(d["task"]), cells=tuple(SwapCell.from_dict(c) for c in d["cells"]),
                   right=tuple(d.get("right") or ()),
                   vs_wrong=Pairing.from_dict(d["vs_wrong"]) if d.get("vs_wrong") else None,
                   vs_zero_shot=Pairing.from_dict(d["vs_zero_shot"]) if d.get("vs_zero_shot") else None)


def _best(cells: Sequence[SwapCell]) -> SwapCell | None:
    """The most accurate cell; ties go to the first (column order)."""
    best = None
    for c in cells:
        if best is None or c.accuracy > best.accuracy:
            best = c
    return best


@dataclass(frozen=True)
class SwapPrompt(_Flat):
    """A column: the prompt's name, the task it was trained for, its content hash and where it came from."""

    name: str
    task: str
    hash: str
    source: str
    num_virtual_tokens: int


@dataclass(frozen=True)
class SwapResult(Renderable):
    """The swap matrix: ``rows`` (one :class:`TaskRow` per task) × columns (``zero-shot``, then ``prompts``).

    model: the frozen model's name; split/limit: which examples every cell was scored on."""

    model: str
    prompts: tuple[SwapPrompt, ...]
    rows: tuple[TaskRow, ...]
    split: str = "test"
    limit: int | None = 200
    settings: Mapping[str, Any] = field(default_factory=dict)
    provenance: dict | None = None   # which model was run, and what it stands in for (analyzer.provenance)

    @property
    def columns(self) -> tuple[str, ...]:
        return (ZERO_SHOT, *(p.name for p in self.prompts))

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(r.task for r in self.rows)

    def row(self, task: str) -> TaskRow:
        for r in self.rows:
            if r.task == task:
                return r
        raise KeyError(task)

    def cell(self, prompt: str, task: str) -> SwapCell:
        return self.row(task).cell(prompt)

    def accuracy_matrix(self) -> np.ndarray:
        """float ``"task column"``: accuracy of every column on every task (rows in ``tasks`` order)."""
        return np.array([[r.cell(c).accuracy for c in self.columns] for r in self.rows], dtype=np.float64)

    def covers(self, hashes) -> bool:
        """Whether this result's columns are exactly the prompts with these contents (:func:`prompt_hash`
        values, or a ``{name: hash}`` mapping whose names are ignored: a renamed folder still matches, a
        retrained prompt of the same name does not)."""
        got = sorted(hashes.values() if isinstance(hashes, Mapping) else hashes)
        return sorted(p.hash for p in self.prompts) == got

    def summary(self) -> list[str]:
        return [r.sentence() for r in self.rows]

    # -------------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "model": self.model, "model_provenance": self.provenance, "split": self.split,
                "limit": self.limit, "settings": dict(self.settings), "prompts": [p.to_dict() for p in self.prompts],
                "columns": list(self.columns), "tasks": list(self.tasks),
                "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SwapResult":
        if not isinstance(d, Mapping) or d.get("schema") != SCHEMA:
            got = d.get("schema") if isinstance(d, Mapping) else type(d).__name__
            raise AnalyzerError(f"Expected a prompt-swap result (schema {SCHEMA!r}); got {got!r}.")
        try:
            return cls(model=str(d["model"]), prompts=tuple(SwapPrompt.from_dict(p) for p in d["prompts"]),
                       rows=tuple(TaskRow.from_dict(r) for r in d["rows"]), split=str(d.get("split", "test")),
                       limit=d.get("limit"), settings=dict(d.get("settings") or {}),
                       provenance=d.get("model_provenance") if isinstance(d.get("model_provenance"), dict) else None)
        except (KeyError, TypeError, ValueError) as e:
            raise AnalyzerError(f"A prompt-swap result is missing or has a malformed field ({type(e).__name__}: "
                                f"{e}); expected the layout SwapResult.to_dict() writes.") from None

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def read(cls, path) -> "SwapResult":
        """A result written by :meth:`to_json` (e.g. ``sample_prompts/swap.json``)."""
        from pathlib import Path

        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise AnalyzerError(f"Cannot read the prompt-swap file {str(path)!r}: {e.strerror}.") from None
        except ValueError as e:
            raise AnalyzerError(f"The prompt-swap file {str(path)!r} is not valid JSON ({e}).") from None
        return cls.from_dict(d)

    # -------------------------------------------------------------------------------- renderers
    def _title(self, mark: str = "* trained for the task") -> str:
        n = sorted({r.cell(ZERO_SHOT).n for r in self.rows})
        ns = "/".join(str(x) for x in n)
        return (f"Prompt swap on {self.model}: accuracy on the first {ns} {self.split} examples per task "
                f"[95% Wilson interval]; {mark}")

    def _cell_text(self, c: SwapCell) -> str:
        return f"{'*' if c.right else ''}{c.accuracy:.3f} [{c.ci_low:.2f}, {c.ci_high:.2f}]"

    def to_markdown(self) -> str:
        head = ["task", *self.columns]
        title = self._title("bold: the prompt trained for the task")
        src = [model_line(self.provenance) + ".", ""] if model_line(self.provenance) else []
        lines = [f"**{title}**", "", *src, "| " + " | ".join(h.replace("|", "\\|") for h in head) + " |",
                 "|:---|" + "---:|" * len(self.columns)]
        for r in self.rows:
            cells = []
            for name in self.columns:
                c = r.cell(name)
                t = f"{c.accuracy:.3f} [{c.ci_low:.2f}, {c.ci_high:.2f}]"
                cells.append(f"**{t}**" if c.right else t)
            lines.append(f"| {r.task} | " + " | ".join(cells) + " |")
        return "\n".join(lines + [""] + [f"- {s}" for s in self.summary()]) + "\n"

    def to_table(self, width: int = 120) -> str:
        from rich.table import Table

        from .render.text import text_console

        console = text_console(width)
        if model_line(self.provenance):
            console.print(model_line(self.provenance))
        t = Table(title=self._title(), title_justify="left")
        t.add_column("task", no_wrap=True)
        for name in self.columns:
            t.add_column(name, justify="right", no_wrap=True)
        for r in self.rows:
            t.add_row(r.task, *[self._cell_text(r.cell(name)) for name in self.columns])
        console.print(t)
        for s in self.summary():
            console.print(f"• {s}")
        return console.export_text()

    def to_html(self) -> str:
        from html import escape

        from .render.html import page
        from .render.tables import source_html

        title = self._title("framed: the prompt trained for the task")
        src = source_html(self.provenance)
        return page(title, [f"<h1>{escape(title)}</h1>", *src, swap_table_html(self), "<ul>"]
                    + [f"<li>{escape(s)}</li>" for s in self.summary()] + ["</ul>"])


def swap_table_html(result: SwapResult) -> str:
    """The matrix as an HTML table (rows: tasks; columns: zero-shot and each prompt): the accuracy, its Wilson
    interval on a second line and in the hover title; the right prompt's cell bold on a green ground."""
    from html import escape

    head = "".join(f"<th style='text-align:right;padding:4px 10px'>{escape(c)}</th>" for c in result.columns)
    out = ["<table style='border-collapse:collapse;font-variant-numeric:tabular-nums'>",
           f"<thead><tr><th style='text-align:left;padding:4px 10px'>task</th>{head}</tr></thead><tbody>"]
    for r in result.rows:
        tds = []
        for name in result.columns:
            c = r.cell(name)
            tip = (f"{name} on {r.task}: {c.correct}/{c.n} correct = {c.accuracy:.3f}, 95% Wilson interval "
                   f"[{c.ci_low:.3f}, {c.ci_high:.3f}]" + (" (trained for this task)" if c.right else ""))
            style = "text-align:right;padding:4px 10px;border-top:1px solid #ddd"
            if c.right:
                style += ";background:#e3f2e6;font-weight:700;box-shadow:inset 0 0 0 2px #2e7d32"
            tds.append(f"<td style='{style}' title='{escape(tip, quote=True)}'>{c.accuracy:.3f}<br>"
                       f"<span style='font-size:0.78em;color:#666;font-weight:400'>[{c.ci_low:.2f}, "
                       f"{c.ci_high:.2f}]</span></td>")
        out.append(f"<tr><th style='text-align:left;padding:4px 10px;border-top:1px solid #ddd'>{escape(r.task)}"
                   f"</th>{''.join(tds)}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# ================================================================================================ computing
def _task_of(name: str, prompt: SoftPrompt) -> str:
    from .report import prompt_task

    if not isinstance(prompt, SoftPrompt):
        raise AnalyzerError(f"The prompt-swap entry {name!r} must be a SoftPrompt (see analyzer.load_prompt); got "
                            f"{type(prompt).__name__}.")
    task = prompt_task(prompt)
    if not task:
        raise AnalyzerError(f"Prompt {name!r} ({prompt.source}) records no task it was trained for (no "
                            f"training_meta.json beside the adapter, no 'task' in its config); the swap needs it to "
                            f"tell the right prompt from the wrong ones. Leave it out or train it with "
                            f"`softprompt-analyzer train`.")
    return task


def prompt_swap(model, tokenizer, prompts: Mapping[str, SoftPrompt], tasks: Sequence | None = None, *,
                limit: int | None = 200, split: str = "test", model_name: str | None = None,
                progress: Callable[[str], None] | None = None) -> SwapResult:
    """Score the zero-shot template and every prompt on every task, on the same examples per task.

    model, tokenizer: the frozen model (:func:`analyzer.models.load_frozen_model`).
    prompts: ``{column name: SoftPrompt}``; each must record the task it was trained for
             (:func:`analyzer.report.prompt_task`: ``training_meta.json`` beside the adapter, or its config).
    tasks:   task names or ``Task`` objects, one row each; default: the prompts' own tasks, each once, in order
             (:func:`analyzer.task_record.resolve_task`).  A prompt is "right" on the task it was trained on: the
             same file content for a task file, the same name for a built-in task.
    limit:   score the first ``limit`` examples of ``split`` (``None``: all).
    progress: called with one line of text before each evaluation."""
    from .task_record import is_recorded_task, resolve_tasks

    if not isinstance(prompts, Mapping) or not prompts:
        raise AnalyzerError("prompt_swap needs at least one prompt: a mapping {name: SoftPrompt}; got "
                            f"{type(prompts).__name__ if not isinstance(prompts, Mapping) else 'an empty mapping'}.")
    if ZERO_SHOT in prompts:
        raise AnalyzerError(f"{ZERO_SHOT!r} is the name of the no-prompt column; give that prompt another name.")
    limit = check_param("prompt_swap", "limit", limit, Interval(Integral, 1, None), None)
    trained = {name: _task_of(name, p) for name, p in prompts.items()}
    # given tasks, else the prompts' own (a recorded task file found again by content, never the built-in one)
    given = resolve_tasks(list(tasks or ()), prompts.values())
    if len({t.name for t in given}) != len(given):
        raise AnalyzerError(f"Each task may appear once; got {[t.name for t in given]}.")
    scored = score_columns(model, tokenizer, {ZERO_SHOT: None, **prompts}, given, split=split, limit=limit,
                           model_name=model_name, progress=progress)
    rows = []
    for task in given:
        cells = []
        for name in (ZERO_SHOT, *prompts):
            sc = Score.from_eval(scored[(name, task.name)])
            cells.append(SwapCell(prompt=name, task=task.name, correct=sc.correct, n=sc.n, accuracy=sc.accuracy,
                                  ci_low=sc.ci_low, ci_high=sc.ci_high,
                                  right=name != ZERO_SHOT and is_recorded_task(prompts[name], task, trained[name]),
                                  outcomes=sc.outcomes))
        rows.append(_row(task.name, cells))
    info = tuple(SwapPrompt(name=n, task=trained[n], hash=prompt_hash(p), source=_shown(p.source),
                            num_virtual_tokens=p.num_virtual_tokens) for n, p in prompts.items())
    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "the model"
    return SwapResult(model=str(name), prompts=info, rows=tuple(rows), split=split, limit=limit,
                      settings={"metric": "rank classification over the label words",
                                "test": "exact two-sided McNemar on per-example correctness",
                                "interval": "Wilson 95%"})


def _shown(source) -> str:
    """A prompt's source as recorded: relative to the working directory when inside it (a shipped swap.json
    names no machine's paths), else as it is."""
    import os

    s = str(source)
    try:
        rel = os.path.relpath(s)
    except ValueError:      # another drive (Windows)
        return s
    return rel if os.path.isabs(s) and not rel.startswith("..") else s


def _row(task: str, cells: Sequence[SwapCell]) -> TaskRow:
    zero = cells[0]
    right = [c for c in cells if c.right]
    wrong = [c for c in cells[1:] if not c.right]
    head = _best(right) if right else _best(wrong)
    vs_wrong = _pair(task, _best(right), _best(wrong)) if right and wrong else None
    vs_zero = _pair(task, head, zero) if head is not None else None
    return TaskRow(task=task, cells=tuple(cells), right=tuple(c.prompt for c in right), vs_wrong=vs_wrong,
                   vs_zero_shot=vs_zero)


def swap_for_model(model: str | None, paths: Sequence[str], tasks: Sequence[str] | None = None, *,
                   limit: int | None = 200, progress: Callable[[str], None] | None = None) -> SwapResult:
    """:func:`prompt_swap` from names, as the ``swap`` command and ``scripts/prompt_swap.py`` run it: loads the
    prompts at ``paths`` (columns named by the prompts' own names), the frozen ``model`` (default: the
    adapters' base model) and the tasks."""
    from .loaders import load_prompts
    from ._progress import loading
    from .models import load_frozen_model, model_for_prompts
    from .task_record import resolve_tasks

    loaded: dict[str, SoftPrompt] = {}
    for path in paths:
        for p in load_prompts(path):
            if p.name in loaded:
                raise AnalyzerError(f"Two prompts are named {p.name!r} ({loaded[p.name].source} and {p.source}); "
                                    f"the swap's columns need distinct names.")
            loaded[p.name] = p
    for name, p in loaded.items():
        _task_of(name, p)                 # fail before loading the model
    task_objs = resolve_tasks(tasks, loaded.values()) if tasks else None
    model = model_for_prompts(list(loaded.values()), model)
    with loading(progress, model):
        frozen, tok = load_frozen_model(model)
    res = prompt_swap(frozen, tok, loaded, task_objs, limit=limit, model_name=model, progress=progress)
    from dataclasses import replace

    from .provenance import model_provenance

    return replace(res, provenance=model_provenance(model, list(loaded.values()), what="model"))


__all__ = ["ZERO_SHOT", "SwapCell", "Pairing", "TaskRow", "SwapPrompt", "SwapResult", "prompt_swap",
           "prompt_hash", "swap_for_model", "swap_table_html"]

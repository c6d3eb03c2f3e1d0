"""Classification tasks with verbalizers: the built-in ones (read offline from data files inside PyPI
packages) and the user's own CSV/JSONL files.

A task is a list of ``(text, label)`` examples, one label word per class (the *verbalizer*), a template that
turns a text into the model's input (``"Review: {text}\\nSentiment:"``) and a hand-written instruction of the
same task (the hard-prompt baseline).  The model is scored by *rank classification*: the class whose label
word gets the highest next-token logit after the formatted input wins.

Splits are fixed: the examples are de-duplicated, shuffled with a fixed seed and cut into ``test``
(held out, never trained on), ``validation`` (for evaluation during training) and ``train``.

The package, one job a module: the task type and its splits (``_task``), the built-in datasets
(``_datasets``), the user's files and ``hf:`` datasets (``_files``) and the label words (``_verbalizer``);
here, the entry points by name (``get_task``, ``list_tasks``) and the memo of built-in tasks.

Importing this package pulls only the standard library (no torch, no numpy)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..exceptions import TaskError
from ._datasets import BUILTIN_TASKS, HELD_OUT_TASKS
from ._files import _load_hf_task, file_sha256, load_task_file
from ._task import DEFAULT_TEMPLATE, SPLITS, Example, Task, _make, split_examples
from ._verbalizer import parse_label_words

# built-in tasks by (name, test_size, validation_size), read once per process
_CACHE: dict[tuple, Task] = {}


def _builtin(name: str, test_size, validation_size) -> Task:
    from ..models import data_path, data_source

    key = (name, test_size, validation_size)
    if key not in _CACHE:
        b = BUILTIN_TASKS.get(name) or HELD_OUT_TASKS[name]
        path = data_path(b.data)          # ModelNotFoundError with the pip command when missing
        _CACHE[key] = _make(name, b.reader(path), b.labels, b.label_words, template=b.template,
                            instruction=b.instruction, description=b.description, source=data_source(b.data),
                            test_size=test_size, validation_size=validation_size)
    return _CACHE[key]


def get_task(name: str | Path, *, text_column: str = "text", label_column: str = "label",
             label_words: Mapping[str, str] | None = None, template: str | None = None,
             instruction: str | None = None, test_size: int | float = 500,
             validation_size: int | float = 200) -> Task:
    """A task by name (``sentiment``, ``question-type``, ``spam``, the evaluation-only ``sentiment-amazon``), a
    CSV/TSV/JSONL path, or ``hf:NAME``.

    For built-in tasks, ``label_words``/``template``/``instruction`` override the defaults; the column options
    apply to files and ``hf:`` datasets only."""
    if isinstance(name, Task):
        return name
    if not isinstance(name, (str, Path)) or not str(name).strip():
        raise TaskError(f"The 'name' parameter of get_task must be a Task, a built-in task name "
                        f"({', '.join(sorted(BUILTIN_TASKS))}), a CSV/JSONL path or hf:DATASET. Got {name!r} instead.")
    s = str(name).strip()
    if s.lower() in BUILTIN_TASKS or s.lower() in HELD_OUT_TASKS:
        task = _builtin(s.lower(), test_size, validation_size)
        if template is not None or instruction is not None or label_words:
            task = task.with_options(template=template, instruction=instruction, label_words=label_words)
        return task
    if s.startswith("hf:"):
        return _load_hf_task(s, text_column=text_column, label_column=label_column, label_words=label_words,
                             template=template, instruction=instruction, test_size=test_size,
                             validation_size=validation_size)
    p = Path(s).expanduser()
    looks_like_path = any(c in s for c in "/\\") or p.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json")
    if looks_like_path or os.path.lexists(p):
        return load_task_file(p, text_column=text_column, label_column=label_column, label_words=label_words,
                              template=template, instruction=instruction, test_size=test_size,
                              validation_size=validation_size)
    raise TaskError(f"Unknown task {s!r}: expected one of {sorted(BUILTIN_TASKS) + sorted(HELD_OUT_TASKS)}, a CSV/JSONL file with text "
                    f"and label columns, or hf:DATASET.")


def list_tasks() -> list[dict]:
    """The built-in tasks with sizes and label words (for ``softprompt-analyzer tasks``).

    A task whose data package is missing is listed with ``available=False`` and the install command."""
    from ..exceptions import ModelNotFoundError
    from ..models import install_hint

    rows = []
    for b in [*BUILTIN_TASKS.values(), *HELD_OUT_TASKS.values()]:
        row: dict[str, Any] = {"name": b.name, "description": b.description, "labels": list(b.labels),
                               "label_words": list(b.label_words), "template": b.template,
                               "instruction": b.instruction,
                               "evaluation_only": bool(b.extra.get("evaluation_only", False))}
        try:
            t = _builtin(b.name, 500, 200)
        except ModelNotFoundError as e:
            row.update(available=False, install=install_hint(b.data), error=str(e))
        else:
            row.update(available=True, size=sum(t.sizes.values()), **{f"n_{k}": v for k, v in t.sizes.items()},
                       label_counts={lab: sum(1 for s in SPLITS for ex in t.split(s) if ex.label == i)
                                     for i, lab in enumerate(t.labels)}, source=t.source)
        rows.append(row)
    return rows


__all__ = ["Example", "Task", "BUILTIN_TASKS", "HELD_OUT_TASKS", "DEFAULT_TEMPLATE", "get_task", "list_tasks", "load_task_file",
           "parse_label_words", "split_examples", "file_sha256"]

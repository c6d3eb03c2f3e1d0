"""The user's own tasks: CSV/TSV/JSONL files (optionally .gz/.bz2) with a text and a label column, recorded by
content (path, SHA-256, size, columns), and ``hf:NAME`` datasets through the optional ``datasets`` package.

Importing this module pulls only the standard library."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from ..exceptions import TaskError, os_errors
from ._task import DEFAULT_TEMPLATE, Task, _make
from ._verbalizer import _label_sort_key, _label_str


def _open_text(path: Path):
    if path.suffix == ".bz2":
        return bz2.open(path, "rt", encoding="utf-8-sig", newline="")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_user_rows(path: Path) -> tuple[list[dict], list[str], list[int]]:
    """The rows of a CSV/TSV/JSONL file, its columns, and the line number of each row."""
    kind = "".join(s for s in path.suffixes[-2:] if s not in (".bz2", ".gz")).lower()
    try:
        with _open_text(path) as f:
            if kind in (".jsonl", ".json", ".ndjson"):
                rows, lines = [], []
                for i, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except ValueError as e:
                        raise TaskError(f"Line {i} of {path} is not valid JSON ({e}); expected one object per "
                                        f"line (JSONL).") from None
                    if not isinstance(obj, dict):
                        raise TaskError(f"Line {i} of {path} is a {type(obj).__name__}; expected a JSON object "
                                        f"with text and label fields.")
                    rows.append(obj)
                    lines.append(i)
                columns = sorted({k for r in rows for k in r})
            elif kind in (".csv", ".tsv"):
                text = f.read()
                dialect = csv.excel_tab if kind == ".tsv" else csv.excel
                short = object()          # a field a short row lacks: left out of the row (no value)
                reader = csv.DictReader(io.StringIO(text), dialect=dialect, restval=short)
                rows, lines = [], []
                for r in reader:
                    rows.append({k: v for k, v in r.items() if v is not short})
                    lines.append(reader.line_num)    # the line the record ends on (the header is line 1)
                columns = list(reader.fieldnames or [])
            else:
                raise TaskError(f"Unknown task file type {path.name!r}: expected .csv, .tsv or .jsonl "
                                f"(optionally .gz/.bz2).")
    except UnicodeDecodeError as e:
        raise TaskError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}).") from None
    except csv.Error as e:
        raise TaskError(f"{path} is not a readable CSV file: {e}.") from None
    return rows, columns, lines


def _file_facts(given, path: Path, text_column: str, label_column: str) -> dict[str, Any]:
    """What identifies a task file by content: the path as given and resolved, its SHA-256 and size, and the
    columns read from it (recorded by a training run, :mod:`analyzer.task_record`)."""
    digest, size = file_sha256(path)
    return {"path": str(given), "resolved": str(path.resolve()), "sha256": digest, "size": size,
            "text_column": text_column, "label_column": label_column}


def file_sha256(path: str | os.PathLike) -> tuple[str, int]:
    """The SHA-256 (hex) and size in bytes of a file, read in blocks."""
    import hashlib

    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _not_text(v: Any) -> str:
    """What a JSON value that is not a string is, in words (``null``, ``the number 3``, ``a list``...)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {v!r}"
    return "a list" if isinstance(v, list) else "an object" if isinstance(v, dict) else f"a {type(v).__name__}"


def _check_task_path(path: Path) -> None:
    """Refuse a task path that is missing, a folder or not a regular file, saying which (an OSError such as a
    folder on the way that cannot be searched goes to the caller)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise TaskError(f"Task file {str(path)!r} does not exist; expected a CSV, TSV or JSONL file with text and "
                        f"label columns, or a built-in task name (softprompt-analyzer tasks).") from None
    if stat.S_ISDIR(st.st_mode):
        raise TaskError(f"Task {str(path)!r} is a folder; expected a CSV, TSV or JSONL file with text and label "
                        f"columns (e.g. {str(path / 'train.csv')!r}), or a built-in task name.")
    if not stat.S_ISREG(st.st_mode):
        raise TaskError(f"Task {str(path)!r} is not a regular file; expected a CSV, TSV or JSONL file with text "
                        f"and label columns.")


def load_task_file(path: str | Path, *, text_column: str = "text", label_column: str = "label",
                   label_words: Mapping[str, str] | None = None, name: str | None = None,
                   template: str | None = None, instruction: str | None = None,
                   test_size: int | float = 500, validation_size: int | float = 200) -> Task:
    """A task from the user's CSV/TSV/JSONL file with a text column and a label column.

    ``label_words`` maps each label value (as a string) to its verbalizer word; without it the label values
    themselves are the words.  Every label must have a word."""
    given, path = path, Path(path).expanduser()
    with os_errors("read the task file", TaskError):    # unreadable file or folder: one line with the path
        _check_task_path(path)
        name = name or path.name.split(".")[0]
        rows, columns, lines = _read_user_rows(path)
        facts = _file_facts(given, path, text_column, label_column)
    if not rows:
        raise TaskError(f"The task file {path} is empty: no data rows.")
    for col, what in ((text_column, "text"), (label_column, "label")):
        if col not in columns:
            raise TaskError(f"The task file {path} has no {what} column {col!r}; its columns are {columns}. "
                            f"Choose one with --{what}-column.")
    pairs = []
    for r, line in zip(rows, lines):
        text, label = r.get(text_column), r.get(label_column)
        if label is None or str(label).strip() == "":
            continue                                 # an unlabelled row is not an example
        if not isinstance(text, str):
            raise TaskError(f"Line {line} of {path} has {_not_text(text) if text_column in r else 'no value'} in "
                            f"its text field {text_column!r}; expected a string. Write the text as a string (in "
                            f"quotes in JSONL) or remove the line.")
        if isinstance(label, (list, dict)):
            raise TaskError(f"Line {line} of {path} has {_not_text(label)} in its label field {label_column!r}; "
                            f"expected a string or a number. Fix or remove the line.")
        pairs.append((text, _label_str(label)))
    if not pairs:
        raise TaskError(f"The task file {path} has no row with both a {text_column!r} and a {label_column!r} value.")
    labels = sorted({lab for _, lab in pairs}, key=_label_sort_key)
    if label_words is None:
        words = labels
    else:
        label_words = {_label_str(k): v for k, v in label_words.items()}
        unknown = [lab for lab in label_words if lab not in labels]
        if unknown:
            raise TaskError(f"--label-words names label(s) {unknown} that {path} does not have; its labels "
                            f"(column {label_column!r}) are {labels}. Give a word for each of those, e.g. "
                            f"--label-words " + ",".join(f"{lab}=WORD" for lab in labels) + ".")
        missing = [lab for lab in labels if lab not in label_words]
        if missing:
            raise TaskError(f"The label(s) {missing} of {path} have no verbalizer word; give one for every label "
                            f"in {labels}, e.g. --label-words " + ",".join(f"{lab}=WORD" for lab in labels) + ".")
        words = [label_words[lab] for lab in labels]
    if len(labels) < 2:
        raise TaskError(f"The task file {path} has a single label {labels}; classification needs at least two.")
    task = _make(name, pairs, labels, words, template=template or DEFAULT_TEMPLATE, instruction=instruction or
                 f"Classify the input as one of: {', '.join(words)}.", description=f"user file {path.name}",
                 source=str(path.resolve()), test_size=test_size, validation_size=validation_size)
    return replace(task, file=facts)


def _load_hf_task(spec: str, *, text_column: str, label_column: str, label_words, template, instruction,
                  test_size, validation_size) -> Task:
    """``hf:NAME[:CONFIG]``: a Hugging Face ``datasets`` dataset (needs the hub and the datasets package)."""
    try:
        import datasets
    except ImportError:
        raise TaskError(f"Task {spec!r} needs the Hugging Face datasets package: pip install datasets "
                        "(or pip install 'softprompt-analyzer[hf]')") from None
    name, _, config = spec[3:].partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split="train")
    except Exception as e:  # hub unreachable, unknown name...
        raise TaskError(f"Could not load the Hugging Face dataset {name!r}: {str(e).splitlines()[0]}") from None
    for col, what in ((text_column, "text"), (label_column, "label")):
        if col not in ds.column_names:
            raise TaskError(f"The dataset {name!r} has no {what} column {col!r}; its columns are {ds.column_names}.")
    feat = ds.features[label_column]
    names = getattr(feat, "names", None)
    pairs = [(str(t), names[lab] if names else _label_str(lab)) for t, lab in zip(ds[text_column], ds[label_column])]
    labels = list(names) if names else sorted({lab for _, lab in pairs}, key=_label_sort_key)
    words = labels if label_words is None else [label_words.get(lab) for lab in labels]
    missing = [lab for lab, w in zip(labels, words) if w is None]
    if missing:
        raise TaskError(f"The label(s) {missing} of {name!r} have no verbalizer word; labels are {labels}.")
    return _make(name.split("/")[-1], pairs, labels, words, template=template or DEFAULT_TEMPLATE,
                 instruction=instruction or f"Classify the input as one of: {', '.join(words)}.",
                 description=f"Hugging Face dataset {name}", source=spec, test_size=test_size,
                 validation_size=validation_size)

"""A run's task, recorded by content and found again.

A training run records its task in ``training_meta.json`` (:func:`task_record`): a built-in task by its name
(``"kind": "builtin"``), a user's CSV/TSV/JSONL file by content (``"kind": "file"``, with ``"file"``: the path as
given and resolved, its SHA-256 and size, the text and label columns; the labels and label words are beside it).

Every reader of a run (``analyze``, ``evaluate``, ``importance``, ``describe``, ``swap``, the dashboard) gets the
task through :func:`resolve_task`: the file at its recorded path when its hash matches, else a file of the same
name beside the run (inside the run folder or next to it) with that hash; when none matches, one line says what
was recorded, what was found and what to pass.  A file task is never read as the built-in task of the same name
(``sentiment.jsonl`` is the file); an explicit ``--task sentiment`` on such a run is used, with one warning.

Importing this module pulls only the standard library."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

from .exceptions import TaskError, TaskWarning
from .tasks import BUILTIN_TASKS, HELD_OUT_TASKS, Task, file_sha256, get_task, load_task_file

#: ``kind`` of a recorded task: a built-in task (by name), a user file (by content), a Hugging Face dataset, or a
#: task made in memory (recorded by its name only)
KINDS = ("builtin", "file", "hf", "memory")


def task_kind(task: Task) -> str:
    if task.file:
        return "file"
    if str(task.source).startswith("hf:"):
        return "hf"
    return "builtin" if task.name in BUILTIN_TASKS or task.name in HELD_OUT_TASKS else "memory"


def task_record(task: Task) -> dict[str, Any]:
    """What ``training_meta.json`` records of a run's task: name, kind, labels, label words, template,
    instruction, source, split sizes; for a file also ``file`` (see :attr:`analyzer.tasks.Task.file`)."""
    rec: dict[str, Any] = {"name": task.name, "kind": task_kind(task), "labels": list(task.labels),
                           "label_words": list(task.label_words), "template": task.template,
                           "instruction": task.instruction, "source": task.source, "sizes": task.sizes}
    if task.file:
        rec["file"] = dict(task.file)
    return rec


def _run_dir(prompt) -> Path:
    p = Path(str(prompt.source))
    return p if p.is_dir() else p.parent


def recorded_task(prompt, *, directory=None, task_index: int | None = None) -> dict[str, Any] | None:
    """The task record of the run a prompt was loaded from (``directory``: of that run folder, without a
    prompt); a multitask run's record at the prompt's ``task_index``; None when the run records none."""
    from .training.run_meta import RunMeta

    meta = RunMeta.load(prompt.source if prompt is not None else directory)
    rec = meta.task_record(prompt.task_index if prompt is not None else task_index)
    if rec is None:
        return None
    src = rec.get("source")
    if "kind" not in rec and isinstance(src, str) and os.path.isabs(src):
        # a run from before tasks were recorded by content: its file by path only (no hash to check)
        rec = {**rec, "kind": "file", "file": {"path": src, "resolved": src, "sha256": None, "size": None,
                                               "text_column": meta.setting("text_column") or "text",
                                               "label_column": meta.setting("label_column") or "label"}}
    return rec


def run_task(directory) -> Task | None:
    """The task a run folder records, for readings that use it when they can (the training-dynamics
    relatedness): a built-in task, or the recorded file found again by content; None when it records none, or its
    file is not found (never the built-in task of the file's name)."""
    rec = recorded_task(None, directory=directory)
    if rec is None:
        return None
    if _file_of(rec) is not None:
        try:
            return load_recorded_file_task(rec, directory)
        except TaskError:
            return None
    name = rec.get("name")
    return get_task(name) if isinstance(name, str) and name in BUILTIN_TASKS else None


def _file_of(rec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    f = rec.get("file") if isinstance(rec, Mapping) and rec.get("kind") == "file" else None
    return f if isinstance(f, dict) and (f.get("path") or f.get("resolved")) else None


_HASHES: dict[tuple, str] = {}


def _sha256(path: Path) -> str | None:
    """The SHA-256 of a regular file (cached by path, size and mtime); None when it cannot be read."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in _HASHES:
            _HASHES[key] = file_sha256(path)[0]
        return _HASHES[key]
    except OSError:
        return None


def _candidates(f: Mapping[str, Any], run_dir: Path) -> list[Path]:
    name = Path(str(f.get("resolved") or f.get("path") or "")).name
    out = [Path(str(f[k])).expanduser() for k in ("resolved", "path") if f.get(k)]
    if name:
        out += [run_dir / name, run_dir.parent / name]
    seen, uniq = set(), []
    for c in out:
        key = os.path.abspath(c)
        if key not in seen:
            seen.add(key)
            uniq.append(c)
    return uniq


def find_task_file(f: Mapping[str, Any], run_dir: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """The file a run recorded (``f``: its ``file`` record): at the recorded path when its SHA-256 matches, else
    a file of the same name in the run folder or next to it with that hash.  Returns ``(path or None, what was
    found instead)``."""
    found: list[str] = []
    if not f.get("sha256"):     # recorded by path only (an older run): the file at that path, unchecked
        c = Path(str(f.get("resolved") or f.get("path"))).expanduser()
        return (c if c.is_file() else None), found
    for c in _candidates(f, Path(run_dir)):
        if not c.is_file():
            continue
        h = _sha256(c)
        if h == f["sha256"]:
            return c, found
        found.append(f"{c} has sha256 {h[:12]}… (changed since training)" if h else f"{c} cannot be read")
    return None, found


def _content(f: Mapping[str, Any]) -> str:
    if not f.get("sha256"):
        return "recorded by path only"
    return f"sha256 {f['sha256'][:12]}…" + (f", {f['size']} bytes" if isinstance(f.get("size"), int) else "")


def _pass_hint(rec: Mapping[str, Any], f: Mapping[str, Any]) -> str:
    words = ",".join(f"{lab}={w}" for lab, w in zip(rec.get("labels") or [], rec.get("label_words") or []))
    hint = "--task FILE" + (f" --label-words {words}" if words else "")
    tc, lc = f.get("text_column") or "text", f.get("label_column") or "label"
    if (tc, lc) == ("text", "label"):
        return hint
    name = Path(str(f.get("resolved") or f.get("path"))).name
    return hint + f" (a file named {name} is read with the recorded columns {tc!r} and {lc!r})"


def load_recorded_file_task(rec: Mapping[str, Any], run_dir: str | os.PathLike, path=None) -> Task:
    """The file task a run recorded, read again with the recorded columns, label words, template and
    instruction (``path``: a file already known to hold it, else found with :func:`find_task_file`).  Raises
    TaskError in one line when no file with the recorded content is found."""
    f = _file_of(rec)
    if f is None:
        raise TaskError(f"The run {run_dir} records no task file; expected a 'file' record with its sha256.")
    if path is None:
        path, found = find_task_file(f, run_dir)
        if path is None:
            where = f.get("path") or f.get("resolved")
            what = ("; found instead: " + "; ".join(found)) if found else \
                f"; no file of that name is at {f.get('resolved')}, in the run folder or next to it"
            raise TaskError(f"The run {run_dir} was trained on the task file {where} ({_content(f)}){what}. "
                            f"Pass the task again: {_pass_hint(rec, f)}.")
    labels, words = list(rec.get("labels") or []), list(rec.get("label_words") or [])
    return load_task_file(path, text_column=str(f.get("text_column") or "text"),
                          label_column=str(f.get("label_column") or "label"),
                          label_words=dict(zip(labels, words)) if labels and len(labels) == len(words) else None,
                          name=str(rec.get("name") or "") or None, template=rec.get("template"),
                          instruction=rec.get("instruction"))


def _as_recorded(task: Task, rec: Mapping[str, Any] | None) -> Task:
    """A built-in ``task`` with the label words, template and instruction its run was trained with (``--label-words``,
    ``--template``, ``--instruction`` of ``train``), where the record holds other ones than the defaults."""
    if not isinstance(rec, Mapping) or rec.get("name") != task.name or list(rec.get("labels") or []) != list(
            task.labels):
        return task
    words, tpl, ins = rec.get("label_words"), rec.get("template"), rec.get("instruction")
    words = dict(zip(task.labels, words)) if isinstance(words, list) and len(words) == len(task.labels) else None
    tpl = tpl if isinstance(tpl, str) and tpl != task.template else None
    ins = ins if isinstance(ins, str) and ins != task.instruction else None
    if (words is None or tuple(words.values()) == task.label_words) and tpl is None and ins is None:
        return task
    return task.with_options(label_words=words, template=tpl, instruction=ins)


def _warn(msg: str) -> None:
    warnings.warn(msg, TaskWarning, stacklevel=3)


def resolve_task(given, prompt=None, *, label_words: Mapping[str, str] | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 warn: Callable[[str], None] | None = None) -> Task | None:
    """The task a reading of ``prompt`` uses.

    given:  what the user passed (a task name, a CSV/JSONL path, a ``Task``), or None for the task the prompt's
            run records (None when it records none).  A recorded file task is found again by content
            (:func:`find_task_file`) and never read as the built-in task of the same name; ``--task`` naming a
            built-in task for a run trained on a file is used, with one warning (``warn``, default a
            :class:`~analyzer.exceptions.TaskWarning`).  ``--task FILE`` with the recorded content takes the
            recorded columns and label words unless others are given; a file of the recorded name (changed) the
            recorded columns unless others are named.
    label_words, text_column, label_column: the user's options for the task (override the recorded ones)."""
    from .report import prompt_task

    warn = warn or _warn
    rec = recorded_task(prompt) if prompt is not None else None
    frec = _file_of(rec) or {}
    same_name = bool(frec) and (given is None or Path(str(given).strip()).name == Path(
        str(frec.get("resolved") or frec.get("path"))).name)
    # the run's own file (found, or given again under its name, changed or not): its columns as recorded unless
    # others are named
    rec_cols = frec if same_name else {}
    opts = {"label_words": label_words,
            "text_column": text_column if text_column not in (None, "text") else rec_cols.get("text_column") or "text",
            "label_column": label_column if label_column not in (None, "label") else
            rec_cols.get("label_column") or "label"}
    if given is None or (isinstance(given, str) and not given.strip()):
        if frec:
            task = load_recorded_file_task(rec, _run_dir(prompt))
            return task.with_options(label_words=label_words) if label_words else task
        name = prompt_task(prompt) if prompt is not None else None
        task = get_task(name, **opts) if name else None
        return _as_recorded(task, rec) if task is not None and not label_words else task
    if isinstance(given, Task):
        return given
    s = str(given).strip()
    if frec:
        if s.lower() in BUILTIN_TASKS or s.lower() in HELD_OUT_TASKS:
            warn(f"{prompt.name} was trained on the task file {frec.get('path')} ({_content(frec)}), "
                 f"not on the built-in task {s.lower()!r}; reading it against the built-in task as asked "
                 f"(leave out --task to use the file).")
        elif (label_words is None and text_column in (None, "text", frec.get("text_column"))
              and label_column in (None, "label", frec.get("label_column")) and frec.get("sha256")
              and Path(s).expanduser().is_file() and _sha256(Path(s).expanduser()) == frec["sha256"]):
            return load_recorded_file_task(rec, _run_dir(prompt), path=Path(s).expanduser())
    return get_task(s, **opts)


def resolve_tasks(given, prompts, **options) -> list[Task]:
    """The tasks of a reading over several prompts (``evaluate``, ``swap``): each of ``given`` (resolved against
    every prompt, so each gets its warning; a file recorded by a prompt keeps its columns and label words), or
    without ``given`` each prompt's own task (:func:`resolve_task`), each once.  ``options`` as
    :func:`resolve_task`."""
    prompts = list(prompts)
    out: list[Task] = []
    if given:
        for g in given:
            got = [resolve_task(g, p, **options) for p in prompts] or [resolve_task(g, None, **options)]
            out.append(next((t for t in got if t is not None and t.file), got[0]))
        return out
    seen: set = set()
    for p in prompts:
        t = resolve_task(None, p, **options)
        key = (t.name, (t.file or {}).get("sha256")) if t is not None else None
        if t is not None and key not in seen:
            seen.add(key)
            out.append(t)
    return out


def is_recorded_task(prompt, task: Task, name: str | None = None) -> bool:
    """Whether ``task`` is the task ``prompt`` was trained on: the same file content for a recorded file task
    (never the built-in task of the same name), the same built-in name otherwise (``name``: the recorded name
    when the run has no task record, e.g. an adapter config's ``task``)."""
    rec = recorded_task(prompt)
    f = _file_of(rec)
    if f is None:
        return not task.file and task.name == ((rec or {}).get("name") or name)
    if not task.file:
        return False
    if f.get("sha256"):
        return task.file.get("sha256") == f["sha256"]
    return os.path.abspath(str(task.file.get("resolved", ""))) == os.path.abspath(str(f.get("resolved") or f["path"]))


__all__ = ["KINDS", "task_kind", "task_record", "recorded_task", "find_task_file", "load_recorded_file_task",
           "resolve_task", "resolve_tasks", "is_recorded_task", "run_task"]

"""Soft-prompt loading: one entry point that dispatches on what the path is.

* a directory with ``adapter_config.json`` → a PEFT adapter (``_peft``); so is one of its files
  (``adapter_config.json``, ``adapter_model.safetensors``, ``adapter_model.bin``) given directly;
* a ``.safetensors`` / ``.npy`` / ``.npz`` / ``.pt`` / ``.pth`` / ``.bin`` file → a raw (n, d) tensor (``_tensor``).

Every prompt comes back with float32 C-contiguous ``vectors`` whose every row is usable (``_tensor.check_rows``:
finite values, a norm whose square is a normal float32 number — neither zero, so a cosine is defined, nor
overflowing).  The rule is all or nothing: a prompt with any degenerate row is refused with one line naming the
rows and why, never analysed with those rows dropped or scored at 0.  Every bad input raises an
:class:`~analyzer.exceptions.AnalyzerError` subclass whose message is one line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..exceptions import AnalyzerError, InputFileError, ShapeMismatchError, os_errors
from ..types import SoftPrompt
from . import _peft, _tensor
from ._tensor import check_rows


def _as_path(path: Any) -> Path:
    if isinstance(path, SoftPrompt):
        raise AnalyzerError(f"Expected a path to a soft prompt, got an already loaded {path!r}.")
    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise InputFileError(f"Expected a path to a PEFT adapter directory or a tensor file, got "
                             f"{type(path).__name__} {path!r}.") from None
    if str(path).strip() == "":
        raise InputFileError("Expected a path to a PEFT adapter directory or a tensor file, got an empty string.")
    return p


def load_prompts(path: str | os.PathLike, *, task: int | None = None, name: str | None = None) -> list[SoftPrompt]:
    """Every soft prompt stored at ``path``.

    path:  a PEFT adapter directory (PROMPT_TUNING, P_TUNING, MULTITASK_PROMPT_TUNING) or a raw tensor file
           of shape ``"n_virtual d_model"`` (``.safetensors``, ``.npy``, ``.npz``, ``.pt``/``.pth``).
    task:  for a MULTITASK_PROMPT_TUNING adapter, the task id whose prompt to rebuild; ``None`` gives one
           prompt per task (``<name>/task<t>``).  Giving a task for any other source is an error.
    name:  display name; defaults to the adapter directory's name or the tensor file's stem.

    Returns one prompt, or several: a seq2seq adapter gives ``<name>/encoder`` and ``<name>/decoder``;
    a multitask adapter without ``task`` gives one per task.
    """
    p = _as_path(path)
    with os_errors("read the soft prompt", InputFileError):  # unreadable file or folder: one line, the path
        return _load_prompts(p, path, task, name)


def _load_prompts(p: Path, path: Any, task: int | None, name: str | None) -> list[SoftPrompt]:
    try:
        os.lstat(p)      # a folder on the way that cannot be searched raises PermissionError, not "no such file"
    except (FileNotFoundError, NotADirectoryError):
        hint = ""
        if not p.is_absolute() and str(path).count("/") == 1 and not str(path).startswith("."):
            hint = " (soft prompts are read from local files only; a hub id cannot be downloaded here)"
        raise InputFileError(f"No such file or directory: '{path}'{hint}; expected a PEFT adapter directory or a "
                             f"tensor file (.safetensors .npy .npz .pt).") from None
    if not p.exists():
        raise InputFileError(f"'{path}' is a broken symbolic link.")
    if p.is_dir():
        if not _peft.is_adapter_dir(p):
            raise InputFileError(_peft.no_adapter_message(p))
        return _peft.load_adapter(p, task=task, name=name)
    if p.name in _peft.ADAPTER_FILES and _peft.is_adapter_dir(p.parent):
        return _peft.load_adapter(p.parent, task=task, name=name)
    suffix = p.suffix.lower()
    if suffix == ".gguf":
        raise InputFileError(f"'{path}' is a GGUF model, not a soft prompt; pass it as the model "
                             "(--model) and the adapter directory or tensor file as the prompt.")
    if suffix == ".json":
        raise InputFileError(f"'{path}' is a JSON file; expected a PEFT adapter directory (with "
                             f"{_peft.CONFIG_NAME}) or a tensor file "
                             f"({', '.join(sorted(_tensor.TENSOR_SUFFIXES))}).")
    if task is not None:
        raise AnalyzerError(f"A task was given (task={task!r}) but '{path}' is a raw tensor file; only "
                            "MULTITASK_PROMPT_TUNING adapters have tasks.")
    return [_tensor.load_tensor_file(p, name=name)]


def load_prompt(path: str | os.PathLike, *, task: int | None = None, name: str | None = None) -> SoftPrompt:
    """Exactly one soft prompt from ``path`` (see :func:`load_prompts`).  A seq2seq adapter (two prompts) or a
    multitask adapter without ``task`` raises an AnalyzerError that names the choices."""
    prompts = load_prompts(path, task=task, name=name)
    if len(prompts) == 1:
        return prompts[0]
    names = ", ".join(f"'{p.name}'" for p in prompts[:8]) + (f" and {len(prompts) - 8} more"
                                                             if len(prompts) > 8 else "")
    first = prompts[0]
    if first.kind == "MULTITASK_PROMPT_TUNING" and task is None:
        num_tasks = len({p.name.rsplit("/encoder", 1)[0].rsplit("/decoder", 1)[0] for p in prompts})
        raise AnalyzerError(f"'{path}' is a MULTITASK_PROMPT_TUNING adapter with {num_tasks} tasks ({names}); "
                            f"pass task=t (--task-index t, t in 0..{num_tasks - 1}) to pick one, or use load_prompts() "
                            "for all of them.")
    raise AnalyzerError(f"'{path}' is a seq2seq adapter with {len(prompts)} prompts ({names}): one prepended to "
                        "the encoder input and one to the decoder input; use load_prompts() to get both.")


def check_compatible(prompt: SoftPrompt, vocab: Any) -> None:
    """Raise ShapeMismatchError when ``prompt`` and ``vocab`` (a Vocabulary: ``.name``, ``.dim``) differ in
    dimension, naming both dims and where each came from; then apply the loaders' row rule (``check_rows``) to
    the prompt, so an in-memory SoftPrompt passed to the API meets the same refusal as a loaded one."""
    vdim = int(vocab.dim)
    if prompt.dim == vdim:
        check_rows(prompt.vectors, name=prompt.name, source=prompt.source)
        return
    vname = getattr(vocab, "name", None) or "the model"
    if prompt.base_model:
        origin = f"adapter trained on {prompt.base_model}"
    elif prompt.kind == "TENSOR":
        origin = "a raw tensor does not say which model it was trained on"
    else:
        origin = "the adapter config does not say which model it was trained on"
    raise ShapeMismatchError(f"Soft prompt '{prompt.name}' has dim {prompt.dim} but the vocabulary of {vname} "
                             f"has dim {vdim} ({origin}); pass the model the prompt was trained for (--model).")


__all__ = ["load_prompts", "load_prompt", "check_compatible"]

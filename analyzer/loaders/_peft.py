"""PEFT adapter directories → soft prompts.

What PEFT writes (peft 0.21, ``PeftModel.save_pretrained`` → ``get_peft_model_state_dict``):

* ``adapter_config.json``: the config dataclass as JSON (``peft_type``, ``num_virtual_tokens``, ``token_dim``,
  ``num_transformer_submodules``, ``prompt_tuning_init``, ``prompt_tuning_init_text``,
  ``tokenizer_name_or_path``, ``base_model_name_or_path`` ...).  Read here as plain JSON: never
  ``PeftConfig.from_pretrained``, never ``trust_remote_code`` — a config is untrusted input.
* ``adapter_model.safetensors`` (or ``adapter_model.bin``, a torch pickle loaded with ``weights_only=True``):

  - PROMPT_TUNING: ``prompt_embeddings`` (num_virtual_tokens × num_transformer_submodules, token_dim), the
    prompt itself.
  - P_TUNING: ``prompt_embeddings`` of the same shape, already the *output* of the prompt encoder (MLP/LSTM):
    ``get_prompt_embedding_to_save`` runs the encoder before saving, so the rows are in token space.
  - MULTITASK_PROMPT_TUNING: ``prompt_embeddings`` (the shared matrix, *not* multiplied by any task),
    ``prefix_task_cols`` (num_tasks, total_virtual_tokens, num_ranks) and ``prefix_task_rows``
    (num_tasks, num_ranks, token_dim).  Task t's prompt is, as in ``MultitaskPromptEmbedding.forward``,
    ``prompt_embeddings * (prefix_task_cols[t] @ prefix_task_rows[t])``.
  - seq2seq (``num_transformer_submodules == 2``): the first num_virtual_tokens rows are prepended to the
    encoder input, the rest to the decoder input (``PeftModelForSeq2SeqLM.forward``).

* PREFIX_TUNING / CARTRIDGE also save ``prompt_embeddings``, but those rows are per-layer attention keys and
  values (num_layers × 2 × kv_dim wide), not token embeddings — refused.

Choices made here (documented for the CLI and the dashboard):

* A multitask adapter loaded without ``task`` gives one prompt per task, named ``<name>/task<t>``; with
  ``task=t`` only that one, named ``<name>/task<t>``.  ``task`` on any other kind of adapter is an error.
* A seq2seq adapter gives ``<name>/encoder`` and ``<name>/decoder`` (``<name>/task<t>/encoder`` ... when
  multitask too).
* ``init_token_ids``: from the weights file's safetensors metadata ``init_token_ids`` (a JSON list, written
  by this project's trainer; PEFT ignores safetensors metadata) or the config key of that name (earlier
  versions wrote it there, where PEFT warns about it) when it holds one id per row; else, for
  ``prompt_tuning_init == "TEXT"`` with a ``tokenizer_name_or_path`` that is a local directory, by tokenizing the init text exactly as ``PromptEmbedding.__init__`` does (AutoTokenizer with
  ``trust_remote_code=False``; ids repeated/truncated to the number of rows); else None.  For a multitask
  adapter these ids describe the initialisation of the shared matrix.
"""

from __future__ import annotations

import json
import math
import os
from numbers import Integral
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._params import Interval
from ..exceptions import AnalyzerError, InputFileError, ShapeMismatchError, UnsupportedAdapterError
from ..types import SoftPrompt
from ._tensor import PROMPT_KEY, check_nonempty_file, check_rows, read_safetensors, to_float32, torch_load_safe

CONFIG_NAME = "adapter_config.json"
SAFETENSORS_NAME = "adapter_model.safetensors"
BIN_NAME = "adapter_model.bin"
ADAPTER_FILES = (CONFIG_NAME, SAFETENSORS_NAME, BIN_NAME)

#: safetensors metadata key of the init token ids (a JSON list of ints)
INIT_IDS_METADATA = "init_token_ids"
#: safetensors metadata key of this project's init mode (``LABELS``, ``VOCAB``, ``TEXT``, ``RANDOM``)
INIT_MODE_METADATA = "init_mode"
SUPPORTED_TYPES = ("PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING")
_KV_SPACE_TYPES = ("PREFIX_TUNING", "CARTRIDGE")


def is_adapter_dir(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_NAME).is_file()


# ----------------------------------------------------------------------------------------------- errors
def no_adapter_message(path: Path) -> str:
    """One line for a directory without ``adapter_config.json``: what was expected, what was found, and
    subdirectories that do hold adapters (multi-adapter saves, trainer checkpoints)."""
    try:
        entries = sorted(os.listdir(path))
    except OSError as e:
        return f"Cannot read directory '{path}': {e.strerror or e}."
    nested = [e for e in entries if (path / e / CONFIG_NAME).is_file()]
    if entries:
        shown = ", ".join(e + ("/" if (path / e).is_dir() else "") for e in entries[:10])
        found = f"found {shown}" + (f" and {len(entries) - 10} more" if len(entries) > 10 else "")
    else:
        found = "the directory is empty"
    msg = (f"'{path}' is not a PEFT adapter directory: expected {CONFIG_NAME} with {SAFETENSORS_NAME} or "
           f"{BIN_NAME}, {found}")
    if nested:
        msg += f"; these subdirectories hold adapters: {', '.join(nested[:10])} (pass one of them)"
    return msg + "."


def _unsupported_message(peft_type: str, path: Path) -> str:
    supported = ", ".join(SUPPORTED_TYPES)
    if peft_type in _KV_SPACE_TYPES:
        return (f"Adapter '{path}' is {peft_type}: its parameters live in the attention key/value space of every "
                f"layer, not in the token-embedding space, so vocabulary neighbours do not apply "
                f"(supported: {supported}).")
    if peft_type == "ADAPTION_PROMPT":
        return (f"Adapter '{path}' is ADAPTION_PROMPT: its prompts are inserted into the hidden states of the top "
                f"layers, not into the token-embedding space, so vocabulary neighbours do not apply "
                f"(supported: {supported}).")
    return (f"Adapter '{path}' is {peft_type}, which changes the model's weights and has no virtual tokens to "
            f"analyse; supported adapter types: {supported}.")


# ----------------------------------------------------------------------------------------------- config
def read_adapter_config(path: Path) -> dict[str, Any]:
    cfg_path = path / CONFIG_NAME
    check_nonempty_file(cfg_path, expected="a JSON adapter config")
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"'{cfg_path}' is not UTF-8 text (corrupt?).") from None
    except OSError as e:
        raise InputFileError(f"Cannot read '{cfg_path}': {e.strerror or e}.") from e
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(f"'{cfg_path}' is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}).") from None
    if not isinstance(cfg, dict):
        raise InputFileError(f"'{cfg_path}' must hold a JSON object, got a {type(cfg).__name__}.")
    return cfg


def _cfg_int(cfg: Mapping[str, Any], key: str, cfg_path: Path, *, minimum: int = 1) -> int | None:
    v = cfg.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise InputFileError(f"'{cfg_path}': {key} must be an integer ≥ {minimum}, got {v!r}.")
    return v


def _cfg_str(cfg: Mapping[str, Any], key: str) -> str | None:
    v = cfg.get(key)
    return v if isinstance(v, str) and v else None


# ----------------------------------------------------------------------------------------------- weights
def _read_weights(path: Path, metadata: dict | None = None) -> tuple[dict[str, Any], Path]:
    st, bn = path / SAFETENSORS_NAME, path / BIN_NAME
    if st.exists():
        return read_safetensors(st, metadata=metadata), st
    if bn.exists():
        obj = torch_load_safe(bn)
        if not isinstance(obj, Mapping):
            raise InputFileError(f"'{bn}' holds a {type(obj).__name__}; expected a state dict of named tensors.")
        return dict(obj), bn
    found = ", ".join(sorted(os.listdir(path))[:10])
    raise InputFileError(f"Adapter directory '{path}' has {CONFIG_NAME} but no weights: expected {SAFETENSORS_NAME} "
                         f"or {BIN_NAME}, found {found}.")


def _get(weights: Mapping[str, Any], key: str, wpath: Path, peft_type: str) -> Any:
    if key not in weights:
        keys = ", ".join(list(weights)[:8]) or "nothing"
        raise InputFileError(f"'{wpath}' ({peft_type}) has no tensor '{key}'; found {keys}.")
    return weights[key]


# ----------------------------------------------------------------------------------------------- init ids
def _init_token_ids(cfg: Mapping[str, Any], total: int, metadata: Mapping[str, str]) -> tuple[int, ...] | None:
    raw = cfg.get("init_token_ids")  # adapters written by earlier versions of this project
    if raw is None and metadata.get(INIT_IDS_METADATA):
        try:
            raw = json.loads(metadata[INIT_IDS_METADATA])
        except ValueError:
            raw = None
    if isinstance(raw, list) and raw and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in raw):
        if len(raw) == total:
            return tuple(raw)
        # a list of the wrong length describes some other matrix: ignore it (TEXT init can still be re-tokenized)
    if str(cfg.get("prompt_tuning_init") or "").upper() != "TEXT":
        return None
    text, tok_path = _cfg_str(cfg, "prompt_tuning_init_text"), _cfg_str(cfg, "tokenizer_name_or_path")
    if text is None or tok_path is None or not Path(tok_path).expanduser().is_dir():
        return None
    return _tokenize_like_peft(text, Path(tok_path).expanduser(), cfg.get("tokenizer_kwargs"), total)


def _tokenize_like_peft(text: str, tok_dir: Path, tokenizer_kwargs: Any, total: int) -> tuple[int, ...] | None:
    """``PromptEmbedding.__init__``'s TEXT initialisation: ``tokenizer(text)["input_ids"]``, truncated or
    repeated to ``total`` ids.  Local files only, never remote code; any failure → None (the ids are a bonus)."""
    kwargs = dict(tokenizer_kwargs) if isinstance(tokenizer_kwargs, dict) else {}
    kwargs = {k: v for k, v in kwargs.items() if isinstance(k, str)}
    for k in ("trust_remote_code", "local_files_only", "token", "use_auth_token", "cache_dir"):
        kwargs.pop(k, None)
    try:
        import warnings

        from transformers import AutoTokenizer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(str(tok_dir), trust_remote_code=False, local_files_only=True, **kwargs)
            ids = list(tok(text)["input_ids"])
    except Exception:  # noqa: BLE001 — a broken tokenizer dir only costs us the ids
        return None
    if not ids or not all(isinstance(i, int) for i in ids):
        return None
    if len(ids) < total:
        ids = ids * math.ceil(total / len(ids))
    return tuple(ids[:total])


# ----------------------------------------------------------------------------------------------- load
def _check_task(task: Any, num_tasks: int, display: str) -> int:
    """``task`` (an int, a numpy int, or its digits as a str) as a task id of a multitask adapter with
    ``num_tasks`` tasks; else AnalyzerError in :func:`analyzer._params.check_param`'s shape, naming the adapter."""
    t = int(task) if isinstance(task, str) and task.strip().lstrip("-").isdigit() else task
    if not Interval(Integral, 0, num_tasks - 1).is_satisfied_by(t):
        raise AnalyzerError(f"The 'task' parameter of load_prompts must be an int in [0, {num_tasks - 1}] (the "
                            f"multitask adapter '{display}' has num_tasks={num_tasks}). Got {task!r} instead.")
    return int(t)


def load_adapter(path: Path, *, task: Any = None, name: str | None = None) -> list[SoftPrompt]:
    """All soft prompts of the PEFT adapter directory ``path`` (see the module docstring)."""
    cfg = read_adapter_config(path)
    cfg_path = path / CONFIG_NAME
    peft_type = str(cfg.get("peft_type") or "").upper()
    if not peft_type:
        raise InputFileError(f"'{cfg_path}' has no peft_type; is it a PEFT adapter config?")
    if peft_type not in SUPPORTED_TYPES:
        raise UnsupportedAdapterError(_unsupported_message(peft_type, path))
    display = name if name is not None else (path.resolve().name or str(path))
    if task is not None and peft_type != "MULTITASK_PROMPT_TUNING":
        raise AnalyzerError(f"A task was given (task={task!r}) but adapter '{display}' is {peft_type}; only "
                            "MULTITASK_PROMPT_TUNING adapters have tasks.")

    n_virtual = _cfg_int(cfg, "num_virtual_tokens", cfg_path)
    token_dim = _cfg_int(cfg, "token_dim", cfg_path)
    n_sub = _cfg_int(cfg, "num_transformer_submodules", cfg_path)
    if n_sub is None:  # PeftModel._setup_prompt_encoder's default
        n_sub = 2 if str(cfg.get("task_type") or "").upper() == "SEQ_2_SEQ_LM" else 1
    if n_sub not in (1, 2):
        raise InputFileError(f"'{cfg_path}': num_transformer_submodules must be 1 or 2, got {n_sub}.")

    metadata: dict[str, str] = {}
    weights, wpath = _read_weights(path, metadata)
    emb = to_float32(_get(weights, PROMPT_KEY, wpath, peft_type), what=f"'{PROMPT_KEY}' in '{wpath}'")
    if emb.ndim != 2:
        raise ShapeMismatchError(f"'{PROMPT_KEY}' in '{wpath}' has shape {list(emb.shape)}; expected 2-D "
                                 "(num_virtual_tokens × num_transformer_submodules, token_dim).")
    rows, dim = emb.shape
    if n_virtual is not None and rows != n_virtual * n_sub:
        raise ShapeMismatchError(f"'{PROMPT_KEY}' in '{wpath}' has {rows} rows but {CONFIG_NAME} says "
                                 f"num_virtual_tokens={n_virtual} × num_transformer_submodules={n_sub} = "
                                 f"{n_virtual * n_sub}.")
    if token_dim is not None and dim != token_dim:
        raise ShapeMismatchError(f"'{PROMPT_KEY}' in '{wpath}' has dim {dim} but {CONFIG_NAME} says "
                                 f"token_dim={token_dim}.")
    if rows == 0 or dim == 0:
        raise ShapeMismatchError(f"'{PROMPT_KEY}' in '{wpath}' has shape {list(emb.shape)}; it is empty.")
    if n_virtual is None:
        if rows % n_sub:
            raise ShapeMismatchError(f"'{PROMPT_KEY}' in '{wpath}' has {rows} rows, which cannot be split "
                                     f"between num_transformer_submodules={n_sub} parts.")
        n_virtual = rows // n_sub

    # (label suffix, (total, d) matrix) for each prompt before the encoder/decoder split
    if peft_type == "MULTITASK_PROMPT_TUNING":
        mats = _multitask_prompts(emb, weights, wpath, cfg, cfg_path, task, display)
    else:
        mats = [("", emb, None)]

    source = os.path.abspath(path)
    init = metadata.get(INIT_MODE_METADATA) or _cfg_str(cfg, "prompt_tuning_init")
    init = init.upper() if isinstance(init, str) and init.strip() else None
    init_text = _cfg_str(cfg, "prompt_tuning_init_text") if init == "TEXT" else None
    ids = _init_token_ids(cfg, rows, metadata)
    base_model = _cfg_str(cfg, "base_model_name_or_path")

    parts = [("", slice(0, rows))] if n_sub == 1 else [("/encoder", slice(0, n_virtual)),
                                                       ("/decoder", slice(n_virtual, rows))]
    prompts: list[SoftPrompt] = []
    for suffix, mat, task_index in mats:
        for part, sl in parts:
            pname = f"{display}{suffix}{part}"
            vectors = np.ascontiguousarray(mat[sl], dtype=np.float32).copy()
            check_rows(vectors, name=pname, source=source)
            prompts.append(SoftPrompt(name=pname, vectors=vectors, source=source, kind=peft_type, init=init,
                                      init_text=init_text, init_token_ids=ids[sl] if ids is not None else None,
                                      base_model=base_model, config=cfg, task_index=task_index))
    return prompts


def _multitask_prompts(emb: np.ndarray, weights: Mapping[str, Any], wpath: Path, cfg: Mapping[str, Any],
                       cfg_path: Path, task: Any, display: str) -> list[tuple[str, np.ndarray, int]]:
    peft_type = "MULTITASK_PROMPT_TUNING"
    cols = to_float32(_get(weights, "prefix_task_cols", wpath, peft_type), what=f"'prefix_task_cols' in '{wpath}'")
    rws = to_float32(_get(weights, "prefix_task_rows", wpath, peft_type), what=f"'prefix_task_rows' in '{wpath}'")
    rows, dim = emb.shape
    if cols.ndim != 3 or rws.ndim != 3:
        raise ShapeMismatchError(f"'{wpath}': prefix_task_cols {list(cols.shape)} and prefix_task_rows "
                                 f"{list(rws.shape)} must be 3-D (num_tasks, {rows}, num_ranks) and "
                                 f"(num_tasks, num_ranks, {dim}).")
    if cols.shape[0] != rws.shape[0] or cols.shape[1] != rows or cols.shape[2] != rws.shape[1] or rws.shape[2] != dim:
        raise ShapeMismatchError(f"'{wpath}': prefix_task_cols {list(cols.shape)} and prefix_task_rows "
                                 f"{list(rws.shape)} do not fit prompt_embeddings {list(emb.shape)}; expected "
                                 f"(num_tasks, {rows}, num_ranks) and (num_tasks, num_ranks, {dim}).")
    num_tasks = int(cols.shape[0])
    cfg_tasks = _cfg_int(cfg, "num_tasks", cfg_path)
    if cfg_tasks is not None and cfg_tasks != num_tasks:
        raise ShapeMismatchError(f"'{wpath}' holds {num_tasks} tasks but {CONFIG_NAME} says num_tasks={cfg_tasks}.")
    if num_tasks == 0:
        raise ShapeMismatchError(f"'{wpath}' holds no tasks (prefix_task_cols has shape {list(cols.shape)}).")
    tasks = range(num_tasks) if task is None else [_check_task(task, num_tasks, display)]
    # MultitaskPromptEmbedding.forward: prompt_embeddings *= prefix_task_cols[t] @ prefix_task_rows[t]
    return [(f"/task{t}", (emb * (cols[t] @ rws[t])).astype(np.float32, copy=False), t) for t in tasks]


__all__ = ["CONFIG_NAME", "SAFETENSORS_NAME", "BIN_NAME", "ADAPTER_FILES", "SUPPORTED_TYPES", "is_adapter_dir",
           "no_adapter_message", "read_adapter_config", "load_adapter"]

"""The files of a training run, shared by our trainer and by the recorder of runs trained elsewhere
(``analyzer.training.recorder``):

* ``adapter_config.json`` + ``adapter_model.safetensors`` -- a PEFT prompt-tuning adapter (``save_adapter``);
* ``training_log.jsonl`` -- one JSON object a line, each with ``step``; step rows carry ``loss`` (and ``lr``,
  ``tokens``, ``step_time``, ``elapsed`` when known), evaluation rows ``eval_accuracy`` (``read_training_log``);
* ``snapshots.safetensors`` -- the prompt ``"n_virtual d_model"`` at some steps, keys ``step_000050`` (the init is
  ``step_000000``), float32 (``write_snapshots`` / ``read_snapshots``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..cache import atomic_path, atomic_write_text
from ..exceptions import TrainingError
from ..loaders._peft import INIT_IDS_METADATA, INIT_MODE_METADATA

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
LOG = "training_log.jsonl"
SNAPSHOTS = "snapshots.safetensors"


def _safetensors_save(tensors: dict, path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def _safetensors_load(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # corrupt / truncated file
        raise TrainingError(f"Cannot read {path}: {e}. Delete it to start again.") from None


def save_adapter(directory: str | os.PathLike, vectors, *, base_model_name_or_path: str, model_config=None,
                 init_mode: str | None = None, init_text: str | None = None,
                 init_token_ids: Sequence[int] | None = None, tokenizer_name_or_path: str | None = None) -> Path:
    """Write a soft prompt ``"n d"`` as a PEFT prompt-tuning adapter (``adapter_config.json`` +
    ``adapter_model.safetensors`` with the key ``prompt_embeddings``), atomically file by file."""
    vectors = torch.as_tensor(vectors).detach().float().cpu()
    return _write_adapter(directory, {"prompt_embeddings": vectors}, base_model_name_or_path=base_model_name_or_path,
                          model_config=model_config, init_mode=init_mode, init_text=init_text,
                          init_token_ids=init_token_ids, tokenizer_name_or_path=tokenizer_name_or_path)


def save_multitask_adapter(directory: str | os.PathLike, shared, task_cols, task_rows, *,
                           base_model_name_or_path: str, model_config=None, init_mode: str | None = None,
                           init_text: str | None = None, init_token_ids: Sequence[int] | None = None,
                           tokenizer_name_or_path: str | None = None) -> Path:
    """Write a multitask prompt as a PEFT ``MULTITASK_PROMPT_TUNING`` adapter: the shared matrix ``"n d"``
    (``prompt_embeddings``) and the per-task factors ``prefix_task_cols`` ``"tasks n r"`` and ``prefix_task_rows``
    ``"tasks r d"``; task t's prompt is ``shared * (cols[t] @ rows[t])`` (PEFT's ``MultitaskPromptEmbedding``)."""
    t = {k: torch.as_tensor(v).detach().float().cpu() for k, v in
         (("prompt_embeddings", shared), ("prefix_task_cols", task_cols), ("prefix_task_rows", task_rows))}
    num_tasks, _, num_ranks = t["prefix_task_cols"].shape
    return _write_adapter(directory, t, base_model_name_or_path=base_model_name_or_path, model_config=model_config,
                          init_mode=init_mode, init_text=init_text, init_token_ids=init_token_ids,
                          tokenizer_name_or_path=tokenizer_name_or_path,
                          multitask={"num_tasks": int(num_tasks), "num_ranks": int(num_ranks)})


def _write_adapter(directory, tensors: dict, *, base_model_name_or_path, model_config, init_mode, init_text,
                   init_token_ids, tokenizer_name_or_path, multitask: dict | None = None) -> Path:
    from peft import MultitaskPromptTuningConfig, PromptTuningConfig

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n, d = tensors["prompt_embeddings"].shape
    mode = (init_mode or "random").upper()
    # PEFT's config field takes only its own modes (TEXT, SAMPLE_VOCAB, RANDOM; a multitask one TEXT or RANDOM);
    # ours (LABELS, VOCAB) map to the nearest one, and the exact mode rides in the weights' metadata beside the
    # init token ids
    if multitask:
        peft_init = mode if mode in ("TEXT", "RANDOM") else "RANDOM"
        config_cls, extra = MultitaskPromptTuningConfig, dict(multitask)
    else:
        peft_init = mode if mode in ("TEXT", "RANDOM") else "SAMPLE_VOCAB"
        config_cls, extra = PromptTuningConfig, {}
    cfg = config_cls(
        task_type="CAUSAL_LM", num_virtual_tokens=int(n), token_dim=int(d), num_transformer_submodules=1,
        num_attention_heads=getattr(model_config, "num_attention_heads", None),
        num_layers=getattr(model_config, "num_hidden_layers", None),
        prompt_tuning_init=peft_init, prompt_tuning_init_text=init_text if mode == "TEXT" else None,
        tokenizer_name_or_path=tokenizer_name_or_path or base_model_name_or_path,
        base_model_name_or_path=str(base_model_name_or_path), inference_mode=True, **extra)
    d_cfg = {k: (list(v) if isinstance(v, set) else v) for k, v in cfg.to_dict().items()}
    meta = {"format": "pt", INIT_MODE_METADATA: mode}
    if init_token_ids is not None:  # in the weights' metadata, which PEFT ignores, not in the config it checks
        meta[INIT_IDS_METADATA] = json.dumps([int(i) for i in init_token_ids])
    _safetensors_save(tensors, directory / ADAPTER_WEIGHTS, meta)
    atomic_write_text(directory / ADAPTER_CONFIG, json.dumps(d_cfg, indent=2, sort_keys=True, default=str))
    return directory



def optimizer_tensors(opt) -> tuple[dict, dict]:
    """A torch optimizer's state for a safetensors checkpoint: ``({"optimizer.<param>.<key>": tensor}, meta)``
    with ``meta`` = ``{"param_groups", "scalars"}`` (JSON-able); :func:`restore_optimizer` reads both back."""
    tensors, scalars = {}, {}
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optimizer.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(opt, tensors: dict, meta: dict) -> None:
    """Load what :func:`optimizer_tensors` saved into ``opt`` (same parameters, same order)."""
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optimizer."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta.get("scalars", {}).items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def open_log(path: str | os.PathLike, mode: str = "a"):
    """A run's JSON-lines log opened for writing (``mode`` ``a`` or ``w``): through a symlink to a regular file,
    never into a FIFO, device or socket (opening a FIFO for writing would wait for a reader forever); those are
    refused in one line."""
    import stat

    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise TrainingError(f"{str(path)!r} exists and is not a regular file (a FIFO, device, socket or folder); a "
                            f"run's log must be a file. Move it away or choose another --out.")
    return open(path, mode, encoding="utf-8")

def _read_log(path: Path, upto: int) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue   # a line cut by a kill
            if r.get("step", 0) <= upto:
                rows.append(r)
    return rows


def snapshot_key(step: int) -> str:
    return f"step_{int(step):06d}"


def write_snapshots(directory: str | os.PathLike, snapshots: Mapping[str, torch.Tensor], *, model=None, task=None,
                    init=None) -> Path:
    """Write ``{snapshot_key(step): "n d"}`` atomically as ``snapshots.safetensors`` in ``directory``."""
    first = next(iter(snapshots.values()))
    n, d = first.shape
    meta = {"num_virtual_tokens": str(n), "token_dim": str(d)}
    meta.update({k: str(v) for k, v in (("model", model), ("task", task), ("init", init)) if v is not None})
    path = Path(directory) / SNAPSHOTS
    _safetensors_save({k: v.float() for k, v in snapshots.items()}, path, meta)
    return path


def shrink_snapshots(directory: str | os.PathLike, max_bytes: int) -> bool:
    """Rewrite ``snapshots.safetensors`` with every snapshot after step 0 in float16 when the file is larger
    than ``max_bytes`` (a 100-token prompt's 20 float32 snapshots are ~4.6 MB); step 0 (the init, which may be
    a vocabulary row exactly) stays float32.  float16 keeps ~3 significant digits, far below the cosine
    differences the neighbour readings resolve.  :func:`read_snapshots` returns float32 either way.  True when
    it rewrote the file."""
    path = Path(directory) / SNAPSHOTS
    if not path.is_file() or path.stat().st_size <= max_bytes:
        return False
    tensors, meta = _safetensors_load(path)
    first = min(tensors)
    out = {k: (v.float() if k == first else v.half()) for k, v in tensors.items()}
    _safetensors_save(out, path, {**meta, "stored_dtype": "float16 after step 0"})
    return True


def read_training_log(directory: str | os.PathLike) -> list[dict]:
    """The rows of ``training_log.jsonl`` in a run directory (for plots)."""
    return _read_log(Path(directory) / LOG, 1 << 62)


def read_snapshots(directory: str | os.PathLike) -> dict[int, np.ndarray]:
    """``{step: "n_virtual d_model" float32}`` from ``snapshots.safetensors``, in step order."""
    path = Path(directory) / SNAPSHOTS
    if not path.is_file():
        raise TrainingError(f"{directory} has no {SNAPSHOTS}.")
    tensors, _ = _safetensors_load(path)
    return {int(k.split("_")[1]): v.float().numpy() for k, v in sorted(tensors.items())}


__all__ = ["save_adapter", "save_multitask_adapter", "read_training_log", "read_snapshots", "write_snapshots",
           "shrink_snapshots", "snapshot_key", "ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "LOG", "SNAPSHOTS"]

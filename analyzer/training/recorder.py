"""Record a prompt-tuning run trained elsewhere (your own PEFT loop or ``transformers.Trainer``) in the toolkit's
run format -- ``snapshots.safetensors``, ``training_log.jsonl``, ``training_meta.json`` (``analyzer.training.files``)
-- so the dashboard's Trajectory view and the training-dynamics reading (``analyzer.dynamics``) work on it.

With ``transformers.Trainer``::

    from analyzer.training.recorder import PromptRunCallback
    trainer = Trainer(model=peft_model, args=args, train_dataset=ds, callbacks=[PromptRunCallback()])

(the files go into ``args.output_dir``, the PEFT adapter too at the end).  In a plain PyTorch loop, two lines::

    rec = RunRecorder(peft_model, "runs/mine", total_steps=1000)   # before the loop (records the init)
    rec.step(step, loss=loss.item())                             # after each optimizer step

``rec.close()`` (or ``with RunRecorder(...) as rec:``) adds the last step's snapshot and the PEFT adapter; the
files are complete and readable after every snapshot even without it."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from numbers import Integral
from typing import Any

import torch

from .._params import Interval, check_param
from ..cache import atomic_path
from ..exceptions import TrainingError
from .files import LOG, SNAPSHOTS, open_log, snapshot_key, write_snapshots
from .run_meta import RunMeta

#: snapshots every 5% of the steps when the total is known
SNAPSHOT_SHARE = 20


def _prompt_getter(source, adapter_name: str):
    """A function returning the current prompt ``"n d"`` (float32, cpu) of a PeftModel, a tensor or a callable."""
    if hasattr(source, "get_prompt_embedding_to_save") and hasattr(source, "peft_config"):
        cfg = source.peft_config.get(adapter_name)
        if cfg is None or not getattr(cfg, "is_prompt_learning", False):
            raise TrainingError(f"RunRecorder records prompt tuning; the PEFT model's adapter {adapter_name!r} is "
                                f"{getattr(cfg, 'peft_type', 'missing')}. Pass a prompt-tuning PeftModel, or the "
                                f"prompt tensor itself.")
        return lambda: source.get_prompt_embedding_to_save(adapter_name).float().cpu()
    if torch.is_tensor(source):
        if source.dim() != 2:
            raise TrainingError(f"RunRecorder needs a prompt of shape (n_virtual, d); got a tensor of shape "
                                f"{tuple(source.shape)}.")
        return lambda: source.detach().float().cpu().clone()
    if callable(source):
        return lambda: torch.as_tensor(source()).detach().float().cpu().clone()
    raise TrainingError(f"RunRecorder needs a prompt-tuning PeftModel, a (n_virtual, d) tensor or a function "
                        f"returning one; got {type(source).__name__}.")


def _peft_facts(source, adapter_name: str) -> dict:
    cfg = getattr(source, "peft_config", {}).get(adapter_name) if hasattr(source, "peft_config") else None
    if cfg is None:
        return {}
    init = getattr(cfg, "prompt_tuning_init", None)
    return {"model": getattr(cfg, "base_model_name_or_path", None),
            "init": {"mode": str(getattr(init, "value", init) or "").lower() or None,
                     "text": getattr(cfg, "prompt_tuning_init_text", None), "token_ids": None}}


def _task_meta(task) -> dict | None:
    """``training_meta.json``'s task of a recorded run: ``{"name": ...}`` for a name, the full record for a Task."""
    if not task:
        return None
    if isinstance(task, str):
        return {"name": task}
    from ..task_record import task_record

    return task_record(task)


class RunRecorder:
    """Writes a run directory in the toolkit's format from a training loop it does not own.

    source:      a prompt-tuning ``peft.PeftModel`` (its adapter ``adapter_name``), the prompt tensor
                 ``"n_virtual d_model"`` (a Parameter you optimise), or a function returning it.
    out:         the run directory (created; an existing ``snapshots.safetensors``/``training_log.jsonl`` there is
                 replaced unless ``resume=True``).
    every:       snapshot interval in steps; default: 5% of ``total_steps``, else every 10 steps.
    model, task: the base model and task recorded in ``training_meta.json`` (default for ``model``: the
                 PEFT config's ``base_model_name_or_path``); ``task``: a name, or a ``Task`` (a user file's is
                 recorded by content, :func:`analyzer.task_record.task_record`, so readers find it again).
    The init is recorded as step 0 when the recorder is made (make it before the first optimizer step).  From then
    until :meth:`close` the recorder holds the run folder's lock (:mod:`.runlock`): a second writer is refused."""

    def __init__(self, source, out: str | os.PathLike, *, every: int | None = None, total_steps: int | None = None,
                 model: str | None = None, task=None, adapter_name: str = "default",
                 resume: bool = False, start_step: int = 0):
        self.out = Path(out).expanduser()
        if self.out.exists() and not self.out.is_dir():
            raise TrainingError(f"RunRecorder's out {str(self.out)!r} is a file; expected a directory.")
        every = check_param("RunRecorder", "every", every, Interval(Integral, 1, None), None, error=TrainingError)
        self._get = _prompt_getter(source, adapter_name)
        self._source, self._adapter = source, adapter_name
        self.total_steps = total_steps
        self.every = every or (max(1, total_steps // SNAPSHOT_SHARE) if total_steps else 10)
        facts = _peft_facts(source, adapter_name)
        self.meta = RunMeta(model=model or facts.get("model"), recorded_by="analyzer.training.recorder",
                            init=facts.get("init") or {"mode": None, "text": None, "token_ids": None},
                            task=_task_meta(task))
        from .runlock import RunFolderLock

        self._lock = RunFolderLock(self.out).acquire()      # one writer per run folder, as for our own runs
        self.snapshots: dict[str, torch.Tensor] = {}
        self.evals: list[dict] = []
        self.last_step = int(start_step)
        self._t0 = time.perf_counter()
        if resume and (self.out / SNAPSHOTS).is_file():
            from .files import read_snapshots

            self.snapshots = {snapshot_key(s): torch.from_numpy(v) for s, v in read_snapshots(self.out).items()
                              if s <= start_step}
        else:
            (self.out / LOG).unlink(missing_ok=True)
        if not self.snapshots:
            self._snapshot(int(start_step))

    # ------------------------------------------------------------------ the hook
    def step(self, step: int, loss: float | None = None, lr: float | None = None,
             eval_accuracy: float | None = None, **extra) -> None:
        """After optimizer step ``step`` (1-based): a log row when any value is given, a snapshot every
        ``every`` steps."""
        step = int(step)
        self.last_step = max(self.last_step, step)
        self.log(step, loss=loss, lr=lr, eval_accuracy=eval_accuracy, **extra)
        if step % self.every == 0 and snapshot_key(step) not in self.snapshots:
            self._snapshot(step)

    def log(self, step: int, loss: float | None = None, lr: float | None = None,
            eval_accuracy: float | None = None, **extra) -> None:
        """A row of ``training_log.jsonl`` (numbers only; NaN and None are left out)."""
        row: dict[str, Any] = {"step": int(step)}
        for k, v in (("loss", loss), ("lr", lr), ("eval_accuracy", eval_accuracy), *extra.items()):
            if isinstance(v, torch.Tensor):
                v = v.item()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                row[k] = float(v)
        if len(row) == 1:
            return
        row["elapsed"] = round(time.perf_counter() - self._t0, 2)
        if "eval_accuracy" in row:
            self.evals.append({"step": int(step), "accuracy": row["eval_accuracy"]})
        with open_log(self.out / LOG, "a") as f:
            f.write(json.dumps(row) + "\n")

    def close(self, *, save_adapter: bool = True) -> Path:
        """The last step's snapshot, ``training_meta.json`` and (for a PeftModel) the adapter in ``out``."""
        if snapshot_key(self.last_step) not in self.snapshots:
            self._snapshot(self.last_step)
        if save_adapter and hasattr(self._source, "save_pretrained") and hasattr(self._source, "peft_config"):
            self._source.save_pretrained(str(self.out), selected_adapters=[self._adapter])
            sub = self.out / self._adapter
            if self._adapter != "default" and sub.is_dir():   # PEFT nests non-default adapters in a folder
                for f in sub.iterdir():     # placed by the rule of every file written (cache.atomic_path)
                    with atomic_path(self.out / f.name) as tmp:
                        shutil.move(str(f), tmp)
                sub.rmdir()
        self._write_meta()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        return self.out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ files
    def _snapshot(self, step: int) -> None:
        self.snapshots[snapshot_key(step)] = self._get()
        self.snapshots = dict(sorted(self.snapshots.items()))
        write_snapshots(self.out, self.snapshots, model=self.meta.model,
                        task=(self.meta.task or {}).get("name"), init=self.meta.init.get("mode"))
        self._write_meta()

    def _write_meta(self) -> None:
        first = next(iter(self.snapshots.values()))
        m = self.meta
        m.num_virtual_tokens, m.token_dim = int(first.shape[0]), int(first.shape[1])
        m.steps_done, m.steps, m.snapshot_every, m.evals = self.last_step, self.total_steps, self.every, self.evals
        m.final_eval = {"split": "validation", **self.evals[-1]} if self.evals else None
        m.save(self.out)


def _callback_class():
    from transformers import TrainerCallback

    class PromptRunCallback(TrainerCallback):
        """A ``transformers.TrainerCallback`` recording a PEFT prompt-tuning run in the toolkit's format (see the
        module docstring).  ``out``: the run directory (default: the Trainer's ``output_dir``); ``every``: snapshot
        interval (default: 5% of ``max_steps``); ``accuracy_key``: the metric logged as ``eval_accuracy`` (a
        ``compute_metrics`` result, e.g. ``eval_accuracy``)."""

        def __init__(self, out: str | os.PathLike | None = None, *, every: int | None = None,
                     model: str | None = None, task: str | None = None, adapter_name: str = "default",
                     accuracy_key: str = "eval_accuracy"):
            self.out, self.every, self.model_name, self.task = out, every, model, task
            self.adapter_name, self.accuracy_key = adapter_name, accuracy_key
            self.recorder: RunRecorder | None = None

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if not state.is_world_process_zero:      # one writer under torchrun / accelerate
                return
            if model is None:
                raise TrainingError("PromptRunCallback got no model from the Trainer; pass model= to Trainer.")
            self.recorder = RunRecorder(model, self.out or args.output_dir, every=self.every,
                                        total_steps=state.max_steps or None, model=self.model_name, task=self.task,
                                        adapter_name=self.adapter_name, resume=state.global_step > 0,
                                        start_step=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self.recorder is not None:
                self.recorder.step(state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.recorder is None or not logs:
                return
            extra = {k: v for k, v in logs.items() if k.startswith("eval_") and k != self.accuracy_key}
            self.recorder.log(state.global_step, loss=logs.get("loss"), lr=logs.get("learning_rate"),
                              eval_accuracy=logs.get(self.accuracy_key), **extra)

        def on_train_end(self, args, state, control, **kwargs):
            if self.recorder is not None:
                self.recorder.close()

    return PromptRunCallback


def __getattr__(name):
    if name == "PromptRunCallback":    # built on first use: importing this module pulls no transformers
        cls = _callback_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


__all__ = ["RunRecorder", "PromptRunCallback"]

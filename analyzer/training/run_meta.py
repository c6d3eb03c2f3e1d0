"""RunMeta: the record of one training run, ``training_meta.json`` -- its one writer and its one reader.

Three writers make such a record: our trainer (a single-task run), the multitask trainer, and the recorder of runs
trained elsewhere (:mod:`analyzer.training.recorder`).  Each kind of record has its own keys, written in a fixed
order (:data:`LAYOUTS`); a run that diverged adds ``diverged`` (:func:`analyzer.training.divergence.record_divergence`).

A record read from disk holds what the file holds -- one written by an older version or by hand may lack keys or
hold other types -- so the reading methods (:meth:`RunMeta.task_name`, :meth:`RunMeta.task_record`,
:meth:`RunMeta.summary` ...) check what they read, and keys this version does not know are kept in ``extra`` and
written back unchanged.

Importing this module pulls only the standard library."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

#: the file name of the record, beside the adapter
META = "training_meta.json"

#: the keys of each kind of record, in the order they are written
LAYOUTS = {
    "single": ("model", "task", "init", "num_virtual_tokens", "token_dim", "embed_scale", "label_token_ids",
               "precision", "steps_done", "steps", "stopped", "train_seconds", "world_size", "evals", "final_eval",
               "config", "versions"),
    "multitask": ("model", "multitask", "task", "tasks", "init", "num_virtual_tokens", "num_ranks", "token_dim",
                  "embed_scale", "precision", "steps_done", "steps", "stopped", "train_seconds", "world_size",
                  "evals", "evals_by_task", "final_eval", "config", "versions"),
    "recorded": ("model", "recorded_by", "init", "task", "num_virtual_tokens", "token_dim", "steps_done", "steps",
                 "snapshot_every", "evals", "final_eval"),
}


@dataclass
class RunMeta:
    """The record of a training run (``training_meta.json``); every field is optional.

    model:              the frozen model the prompt was trained on (a name, directory or .gguf).
    task:               the task record (:func:`analyzer.task_record.task_record`; ``{"name": ...}`` for a recorded
                        run named by a string); None for a multitask run.
    init:               ``{"mode", "text", "token_ids"}`` of the prompt's initialisation.
    num_virtual_tokens, token_dim: the prompt's shape ``"n d"``.
    embed_scale:        the model's input-embedding scale (Gemma: sqrt(d); 1 elsewhere).
    label_token_ids:    the token id scored for each label.
    precision:          the compute precision of the run (:class:`analyzer.training.precision.Precision`).
    steps_done, steps:  optimizer steps done, and asked for.
    stopped:            a callback or the stop event ended the run early.
    train_seconds:      time spent in training steps.
    world_size:         processes the run ran in.
    evals:              ``[{"step", "accuracy"}]``, each validation evaluation (a multitask run: the mean over its
                        tasks).
    final_eval:         the evaluation the adapter holds: ``{"split", "step", "accuracy", "n"}``; with
                        ``keep_best`` also ``"kept": "best"``, ``last_step``, ``last_accuracy``; a multitask run's
                        ``n`` is per task and it adds ``by_task``.
    config:             the run's :class:`~analyzer.training.config.TrainConfig` as a dict.
    versions:           torch, transformers, peft and python versions.
    multitask, tasks, num_ranks, evals_by_task: a multitask run: one task record per task id (``id`` added),
                        the rank of each task's factor, per-task accuracies at each evaluation.
    recorded_by, snapshot_every: a run recorded by :class:`~analyzer.training.recorder.RunRecorder`.
    diverged:           ``{"step", "reason", "lr"}`` when the run stopped by divergence.
    extra:              keys of a file this version does not know, kept as they are."""

    model: str | None = None
    task: dict[str, Any] | None = None
    init: dict[str, Any] | None = None
    num_virtual_tokens: int | None = None
    token_dim: int | None = None
    embed_scale: float | None = None
    label_token_ids: list[int] | None = None
    precision: dict[str, Any] | None = None
    steps_done: int | None = None
    steps: int | None = None
    stopped: bool = False
    train_seconds: float | None = None
    world_size: int | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    final_eval: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    versions: dict[str, str] | None = None
    multitask: bool = False
    tasks: list[dict[str, Any]] | None = None
    num_ranks: int | None = None
    evals_by_task: list[dict[str, Any]] | None = None
    recorded_by: str | None = None
    snapshot_every: int | None = None
    diverged: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_run(cls, config, *, evals=(), **fields_) -> "RunMeta":
        """The record of a run of our trainers with the :class:`~analyzer.training.config.TrainConfig` ``config``:
        its model, prompt length, steps, config and the versions at hand, the evaluations ``(step, accuracy)``
        and the other ``fields_`` as given."""
        return cls(model=config.model, num_virtual_tokens=config.num_virtual_tokens, steps=config.steps,
                   evals=[{"step": s, "accuracy": a} for s, a in evals], config=config.to_dict(),
                   versions=versions(), **fields_)

    # ------------------------------------------------------------------ the file
    @property
    def kind(self) -> str:
        """``multitask``, ``recorded`` (by :class:`~analyzer.training.recorder.RunRecorder`) or ``single``: which
        of :data:`LAYOUTS` the record is written in."""
        if self.multitask:
            return "multitask"
        return "recorded" if self.recorded_by else "single"

    def to_dict(self) -> dict[str, Any]:
        """The record as ``training_meta.json`` holds it: the keys of its kind's layout in order, then any other
        field that is set (``diverged``), then the unknown keys it was read with."""
        layout = LAYOUTS[self.kind]
        out = {name: getattr(self, name) for name in layout}
        for f in fields(self):
            if f.name not in layout and f.name != "extra" and getattr(self, f.name) != _default(f):
                out[f.name] = getattr(self, f.name)
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunMeta":
        """A record from the dict ``training_meta.json`` holds; keys that are no field go to ``extra``."""
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in names},
                   extra={k: v for k, v in d.items() if k not in names})

    def save(self, folder) -> Path:
        """Write the record into ``folder`` as ``training_meta.json``, atomically."""
        from ..cache import atomic_write_text

        path = Path(folder) / META
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str))
        return path

    @classmethod
    def load(cls, folder) -> "RunMeta":
        """The record in ``folder``; an empty one (every reading None) when there is none, or it cannot be read
        or holds no JSON object."""
        try:
            d = json.loads((Path(folder) / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls.from_dict(d) if isinstance(d, dict) else cls()

    def is_empty(self) -> bool:
        """True for the record :meth:`load` gives a folder without one."""
        return self == type(self)()

    # ------------------------------------------------------------------ readings
    def setting(self, name: str) -> Any:
        """The run's config value ``name``; None when not recorded."""
        return self.config.get(name) if isinstance(self.config, dict) else None

    def task_record(self, task_index: int | None = None) -> dict[str, Any] | None:
        """The record of the run's task (a multitask run's task ``task_index``); None when it records none."""
        if self.multitask and isinstance(self.tasks, list):
            rec = self.tasks[task_index] if isinstance(task_index, int) and 0 <= task_index < len(self.tasks) \
                else None
        else:
            rec = self.task
        return rec if isinstance(rec, dict) else None

    def task_name(self, task_index: int | None = None) -> str | None:
        """The task name the record holds (``{"task": {"name": ...}}``, or its config's ``task``); for a multitask
        run the name of task ``task_index`` (None without an index)."""
        if self.multitask and isinstance(self.tasks, list):
            rec = self.task_record(task_index)
            name = rec.get("name") if rec is not None else None
            return name if isinstance(name, str) and name else None
        task = self.task
        if isinstance(task, dict):
            task = task.get("name")
        if not task:
            task = self.setting("task")
        return str(task) if isinstance(task, str) and task else None

    @property
    def task_names(self) -> list[str | None]:
        """A multitask run's task names in task-id order ([] for other runs)."""
        if not (self.multitask and isinstance(self.tasks, list)):
            return []
        return [t.get("name") for t in self.tasks if isinstance(t, dict)]

    @property
    def init_mode(self) -> str | None:
        """The prompt's init mode (``init.mode``, else the config's ``prompt_tuning_init``)."""
        init = self.init.get("mode") if isinstance(self.init, dict) else self.init
        return init or self.setting("prompt_tuning_init")

    @property
    def final_accuracy(self) -> float | None:
        """The validation accuracy of what the adapter holds (``final_eval``); None when not evaluated."""
        fe = self.final_eval
        if isinstance(fe, dict) and isinstance(fe.get("accuracy"), (int, float)):
            return float(fe["accuracy"])
        return None

    def summary(self, result) -> str:
        """What ``softprompt-analyzer train`` prints at the end of the run that wrote this record (``result``: its
        :class:`~analyzer.training.loop.TrainResult`); a resumed run that had nothing left to do says so in one
        line."""
        res = result
        if res.steps == res.start_step:          # resumed at or past --steps: no step trained, no loss to show
            return (f"nothing to train: the run in {res.out} already reached step {res.steps} (--steps "
                    f"{res.total_steps}); its PEFT adapter is in place. Pass a larger --steps with --resume to train "
                    f"on.")
        acc = f", validation accuracy {res.eval_accuracy:.3f}" if res.eval_accuracy is not None else ""
        loss = ""
        if res.last_loss is not None and res.loss is not None:   # the last step's loss, as training_log.jsonl has it
            n = min(10, res.steps - res.start_step)
            loss = f", final loss {res.last_loss:.4f} (step {res.steps}; mean of the last {n} steps {res.loss:.4f})"
        state = " (stopped early)" if res.stopped else ""
        fe = self.final_eval or {}
        kept = (f"; the adapter holds the best evaluation's prompt{'s' if self.multitask else ''} "
                f"(step {fe['step']}, {fe['accuracy']:.3f})") if fe.get("kept") == "best" else ""
        if self.multitask:    # one adapter, a prompt per task: name the task ids
            # the accuracies of what the adapter holds: the kept evaluation's with --keep-best, else the last one's
            by_task = fe.get("by_task") or (self.evals_by_task or [{}])[-1]
            names = [t.get("name") for t in self.tasks or []]
            acc = ", validation accuracy " + ", ".join(
                f"task {i} {n} {by_task[n]:.3f}" if isinstance(by_task.get(n), float) else f"task {i} {n}"
                for i, n in enumerate(names))
            return (f"trained a multitask prompt for {len(names)} tasks, {res.steps} steps{state}{loss}{acc}{kept}; "
                    f"PEFT MULTITASK_PROMPT_TUNING adapter in {res.out}\n"
                    f"inspect it: softprompt-analyzer analyze {res.out} (one prompt per task)")
        acc += kept
        return (f"trained {res.steps} steps{state}{loss}{acc}; PEFT adapter in {res.out}\n"
                f"inspect it: softprompt-analyzer analyze {res.out}")


def _default(f) -> Any:
    from dataclasses import MISSING

    return f.default_factory() if f.default_factory is not MISSING else f.default


def versions() -> dict[str, str]:
    """The versions a run records: torch, transformers, peft, python."""
    import platform

    import peft
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "python": platform.python_version()}


__all__ = ["RunMeta", "META", "LAYOUTS", "versions"]

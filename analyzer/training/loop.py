"""The pieces of a training loop that the single-task trainer (:mod:`analyzer.training.trainer`) and the multitask
trainer (:mod:`analyzer.training.multitask`) share: the result type, the length-grouped data order, the callbacks'
calls, the run folder's preparation and the frozen model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ..exceptions import TrainingError
from .config import TrainConfig
from .files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, LOG, SNAPSHOTS
from .precision import choose_precision
from .run_meta import META

CHECKPOINT = "checkpoint.safetensors"
RUN_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, META, LOG, SNAPSHOTS, CHECKPOINT)
MEGABATCH = 50   # length grouping: sort within windows of MEGABATCH global batches


@dataclass
class TrainResult:
    """What ``train`` returns.  ``steps``: optimizer steps done in total; ``start_step``: where this call began
    (>0 after a resume); ``stopped``: a callback or the stop event ended it early; ``eval_accuracy``: the last
    validation accuracy; ``loss``: mean loss of the last 10 steps; ``last_loss``: the loss of the last step (what
    ``training_log.jsonl`` holds for it)."""

    out: Path
    steps: int
    start_step: int
    total_steps: int
    loss: float | None
    eval_accuracy: float | None
    stopped: bool
    wall_time: float
    mean_step_time: float | None
    tokens_per_second: float | None
    evals: list = field(default_factory=list)
    last_loss: float | None = None


    @classmethod
    def of_run(cls, out: Path, *, steps: int, start_step: int, total_steps: int, losses: Sequence[float],
               evals: Sequence[tuple[int, float]], stopped: bool, t_start: float, step_times: Sequence[float],
               tokens_done: int) -> "TrainResult":
        """The result of a run from what its loop kept: the loss of every step, the evaluations
        ``(step, accuracy)``, the time of every step, the tokens trained on, and when it started
        (``time.perf_counter()``)."""
        return cls(out=out, steps=steps, start_step=start_step, total_steps=total_steps,
                   loss=float(np.mean(losses[-10:])) if losses else None,
                   eval_accuracy=evals[-1][1] if evals else None, stopped=stopped,
                   wall_time=time.perf_counter() - t_start,
                   mean_step_time=float(np.mean(step_times)) if step_times else None,
                   tokens_per_second=tokens_done / sum(step_times) if step_times else None, evals=list(evals),
                   last_loss=losses[-1] if losses else None)


# ---------------------------------------------------------------------------------------------- data order
class LengthGroupedBatches:
    """Global batches for each epoch: a seeded permutation, cut into windows of ``MEGABATCH`` batches, each
    window sorted by length and cut into batches (little padding), the batch order shuffled again.  The order
    of epoch ``e`` depends only on (seed, e), so the data position of a run is just its step count."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, megabatch: int = MEGABATCH):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.megabatch = megabatch
        self.per_epoch = len(self.lengths) // batch_size
        self._cache: tuple[int, list[list[int]]] | None = None

    def epoch(self, e: int) -> list[list[int]]:
        if self._cache and self._cache[0] == e:
            return self._cache[1]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()[: self.per_epoch * self.batch_size]
        window = self.batch_size * self.megabatch
        batches = []
        for w in range(0, len(perm), window):
            chunk = sorted(perm[w:w + window], key=lambda i: -self.lengths[i])
            batches.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        order = torch.randperm(len(batches), generator=g).tolist()
        out = [batches[i] for i in order]
        self._cache = (e, out)
        return out

    def batch(self, step: int) -> list[int]:
        """The global batch of optimizer step ``step`` (1-based)."""
        e, i = divmod(step - 1, self.per_epoch)
        return self.epoch(e)[i]


# ---------------------------------------------------------------------------------------------- the run
def notify(callbacks: Iterable, name: str, *args) -> None:
    """Call ``name(*args)`` on every callback that has it (``on_start``, ``on_step``, ``on_eval`` ...)."""
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(*args)


def want_stop(callbacks, stop_event) -> bool:
    """True when ``stop_event`` is set or a callback's ``should_stop()`` says so."""
    if stop_event is not None and stop_event.is_set():
        return True
    for cb in callbacks:
        fn = getattr(cb, "should_stop", None)
        if fn is not None and fn():
            return True
    return False


def prepare_out(config: TrainConfig, out: Path) -> None:
    """Make ``out`` ready for the run: a resumed run needs its checkpoint there; a new one refuses a previous run's
    files unless ``config.overwrite``, and then removes them."""
    existing = [f for f in RUN_FILES if (out / f).exists()]
    if config.resume:
        if not (out / CHECKPOINT).is_file():
            raise TrainingError(f"Nothing to resume: {out} holds no {CHECKPOINT}. Start the run without --resume.")
        return
    if existing and not config.overwrite:
        raise TrainingError(f"{out} already holds a training run ({', '.join(existing)}). Pass --resume to continue "
                            f"it, --overwrite to start again, or choose another --out.")
    for f in existing:
        (out / f).unlink()


def frozen_model_on(config: TrainConfig, device, model=None, tokenizer=None, callbacks: Iterable = ()):
    """``(model, tokenizer, precision)``: the frozen model (``config.model`` unless given), every weight frozen, in
    eval mode on ``device``, and the compute precision ``config.dtype`` leads to there.  A load is framed by the
    ``callbacks``' ``on_model_load(name)`` and ``on_model_loaded(name, seconds)``."""
    if model is None or tokenizer is None:
        from ..models import load_frozen_model

        notify(callbacks, "on_model_load", config.model)
        t0 = time.perf_counter()
        model, tokenizer = load_frozen_model(config.model, device="cpu")    # moved to its rank's device below
        notify(callbacks, "on_model_loaded", config.model, time.perf_counter() - t0)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    model.to(device)
    return model, tokenizer, choose_precision(config.dtype, device)


__all__ = ["TrainResult", "LengthGroupedBatches", "frozen_model_on", "notify", "want_stop", "prepare_out",
           "CHECKPOINT", "RUN_FILES", "MEGABATCH"]

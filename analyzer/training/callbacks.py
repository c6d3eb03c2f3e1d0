"""Callbacks: how a caller watches and stops a training run.

The trainer calls, on rank 0 only and when the object has them:

* ``on_model_load(name)`` / ``on_model_loaded(name, seconds)`` -- before and after the frozen model is loaded
  (not called when ``train`` is given a model);
* ``on_start(config, start_step, total_steps)`` -- once, after the model and data are ready;
* ``on_step(step, loss, lr)`` -- after every optimizer step (``loss`` is the global batch's mean);
* ``on_eval(step, accuracy)`` -- after every evaluation on the validation split (step 0: before training);
* ``on_checkpoint(step, path)`` -- after a checkpoint is written;
* ``on_end(result)`` -- once, with the ``TrainResult`` (also after a stop);
* ``should_stop() -> bool`` -- polled after every step; True stops the run cleanly (checkpoint + adapter
  written, resumable).

Any object with some of these methods works (duck typing); ``Callback`` is a convenient no-op base class.
A ``threading.Event`` passed as ``train(..., stop_event=...)`` stops the run as well (for a dashboard running
the trainer in a thread)."""

from __future__ import annotations

import threading
from numbers import Integral, Real
from typing import Any

from .._params import Interval, check_params
from ..exceptions import TrainingError


class Callback:
    """No-op base class; override what you need."""

    def on_model_load(self, name: str) -> None: ...

    def on_model_loaded(self, name: str, seconds: float) -> None: ...

    def on_start(self, config, start_step: int, total_steps: int) -> None: ...

    def on_step(self, step: int, loss: float, lr: float) -> None: ...

    def on_eval(self, step: int, accuracy: float) -> None: ...

    def on_checkpoint(self, step: int, path) -> None: ...

    def on_end(self, result) -> None: ...

    def should_stop(self) -> bool:
        return False


class StopFlag(Callback):
    """A callback that stops the run once ``stop()`` is called (thread-safe)."""

    def __init__(self):
        self._event = threading.Event()

    def stop(self) -> None:
        self._event.set()

    def should_stop(self) -> bool:
        return self._event.is_set()


class History(Callback):
    """Records every step and evaluation in memory: ``steps`` [(step, loss, lr)], ``evals`` [(step, acc)]."""

    def __init__(self):
        self.steps: list[tuple[int, float, float]] = []
        self.evals: list[tuple[int, float]] = []

    def on_step(self, step, loss, lr):
        self.steps.append((step, loss, lr))

    def on_eval(self, step, accuracy):
        self.evals.append((step, accuracy))


class ProgressBar(Callback):
    """What the CLI shows: in a terminal, a tqdm progress bar with the running loss (exponential average), the
    learning rate and the last validation accuracy; when the stream is not a terminal (a pipe, a log file), a
    plain line ``train TASK: step S/N, loss L (running mean M), lr R, validation accuracy A`` at the first and
    the last step and at most every ``every`` seconds in between.  The frozen model's load is framed by a line
    before and after it, with a heartbeat line while it runs.  ``lines``: force one mode (default: by
    ``file.isatty()``)."""

    def __init__(self, *, smoothing: float = 0.9, file: Any = None, disable: bool | None = None,
                 lines: bool | None = None, every: float | None = None):
        from .._progress import EVERY_S

        self.smoothing = smoothing
        self.file = file
        self.disable = disable
        self.lines = lines
        self.every = EVERY_S if every is None else float(every)
        self._bar = None
        self._loss: float | None = None
        self._acc: float | None = None
        self._line_mode = False
        self._throttle = None
        self._total = 0
        self._desc = "train"
        self._loader = None

    def _stream(self):
        import sys

        return self.file if self.file is not None else sys.stderr

    def _is_line_mode(self) -> bool:
        if self.lines is not None:
            return bool(self.lines)
        isatty = getattr(self._stream(), "isatty", None)
        try:
            return not (isatty is not None and isatty())
        except (OSError, ValueError):
            return True

    def on_model_load(self, name):
        if self.disable:
            return
        from .._progress import Progress

        self._loader = Progress(file=self._stream(), every=self.every)
        self._loader(f"loading model {name} ...")

    def on_model_loaded(self, name, seconds):
        if self._loader is not None:
            self._loader.close()
            self._loader = None
            print(f"… model {name} loaded in {seconds:.1f} s", file=self._stream(), flush=True)

    def on_start(self, config, start_step, total_steps):
        if self._loader is not None:    # a load that raised is followed by no on_model_loaded
            self._loader.close()
            self._loader = None
        self._desc, self._total = f"train {config.task}", total_steps
        if self.disable is not True and self._is_line_mode():
            from .._progress import Throttle

            self._line_mode = True
            self._throttle = Throttle(self.every)
            print(f"{self._desc}: starting at step {start_step} of {total_steps}", file=self._stream(), flush=True)
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total_steps, initial=start_step, desc=self._desc, unit="step",
                         file=self.file, disable=self.disable, dynamic_ncols=True)

    def _postfix(self, lr=None):
        parts = {}
        if self._loss is not None:
            parts["loss"] = f"{self._loss:.4f}"
        if lr is not None:
            parts["lr"] = f"{lr:.2e}"
        if self._acc is not None:
            parts["val_acc"] = f"{self._acc:.3f}"
        self._bar.set_postfix(parts, refresh=False)

    def on_step(self, step, loss, lr):
        s = self.smoothing
        self._loss = loss if self._loss is None else s * self._loss + (1 - s) * loss
        if self._line_mode:
            if self._throttle.ready() or step >= self._total:
                acc = f", validation accuracy {self._acc:.3f}" if self._acc is not None else ""
                print(f"{self._desc}: step {step}/{self._total}, loss {loss:.4f} (running mean {self._loss:.4f}), "
                      f"lr {lr:.2e}{acc}", file=self._stream(), flush=True)
            return
        if self._bar is None:
            return
        self._postfix(lr)
        self._bar.update(step - self._bar.n)

    def on_eval(self, step, accuracy):
        self._acc = accuracy
        if self._bar is not None:
            self._postfix()
            self._bar.refresh()

    def on_end(self, result):
        if self._loader is not None:
            self._loader.close()
            self._loader = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class PlateauStop(Callback):
    """Stops a run once validation accuracy has plateaued: at an evaluation at step ``s >= min_steps``, when the
    best accuracy of the evaluations in the last ``window`` share of the steps (``(1 - window) * s, s]``) is not
    more than ``min_gain`` above the best one before, and that window holds at least ``min_evals`` evaluations
    (so that one noisy evaluation cannot end a run).  ``reason`` says what the rule saw when it fired."""

    def __init__(self, *, window: float = 0.3, min_gain: float = 0.01, min_steps: int = 300, min_evals: int = 3):
        self.window, self.min_gain, self.min_steps, self.min_evals = check_params("PlateauStop", {
            "window": window, "min_gain": min_gain, "min_steps": min_steps, "min_evals": min_evals}, {
            "window": [Interval(Real, 0, 1, closed="neither")], "min_gain": [Interval(Real, None, None)],
            "min_steps": [Interval(Integral, 0, None)], "min_evals": [Interval(Integral, 1, None)]},
            error=TrainingError).values()
        self.evals: list[tuple[int, float]] = []
        self.reason: str | None = None

    def on_start(self, config, start_step, total_steps):
        self.evals = [e for e in self.evals if e[0] <= start_step]   # a resumed run keeps the evaluations before
        every = getattr(config, "eval_every", 0) or 0
        if every and self.window * total_steps < self.min_evals * every:
            import logging

            logging.getLogger(__name__).warning(
                "The plateau rule cannot fire in this run: its window (the last %.0f%% of the steps, %.0f of %d at "
                "most) holds fewer than min_evals=%d evaluations at eval_every=%d. Evaluate more often, or lower "
                "min_evals.", 100 * self.window, self.window * total_steps, total_steps, self.min_evals, every)

    def on_eval(self, step, accuracy):
        self.evals.append((int(step), float(accuracy)))
        if step < self.min_steps or self.reason:
            return
        cut = (1 - self.window) * step
        before = [a for s, a in self.evals if s <= cut]
        recent = [a for s, a in self.evals if s > cut]
        if before and len(recent) >= self.min_evals and max(recent) <= max(before) + self.min_gain:
            self.reason = (f"plateau at step {step}: best validation accuracy of the {len(recent)} evaluations after "
                           f"step {cut:.0f} is {max(recent):.3f}, best up to it {max(before):.3f} "
                           f"(gain <= {self.min_gain})")

    def should_stop(self) -> bool:
        return self.reason is not None


__all__ = ["Callback", "StopFlag", "History", "ProgressBar", "PlateauStop"]

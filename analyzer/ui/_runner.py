"""Background training for the dashboard: one runner per server process (a ``st.cache_resource``), jobs in
threads, live progress read by any session.  No streamlit here.

A page rerun never starts or duplicates a run: a job starts only from ``TrainingRunner.start`` (a button click),
the runner refuses a second concurrent job (this is a 2-core machine, and two runs would halve each other), and
sessions find the running job again by its id or with ``active()``.  ``stop`` sets the job's stop event; the
trainer then finishes the step, writes the adapter and a checkpoint, and returns."""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..exceptions import AnalyzerError, TrainingError, os_error_message
from ..training.runlock import check_run_folder_free, run_holder


def _at_exit(fn: Callable[[], None]) -> None:
    """Call ``fn`` at interpreter exit *before* the interpreter joins the non-daemon threads (the hook
    ``concurrent.futures`` uses): ``fn`` tells a worker to stop after its running call, and the join that follows
    waits for that call.  The worker threads here are never daemons: a daemon thread still in native code
    (torch, FAISS, numba) while the interpreter finalizes aborts the process ("terminate called without an
    active exception", SIGABRT) after its work is done.  (``atexit`` would run too late: after those joins,
    which would then wait for an idle worker forever.)"""
    threading._register_atexit(fn)  # Python >= 3.9's threading module (CPython and PyPy alike)


_quit_armed = threading.Lock()


def _waiting_at_exit(what: str) -> None:
    """Say on stderr what the exit now waits for, and make another Ctrl-C or a SIGTERM quit at once: the
    process then ends by ``os._exit`` (the interpreter is not finalized under the running thread, so it does not
    abort either).  Called from an :func:`_at_exit` hook (the main thread)."""
    import os
    import signal
    import sys

    def quit_now(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 — quitting regardless
                pass
        os._exit(128 + signum)

    if threading.current_thread() is threading.main_thread() and _quit_armed.acquire(blocking=False):
        for sig in (signal.SIGINT, signal.SIGTERM):   # armed before the message: whoever reads it can signal
            try:
                signal.signal(sig, quit_now)
            except (ValueError, OSError):  # not the main interpreter
                pass
    print(f"softprompt-analyzer: waiting for {what} to finish before exiting (Ctrl-C again to quit now).",
          file=sys.stderr, flush=True)


@dataclass
class Job:
    """One training run.  ``status``: ``starting``, ``running``, ``done``, ``stopped``, ``failed``."""

    id: str
    name: str
    out: Path
    config: Any
    status: str = "starting"
    total_steps: int = 0
    rows: list = field(default_factory=list)      # {"step", "loss", "lr"} and {"step", "eval_accuracy"}
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    result: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running")

    @property
    def step(self) -> int:
        with self.lock:
            steps = [r["step"] for r in self.rows if "loss" in r]
        return max(steps) if steps else 0

    def snapshot_rows(self) -> list[dict]:
        with self.lock:
            return list(self.rows)

    def progress(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


class _Progress:
    """The trainer's callback: appends rows to the job (under its lock)."""

    def __init__(self, job: Job):
        self.job = job

    def on_start(self, config, start_step, total_steps):
        self.job.total_steps = int(total_steps)
        self.job.status = "running"

    def on_step(self, step, loss, lr):
        with self.job.lock:
            self.job.rows.append({"step": int(step), "loss": float(loss), "lr": float(lr)})

    def on_eval(self, step, accuracy):
        with self.job.lock:
            self.job.rows.append({"step": int(step), "eval_accuracy": float(accuracy)})


class TrainingRunner:
    """Runs training jobs in background threads, one at a time."""

    def __init__(self, train_fn: Callable | None = None):
        self._train_fn = train_fn
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def _train(self):
        if self._train_fn is None:
            from ..training import train

            self._train_fn = train
        return self._train_fn

    def start(self, config, *, model=None, tokenizer=None, name: str | None = None) -> Job:
        """Start ``analyzer.training.train(config, model=, tokenizer=)`` in a thread; returns the job at once.
        Raises TrainingError while another job is running or when ``config.out`` is already used by a job."""
        train = self._train()
        with self._lock:
            active = self.active()
            if active is not None:
                raise TrainingError(f"A training run is already in progress ({active.name}, step {active.step} of "
                                    f"{active.total_steps or '?'}); stop it or wait for it to finish.")
            out = Path(config.out)
            check_run_folder_free(out)    # another process trains in it: refused here, in one line
            resume = bool(getattr(config, "resume", False))
            if resume:  # a resumed run replaces the finished record of that folder
                self._jobs = {i: j for i, j in self._jobs.items() if j.out != out}
            if any(j.out == out for j in self._jobs.values()):
                raise TrainingError(f"The output directory {str(out)!r} was already used by a run of this session; "
                                    "choose another name.")
            job = Job(id=uuid.uuid4().hex[:12], name=name or out.name, out=out, config=config,
                      total_steps=int(getattr(config, "steps", 0) or 0))
            self._jobs[job.id] = job

            def run():
                try:
                    job.result = train(config, callbacks=[_Progress(job)], stop_event=job.stop_event, model=model,
                                       tokenizer=tokenizer)
                    job.status = "stopped" if getattr(job.result, "stopped", False) else "done"
                except AnalyzerError as e:
                    job.error, job.status = str(e), "failed"
                except OSError as e:     # an unwritable run folder, a full disk: one line, as on the CLI
                    job.error, job.status = os_error_message(e), "failed"
                except BaseException as e:  # noqa: BLE001 — a thread must never die silently
                    job.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    job.status = "failed"
                    job.traceback = traceback.format_exc()
                finally:
                    job.finished = time.time()

            # never a daemon (not even when started from a daemon thread, a script run's): joined at exit
            job.thread = threading.Thread(target=run, name=f"train-{job.id}", daemon=False)
            job.thread.start()
            _at_exit(lambda: job.running and _waiting_at_exit(
                f"the training run {job.name!r} (step {job.step} of {job.total_steps or '?'}; a quit now "
                "leaves it resumable from its last checkpoint)"))
        return job

    def stop(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        if job is None or not job.running:
            return False
        job.stop_event.set()
        return True

    def get(self, job_id: str | None) -> Job | None:
        return self._jobs.get(job_id) if job_id else None

    def active(self) -> Job | None:
        return next((j for j in self._jobs.values() if j.running), None)

    def jobs(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return job


@dataclass(frozen=True)
class RunState:
    """What a run folder's checkpoint says: the step it reached, the steps it was asked for, its config (a
    ``TrainConfig`` dict).  ``interrupted``: the checkpoint stops short of the asked steps and the run did not
    end by a stop (a killed server, Ctrl-C) -- it can be resumed."""

    step: int
    steps: int
    config: dict
    stopped: bool = False
    holder: str | None = None      # another process training in the folder now (``pid N on host H, started T``)
    diverged: dict | None = None   # {"step", "reason", "lr"}: stopped by divergence after the checkpoint's step

    @property
    def interrupted(self) -> bool:
        return self.step < self.steps and not self.stopped and self.holder is None and self.diverged is None


def run_state(path) -> RunState | None:
    """The :class:`RunState` of the run folder ``path`` from its ``checkpoint.safetensors`` header (only the
    header is read; tensors are not loaded) and ``training_meta.json``; None when it holds no readable
    checkpoint."""
    import json

    from ..training.run_meta import RunMeta

    p = Path(path)
    ck_path = p / "checkpoint.safetensors"
    if not ck_path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(ck_path), "np") as f:
            ck = json.loads((f.metadata() or {})["checkpoint"])
        step, config = int(ck["step"]), dict(ck["config"])
        steps = int(config["steps"])
    except Exception:  # noqa: BLE001 — an unreadable checkpoint is simply not resumable here
        return None
    stopped, diverged = False, None
    meta = RunMeta.load(p)
    try:
        stopped = bool(meta.stopped) and int(-1 if meta.steps_done is None else meta.steps_done) >= step
        diverged = meta.diverged if isinstance(meta.diverged, dict) else None
    except (ValueError, TypeError):
        pass
    return RunState(step=step, steps=steps, config=config, stopped=stopped, holder=run_holder(p), diverged=diverged)


class BackgroundLane:
    """A single worker thread running submitted calls in order, returning ``concurrent.futures.Future``s.

    Unlike ``ThreadPoolExecutor`` (whose threads the interpreter joins at exit after draining every queued job),
    at exit the queued calls are cancelled and only the running one is waited for -- its result usually lands in
    the disk cache, so the wait is not lost.  The thread is never a daemon: one still in native code (torch,
    FAISS) while the interpreter finalizes aborts the process with a C++ "terminate" (SIGABRT).  While the exit
    waits, a second Ctrl-C or a SIGTERM quits at once (``os._exit``; see :func:`_waiting_at_exit`)."""

    def __init__(self, name: str = "softprompt-background"):
        import queue

        self._queue: "queue.Queue" = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        # explicitly not a daemon: a thread inherits daemon=True from the script-run thread that creates it
        self._thread = threading.Thread(target=self._work, name=name, daemon=False)
        self._thread.start()
        _at_exit(self._stop_at_exit)

    def submit(self, fn: Callable, *args, **kwargs):
        from concurrent.futures import Future

        fut: Future = Future()
        if self._stopping:
            fut.cancel()
            return fut
        self._queue.put((fut, fn, args, kwargs))
        return fut

    def _work(self) -> None:
        while not self._stopping:
            fut, fn, args, kwargs = self._queue.get()
            if fut is None or not fut.set_running_or_notify_cancel():
                continue
            self._idle.clear()
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as e:  # noqa: BLE001 — delivered to whoever reads the future
                fut.set_exception(e)
            finally:
                self._idle.set()

    def _cancel_queued(self) -> None:
        import queue

        self._stopping = True
        while True:
            try:
                fut, *_ = self._queue.get_nowait()
            except queue.Empty:
                break
            if fut is not None:
                fut.cancel()
        self._queue.put((None, None, (), {}))  # wake the worker so it sees the stop flag

    def _stop_at_exit(self) -> None:
        """At interpreter exit: cancel the queued calls and let the worker end after the running one (the
        interpreter then joins it)."""
        self._cancel_queued()
        if not self._idle.is_set():
            _waiting_at_exit(f"the running background computation ({self._thread.name})")

    def shutdown(self, grace: float | None = None) -> bool:
        """Cancel the queued calls and wait (up to ``grace`` seconds; None: as long as it takes) for the running
        one and the worker thread to end; whether the thread has ended."""
        self._cancel_queued()
        self._thread.join(grace)
        return not self._thread.is_alive()


__all__ = ["Job", "TrainingRunner", "BackgroundLane", "RunState", "run_state"]

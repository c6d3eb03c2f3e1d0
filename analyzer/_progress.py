"""Progress lines on stderr that read the same in a terminal and in a log file (the CLI's one progress helper).

:class:`Progress` prints ``… message`` for every phase a command announces and, while a phase lasts longer than
:data:`EVERY_S` seconds, a heartbeat line ``… message (still running, N s)`` every :data:`EVERY_S` seconds, so a
job whose stderr is a pipe or a file shows it is alive.  :func:`loading` frames the frozen model's load with a
line before it (``loading model X ...``) and one after it (``model X loaded in N s``).  :class:`Throttle` is the
time-based rate limit the training log lines use.  Standard library only."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

#: seconds between two progress lines of one phase (and between two step lines of a training run off a terminal)
EVERY_S = 5.0


class Throttle:
    """``ready()`` is True at the first call and then at most once every ``every`` seconds of ``clock``."""

    def __init__(self, every: float = EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.every = float(every)
        self.clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        now = self.clock()
        if self._last is None or now - self._last >= self.every:
            self._last = now
            return True
        return False


class Progress:
    """A ``progress(message)`` callable for the ``*_for_model`` functions and ``analyze``: each message is one
    line ``… message`` on ``file`` (default: stderr at call time), and a heartbeat line while a phase runs on.
    Use it as a context manager (or call :meth:`close`) so that the heartbeat stops before the output is written."""

    def __init__(self, file: TextIO | None = None, every: float = EVERY_S):
        self.file = file
        self.every = float(every)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._phase: str | None = None
        self._phase_start = 0.0
        self._last_line = 0.0

    def _write(self, line: str) -> None:
        f = self.file if self.file is not None else sys.stderr
        print(line, file=f, flush=True)

    def __call__(self, message: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._phase, self._phase_start, self._last_line = str(message), now, now
            self._write(f"… {message}")
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.every / 5):
            with self._lock:
                now = time.monotonic()
                if self._phase is not None and now - self._last_line >= self.every:
                    self._last_line = now
                    self._write(f"… {self._phase} (still running, {now - self._phase_start:.0f} s)")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def loading(say: Callable[[str], None] | None, name, what: str = "model") -> Iterator[None]:
    """``say("loading model NAME ...")`` before the block and ``say("model NAME loaded in N s")`` after it (nothing
    when ``say`` is None, nothing after it when the block raises)."""
    if say is None:
        yield
        return
    say(f"loading {what} {name} ...")
    t0 = time.perf_counter()
    yield
    say(f"{what} {name} loaded in {time.perf_counter() - t0:.1f} s")


__all__ = ["EVERY_S", "Throttle", "Progress", "loading"]

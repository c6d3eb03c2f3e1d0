"""One writer per run folder.

A training run (and a resumed one) holds an operating-system advisory lock -- ``fcntl.flock`` on ``.run.lock``
inside the run folder -- through an open file descriptor for its whole lifetime.  The kernel releases it when the
process ends, however it ends: a run killed with SIGKILL leaves no stuck lock (a stale ``.run.lock`` file is
harmless and taken over by the next run).  The holder writes who it is (pid, host, start time) into the file, so
a second writer is refused with one line naming the running one.

A run that fails leaves no folder it created and left empty (apart from the lock file and an empty log): the
folder, and any parents it had to create, are removed again.  Where ``fcntl`` is missing (Windows) nothing is
locked.

Importing this module pulls only the standard library."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterable

from ..exceptions import TrainingError, os_errors

try:
    import fcntl
except ImportError:      # pragma: no cover - Windows: no advisory locks, runs are not locked
    fcntl = None

LOCK_FILE = ".run.lock"


def _holder_text(path: Path) -> str:
    """``pid N on host H, started T`` from a lock file; a vaguer phrase when it cannot be read yet."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return (f"pid {int(info['pid'])} on host {info['host']}, started {info['started']}"
                + (f" by `{info['command']}`" if info.get("command") else ""))
    except (OSError, ValueError, KeyError, TypeError):
        return "its pid is not written yet"


def _refusal(out: Path, holder: str) -> TrainingError:
    pid = holder.split()[1] if holder.startswith("pid ") else None
    stop = f" (kill {pid} stops it; it can be resumed with --resume)" if pid else ""
    return TrainingError(f"The run folder {str(out)!r} is in use by another training run ({holder}); wait for it "
                         f"to finish or stop it{stop}, or choose another --out.")


def run_holder(out: str | os.PathLike) -> str | None:
    """Who holds the run folder ``out`` (``pid N on host H, started T``), or None when no run holds it.  A probe:
    it takes nothing (for the dashboard's list of runs and its check before starting a thread)."""
    path = Path(out).expanduser() / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_text(path)
    except OSError:
        return None
    finally:
        os.close(fd)     # closing releases a lock taken just now
    return None


def check_run_folder_free(out: str | os.PathLike) -> None:
    """Raise TrainingError (one line naming the running one) when another run holds the folder ``out``."""
    holder = run_holder(out)
    if holder is not None:
        raise _refusal(Path(out).expanduser(), holder)


def _command() -> str:
    argv = [os.path.basename(sys.argv[0] or "python")] + sys.argv[1:]
    text = " ".join(argv)
    return text if len(text) <= 80 else text[:77] + "..."


class RunFolderLock:
    """The lock of one run folder, held from :meth:`acquire` to :meth:`release`.

    ``acquire`` creates the folder (and missing parents) and takes the lock, or raises TrainingError naming the
    run that holds it; ``release(failed=True)`` also removes the folders it created when the run left them empty
    apart from the lock file and empty ``disposable`` files."""

    def __init__(self, out: str | os.PathLike, *, disposable: Iterable[str] = ()):
        self.out = Path(out).expanduser()
        self.disposable = tuple(disposable)
        self._fd: int | None = None
        self._created: list[Path] = []

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunFolderLock":
        out = self.out
        if out.exists() and not out.is_dir():
            raise TrainingError(f"--out {str(out)!r} is a file; expected a directory.")
        for _ in range(10):     # a folder removed by a failing holder between our open and our lock: again
            missing, p = [], out
            while not p.exists() and p != p.parent:
                missing.append(p)
                p = p.parent
            with os_errors("create the run folder (--out)", TrainingError, path=out):
                out.mkdir(parents=True, exist_ok=True)
                if fcntl is None:
                    self._created = missing
                    return self
                fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _refusal(out, _holder_text(out / LOCK_FILE)) from None
            except OSError:     # a file system without locks: run unlocked rather than not at all
                os.close(fd)
                self._created = missing
                return self
            try:
                same = os.fstat(fd).st_ino == os.stat(out / LOCK_FILE).st_ino
            except OSError:
                same = False
            if not same:        # we locked a lock file that its holder removed on release: take the new one
                os.close(fd)
                continue
            self._fd, self._created = fd, missing
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "command": _command()}
            try:
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(info).encode())
            except OSError:
                pass          # the lock holds without its description
            return self
        raise TrainingError(f"Could not take the lock of the run folder {str(out)!r}: it kept being replaced; "
                            "another process is creating and removing it. Choose another --out.")

    def release(self, failed: bool = False) -> None:
        """Give the folder back (the lock file is removed while still locked, then closed); after a failed run,
        remove the folders this run created if it left them empty."""
        fd, self._fd = self._fd, None
        lock = self.out / LOCK_FILE
        if fd is not None:
            try:
                lock.unlink()
            except OSError:
                pass
        if failed and self._created:
            try:
                for name in self.disposable:
                    f = self.out / name
                    if f.is_file() and not f.is_symlink() and f.stat().st_size == 0:
                        f.unlink()
                for d in self._created:      # deepest first; stops at the first that is not empty
                    d.rmdir()
            except OSError:
                pass
        self._created = []
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "RunFolderLock":
        return self.acquire()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release(failed=exc_type is not None)


__all__ = ["RunFolderLock", "run_holder", "check_run_folder_free", "LOCK_FILE"]

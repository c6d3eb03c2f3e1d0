"""All errors the toolkit raises on purpose.  Every message says what was expected, what was got,
and what to do; the CLI prints it as one line and exits non-zero, the dashboard shows it in a box."""

from __future__ import annotations

import contextlib
import errno
import os
from typing import Iterator


class AnalyzerError(ValueError):
    """Base class: a bad input or a missing part the user can fix."""


class InputFileError(AnalyzerError):
    """A path is missing, empty, corrupt, of an unknown kind, or unsafe (a pickle)."""


class UnsupportedAdapterError(AnalyzerError):
    """A PEFT adapter whose type has no token-space prompt (e.g. PREFIX_TUNING, LORA)."""


class ShapeMismatchError(AnalyzerError):
    """A soft prompt and a vocabulary (or a checkpoint) disagree on a dimension."""


class ModelNotFoundError(AnalyzerError):
    """A model name that cannot be resolved, or an embedded package that is not installed."""


class TaskError(AnalyzerError):
    """A task, dataset or verbalizer that cannot be used."""


class TrainingError(AnalyzerError):
    """A training run that cannot start or resume as asked."""


class TaskWarning(UserWarning):
    """A task that is used as asked but may not be the one meant (a run trained on a task file, read against
    the built-in task of the same name); the CLI prints it as one line."""


def first_line(e: BaseException) -> str:
    """An exception from a library, for an error message: its type and the first line of its message."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0].strip()}" if lines else type(e).__name__


#: errno → (what went wrong, what to do), for :func:`os_error_message`.
_OS_ERRORS = {
    errno.EACCES: ("permission denied", "check the permissions of the path and its folders (ls -l), or choose another path"),
    errno.EPERM: ("operation not permitted", "check its permissions (ls -l), or choose another path"),
    errno.EISDIR: ("it is a folder", "give a file path"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.EEXIST: ("it already exists", "remove it or choose another path"),
    errno.EROFS: ("the file system is read-only", "choose a path on a writable file system"),
    errno.ENOSPC: ("no space left on the device", "free some space or choose a path on another device"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space or choose a path on another device"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
    errno.ELOOP: ("too many levels of symbolic links", "check the links along the path"),
    errno.ETXTBSY: ("the file is busy", "close what uses it, or choose another path"),
    errno.EIO: ("an input/output error", "check the device, or choose another path"),
}


def os_error_message(e: OSError, doing: str | None = None, path: str | os.PathLike | None = None) -> str:
    """One line for an operating-system error the user can fix: the path, what was wanted, what went wrong and
    what to do.  ``doing`` says what was wanted (``"write the output file"``; default ``"read or write"``);
    ``path`` is the path the user gave, shown instead of the error's own (a temporary file beside it), with the
    error's path added when it is a folder on the way."""
    default = ((e.strerror or "").strip().lower() or (str(e).strip().splitlines() or [type(e).__name__])[0],
               "check the path, or choose another one")
    reason, todo = _OS_ERRORS.get(e.errno, default)
    paths = (str, bytes, os.PathLike)
    if path is not None:
        where = f" {os.fsdecode(path)!r}"
        if isinstance(e.filename, paths):
            at = os.path.abspath(os.fsdecode(e.filename))
            if os.path.abspath(os.fsdecode(path)).startswith(at.rstrip(os.sep) + os.sep):
                where += f" (at {at!r})"
    else:
        where = f" {os.fsdecode(e.filename)!r}" if isinstance(e.filename, paths) else ""
        if isinstance(e.filename2, paths):
            where += f" to {os.fsdecode(e.filename2)!r}"
    return f"Cannot {doing or 'read or write'}{where}: {reason}; {todo}."


@contextlib.contextmanager
def os_errors(doing: str, error: type[AnalyzerError] = AnalyzerError,
              path: str | os.PathLike | None = None) -> Iterator[None]:
    """Turn an OSError raised inside the block into ``error`` with :func:`os_error_message`'s one line."""
    try:
        yield
    except OSError as e:
        raise error(os_error_message(e, doing, path)) from None


__all__ = [
    "AnalyzerError",
    "InputFileError",
    "UnsupportedAdapterError",
    "ShapeMismatchError",
    "ModelNotFoundError",
    "TaskError",
    "TrainingError",
    "TaskWarning",
    "first_line",
    "os_error_message",
    "os_errors",
]

"""All errors the toolkit raises on purpose.  Every message says what was expected, what was got,
and what to do; the CLI prints it as one line and exits non-zero, the dashboard shows it in a box."""

from __future__ import annotations


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


def first_line(e: BaseException) -> str:
    """An exception from a library, for an error message: its type and the first line of its message."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0].strip()}" if lines else type(e).__name__


__all__ = [
    "AnalyzerError",
    "InputFileError",
    "UnsupportedAdapterError",
    "ShapeMismatchError",
    "ModelNotFoundError",
    "TaskError",
    "TrainingError",
]

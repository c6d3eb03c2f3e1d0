"""Which torch device the computation runs on: ``auto`` (a CUDA GPU when torch sees one, else the CPU), ``cpu``
or ``cuda``; the process default that the command line's ``--device`` sets.

    resolve_device("auto")      # "cuda" on a GPU machine, "cpu" elsewhere
    set_default_device("cpu")   # what resolve_device(None) answers from now on (and child processes inherit)

The default lives in the environment variable ``SOFTPROMPT_ANALYZER_DEVICE`` (``auto`` when unset), so that a
worker process started by a command follows the command's ``--device``.  Importing this module pulls no torch;
torch is imported only to answer ``auto`` or to check that ``cuda`` is there."""

from __future__ import annotations

import os
from contextlib import contextmanager

from .exceptions import AnalyzerError

DEVICES = ("auto", "cpu", "cuda")
ENV = "SOFTPROMPT_ANALYZER_DEVICE"


def _check(device, where: str) -> str:
    if not isinstance(device, str) or device.strip().lower() not in DEVICES:
        raise AnalyzerError(f"{where}: expected one of {', '.join(DEVICES)}; got {device!r}. "
                            f"Use auto (a CUDA GPU when there is one), cpu or cuda.")
    return device.strip().lower()


def set_default_device(device: str) -> str:
    """Make ``device`` what :func:`resolve_device` answers for ``None`` in this process and its children
    (validated first: a bad value, or ``cuda`` without a GPU, is refused in one line).  Returns the resolved one."""
    resolved = resolve_device(_check(device, "--device"))
    os.environ[ENV] = _check(device, "--device")
    return resolved


@contextmanager
def using_device(device: str | None):
    """Within the block, ``device`` is the process default (:func:`set_default_device`; ``None``: unchanged); the
    previous default is restored after it (a command run in-process leaves no trace)."""
    old = os.environ.get(ENV)
    try:
        if device is not None:
            set_default_device(device)
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


def default_device() -> str:
    """The process default: ``$SOFTPROMPT_ANALYZER_DEVICE`` or ``auto``."""
    return _check(os.environ.get(ENV) or "auto", f"${ENV}")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str | None = None) -> str:
    """``"cpu"`` or ``"cuda"`` for ``device`` (``None``: the process default).  ``auto`` is ``cuda`` when
    ``torch.cuda.is_available()``, else ``cpu``; ``cuda`` without a usable GPU is one clear error line."""
    d = default_device() if device is None else _check(device, "device")
    if d == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if d == "auto":
        return "cpu"
    import torch

    build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    raise AnalyzerError(f"--device cuda: expected a CUDA GPU, but torch {torch.__version__} ({build}) sees none; "
                        f"use --device cpu (or auto), or install a CUDA build of torch on a GPU machine "
                        f"(make install TORCH_SPEC=\"torch --index-url https://download.pytorch.org/whl/cu126\").")

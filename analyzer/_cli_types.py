"""The argparse types of the command line's values: each reads one flag's text and refuses a bad value with one
line naming what was expected and what was got (argparse adds the flag).  Standard library only; the ranges are
the API's own (:func:`analyzer.training.config.check_lr`, :func:`analyzer.stats.check_seed`)."""

from __future__ import annotations

import argparse

from .exceptions import AnalyzerError


def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def int_in(lo: int, hi: int | None = None, what: str = "an integer"):
    """An argparse type: an integer in ``[lo, hi]`` (no upper bound when ``hi`` is None)."""
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = None
        if v is None or v < lo or (hi is not None and v > hi):
            rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"expected {what} {rng}, got {s!r}")
        return v
    return parse


def learning_rate(s: str) -> float:
    """``--lr``: a finite number in ``(0, LR_MAX]`` (:func:`analyzer.training.config.check_lr`, the same bound)."""
    from .training.config import LR_MAX, check_lr

    try:
        return check_lr(float(s))
    except (ValueError, AnalyzerError):
        raise argparse.ArgumentTypeError(
            f"expected a learning rate in (0, {LR_MAX:g}], got {s!r}: AdamW moves every prompt entry by about lr per "
            f"step, and above {LR_MAX:g} one step throws the prompt far outside the vocabulary; pass e.g. --lr 0.3"
        ) from None


def loss_weight(s: str) -> float:
    """A loss weight: a finite number >= 0."""
    import math

    try:
        v = float(s)
    except ValueError:
        v = float("nan")
    if not math.isfinite(v) or v < 0 or v > 1e4:
        raise argparse.ArgumentTypeError(f"expected a finite weight in [0, 10000], got {s!r}")
    return v


def list_of(parse):
    """An argparse type: one value or several, comma-separated, each read by ``parse``."""
    def parse_list(s: str) -> list:
        parts = [p.strip() for p in s.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated values, got {s!r}")
        return [parse(p) for p in parts]
    return parse_list


def seed(s: str) -> int:
    """``--seed`` of every command: one range, checked before anything loads (:func:`analyzer.stats.check_seed`)."""
    from .stats import check_seed

    try:
        return check_seed(int(s))
    except (ValueError, AnalyzerError):
        from .stats import SEED_MAX

        raise argparse.ArgumentTypeError(f"expected an integer seed in [0, {SEED_MAX}], got {s!r}; pass e.g. "
                                         "--seed 0") from None


def gammas(s: str) -> list[float]:
    import math

    try:
        out = [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0 like 0,0.03,0.3,3; "
                                         f"got {s!r}") from None
    if not out or any(not math.isfinite(g) or g < 0 for g in out):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0 like 0,0.03,0.3,3; got {s!r}")
    return out


def layer_list(s: str) -> list[int]:
    try:
        out = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers like 0,8,15,22; got {s!r}") from None
    if not out:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers like 0,8,15,22; got {s!r}")
    return out


def nonempty(what: str, example: str):
    """An argparse type: a string that is not empty or only whitespace (``--model ''`` is refused, not read as
    "no model given")."""
    def parse(s: str) -> str:
        if not s.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}; pass e.g. {example}")
        return s
    return parse


model_name = nonempty("a model (an embedded name, a HF directory or a .gguf file; see `softprompt-analyzer models`)",
                      "--model smollm2-135m")
task_name = nonempty("a task (a built-in name, see `softprompt-analyzer tasks`, or a CSV/JSONL file)",
                     "--task sentiment")

def device_name(s: str) -> str:
    """``--device``: ``auto`` (a CUDA GPU when torch sees one, else the CPU), ``cpu`` or ``cuda``
    (:mod:`analyzer._device`; whether a GPU is there is checked when the command starts)."""
    v = s.strip().lower()
    if v not in ("auto", "cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected auto, cpu or cuda, got {s!r}")
    return v


__all__ = ["device_name", "gammas", "int_in", "layer_list", "learning_rate", "list_of", "loss_weight", "model_name", "nonempty",
           "positive_int", "seed", "task_name"]

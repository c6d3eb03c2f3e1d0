"""The settings of a decode (soft prompt -> hard prompt), checked when made.

Importing this module pulls the standard library only."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..exceptions import AnalyzerError

INITS = ("projection", "random")


def _int(name: str, v, low: int, flag: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise AnalyzerError(f"The {flag} of decode must be an integer >= {low}. Got {v!r} instead.")
    return int(v)


def _nonneg(name: str, v, flag: str, high: float | None = None) -> float:
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
    if not ok or (high is not None and v > high):
        where = f"in [0, {high:g}]" if high is not None else ">= 0"
        raise AnalyzerError(f"The {flag} of decode must be a finite number {where}. Got {v!r} instead.")
    return float(v)


@dataclass(frozen=True)
class DecodeConfig:
    """How a soft prompt is decoded into real tokens (PEZ, Wen et al. 2023).

    length:        tokens of the hard prompt (None: the soft prompt's own length).
    steps:         optimisation steps, each on ``batch_size`` training examples.
    lr, weight_decay: AdamW on the continuous copy of the prompt (PEZ: 0.1 and 0.1).
    task_weight:   weight of the task loss (cross-entropy over the label words).
    agreement_weight: weight of the teacher term: KL(soft prompt's label distribution || hard prompt's), on the same
                   inputs.
    fluency:       lambda: weight of the frozen model's mean negative log-likelihood of the hard prompt as text.
    init:          ``projection`` (the soft prompt's nearest tokens, by cosine) or ``random`` (random usable tokens).
    eval_every:    every this many steps the current hard prompt is scored on ``select_examples`` validation
                   examples with the same objective; the best one scored is kept (the start included).
    checkpoint_every: steps between checkpoints (a stopped or killed decode resumes from the last one).
    seed:          batches and the random init."""

    length: int | None = None
    steps: int = 200
    lr: float = 0.1
    weight_decay: float = 0.1
    batch_size: int = 8
    task_weight: float = 1.0
    agreement_weight: float = 1.0
    fluency: float = 0.0
    init: str = "projection"
    eval_every: int = 25
    select_examples: int = 64
    checkpoint_every: int = 25
    seed: int = 0
    max_length: int = 128

    def __post_init__(self):
        from ..stats import check_seed
        from ..training.config import LR_MAX

        if self.length is not None:
            _int("length", self.length, 1, "--length")
        for name, flag, low in (("steps", "--steps", 1), ("batch_size", "--batch-size", 1),
                                ("eval_every", "--eval-every", 1), ("select_examples", "--select-examples", 2),
                                ("checkpoint_every", "--checkpoint-every", 1), ("max_length", "max_length", 8)):
            _int(name, getattr(self, name), low, flag)
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= LR_MAX:
            raise AnalyzerError(f"The --lr of decode must be a number in (0, {LR_MAX:g}]. Got {lr!r} instead.")
        _nonneg("weight_decay", self.weight_decay, "--weight-decay", 1.0)
        for name, flag in (("task_weight", "--task-weight"), ("agreement_weight", "--agreement-weight"),
                           ("fluency", "--fluency")):
            _nonneg(name, getattr(self, name), flag, 1e4)
        if self.task_weight == 0 and self.agreement_weight == 0:
            raise AnalyzerError("decode needs a task or an agreement term: --task-weight and --agreement-weight "
                                "are both 0.")
        if self.init not in INITS:
            raise AnalyzerError(f"The --init of decode must be one of {list(INITS)}. Got {self.init!r} instead.")
        check_seed(self.seed, what="--seed")

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["DecodeConfig", "INITS"]

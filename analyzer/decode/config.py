"""The settings of a decode (soft prompt -> hard prompt), checked when made.

Importing this module pulls the standard library only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from numbers import Integral, Real

from .._params import SEED, Boolean, Interval, Options, check_params
from ..exceptions import AnalyzerError

INITS = ("projection", "random")


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
    class_balanced: weigh each example of the task and agreement terms by ``n / (classes * count of its class)``
                   (scikit-learn's "balanced" class weight), so that on an imbalanced task (spam: 87% ham) answering
                   the majority class is not a cheap minimum of the search.
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
    class_balanced: bool = True
    init: str = "projection"
    eval_every: int = 25
    select_examples: int = 64
    checkpoint_every: int = 25
    seed: int = 0
    max_length: int = 128

    def __post_init__(self):
        from ..training.config import LR_MAX

        checked = check_params("DecodeConfig", self.to_dict(), {
            "length": [Interval(Integral, 1, None), None], "steps": [Interval(Integral, 1, None)],
            "batch_size": [Interval(Integral, 1, None)], "eval_every": [Interval(Integral, 1, None)],
            "select_examples": [Interval(Integral, 2, None)], "checkpoint_every": [Interval(Integral, 1, None)],
            "max_length": [Interval(Integral, 8, None)], "lr": [Interval(Real, 0, LR_MAX, closed="right")],
            "weight_decay": [Interval(Real, 0, 1)], "task_weight": [Interval(Real, 0, 1e4)],
            "agreement_weight": [Interval(Real, 0, 1e4)], "fluency": [Interval(Real, 0, 1e4)],
            "init": [Options(*INITS)], "seed": [SEED], "class_balanced": [Boolean()]})
        for name, value in checked.items():      # numpy ints as ints, so the settings write as JSON
            object.__setattr__(self, name, value)
        if self.task_weight == 0 and self.agreement_weight == 0:
            raise AnalyzerError("decode needs a task or an agreement term: --task-weight and --agreement-weight "
                                "are both 0.")

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["DecodeConfig", "INITS"]

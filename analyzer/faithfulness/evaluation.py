"""Is this prompt good on my data?  Rank-classification accuracy of a prompt beside its chance levels.

:class:`Accuracy` is one condition's score (Wilson 95% interval, balanced accuracy, majority class);
:func:`accuracy_from_eval` makes it from an :class:`~analyzer.training.scoring.EvalResult`, the one scoring path
every reading shares (:func:`analyzer.training.scoring.evaluate`).

Importing this module pulls numpy only."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stats import wilson_interval

@dataclass(frozen=True)
class Accuracy:
    """Rank-classification accuracy of one condition, beside its chance levels.

    condition:   ``none``, ``instruction``, ``init``, ``projection``, ``soft`` (or a stress-test label).
    accuracy, correct, n: the score and the counts it comes from; ci_low/ci_high: Wilson 95% interval.
    balanced_accuracy: mean per-class recall (chance = ``1/num_classes`` whatever the class balance).
    chance:      ``1/num_classes``.
    majority:    accuracy of always answering the majority class of the task's train split, on these examples.
    majority_label: that class.
    above_chance: the interval's lower end is above both chance levels.
    prompt:      what was fed (the text, or the readable tokens), for the report.
    """

    condition: str
    accuracy: float
    correct: int
    n: int
    ci_low: float
    ci_high: float
    balanced_accuracy: float
    chance: float
    majority: float
    majority_label: str
    above_chance: bool
    prompt: str | None = None
    loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "accuracy": self.accuracy, "correct": self.correct, "n": self.n,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "balanced_accuracy": self.balanced_accuracy,
                "chance": self.chance, "majority": self.majority, "majority_label": self.majority_label,
                "above_chance": self.above_chance, "prompt": self.prompt, "loss": self.loss}


def accuracy_from_eval(result, task, condition: str, *, prompt: str | None = None) -> Accuracy:
    """An :class:`Accuracy` from an ``EvalResult`` of :func:`analyzer.training.scoring.evaluate`."""
    correct = int((np.asarray(result.predictions) == np.asarray(result.targets)).sum())
    n = int(result.n)
    lo, hi = wilson_interval(correct, n)
    if task.train:
        counts = task.label_counts("train")
    else:  # no train split: the majority of the scored examples themselves
        counts = Counter(task.labels[int(t)] for t in np.asarray(result.targets))
    maj_label = max(task.labels, key=lambda lab: (counts.get(lab, 0), -task.labels.index(lab)))
    maj_idx = task.labels.index(maj_label)
    majority = float((np.asarray(result.targets) == maj_idx).mean()) if n else float("nan")
    chance = 1.0 / task.num_labels
    return Accuracy(condition=condition, accuracy=float(result.accuracy), correct=correct, n=n,
                    ci_low=float(lo), ci_high=float(hi), balanced_accuracy=float(result.balanced_accuracy),
                    chance=chance, majority=majority, majority_label=maj_label,
                    above_chance=bool(lo > max(chance, majority)), prompt=prompt,
                    loss=float(result.loss) if result.loss is not None else None)


"""Prompt tuning on a frozen model: ``TrainConfig``, ``train``, ``evaluate``, the callbacks and ``RunMeta`` (the
record of a run, ``training_meta.json``).

    from analyzer.training import TrainConfig, train, evaluate
    result = train(TrainConfig(model="smollm2-135m", task="sentiment", out="runs/sent", steps=300))

Importing this package pulls no torch; each name is loaded on first use."""

from __future__ import annotations

from .._lazy import lazy_getattr
from typing import TYPE_CHECKING

_LAZY = {
    "TrainConfig": "analyzer.training.config",
    "INIT_MODES": "analyzer.training.config",
    "train": "analyzer.training.trainer",
    "train_multitask": "analyzer.training.multitask",
    "save_multitask_adapter": "analyzer.training.files",
    "TrainResult": "analyzer.training.loop",
    "RunMeta": "analyzer.training.run_meta",
    "save_adapter": "analyzer.training.files",
    "read_training_log": "analyzer.training.files",
    "read_snapshots": "analyzer.training.files",
    "evaluate": "analyzer.training.scoring",
    "EvalResult": "analyzer.training.scoring",
    "PromptedClassifier": "analyzer.training.scoring",
    "init_prompt": "analyzer.training.initialize",
    "Callback": "analyzer.training.callbacks",
    "ProgressBar": "analyzer.training.callbacks",
    "StopFlag": "analyzer.training.callbacks",
    "History": "analyzer.training.callbacks",
    "PlateauStop": "analyzer.training.callbacks",
    "RunRecorder": "analyzer.training.recorder",
    "PromptRunCallback": "analyzer.training.recorder",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


def __dir__():
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from .callbacks import Callback, History, PlateauStop, ProgressBar, StopFlag
    from .config import INIT_MODES, TrainConfig
    from .initialize import init_prompt
    from .recorder import PromptRunCallback, RunRecorder
    from .scoring import EvalResult, PromptedClassifier, evaluate
    from .files import read_snapshots, read_training_log, save_adapter
    from .loop import TrainResult
    from .run_meta import RunMeta
    from .trainer import train
    from .multitask import train_multitask
    from .files import save_multitask_adapter

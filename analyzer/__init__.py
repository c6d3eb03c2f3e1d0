"""softprompt-analyzer: look inside learned soft prompts.

The public API.  Importing this package pulls no torch, streamlit or faiss: every name below is loaded
lazily on first use (PEP 562), so ``softprompt-analyzer --help`` stays fast."""

from __future__ import annotations

from ._lazy import lazy_getattr
from typing import TYPE_CHECKING

from .exceptions import (AnalyzerError, InputFileError, ModelNotFoundError, ShapeMismatchError, TaskError,
                         TrainingError, UnsupportedAdapterError)

__version__ = "0.1.0"

_LAZY = {
    # data objects
    "Vocabulary": "analyzer.types",
    "SoftPrompt": "analyzer.types",
    "ModelSource": "analyzer.types",
    # models and loaders
    "DEFAULT_MODEL": "analyzer.models",
    "resolve_model": "analyzer.models",
    "list_models": "analyzer.models",
    "load_frozen_model": "analyzer.models",
    "load_vocabulary": "analyzer.loaders",
    "load_prompt": "analyzer.loaders",
    "load_prompts": "analyzer.loaders",
    # neighbours and reports
    "NeighborIndex": "analyzer.neighbors",
    "Report": "analyzer.results",
    "PromptAnalysis": "analyzer.results",
    "Skipped": "analyzer.results",
    "build_report": "analyzer.report",
    "analyze": "analyzer.analysis",
    "analyze_prompt": "analyzer.metrics",
    "cluster_metrics": "analyzer.metrics",
    "TextEmbedder": "analyzer.embedder",
    "task_relatedness": "analyzer.relatedness",
    "analyze_faithfulness": "analyzer.faithfulness",
    "prompt_swap": "analyzer.swap",
    "SwapResult": "analyzer.swap",
    "training_dynamics": "analyzer.dynamics",
    "get_task": "analyzer.tasks",
    "list_tasks": "analyzer.tasks",
}

__all__ = sorted([*_LAZY, "__version__", "AnalyzerError", "InputFileError", "ModelNotFoundError",
                  "ShapeMismatchError", "TaskError", "TrainingError", "UnsupportedAdapterError"])


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


def __dir__():
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from .loaders import load_prompt, load_prompts, load_vocabulary
    from .models import DEFAULT_MODEL, list_models, load_frozen_model, resolve_model
    from .neighbors import NeighborIndex
    from .report import build_report
    from .results import PromptAnalysis, Report, Skipped
    from .types import ModelSource, SoftPrompt, Vocabulary

"""Readings that run the frozen model: does the discrete reading of a soft prompt do what the prompt does, which
positions matter, and what does the model say the prompt means?  One module per reading:

* :mod:`.evaluation` -- accuracy of any prompt on any task beside zero-shot, the instruction and the majority class
  (the ``evaluate`` command; the prompt swap is a view of the same scoring);
* :mod:`.projection` -- the nearest-token projection, Prompt-F1 and the projection gap;
* :mod:`.waywardness` -- the stress test (a projection can be made to read as anything);
* :mod:`.logit_lens` -- each virtual token read through the output layer at every depth;
* :mod:`.description` -- what the model says the prompt means: its states patched into a few-shot description
  prompt over a layer grid (Patchscopes / InSPEcT; the ``describe`` command, against a matched null), with the
  self-description and the logit lens as other readings;
* :mod:`.importance` -- which positions matter (removed, nearest token, vocabulary mean; against a matched null).

Intervals and paired tests (``wilson_interval``, ``mcnemar_exact``, ``paired_bootstrap_diff``) live in
:mod:`analyzer.stats`, and are re-exported here for older callers.  Shapes are written as ``"n_virtual d_model"``.
Importing this package pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from typing import Any, Sequence

from ..stats import mcnemar_exact, paired_bootstrap_diff, wilson_interval
from ..types import SoftPrompt, Vocabulary
from ._common import _init_ids
from .description import DEFAULT_QUESTIONS, greedy_continuation, self_description
from ._description_result import DescribedPrompt, DescriptionCell, DescriptionNull, OtherReadings, PlantedDescription
from .description import DescriptionResult, describe_for_model, describe_prompt, patched_generate
from .evaluation import (Accuracy, Baselines, EvaluationResult, PromptEvaluation, Score, Versus, accuracy_from_eval,
                         evaluate_for_model, evaluate_prompts, score_columns)
from ._importance_result import NullStratum, Original, ProjectionCurve, RandomBand, RemovalNullSummary
from .importance import (REPLACEMENTS, ImportanceResult, PositionImportance, ReplacementEffect, held_out_validity,
                         importance, importance_for_model)
from .logit_lens import LogitLens, decoder_parts, logit_lens, residual_stream_hooks
from .projection import (CONDITIONS, DEFAULT_CONDITIONS, HardProjection, hard_projection, projection_f1,
                         projection_gap, prompt_f1)
from .waywardness import (DEFAULT_GAMMAS, WaywardnessResult, WaywardnessRow, train_with_penalty,
                          waywardness_for_model, waywardness_penalty, waywardness_stress_test)


def analyze_faithfulness(model, tokenizer, prompt: SoftPrompt, index, *, task=None, split: str = "test",
                         limit: int | None = 200, reference_text: str | None = None, lens_k: int = 3,
                         lens_suffix: str | None = None, questions: Sequence[str] = DEFAULT_QUESTIONS,
                         max_new_tokens: int = 24, model_name: str | None = None) -> dict[str, Any]:
    """Everything model-based for one prompt, as one JSON-able dict (the report's ``"faithfulness"`` object):
    ``projection_gap`` (when a task is given), ``prompt_f1`` (always: against the init and ``reference_text``),
    ``logit_lens`` (virtual tokens, plus the last position of ``lens_suffix`` -- by default the first test
    example formatted by the task, where the label word is predicted -- with the label words' probabilities
    tracked) and ``self_description``.  The stress test is separate (it trains)."""
    from ..neighbors import NeighborIndex

    if isinstance(index, Vocabulary):
        index = NeighborIndex(metric="cosine", k=1).fit(index)
    out: dict[str, Any] = {}
    track = None
    if task is not None:
        from ..tasks import get_task

        task = get_task(task)
        gap = projection_gap(model, tokenizer, prompt, task, index, split=split, limit=limit,
                             reference_text=reference_text, model_name=model_name)
        out["projection_gap"] = gap
        out["projection"] = gap["projection"]
        out["prompt_f1"] = gap["prompt_f1"]
        track = dict(zip(task.label_words, task.label_token_ids(tokenizer, model_name)))
        if lens_suffix is None and task.test:
            lens_suffix = task.format(task.test[0].text)
    else:
        proj = hard_projection(prompt, index, tokenizer=tokenizer)
        out["projection"] = proj.to_dict()
        f1 = {}
        ids = _init_ids(prompt, tokenizer)
        if ids is not None:
            f1["init"] = projection_f1(proj, ids, tokenizer, tile=False, vocab=index.vocab_)
        if reference_text:
            f1["reference"] = projection_f1(proj, reference_text, tokenizer, tile=False, vocab=index.vocab_)
        out["prompt_f1"] = f1
    lens = logit_lens(model, tokenizer, prompt, k=lens_k, suffix=lens_suffix, suffix_positions="last",
                      vocab=index.vocab_, track=track)
    out["logit_lens"] = lens.to_dict()
    out["self_description"] = self_description(model, tokenizer, prompt, questions=questions,
                                               max_new_tokens=max_new_tokens, index=index)
    return out


__all__ = [
    "DEFAULT_QUESTIONS", "CONDITIONS", "DEFAULT_CONDITIONS", "DEFAULT_GAMMAS", "Accuracy", "HardProjection",
    "LogitLens", "WaywardnessResult", "WaywardnessRow", "wilson_interval", "mcnemar_exact", "paired_bootstrap_diff",
    "accuracy_from_eval", "hard_projection", "prompt_f1", "projection_f1", "projection_gap", "waywardness_penalty",
    "train_with_penalty", "waywardness_stress_test", "waywardness_for_model", "residual_stream_hooks",
    "decoder_parts", "logit_lens", "greedy_continuation", "self_description", "analyze_faithfulness",
    "DescriptionResult", "DescriptionCell", "PlantedDescription", "DescriptionNull", "OtherReadings", "describe_prompt", "describe_for_model",
    "patched_generate",
    "Score", "Versus", "PromptEvaluation", "Baselines", "EvaluationResult", "evaluate_prompts", "evaluate_for_model",
    "score_columns", "REPLACEMENTS", "ImportanceResult", "PositionImportance", "ReplacementEffect", "importance",
    "importance_for_model", "held_out_validity", "ProjectionCurve", "RandomBand", "Original", "RemovalNullSummary",
    "NullStratum", "DescribedPrompt",
]

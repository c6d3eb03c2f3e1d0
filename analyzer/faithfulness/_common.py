"""Helpers shared by the readings that run the frozen model: a prompt as a checked float32 matrix, the model's
device, readable token strings, PEFT's tiling rule, a text's token ids and a prompt's init ids.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..exceptions import AnalyzerError, ShapeMismatchError
from ..types import SoftPrompt, Vocabulary

def _prompt_matrix(prompt, model=None, *, check_rows_: bool = True) -> "Any":
    """A soft prompt (``SoftPrompt``, ``"n d"`` array or tensor) as a float32 CPU tensor ``"n_virtual d_model"``,
    checked against the model's embedding width."""
    import torch

    name = f" {prompt.name!r}" if isinstance(prompt, SoftPrompt) else ""
    v = prompt.vectors if isinstance(prompt, SoftPrompt) else prompt
    if isinstance(v, torch.Tensor):
        t = v.detach().to("cpu", torch.float32)
    else:
        t = torch.as_tensor(np.asarray(v, dtype=np.float32))
    if t.ndim != 2 or t.shape[0] == 0:
        raise ShapeMismatchError(f"A soft prompt{name} must be a non-empty 2-d matrix (n_virtual x d_model); "
                                 f"got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all():
        raise AnalyzerError(f"The soft prompt{name} contains NaN or Inf; expected finite values.")
    if model is not None:
        d = int(model.get_input_embeddings().weight.shape[1])
        if t.shape[1] != d:
            mname = getattr(getattr(model, "config", None), "_name_or_path", "") or "the model"
            raise ShapeMismatchError(f"Soft prompt{name} has dim {t.shape[1]} but {mname} has dim {d}.")
    from ..loaders._tensor import check_rows

    # the loaders' one rule for degenerate rows (zero, subnormal or overflowing norms), for in-memory prompts too
    # (``check_rows_=False``: an internal matrix that is not a prompt, e.g. waywardness's target rows)
    if check_rows_:
        check_rows(t.numpy(), name=prompt.name if isinstance(prompt, SoftPrompt) else "matrix",
                   source=str(getattr(prompt, "source", "in memory")))
    return t.contiguous()


def _device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover
        import torch

        return torch.device("cpu")


_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def _token_strings(ids: Sequence[int], tokenizer=None, vocab: Vocabulary | None = None) -> list[str]:
    """Readable token strings: the vocabulary's own (``␣the``) when given, else the tokenizer's decoding with
    whitespace made visible."""
    out = []
    for i in ids:
        i = int(i)
        if vocab is not None and 0 <= i < vocab.size:
            out.append(vocab.tokens[i])
        elif tokenizer is not None:
            s = tokenizer.decode([i])
            out.append("".join(_VISIBLE.get(c, c) for c in s))
        else:
            out.append(f"<{i}>")
    return out


def _tile(ids: Sequence[int], n: int) -> list[int]:
    """``ids`` repeated or cut to length ``n`` (PEFT's rule for TEXT init)."""
    ids = list(ids)
    if not ids:
        return []
    return (ids * (-(-n // len(ids))))[:n]


def _text_ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise AnalyzerError(f"The text {text!r} tokenizes to no tokens.")
    return [int(i) for i in ids]



def _init_ids(prompt: SoftPrompt, tokenizer) -> list[int] | None:
    n = prompt.num_virtual_tokens
    if prompt.init_token_ids:
        return _tile(prompt.init_token_ids, n)
    if prompt.init_text and tokenizer is not None:
        return _tile(_text_ids(tokenizer, prompt.init_text), n)
    return None



def one_prompt_reading(reading: str, model_name: str | None, prompt_path, task=None, *, label_words=None,
                       task_index: int | None = None, progress=None):
    """What a reading of one prompt from names needs, loaded the one way ``importance``, ``describe`` and
    ``decode`` share: ``(prompt, task, model_name, frozen model, tokenizer, vocabulary)``.  The prompt (``task_index``
    for one task of a multitask adapter), the task (default: the one its run records; ``label_words`` for a
    CSV/JSONL task), the model (default: the adapter's base model), checked to be as wide as the prompt before the
    model loads; the load is framed by ``progress`` lines."""
    from .._progress import loading
    from ..loaders import load_prompts, load_vocabulary
    from ..models import load_frozen_model, model_for_prompts
    from ..task_record import resolve_task

    prompts = load_prompts(prompt_path, task=task_index)
    if len(prompts) != 1:
        raise AnalyzerError(f"{str(prompt_path)!r} holds {len(prompts)} prompts; {reading} reads one. Pass "
                            f"--task-index for one task of a multitask adapter.")
    prompt = prompts[0]
    if isinstance(task, str) and "," in task and not task.endswith((".csv", ".jsonl", ".tsv")):
        raise AnalyzerError(f"{reading} reads one task; got {task!r}. Pass --task with one of them.")
    task = resolve_task(task, prompt, label_words=label_words)   # the run's own task unless given
    if task is None:
        raise AnalyzerError(f"The prompt {prompt.name!r} records no task; pass --task (sentiment, question-type, "
                            f"spam, or a CSV/JSONL file).")
    name = model_for_prompts([prompt], model_name)
    with loading(progress, name):
        vocab = load_vocabulary(name)
        if vocab.dim != prompt.dim:
            raise ShapeMismatchError(f"Soft prompt {prompt.name!r} has dim {prompt.dim} but the vocabulary of {name} "
                                     f"has dim {vocab.dim}; pass --model with the model it was trained on.")
        frozen, tok = load_frozen_model(name)
    return prompt, task, name, frozen, tok, vocab

"""What the model says the prompt means.

* **Self-description**: the soft prompt placed before a question (``"The instruction above asks to"``) and the
  model's greedy (deterministic) continuation, beside the same question after no prompt / the projection / the
  init text.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..exceptions import AnalyzerError
from ..types import SoftPrompt
from ._common import _device, _init_ids, _prompt_matrix, _text_ids
from .projection import hard_projection

#: Questions of the self-description probe: each follows the soft prompt directly.
DEFAULT_QUESTIONS = (
    "The instruction above asks to",
    "\nIn other words, the text above means:",
)

def greedy_continuation(model, tokenizer, prefix, question: str, *, max_new_tokens: int = 24) -> dict[str, Any]:
    """The greedy continuation of ``[prefix][question tokens]``.

    prefix: ``None``, a ``"n d"`` soft prompt / ``SoftPrompt``, or a list of token ids (fed in the prompt's
    place).  Greedy decoding (no sampling), so the result is deterministic.  Returns ``text`` and
    ``token_ids`` of the continuation (stopped at EOS)."""
    import torch

    dev = _device(model)
    emb_mod = model.get_input_embeddings()
    q_ids = _text_ids(tokenizer, question)
    parts = []
    if prefix is not None:
        if isinstance(prefix, (list, tuple)) and all(isinstance(i, (int, np.integer)) for i in prefix):
            parts.append(emb_mod(torch.tensor([int(i) for i in prefix], device=dev)))
        else:
            parts.append(_prompt_matrix(prefix, model).to(dev, emb_mod.weight.dtype))
    parts.append(emb_mod(torch.tensor(q_ids, device=dev)))
    x = torch.cat(parts, 0).unsqueeze(0)
    eos = tokenizer.eos_token_id
    from transformers import GenerationConfig

    gc = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=int(max_new_tokens),
                          eos_token_id=eos, pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id
                          is not None else eos)
    with torch.no_grad():
        gen = model.generate(inputs_embeds=x, attention_mask=torch.ones(x.shape[:2], dtype=torch.long, device=dev),
                             generation_config=gc)
    out = [int(i) for i in gen[0].tolist()]
    if eos is not None and eos in out:
        out = out[:out.index(eos)]
    return {"text": tokenizer.decode(out, skip_special_tokens=True), "token_ids": out}


def self_description(model, tokenizer, prompt: SoftPrompt, *, questions: Sequence[str] = DEFAULT_QUESTIONS,
                     max_new_tokens: int = 24, index=None, baselines: bool = True) -> list[dict[str, Any]]:
    """Ask the model what the soft prompt says: the prompt, then each question, then the greedy continuation.

    baselines: the same question after no prompt, after the prompt's init tokens (when known) and after its
    hard projection (needs ``index``, a fitted ``NeighborIndex`` or ``Vocabulary``), so a continuation can be
    told apart from what the question alone elicits.  Returns one row per question:
    ``{"question", "soft": {...}, "none": {...}, "init": {...}, "projection": {...}, "differs_from_none"}``."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise AnalyzerError(f"The 'max_new_tokens' of self_description must be a positive int. "
                            f"Got {max_new_tokens!r} instead.")
    matrix = _prompt_matrix(prompt, model)
    feeds: dict[str, Any] = {"soft": matrix}
    if baselines:
        feeds["none"] = None
        if isinstance(prompt, SoftPrompt):
            ids = _init_ids(prompt, tokenizer)
            if ids is not None:
                feeds["init"] = ids
        if index is not None:
            feeds["projection"] = list(hard_projection(matrix.numpy(), index).token_ids)
    rows = []
    for q in questions:
        row: dict[str, Any] = {"question": q}
        for name, feed in feeds.items():
            row[name] = greedy_continuation(model, tokenizer, feed, q, max_new_tokens=max_new_tokens)
        if "none" in row:
            row["differs_from_none"] = row["soft"]["token_ids"] != row["none"]["token_ids"]
        rows.append(row)
    return rows


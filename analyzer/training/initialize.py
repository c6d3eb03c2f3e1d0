"""Initialisation of the prompt matrix, after Lester et al. (2021), "The Power of Scale for Parameter-Efficient
Prompt Tuning":

* ``text``   -- the embeddings of the tokens of an init text, repeated or truncated to the prompt length;
* ``labels`` -- the embeddings of the class-label words as they follow the task's template (the tokens
  ``Task.label_token_ids`` scores; a multi-token word averaged), the remaining positions from sampled vocabulary;
* ``vocab``  -- embeddings of tokens sampled (without replacement) from the most common non-special tokens;
* ``random`` -- uniform in [-0.5, 0.5].
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from numbers import Integral

from .._params import SEED, Interval, Options, check_params
from ..exceptions import TrainingError
from .config import INIT_MODES

COMMON_TOKENS = 5000          # Lester et al. sample from the 5,000 most common tokens
_BYTE_TOKEN = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


@dataclass(frozen=True)
class PromptInit:
    """vectors: float32 tensor ``"n_virtual d_model"``; token_ids: one id per row (None for random init);
    text: the init text (text init only)."""

    mode: str
    vectors: "object"
    token_ids: tuple[int, ...] | None
    text: str | None = None

    def record(self) -> dict:
        """What a run's record and checkpoint keep of the init: ``{"mode", "text", "token_ids"}``."""
        return {"mode": self.mode, "text": self.text,
                "token_ids": list(self.token_ids) if self.token_ids is not None else None}


def common_token_ids(tokenizer, vocab_rows: int, limit: int = COMMON_TOKENS) -> list[int]:
    """Ids of common, ordinary tokens: BPE/SentencePiece vocabularies are ordered roughly by frequency, so the
    first ``limit`` ids that are not special, added, byte-fallback or whitespace-only tokens."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    n = min(vocab_rows, len(tokenizer))
    out = []
    for i in range(n):
        if i in special or i in added:
            continue
        piece = tokenizer.convert_ids_to_tokens(i)
        if piece is None or _BYTE_TOKEN.match(piece):
            continue
        text = tokenizer.decode([i])
        if not text.strip() or "\ufffd" in text:
            continue
        out.append(i)
        if len(out) >= limit:
            break
    if not out:
        raise TrainingError("The tokenizer has no ordinary (non-special) tokens to sample an initialisation from.")
    return out


def _sample_vocab(tokenizer, embeddings, n: int, generator) -> list[int]:
    import torch

    pool = common_token_ids(tokenizer, embeddings.shape[0])
    if n <= len(pool):
        idx = torch.randperm(len(pool), generator=generator)[:n]
    else:
        idx = torch.randint(len(pool), (n,), generator=generator)
    return [pool[i] for i in idx.tolist()]


def init_prompt(mode: str, *, embeddings, tokenizer, num_virtual_tokens: int, seed: int, text: str | None = None,
                task=None, embed_scale: float = 1.0) -> PromptInit:
    """Build the initial prompt matrix from the frozen model's input ``embeddings`` (``"vocab d_model"``, the
    weight of its token-embedding module).

    ``embed_scale``: the factor that module applies to its rows (``analyzer.scale.input_embed_scale``; sqrt(d)
    for Gemma).  Token-based inits are taken in the space the model sees, ``embed_scale * weight[ids]`` — what
    the module outputs for those ids and what PEFT's TEXT init uses — so an untrained prompt is exactly its init
    tokens as the model sees them.  ``random`` is uniform in [-0.5, 0.5] whatever the scale."""
    import torch

    mode, n, seed = check_params("init_prompt", {"mode": mode, "num_virtual_tokens": num_virtual_tokens,
                                                 "seed": seed}, {
        "mode": [Options(*INIT_MODES)], "num_virtual_tokens": [Interval(Integral, 1, None)], "seed": [SEED]},
        error=TrainingError).values()
    g = torch.Generator().manual_seed(seed)
    emb = embeddings.detach()

    def rows(ids):   # the rows the model sees (only those rows are copied)
        return emb[list(ids)].float().cpu() * float(embed_scale)

    if mode == "random":
        vec = torch.rand(n, emb.shape[1], generator=g) - 0.5
        return PromptInit("random", vec.contiguous(), None)
    if mode == "vocab":
        ids = _sample_vocab(tokenizer, emb, n, g)
        return PromptInit("vocab", rows(ids), tuple(ids))
    if mode == "text":
        if not text or not text.strip():
            raise TrainingError("Init 'text' needs a non-empty --init-text (or a task with an instruction).")
        ids = tokenizer.encode(text, add_special_tokens=False)
        if not ids:
            raise TrainingError(f"The init text {text!r} tokenizes to no tokens.")
        ids = (ids * (-(-n // len(ids))))[:n]
        return PromptInit("text", rows(ids), tuple(int(i) for i in ids), text)
    # labels
    if task is None:
        raise TrainingError("Init 'labels' needs the task whose label words it starts from.")
    vecs, ids = [], []
    for word in task.label_words[:n]:
        wid = task.label_word_pieces(tokenizer, word)   # the tokens training scores (Task.label_token_ids)
        if not wid:
            raise TrainingError(f"The label word {word!r} tokenizes to no tokens.")
        vecs.append(rows(wid).mean(0))
        ids.append(int(wid[0]))        # a multi-token word is averaged; its first token is recorded
    rest = n - len(vecs)
    if rest:
        extra = _sample_vocab(tokenizer, emb, rest, g)
        vecs.extend(rows(extra))
        ids.extend(extra)
    return PromptInit("labels", torch.stack(vecs).contiguous(), tuple(ids))


__all__ = ["PromptInit", "init_prompt", "common_token_ids"]

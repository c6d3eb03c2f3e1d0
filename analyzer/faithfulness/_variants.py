"""Scoring many variants of one soft prompt on one fixed set of examples: the engine of the importance reading.

The forward is the shared one of :mod:`analyzer.training.scoring` (rank classification, right padding, the
label rows only), on examples encoded once.  A prompt sits in front of every example and, the model being
causal, its keys and values are the same for all of them; with ``prefix_cache`` they are computed once per
batch (one sequence of ``n`` tokens) and handed to the examples as a cache, which saves the ``n / (n + L)``
share of the work (a third for 20 virtual tokens before ~50-token examples, two thirds for 100).  Results equal
the plain path up to float rounding; the first call checks that on two examples and falls back to the plain
path (``prefix_cache_used`` False) if a model's cache does not reproduce it.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: the largest difference of label logits the cached path may show against the plain one before it is dropped
PREFIX_CACHE_TOL = 1e-3


@dataclass(frozen=True, eq=False)
class Outcome:
    """Per-example outcome of one prompt variant: ``correct`` bool ``"N"`` and ``nll`` float64 ``"N"``
    (``-log`` of the gold label's probability among the label words)."""

    correct: np.ndarray
    nll: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.correct))

    @property
    def mean_nll(self) -> float:
        return float(np.mean(self.nll))

    def subset(self, idx) -> "Outcome":
        return Outcome(self.correct[idx], self.nll[idx])


def outcome_from_logits(logits: np.ndarray, targets: np.ndarray) -> Outcome:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    t = np.asarray(targets, np.int64)
    return Outcome(np.asarray(logits).argmax(1) == t, -logp[np.arange(t.size), t])


class VariantScorer:
    """Label logits of prompt variants (``"m d"`` tensors, or None for no prompt) on ``examples`` of ``task``.

    ``calls`` and ``scored`` count the variants and the example forwards run so far."""

    def __init__(self, model, tokenizer, task, examples: Sequence, *, batch_size: int = 32, max_length: int = 128,
                 model_name: str | None = None, prefix_cache: bool = True):
        from ..training.scoring import encode_examples, length_sorted_batches, pad_id_of, prompted_classifier

        self.module = prompted_classifier(model, task.label_token_ids(tokenizer, model_name))
        self.seqs = encode_examples(tokenizer, task, list(examples), max_length=max_length)
        self.targets = np.array([ex.label for ex in examples], np.int64)
        self.pad = pad_id_of(tokenizer)
        self.batch_size = int(batch_size)
        self.batches = length_sorted_batches([len(s) for s in self.seqs], batch_size, 8192)
        self.prefix_cache = bool(prefix_cache) and self.module._body is not None
        self._checked = False
        self.calls = 0
        self.scored = 0

    @property
    def n(self) -> int:
        return len(self.seqs)

    def logits(self, prefix) -> np.ndarray:
        """float32 ``"N K"``: label logits of every example behind ``prefix``."""
        from ..training.scoring import score

        self.calls += 1
        self.scored += self.n
        if prefix is not None and prefix.shape[0] == 0:
            prefix = None
        if prefix is None or not self.prefix_cache:
            return score(self.module, self.seqs, pad_id=self.pad, batch_size=self.batch_size, prefix=prefix)
        if not self._checked:
            self._check(prefix)
            if not self.prefix_cache:
                return score(self.module, self.seqs, pad_id=self.pad, batch_size=self.batch_size, prefix=prefix)
        out = np.zeros((self.n, len(self.module.label_ids)), np.float32)
        for b in self.batches:
            out[b] = self._cached(prefix, b)
        return out

    def outcome(self, prefix) -> Outcome:
        return outcome_from_logits(self.logits(prefix), self.targets)

    def _check(self, prefix) -> None:
        from ..training.scoring import score

        self._checked = True
        b = self.batches[0][:2]
        try:
            fast = self._cached(prefix, b)
        except Exception:      # noqa: BLE001 - a model whose cache cannot take a prefix: the plain path
            self.prefix_cache = False
            return
        plain = score(self.module, [self.seqs[i] for i in b], pad_id=self.pad, prefix=prefix)
        if not np.allclose(fast, plain, atol=PREFIX_CACHE_TOL, rtol=0):
            self.prefix_cache = False

    def _cached(self, prefix, rows: Sequence[int]) -> np.ndarray:
        import torch

        from ..training.scoring import pad_batch

        m = self.module
        lm, body = m.lm, m._body
        dev = m.device
        ids, lens = pad_batch([self.seqs[i] for i in rows], self.pad)
        ids, lens = ids.to(dev), lens.to(dev)
        emb = lm.get_input_embeddings()(ids)
        p = prefix.to(dev, emb.dtype)
        n = p.shape[0]
        with torch.no_grad():
            first = body(inputs_embeds=p.unsqueeze(0), use_cache=True)
            cache = getattr(first, "past_key_values", None) or getattr(first, "cache")
            cache.batch_repeat_interleave(ids.shape[0])
            pos = torch.arange(n, n + ids.shape[1], device=dev).unsqueeze(0).expand(ids.shape[0], -1)
            hidden = body(inputs_embeds=emb, position_ids=pos, use_cache=True,
                          **{_cache_kwarg(body): cache}).last_hidden_state
            logits = m.label_logits(hidden[torch.arange(ids.shape[0], device=dev), lens - 1])
        return logits.float().cpu().numpy()


def _cache_kwarg(body) -> str:
    """The name under which the model's forward takes a cache (``cache`` since transformers 5.2x, before that
    ``past_key_values``)."""
    import inspect

    return "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"


def as_matrix(prompt: Any):
    """A float32 CPU tensor ``"n d"`` of a ``SoftPrompt``, array or tensor (unchecked; see ``_prompt_matrix``)."""
    import torch

    v = getattr(prompt, "vectors", prompt)
    if isinstance(v, torch.Tensor):
        return v.detach().to("cpu", torch.float32)
    return torch.as_tensor(np.asarray(v, np.float32))


__all__ = ["Outcome", "VariantScorer", "outcome_from_logits", "as_matrix", "PREFIX_CACHE_TOL"]

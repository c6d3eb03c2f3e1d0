"""Scoring many variants of one soft prompt on one fixed set of examples: the engine of the importance reading.

The forward is the shared one of :mod:`analyzer.training.scoring` (rank classification, right padding, the
label rows only), on examples encoded once.  Two savings, both exact up to float rounding:

* **The shared prefix is computed once.**  A prompt sits in front of every example and, the model being causal,
  its keys and values are the same for all of them -- and so are those of the template's fixed head (the token
  ids every example starts with, e.g. ``Review:``).  With ``prefix_cache`` they are computed once per variant
  (one sequence of ``n + head`` tokens) and handed to the examples as a cache.
* **Variants are stacked, not examples padded.**  :meth:`VariantScorer.logits_many` scores many variants of one
  length together: a batch holds every variant of a chunk on a few examples of (nearly) the same length, so the
  examples are cut into batches for ``V`` variants at once (the batching's per-batch overhead shared by ``V``)
  and next to nothing is padded.  On SmolLM2 with 2 threads the three replacements of a 20-token prompt on 100
  examples took 174.8 s against 204.8 s one variant per forward (``benchmarks/bench_importance.py --single``).

Results equal the plain path up to float rounding; the first stacked call checks that (the prompt and its
negation on two examples) and falls back to the plain path (``prefix_cache`` False) if a model's cache does not
reproduce it.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: the largest difference of label logits the cached path may show against the plain one before it is dropped
PREFIX_CACHE_TOL = 1e-3
#: the most tokens one stacked forward may hold: rows (variants × examples) × (cached prefix + padded length)
MAX_TOKENS = 8192


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


def shared_head(seqs: Sequence[Sequence[int]]) -> int:
    """How many leading token ids every sequence shares, leaving each at least one of its own (its last token
    is where its label is read)."""
    if not seqs:
        return 0
    first, room = seqs[0], min(len(s) for s in seqs) - 1
    h = 0
    while h < room and all(s[h] == first[h] for s in seqs):
        h += 1
    return h


class VariantScorer:
    """Label logits of prompt variants (``"m d"`` tensors, or None for no prompt) on ``examples`` of ``task``.

    ``calls`` and ``scored`` count the variants and the example forwards run so far."""

    def __init__(self, model, tokenizer, task, examples: Sequence, *, batch_size: int = 32, max_length: int = 128,
                 model_name: str | None = None, prefix_cache: bool = True):
        from ..training.scoring import BATCH_OVERHEAD_TOKENS, encode_examples, pad_id_of, prompted_classifier

        self.module = prompted_classifier(model, task.label_token_ids(tokenizer, model_name))
        self.seqs = encode_examples(tokenizer, task, list(examples), max_length=max_length)
        self.targets = np.array([ex.label for ex in examples], np.int64)
        self.pad = pad_id_of(tokenizer)
        self.batch_size = int(batch_size)
        self.head = shared_head(self.seqs)
        self.overhead = BATCH_OVERHEAD_TOKENS     # the batching's per-batch cost in tokens (one variant's view)
        self.prefix_cache = bool(prefix_cache) and self.module._body is not None
        self._checked = False
        self.calls = 0
        self.scored = 0

    @property
    def n(self) -> int:
        return len(self.seqs)

    def logits(self, prefix) -> np.ndarray:
        """float32 ``"N K"``: label logits of every example behind ``prefix``."""
        return self.logits_many([prefix])[0]

    def outcome(self, prefix) -> Outcome:
        return self.outcomes([prefix])[0]

    def outcomes(self, prefixes: Sequence) -> list[Outcome]:
        return [outcome_from_logits(z, self.targets) for z in self.logits_many(prefixes)]

    def logits_many(self, prefixes: Sequence) -> list[np.ndarray]:
        """float32 ``"N K"`` per prefix, in order: the variants of each length scored together."""
        prefixes = [None if p is None or p.shape[0] == 0 else p for p in prefixes]
        self.calls += len(prefixes)
        self.scored += self.n * len(prefixes)
        out: list[Any] = [None] * len(prefixes)
        by_length: dict[int, list[int]] = {}
        for k, p in enumerate(prefixes):
            if p is None:
                out[k] = self._plain(None)
            else:
                by_length.setdefault(int(p.shape[0]), []).append(k)
        for ks in by_length.values():
            if self.prefix_cache and not self._checked:
                self._check(prefixes[ks[0]])
            if not self.prefix_cache:
                for k in ks:
                    out[k] = self._plain(prefixes[k])
                continue
            for k, z in zip(ks, self._stacked([prefixes[k] for k in ks], range(self.n))):
                out[k] = z
        return out

    def _plain(self, prefix) -> np.ndarray:
        from ..training.scoring import score

        return score(self.module, self.seqs, pad_id=self.pad, batch_size=self.batch_size, prefix=prefix)

    def _check(self, prefix) -> None:
        from ..training.scoring import score

        self._checked = True
        rows = sorted(range(self.n), key=lambda i: -len(self.seqs[i]))[:2]     # the longest two: padding too
        pair = [prefix, -prefix]              # two variants: each must come back in its own rows
        try:
            fast = self._stacked(pair, rows)
        except Exception:      # noqa: BLE001 - a model whose cache cannot take a prefix: the plain path
            self.prefix_cache = False
            return
        seqs = [self.seqs[i] for i in rows]
        if not all(np.allclose(f, score(self.module, seqs, pad_id=self.pad, prefix=p), atol=PREFIX_CACHE_TOL, rtol=0)
                   for f, p in zip(fast, pair)):
            self.prefix_cache = False

    def _stacked(self, prefixes: Sequence, rows: Sequence[int]) -> list[np.ndarray]:
        """Label logits ``"len(rows) K"`` of each prefix (all of one length) on the examples ``rows``."""
        import copy

        import torch

        from ..training.scoring import length_sorted_batches, pad_batch

        m = self.module
        body, embed, dev = m._body, m.lm.get_input_embeddings(), m.device
        h, rows = self.head, list(rows)
        tails = [self.seqs[i][h:] for i in rows]
        lengths = [len(t) for t in tails]
        n_var, n_lab = len(prefixes), len(m.label_ids)
        out = np.zeros((n_var, len(rows), n_lab), np.float32)
        width = int(prefixes[0].shape[0]) + h          # the cached tokens every row attends to
        chunk = max(1, min(n_var, MAX_TOKENS // (width + max(lengths))))
        kwarg = _cache_kwarg(body)
        with torch.no_grad():
            head = embed(torch.as_tensor(self.seqs[rows[0]][:h], dtype=torch.long, device=dev))
            for v0 in range(0, n_var, chunk):
                p = torch.stack([q.to(dev, head.dtype) for q in prefixes[v0:v0 + chunk]])
                nv = p.shape[0]
                p = torch.cat([p, head.unsqueeze(0).expand(nv, -1, -1)], dim=1)
                first = body(inputs_embeds=p, use_cache=True)
                cache = getattr(first, "past_key_values", None) or getattr(first, "cache")
                start = p.shape[1]
                for b in length_sorted_batches([width + t for t in lengths], self.batch_size, MAX_TOKENS // nv,
                                               overhead=self.overhead / nv):
                    ids, lens = pad_batch([tails[i] for i in b], self.pad)
                    ids, lens = ids.to(dev), lens.to(dev)
                    c = copy.deepcopy(cache)
                    c.batch_repeat_interleave(len(b))          # row v·B + j: variant v on example b[j]
                    emb = embed(ids).repeat(nv, 1, 1)
                    pos = torch.arange(start, start + ids.shape[1], device=dev).expand(emb.shape[0], -1)
                    hidden = body(inputs_embeds=emb, position_ids=pos, use_cache=True, **{kwarg: c}).last_hidden_state
                    last = hidden[torch.arange(emb.shape[0], device=dev), lens.repeat(nv) - 1]
                    out[v0:v0 + nv, b] = m.label_logits(last).float().cpu().numpy().reshape(nv, len(b), n_lab)
        return list(out)


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


__all__ = ["Outcome", "VariantScorer", "outcome_from_logits", "shared_head", "as_matrix", "PREFIX_CACHE_TOL",
           "MAX_TOKENS"]

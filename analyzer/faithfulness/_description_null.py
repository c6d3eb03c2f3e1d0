"""The null of the description reading and its statistics.

**What drives the score.**  The class rate of a description depends on what the patched states carry and, 
mechanically, on how many placeholders there are and how large the patched vectors are (trained prompts often
sit at ten times the vocabulary's norms, where the model stops reading them and copies a demonstration).  So the
null is made of meaningless pseudo-prompts with the prompt's length and its norms: for each of several
constructions of :mod:`analyzer.nulls` (:data:`NULL_CONSTRUCTIONS`), ``per_construction`` pseudo-prompts whose
rows are that construction's directions rescaled to norms drawn from the prompt's **norm profile** -- the median
and the spread (standard deviation) of its log2 row norms, each rounded to :data:`NORM_STEP` (half an octave),
so that prompts of similar size share one null.  Each pseudo-prompt goes through the same grid as the prompt.

**Cached texts.**  The null's texts do not depend on the task (only their scoring does), so they are cached on
disk per model, length, norm profile, grid, description prompt and null size (``cache/description/<vocab
key>/null-<key>.json``, atomic writes); a second prompt of the same length and profile costs only its own grid.

**Rows.**  One claim, so the grid is one test and not one per cell: the grid's mean class rate, one-sided
(``greater``) against the composite null (the prompt must stand out from every construction; p is the largest
of theirs, at least ``1/(per_construction + 1)``), through :func:`analyzer.stats.adjust_description`
(Benjamini-Hochberg over the claim rows).  Described beside it, never claimed: the best cell's class rate
against the null's own best cells (choosing the best cell is part of that statistic) and the grid's mean
keyword share.  Each cell's p against the same cell of the null, with BH across the grid, is shown too.
A claim row needs p < 0.05, so ``per_construction`` must be at least 20: 4 x 20 = 80 null prompts, each
through the whole grid, which is what a 135M model on two CPU cores can afford once per norm profile (~5 min);
a second claim row would need twice that many to reach q < 0.05 alone.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import json
import math
import weakref
from typing import Any, Callable, Sequence

import numpy as np

from .. import stats
from .._params import ListOf, Options, check_param
from ._description_result import DescriptionNull, FrequentText, NullCell
from .patchscope import DescriptionPrompt, class_rate, keyword_share, patched_generate, source_states

#: constructions of :func:`analyzer.nulls.meaningless_queries` the null is made of
NULL_CONSTRUCTIONS = ("random tokens", "vocabulary-shaped noise", "isotropic directions", "token + isotropic noise")
DEFAULT_NULL_SIZE = 20          # pseudo-prompts per construction: p can reach 1/21 < 0.05
NORM_STEP = 0.5                 # log2 units: half an octave
NULL_VERSION = 1
PROMPTS_PER_BATCH = 4           # null pseudo-prompts whose grids share one batch
_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def norm_profile(vectors) -> tuple[float, float]:
    """``(median, spread)`` of a ``"n d"`` matrix's log2 row norms, each rounded to :data:`NORM_STEP`."""
    v = np.asarray(vectors, np.float64)
    logn = np.log2(np.maximum(np.linalg.norm(v, axis=1), 1e-12))
    q = lambda x: float(round(x / NORM_STEP) * NORM_STEP) + 0.0   # noqa: E731 - +0.0 turns -0.0 into 0.0
    return q(np.median(logn)), q(logn.std())


def null_prompts(vocab, n: int, profile: tuple[float, float], *, constructions: Sequence[str] = NULL_CONSTRUCTIONS,
                 per_construction: int = DEFAULT_NULL_SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(float32 "N n d", int64 "N")``: the null's pseudo-prompts, construction by construction, and each one's
    construction index.  Row ``i`` of pseudo-prompt ``j`` is a meaningless direction rescaled to the norm
    ``2 ** (median + spread * z)``, ``z`` standard normal (fixed seeds)."""
    from ..nulls import CONSTRUCTIONS, meaningless_queries

    check_param("null_prompts", "constructions", constructions, ListOf(Options(*CONSTRUCTIONS), min_len=1))
    med, spread = profile
    out, lab = [], []
    m, n = int(per_construction), int(n)
    for c, name in enumerate(constructions):
        q = meaningless_queries(vocab, name, m * n, seed=int(seed)).astype(np.float64)       # one call: "m*n d"
        z = np.random.default_rng([int(seed), 41, c]).standard_normal(m * n)
        q *= (2.0 ** (med + spread * z) / np.maximum(np.linalg.norm(q, axis=1), 1e-12))[:, None]
        out.append(q.reshape(m, n, -1).astype(np.float32))
        lab += [c] * m
    return np.concatenate(out), np.asarray(lab, np.int64)


def grid_texts(model, tokenizer, target: DescriptionPrompt, prompts: Sequence[Any], cells: Sequence[tuple[int, int]],
               *, max_new_tokens: int, progress: Callable[[int], None] | None = None,
               per_batch: int = PROMPTS_PER_BATCH) -> list[list[str]]:
    """The description texts of each prompt (``"n d"`` matrices) at every ``(source, target)`` cell of the grid:
    ``[prompt][cell]``.  The grids of ``per_batch`` prompts run as one batch."""
    out: list[list[str]] = []
    sources = sorted({s for s, _ in cells})
    for i in range(0, len(prompts), per_batch):
        chunk = prompts[i:i + per_batch]
        patches = []
        for p in chunk:
            st = source_states(model, p, sources)
            patches += [(t, st[s]) for s, t in cells]
        res = patched_generate(model, tokenizer, target, patches, max_new_tokens=max_new_tokens,
                               batch_size=len(patches))
        for j in range(len(chunk)):
            out.append([r["text"] for r in res[j * len(cells):(j + 1) * len(cells)]])
        if progress:
            progress(len(out))
    return out


def null_texts(model, tokenizer, vocab, target: DescriptionPrompt, profile: tuple[float, float],
               cells: Sequence[tuple[int, int]], *, max_new_tokens: int,
               constructions: Sequence[str] = NULL_CONSTRUCTIONS, per_construction: int = DEFAULT_NULL_SIZE,
               seed: int = 0, cache: bool = True, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The null's texts, from the disk cache when there: ``{"texts": [[cell text]...] per pseudo-prompt,
    "groups": construction index per pseudo-prompt, "constructions", "per_construction", "cached", "file"}``."""
    from ..cache import atomic_write_text, entry_dir, text_key

    params = {"version": NULL_VERSION, "model": type(model).__name__, "weights": model_fingerprint(model),
              "n": target.n, "profile": list(profile), "cells": [list(c) for c in cells],
              "prompt": list(target.ids), "start": target.start, "max_new_tokens": int(max_new_tokens),
              "constructions": list(constructions), "per_construction": int(per_construction), "seed": int(seed)}
    path = entry_dir("description", vocab.key) / f"null-{text_key(params)}.json" if cache else None
    if path is not None:
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored.get("params") == params:
                return {**stored["null"], "cached": True, "file": str(path)}
        except (OSError, ValueError, KeyError, TypeError):
            pass                                   # missing or damaged: made below
    say = progress or (lambda msg: None)
    X, groups = null_prompts(vocab, target.n, profile, constructions=constructions,
                             per_construction=per_construction, seed=seed)
    total = len(X)
    say(f"null: {total} meaningless prompts ({len(constructions)} constructions x {per_construction}, norm profile "
        f"{_profile_text(profile)}) through the {len(cells)}-cell grid; cached afterwards")
    step = max(PROMPTS_PER_BATCH, total // 8)

    def tick(done: int) -> None:
        if done % step < PROMPTS_PER_BATCH or done == total:
            say(f"null: {done}/{total} meaningless prompts described")

    texts = grid_texts(model, tokenizer, target, list(X), cells, max_new_tokens=max_new_tokens, progress=tick)
    null = {"texts": texts, "groups": groups.tolist(), "constructions": list(constructions),
            "per_construction": int(per_construction)}
    if path is not None:
        try:
            atomic_write_text(path, json.dumps({"params": params, "null": null}))
        except OSError:
            pass                                   # a read-only cache only costs time
    return {**null, "cached": False, "file": str(path) if path else None}


def model_fingerprint(model) -> str:
    """A short fingerprint of a model's weights and dtype (its parameters' sums; part of the null's cache key,
    so a fine-tuned model never reads a cache written by another with the same vocabulary)."""
    import torch

    from ..cache import text_key

    memo = _FINGERPRINTS.get(model)
    if memo is None:
        with torch.no_grad():
            acc = [(f"{float(p.sum(dtype=torch.float64)):.6g}",
                    f"{float(torch.linalg.vector_norm(p, dtype=torch.float64)):.6g}") for p in model.parameters()]
        memo = _FINGERPRINTS[model] = text_key(str(next(model.parameters()).dtype), acc)
    return memo


def _profile_text(profile) -> str:
    return f"median norm 2^{profile[0]:g}, spread {profile[1]:g} octaves"


def score_texts(texts: Sequence[Sequence[str]], classes, keywords) -> tuple[np.ndarray, np.ndarray]:
    """``(class rate, keyword share)``, float64 ``"prompts cells"`` each (keyword share NaN without keywords)."""
    rates = np.array([[class_rate(t, classes) for t in row] for row in texts], np.float64)
    kws = np.array([[_nan(keyword_share(t, keywords)) for t in row] for row in texts], np.float64)
    return rates, kws


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


def grid_tests(rates: np.ndarray, kws: np.ndarray, null_rates: np.ndarray, null_kws: np.ndarray,
               groups: np.ndarray, alpha: float = stats.ALPHA) -> tuple[list[stats.Test], list[float], list[Any]]:
    """The rows of one prompt (adjusted together), and each cell's p and BH q across the grid (shown only).

    rates, kws: float ``"cells"`` of the prompt; null_rates, null_kws: ``"N cells"``; groups: ``"N"``."""
    g = np.asarray(groups)
    rows = [stats.make_test("description class rate, grid mean", "model", "description", float(rates.mean()),
                            null_rates.mean(axis=1), direction="greater", null_groups=g),
            stats.make_test("description class rate, best cell", "model", "description", float(rates.max()),
                            null_rates.max(axis=1), direction="greater", null_groups=g, claim=False)]
    if np.isfinite(kws).all() and np.isfinite(null_kws).all():
        rows.append(stats.make_test("description keyword share, grid mean", "model", "description",
                                    float(kws.mean()), null_kws.mean(axis=1), direction="greater", null_groups=g,
                                    claim=False))
    tests = stats.adjust_description(rows, alpha)
    cell_p = [stats.make_test("cell", "model", "description", float(rates[c]), null_rates[:, c],
                              direction="greater", null_groups=g, claim=False).p for c in range(rates.size)]
    return tests, cell_p, stats.per_position_q(cell_p)


def describes(tests: Sequence[stats.Test]) -> bool:
    """The claim "the model describes this prompt as about the task": a class-rate claim row significant and
    above its null mean."""
    return any(t.claim and t.significant and "class rate" in t.measure and t.value is not None
               and t.null_mean is not None and t.value > t.null_mean for t in tests)


def null_summary(null: dict, null_rates: np.ndarray, cells: Sequence[tuple[int, int]]) -> DescriptionNull:
    """What the report shows of the null: its size, whether it came from the cache, the mean class rate per
    construction and per cell, and its most frequent texts."""
    from collections import Counter

    g = np.asarray(null["groups"])
    counts = Counter(t for row in null["texts"] for t in row)
    return DescriptionNull(
        constructions=tuple(null["constructions"]), per_construction=null["per_construction"],
        n=int(len(null["texts"])), cached=bool(null["cached"]), file=null.get("file"),
        class_rate_mean=_r(null_rates.mean()),
        class_rate_by_construction={c: _r(null_rates[g == i].mean()) for i, c in enumerate(null["constructions"])
                                    if (g == i).any()},
        class_rate_by_cell=tuple(NullCell(source_layer=s, target_layer=t, class_rate=_r(null_rates[:, k].mean()))
                                 for k, (s, t) in enumerate(cells)),
        frequent_texts=tuple(FrequentText(text=t, count=c) for t, c in counts.most_common(5)))

def _r(x, nd: int = 4):
    return None if x is None or not math.isfinite(float(x)) else round(float(x), nd)


__all__ = ["NULL_CONSTRUCTIONS", "DEFAULT_NULL_SIZE", "NORM_STEP", "norm_profile", "null_prompts", "grid_texts",
           "null_texts", "score_texts", "grid_tests", "describes", "null_summary"]

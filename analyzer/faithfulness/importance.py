"""Which positions of a soft prompt matter: each virtual token (a) removed (the prompt one shorter), (b) replaced
by its nearest vocabulary token (as the model embeds it) and (c) replaced by the vocabulary mean, on the same
examples; the change in accuracy and in the gold label's NLL among the label words (changed − original, so a
negative ``delta_accuracy`` / positive ``delta_nll`` means the position helps), each with a paired bootstrap 95%
interval over examples (:func:`analyzer.stats.paired_bootstrap_diff`).

**The claim.**  "Position i matters" is a row of :mod:`analyzer.stats`: removing it raises the NLL more than
removing a position of a matched meaningless prompt (:mod:`._removal_null`: same length and per-position norms,
vocabulary-shaped directions; the first position standardised apart, being the attention sink; one-sided,
``greater``), Benjamini-Hochberg over the positions.  A paired test over
examples alone would call positions of random prompts important: removing any vector changes the output.

**The partial-projection curve.**  Positions projected to their nearest tokens one at a time, least important
first (ranked by the nearest replacement's ``delta_nll``), accuracy against the number projected, beside a band
of random orders: where the projection gap comes from.

**Validity.**  :func:`held_out_validity` ranks positions on one half of the examples and checks on the other
that removing the k top-ranked positions hurts more than removing the k bottom-ranked ones.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral
from typing import Any, Sequence

import numpy as np

from .._params import SEED, Interval, ListOf, Options, check_params
from ..exceptions import AnalyzerError
from ..stats import ALPHA, Test, adjust_positions, paired_bootstrap_diff, stratified_test
from ..types import SoftPrompt, Vocabulary
from ._importance_result import (REPLACEMENTS, ImportanceResult, Original, PositionImportance, ProjectionCurve,
                                 RandomBand, RemovalNullSummary, ReplacementEffect)
from ._removal_null import (DEFAULT_NULL_LIMIT, DEFAULT_NULL_PROMPTS, DEFAULT_NULL_SIZE, _remove, position_stratum,
                            removal_null)
from ._variants import Outcome, VariantScorer

SPLITS = ("test", "validation")


# ---------------------------------------------------------------------------------------------- checks
def _examples(task, split: str, limit, owner: str):
    """The first ``limit`` examples of ``split`` (never train: the prompt was fitted on it)."""
    split, limit = check_params(owner, {"split": split, "limit": limit}, {
        "split": [Options(*SPLITS)], "limit": [Interval(Integral, 2, None), None]}).values()
    ex = task.split(split)
    if limit is not None:
        ex = ex[:limit]
    if len(ex) < 2:
        raise AnalyzerError(f"Task {task.name!r} has {len(ex)} {split} examples; importance needs at least 2 "
                            f"(a bootstrap over examples). Use another split or a larger task.")
    return tuple(ex)


def _vocab_of(index) -> Vocabulary | None:
    if index is None or isinstance(index, Vocabulary):
        return index
    return getattr(index, "vocab_", None)


def replacement_vectors(model, tokenizer, matrix, index) -> tuple[Any, list[int], Any]:
    """``(nearest "n d", nearest token ids, mean "d")``: each position's nearest vocabulary token (cosine,
    special rows never chosen) as the model embeds it, and the mean of the embedding module's outputs over the
    non-special vocabulary rows (Gemma scales its rows: this is the space the prompt lives in)."""
    import torch

    from ._common import _device
    from .projection import hard_projection

    vocab = _vocab_of(index)
    if vocab is None:
        raise AnalyzerError(f"importance needs the model's Vocabulary (or a fitted NeighborIndex) for the nearest "
                            f"tokens and the null; got {type(index).__name__}. Pass "
                            f"index=load_vocabulary(model_name).")
    emb = model.get_input_embeddings()
    rows = int(emb.weight.shape[0])
    if vocab.size != rows:
        raise AnalyzerError(f"The vocabulary {vocab.name!r} has {vocab.size} rows but the model's embedding has "
                            f"{rows}; load both from the same model.")
    ids = list(hard_projection(matrix.numpy(), index).token_ids)
    ok = np.flatnonzero(~np.asarray(vocab.excluded, bool))
    dev = _device(model)
    total = torch.zeros(emb.weight.shape[1], dtype=torch.float64)
    with torch.no_grad():
        near = emb(torch.tensor(ids, device=dev)).float().cpu()
        for s in range(0, ok.size, 8192):
            total += emb(torch.as_tensor(ok[s:s + 8192], device=dev)).double().sum(0).cpu()
    return near, ids, (total / max(ok.size, 1)).float()


def _delta(changed: Outcome, base: Outcome, *, n_boot: int, seed: int) -> ReplacementEffect:
    a = paired_bootstrap_diff(changed.correct.astype(float), base.correct.astype(float), n_boot=n_boot, seed=seed)
    b = paired_bootstrap_diff(changed.nll, base.nll, n_boot=n_boot, seed=seed)
    return ReplacementEffect(delta_accuracy=a["diff"], delta_nll=b["diff"], ci_accuracy=(a["ci_low"], a["ci_high"]),
                             ci_nll=(b["ci_low"], b["ci_high"]), level=0.95)


def _replace(x, i: int, row):
    y = x.clone()
    y[i] = row
    return y


# ---------------------------------------------------------------------------------------------- the reading
def importance(model, tokenizer, prompt, task, index, *, split: str = "test", limit: int | None = 100,
               replacements: Sequence[str] = REPLACEMENTS, curve: bool = True, n_orders: int = 10,
               band_points: int = 4, band: tuple[float, float] = (5.0, 95.0), null_size: int = DEFAULT_NULL_SIZE,
               null_prompts: int = DEFAULT_NULL_PROMPTS, null_limit: int = DEFAULT_NULL_LIMIT,
               null_cache: bool = True, seed: int = 0, n_boot: int = 2000, alpha: float = ALPHA,
               batch_size: int = 32, max_length: int = 128, model_name: str | None = None,
               prefix_cache: bool = True, progress=None) -> ImportanceResult:
    """The importance of every position of ``prompt`` on the first ``limit`` examples of ``split``.

    index:        the model's ``Vocabulary`` or a fitted ``NeighborIndex`` (nearest tokens, the null's directions).
    replacements: any of :data:`REPLACEMENTS` (the claim rows need ``removed``; the curve needs ``nearest``).
    curve:        the partial-projection curve: the ranked order scored at every count, ``n_orders`` random
                  orders at ``band_points`` counts between 1 and n-1 (plus the free ends); ``band``: percentiles.
    null_*:       the removal null (:func:`._removal_null.removal_null`): ``null_size`` pooled effects from
                  ``null_prompts`` pseudo-prompts on the first ``null_limit`` examples, cached on disk.
    progress:     an optional callable given one line of text as each step starts.
    Cost: ``n·len(replacements) + (n-2) + n_orders·band_points`` variants × ``limit`` examples, plus the null
    (``null_size + null_prompts`` variants × ``null_limit`` examples) the first time."""
    from ..tasks import get_task
    from ._common import _prompt_matrix

    _, n_orders, band_points, null_size, null_prompts, null_limit, seed = check_params("importance", {
        "replacements": replacements, "n_orders": n_orders, "band_points": band_points, "null_size": null_size,
        "null_prompts": null_prompts, "null_limit": null_limit, "seed": seed}, {
        "replacements": [ListOf(Options(*REPLACEMENTS), min_len=1)], "n_orders": [Interval(Integral, 0, None)],
        "band_points": [Interval(Integral, 1, None)], "null_size": [Interval(Integral, 1, None)],
        "null_prompts": [Interval(Integral, 1, None)], "null_limit": [Interval(Integral, 2, None)],
        "seed": [SEED]}).values()
    if curve and "nearest" not in replacements:
        raise AnalyzerError("The partial-projection curve ranks positions by the 'nearest' replacement; add "
                            "'nearest' to replacements or pass curve=False.")
    if not (0 <= band[0] < band[1] <= 100):
        raise AnalyzerError(f"The 'band' parameter of importance must be two percentiles 0 <= low < high <= 100. "
                            f"Got {band!r} instead.")
    task = get_task(task)
    examples = _examples(task, split, limit, "importance")
    x = _prompt_matrix(prompt, model)
    n = int(x.shape[0])
    vocab = _vocab_of(index)
    near, near_ids, mean_vec = replacement_vectors(model, tokenizer, x, index)
    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "model"
    pname = prompt.name if isinstance(prompt, SoftPrompt) else "matrix"
    say = progress or (lambda msg: None)

    def scorer_for(ex):
        return VariantScorer(model, tokenizer, task, ex, batch_size=batch_size, max_length=max_length,
                             model_name=model_name, prefix_cache=prefix_cache)

    scorer = scorer_for(examples)
    variants = {"removed": lambda i: _remove(x, [i]), "nearest": lambda i: _replace(x, i, near[i]),
                "mean": lambda i: _replace(x, i, mean_vec)}
    say(f"scoring the prompt and its {n} × {len(replacements)} variants ({', '.join(replacements)}) on "
        f"{len(examples)} {split} examples of {task.name}")
    scored = scorer.outcomes([x] + [variants[r](i) for r in replacements for i in range(n)])
    base = scored[0]
    outcomes: dict[str, list[Outcome]] = {r: scored[1 + j * n:1 + (j + 1) * n] for j, r in enumerate(replacements)}
    positions = []
    for i in range(n):
        eff = {r: _delta(outcomes[r][i], base, n_boot=n_boot, seed=seed) for r in replacements}
        if "nearest" in replacements:
            eff["nearest"] = replace(eff["nearest"], token_id=int(near_ids[i]),
                                     token=vocab.tokens[near_ids[i]] if vocab is not None else str(near_ids[i]))
        positions.append(PositionImportance(index=i, **eff))

    tests: list[Test] = []
    null_info: RemovalNullSummary | None = None
    if "removed" in replacements:
        null_ex = examples[:min(null_limit, len(examples))]
        say(f"null: {null_size} removals from matched meaningless prompts on {len(null_ex)} examples"
            f" (cached after the first run)")
        null = removal_null(scorer_for, vocab, np.linalg.norm(x.numpy(), axis=1), task=task, examples=null_ex,
                            model_name=str(name), size=null_size, prompts=null_prompts, seed=seed,
                            max_length=max_length, cache=null_cache, progress=progress)
        null_info = null.summary(n, alpha)
        tests = removal_tests([row.removed.delta_nll for row in positions], null, alpha)
        positions = [replace(row, p=t.p, q=t.q, significant=bool(t.significant), verdict=t.verdict)
                     for row, t in zip(positions, tests)]

    curve_d = None
    if curve:
        curve_d = _projection_curve(scorer, x, near, base, outcomes["nearest"], n_orders=n_orders,
                                    band_points=band_points, band=band, seed=seed, say=say)
    settings = {"limit": limit, "replacements": list(replacements), "n_boot": int(n_boot), "seed": int(seed),
                "alpha": float(alpha), "null_size": null_size, "null_prompts": null_prompts,
                "null_limit": null_limit, "n_orders": n_orders if curve else 0, "band_points": band_points,
                "band": list(band), "batch_size": int(batch_size), "max_length": int(max_length),
                "prefix_cache": bool(scorer.prefix_cache), "variants_scored": scorer.calls,
                "example_forwards": scorer.scored, "num_virtual_tokens": n}
    return ImportanceResult(model=str(name), prompt=pname, task=task.name, split=split, n=len(examples),
                            original=Original(base.accuracy, base.mean_nll), positions=tuple(positions),
                            projection_curve=curve_d, tests=tuple(tests), null=null_info, settings=settings)


def removal_tests(delta_nll: Sequence[float], null, alpha: float = ALPHA) -> list[Test]:
    """One claim row per position: its removal ``delta_nll`` against the removal null (each stratum standardised,
    :func:`analyzer.stats.stratified_test`), one-sided ``greater``, Benjamini-Hochberg over the positions."""
    own = position_stratum(np.arange(len(delta_nll)))
    return adjust_positions([stratified_test(f"position {i}", "model", "removal", float(v), null.delta_nll,
                                             null.strata, int(own[i]), direction="greater")
                             for i, v in enumerate(delta_nll)], alpha)


def _projection_curve(scorer, x, near, base: Outcome, singles: list[Outcome], *, n_orders: int, band_points: int,
                      band, seed: int, say) -> ProjectionCurve:
    """Accuracy with the first k positions of an order projected, k = 0..n (see :func:`importance`)."""
    n = int(x.shape[0])
    d_nll = np.array([float(np.mean(o.nll - base.nll)) for o in singles])
    order = [int(i) for i in np.argsort(d_nll, kind="stable")]          # least important first
    memo: dict[frozenset, Outcome] = {frozenset(): base}
    memo.update({frozenset([i]): singles[i] for i in range(n)})

    def score_all(sets) -> list[Outcome]:
        """The outcome of each set of projected positions (the new ones scored together)."""
        keys = [frozenset(s) for s in sets]
        todo = list(dict.fromkeys(k for k in keys if k not in memo))
        ys = []
        for key in todo:
            y, idx = x.clone(), sorted(key)
            y[idx] = near[idx]
            ys.append(y)
        memo.update(zip(todo, scorer.outcomes(ys)))
        return [memo[k] for k in keys]

    say(f"projection curve: positions projected least important first, {max(n - 2, 0)} variants")
    ranked = score_all([order[:k] for k in range(n + 1)])
    counts = sorted({0, 1, n, *[int(round(c)) for c in np.linspace(0, n, band_points + 2)]})
    rng = np.random.default_rng([int(seed), 41])
    if n_orders:
        say(f"projection curve: {n_orders} random orders at {len(counts)} counts")
    perms = [[int(i) for i in rng.permutation(n)] for _ in range(n_orders)]
    flat = score_all([perm[:c] for perm in perms for c in counts])
    rand = [[o.accuracy for o in flat[j * len(counts):(j + 1) * len(counts)]] for j in range(n_orders)]
    rand = np.array(rand) if rand else np.zeros((0, len(counts)))
    pct = (lambda q: [float(v) for v in np.percentile(rand, q, axis=0)]) if rand.size else (lambda q: [])
    acc = [o.accuracy for o in ranked]
    return ProjectionCurve(order=tuple(order), counts=tuple(range(n + 1)), accuracy=tuple(acc),
                           nll=tuple(o.mean_nll for o in ranked), gap=acc[0] - acc[-1],
                           random_band=RandomBand(counts=tuple(counts), low=tuple(pct(band[0])),
                                                  median=tuple(pct(50)), high=tuple(pct(band[1])),
                                                  n_orders=int(n_orders), percentiles=tuple(band)))


# ---------------------------------------------------------------------------------------------- validity
def removal_effects(scorer: VariantScorer, x, base: Outcome | None = None) -> np.ndarray:
    """float64 ``"n"``: each position's removal ``delta_nll`` (mean over the scorer's examples)."""
    removed = scorer.outcomes([_remove(x, [i]) for i in range(x.shape[0])])
    base = scorer.outcome(x) if base is None else base
    return np.array([float(np.mean(o.nll - base.nll)) for o in removed])


def held_out_validity(model, tokenizer, prompt, task, *, ks: Sequence[int] = (1, 3, 5), split: str = "test",
                      limit: int | None = 100, seed: int = 0, n_boot: int = 2000, batch_size: int = 32,
                      max_length: int = 128, model_name: str | None = None, prefix_cache: bool = True,
                      progress=None) -> dict[str, Any]:
    """Does a ranking predict on examples it was not computed from?  The examples (first ``limit`` of
    ``split``) are split at random in two halves: positions are ranked on the first by their removal
    ``delta_nll``; on the second, the k top-ranked positions are removed together, and the k bottom-ranked ones.
    Per k: both deltas against the unchanged prompt, and ``top − bottom`` (NLL and accuracy) with a paired
    bootstrap 95% interval; ``holds`` when the NLL interval lies above 0 (top hurts more)."""
    from ..tasks import get_task
    from ._common import _prompt_matrix

    ks, seed = check_params("held_out_validity", {"ks": ks, "seed": seed},
                            {"ks": [ListOf(Interval(Integral, 1, None))], "seed": [SEED]}).values()
    task = get_task(task)
    examples = _examples(task, split, limit, "held_out_validity")
    if len(examples) < 4:
        raise AnalyzerError(f"held_out_validity needs at least 4 examples (two halves); got {len(examples)}.")
    x = _prompt_matrix(prompt, model)
    n = int(x.shape[0])
    say = progress or (lambda msg: None)
    perm = np.random.default_rng([int(seed), 43]).permutation(len(examples))
    half = len(examples) // 2
    a_ex, b_ex = [examples[i] for i in sorted(perm[:half])], [examples[i] for i in sorted(perm[half:])]

    def scorer_for(ex):
        return VariantScorer(model, tokenizer, task, ex, batch_size=batch_size, max_length=max_length,
                             model_name=model_name, prefix_cache=prefix_cache)

    sa, sb = scorer_for(a_ex), scorer_for(b_ex)
    say(f"ranking {n} positions on {len(a_ex)} examples (removal)")
    eff = removal_effects(sa, x)
    ranking = [int(i) for i in np.argsort(-eff, kind="stable")]
    say(f"checking k = {ks} on the other {len(b_ex)} examples")
    base_b = sb.outcome(x)
    picks = {k: (ranking[:k], ranking[::-1][:k]) for k in ks if k < n}
    flat = sb.outcomes([_remove(x, pick) for pair in picks.values() for pick in pair])
    scored = {k: flat[2 * j:2 * j + 2] for j, k in enumerate(picks)}
    rows = []
    for k in ks:
        if k >= n:
            rows.append({"k": k, "skipped": f"k={k} leaves no position of a {n}-token prompt"})
            continue
        (top, bottom), (ot, ob) = picks[k], scored[k]
        dn = paired_bootstrap_diff(ot.nll, ob.nll, n_boot=n_boot, seed=seed)
        da = paired_bootstrap_diff(ot.correct.astype(float), ob.correct.astype(float), n_boot=n_boot, seed=seed)
        rows.append({"k": k, "top": sorted(top), "bottom": sorted(bottom), "overlap": len(set(top) & set(bottom)),
                     "top_delta_accuracy": ot.accuracy - base_b.accuracy,
                     "top_delta_nll": ot.mean_nll - base_b.mean_nll,
                     "bottom_delta_accuracy": ob.accuracy - base_b.accuracy,
                     "bottom_delta_nll": ob.mean_nll - base_b.mean_nll, "top_minus_bottom_nll": dn,
                     "top_minus_bottom_accuracy": da, "holds": bool(dn["ci_low"] > 0)})
    return {"prompt": prompt.name if isinstance(prompt, SoftPrompt) else "matrix", "task": task.name,
            "split": split, "n_rank": len(a_ex), "n_check": len(b_ex), "num_virtual_tokens": n,
            "ranking": ranking, "rank_half_delta_nll": [float(v) for v in eff],
            "original_check": {"accuracy": base_b.accuracy, "nll": base_b.mean_nll}, "ks": rows, "seed": int(seed)}


# ---------------------------------------------------------------------------------------------- from names
def importance_for_model(model_name: str | None, prompt_path, task=None, *, label_words=None, task_index=None,
                         progress=None, **settings) -> ImportanceResult:
    """:func:`importance` from names, as the ``importance`` command runs it: loads the prompt (``task_index``
    for one task of a multitask adapter), the frozen model (default: the adapter's base model) and its
    vocabulary, and the task (default: the one the adapter's training_meta.json records)."""
    from ..provenance import vocab_provenance
    from ._common import one_prompt_reading

    prompt, task, model_name, frozen, tok, vocab = one_prompt_reading(
        "importance", model_name, prompt_path, task, label_words=label_words, task_index=task_index,
        progress=progress)
    res = importance(frozen, tok, prompt, task, vocab, model_name=model_name, progress=progress, **settings)
    return replace(res, provenance=vocab_provenance(vocab, [prompt], what="model"))


__all__ = ["REPLACEMENTS", "ImportanceResult", "PositionImportance", "ReplacementEffect", "importance",
           "held_out_validity", "importance_for_model", "replacement_vectors", "removal_effects", "removal_tests"]

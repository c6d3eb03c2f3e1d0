"""Calibration of the importance reading: how often "position i matters" is claimed for prompts that mean nothing,
and how often planted positions are found.  A function ``bench_calibration.py`` (or a notebook) can call; not a
test (it runs the real model for minutes).

Every prompt here has the reference prompt's length and its norm at every position, so all of them are read
against the same removal null (computed once, then read from the cache):

* ``vocabulary-shaped noise`` -- Gaussian with the vocabulary's mean and covariance, rescaled to the reference
  norms (the null's own construction, other seeds: the rate the null promises);
* ``random tokens`` -- random non-special vocabulary tokens as the model embeds them, rescaled to the reference
  norms (a construction the null does not use);
* ``coordinate-permuted reference`` -- each of the reference's vectors with its coordinates shuffled (its exact
  norms and coordinate values, no meaning).

Planted signal: the ``k`` positions of the reference whose removal hurts most (ranked on other examples of the
split than the claims are made on) kept in place, every other position vocabulary-shaped noise at the
reference norm: the planted positions should be found, the others not.

Rates: ``any_claim`` is the share of prompts with at least one position claimed (BH q < 0.05 over the prompt's
positions), ``position_rate`` the share of all positions claimed, each with a Wilson 95% interval."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

FAMILIES = ("vocabulary-shaped noise", "random tokens", "coordinate-permuted reference")


def _wilson(k: int, n: int) -> list[float]:
    from analyzer.stats import wilson_interval

    return [float(v) for v in wilson_interval(k, n)]


def _share(k: int, n: int) -> dict[str, Any]:
    return {"k": int(k), "n": int(n), "share": k / n if n else None, "ci95": _wilson(k, n)}


def _rescaled(x: np.ndarray, norms: np.ndarray) -> np.ndarray:
    return (x * (norms / np.maximum(np.linalg.norm(x, axis=1), 1e-12))[:, None]).astype(np.float32)


def meaningless_prompt(family: str, reference: np.ndarray, model, vocab, seed: int):
    """One meaningless prompt of ``family`` (see :data:`FAMILIES`) at the reference's length and norms."""
    import torch

    from analyzer.nulls import vocab_shaped_noise
    from analyzer.types import SoftPrompt

    ref = np.asarray(reference, np.float32)
    norms = np.linalg.norm(ref, axis=1)
    rng = np.random.default_rng([seed, 97, FAMILIES.index(family)])
    if family == "vocabulary-shaped noise":
        x = _rescaled(vocab_shaped_noise(vocab, ref.shape[0], seed=10_000 + seed), norms)
    elif family == "random tokens":
        ids = rng.choice(np.flatnonzero(~np.asarray(vocab.excluded, bool)), size=ref.shape[0], replace=False)
        with torch.no_grad():
            x = _rescaled(model.get_input_embeddings()(torch.as_tensor(ids)).float().numpy(), norms)
    elif family == "coordinate-permuted reference":
        x = np.take_along_axis(ref, np.argsort(rng.random(ref.shape), axis=1), axis=1)
    else:
        raise ValueError(f"Unknown family {family!r}; expected one of {list(FAMILIES)}.")
    return SoftPrompt(name=f"{family} #{seed}", vectors=x, source="memory", kind="TENSOR")


def planted_prompt(reference: np.ndarray, positions: Sequence[int], vocab, seed: int):
    """The reference's rows at ``positions``, vocabulary-shaped noise at the reference norms elsewhere."""
    from analyzer.types import SoftPrompt

    base = meaningless_prompt("vocabulary-shaped noise", reference, None, vocab, seed).vectors.copy()
    base[list(positions)] = np.asarray(reference, np.float32)[list(positions)]
    return SoftPrompt(name=f"planted {sorted(positions)} #{seed}", vectors=base, source="memory", kind="TENSOR")


def rank_positions(model, tokenizer, prompt, task, *, split: str = "test", start: int = 0, count: int = 50,
                   model_name: str | None = None) -> list[float]:
    """Each position's removal ``delta_nll`` on examples ``start .. start+count-1`` of ``split``."""
    from analyzer.faithfulness._variants import VariantScorer, as_matrix
    from analyzer.faithfulness.importance import removal_effects
    from analyzer.tasks import get_task

    task = get_task(task)
    scorer = VariantScorer(model, tokenizer, task, task.split(split)[start:start + count], model_name=model_name)
    return [float(v) for v in removal_effects(scorer, as_matrix(prompt))]


def importance_calibration(model, tokenizer, vocab, reference, task, *, per_family: int = 2,
                           families: Sequence[str] = FAMILIES, planted_k: int = 3, planted_count: int = 2,
                           ranking: Sequence[int] | None = None, limit: int = 50, split: str = "test", seed: int = 1,
                           model_name: str | None = None, progress: Callable[[str], None] | None = None,
                           **settings) -> dict[str, Any]:
    """Claim rates of the importance reading on meaningless prompts and detection of planted positions.

    reference: the trained ``SoftPrompt`` whose length and norms every prompt here takes (and whose positions
    are planted); ``ranking``: its positions, most important first (default: ranked here by removal
    ``delta_nll`` on the next ``limit`` examples of the split, disjoint from the ones the claims are made on).
    ``settings`` go to :func:`analyzer.faithfulness.importance` (the null's size...).  Only the removal is
    scored (the claim), no curve."""
    from analyzer.faithfulness import importance

    say = progress or (lambda msg: None)
    ref = np.asarray(reference.vectors, np.float32)
    t0 = time.perf_counter()

    def run(p):
        say(f"{p.name}: {ref.shape[0]} removals × {limit} examples")
        r = importance(model, tokenizer, p, task, vocab, limit=limit, split=split, replacements=("removed",),
                       curve=False, model_name=model_name, **settings)
        return {"name": p.name, "claimed": [p_["index"] for p_ in r.positions if p_["significant"]],
                "p": [p_["p"] for p_ in r.positions], "q": [p_["q"] for p_ in r.positions],
                "delta_nll": [p_["removed"]["delta_nll"] for p_ in r.positions],
                "original": r.original, "null": r.null}

    out: dict[str, Any] = {"reference": reference.name, "task": getattr(task, "name", task), "limit": limit,
                           "n_positions": int(ref.shape[0]), "seed": seed, "families": {}, "planted": {}}
    for fam in families:
        recs = [run(meaningless_prompt(fam, ref, model, vocab, seed + i)) for i in range(per_family)]
        n_pos = sum(len(r["p"]) for r in recs)
        out["families"][fam] = {"prompts": recs,
                                "any_claim": _share(sum(bool(r["claimed"]) for r in recs), len(recs)),
                                "position_rate": _share(sum(len(r["claimed"]) for r in recs), n_pos)}
    if planted_count:
        if ranking is None:
            say(f"ranking the reference's positions on {split} examples {limit}..{2 * limit - 1}")
            eff = rank_positions(model, tokenizer, reference, task, split=split, start=limit, count=limit,
                                 model_name=model_name)
            out["reference_ranking_delta_nll"] = eff
            ranking = [int(i) for i in np.argsort(-np.asarray(eff), kind="stable")]
        pos = sorted(int(i) for i in list(ranking)[:planted_k])
        recs = [run(planted_prompt(ref, pos, vocab, seed + 100 + i)) for i in range(planted_count)]
        found = sum(len(set(r["claimed"]) & set(pos)) for r in recs)
        false = sum(len(set(r["claimed"]) - set(pos)) for r in recs)
        out["planted"] = {"positions": pos, "prompts": recs,
                          "detected": _share(found, planted_count * len(pos)),
                          "false_positions": _share(false, planted_count * (ref.shape[0] - len(pos)))}
    out["seconds"] = time.perf_counter() - t0
    return out


__all__ = ["FAMILIES", "meaningless_prompt", "planted_prompt", "rank_positions", "importance_calibration"]

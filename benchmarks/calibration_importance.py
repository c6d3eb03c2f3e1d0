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

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

FAMILIES = ("vocabulary-shaped noise", "random tokens", "coordinate-permuted reference")


def _wilson(k: int, n: int) -> list[float]:
    from analyzer.stats import wilson_interval

    return [float(v) for v in wilson_interval(k, n)]


def _share(k: int, n: int) -> dict[str, Any]:
    return {"k": int(k), "n": int(n), "share": k / n if n else None, "ci95": _wilson(k, n)}


def null_prompts_for(size: int) -> int:
    """Pseudo-prompts of a removal null of ``size`` removals: 10 removals each, as the shipped 200 from 20."""
    return max(1, int(size) // 10)


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


def trained_plant(model, tokenizer, reference: np.ndarray, positions: Sequence[int], vocab, task, seed: int, *,
                  steps: int = 120, batch_size: int = 16, lr_scale: float = 0.002, model_name: str | None = None,
                  progress: Callable[[str], None] | None = None):
    """A planted prompt whose signal is trained **in place**: vocabulary-shaped noise at the reference norms (the
    carrier, exactly a draw of the meaningless family), of which only the rows at ``positions`` are trained on the
    task's *train* split, with the rest of the carrier frozen around them.  After every Adam step the trained rows
    are put back to the reference's norm at their position, so the prompt keeps the norm profile the removal null
    is matched to: only the directions carry the plant.  Returns ``(SoftPrompt, record)``, ``record`` holding the
    validation accuracy of the carrier alone and of the trained plant (50 examples)."""
    import torch

    from analyzer.tasks import get_task
    from analyzer.training.scoring import encode_examples, evaluate, pad_batch, pad_id_of, prompted_classifier
    from analyzer.types import SoftPrompt

    task = get_task(task)
    say = progress or (lambda msg: None)
    pos = sorted(int(i) for i in positions)
    carrier = meaningless_prompt("vocabulary-shaped noise", reference, None, vocab, seed).vectors.copy()
    norms = torch.as_tensor(np.linalg.norm(np.asarray(reference, np.float32), axis=1))
    mask = torch.zeros(carrier.shape[0], 1)
    mask[pos] = 1.0
    module = prompted_classifier(model, task.label_token_ids(tokenizer, model_name), torch.as_tensor(carrier))
    opt = torch.optim.Adam([module.prompt], lr=lr_scale * float(norms[pos].mean()))
    train = task.split("train")
    seqs = encode_examples(tokenizer, task, train)
    targets = torch.as_tensor([ex.label for ex in train])
    rng = np.random.default_rng([seed, 4242])
    pad = pad_id_of(tokenizer)
    val = task.split("validation")[:50]
    before = evaluate(model, tokenizer, task, carrier, split=val, model_name=model_name).accuracy
    for step in range(int(steps)):
        b = rng.choice(len(seqs), size=min(batch_size, len(seqs)), replace=False)
        ids, lens = pad_batch([seqs[i] for i in b], pad)
        loss = torch.nn.functional.cross_entropy(module(ids, lens), targets[b])
        opt.zero_grad()
        loss.backward()
        module.prompt.grad *= mask
        opt.step()
        with torch.no_grad():
            w = module.prompt
            w[pos] = w[pos] * (norms[pos] / w[pos].norm(dim=1)).unsqueeze(1)
        if step % 20 == 0:
            say(f"  plant #{seed} step {step}: loss {loss.item():.3f}")
    x = module.prompt.detach().numpy().astype(np.float32)
    after = evaluate(model, tokenizer, task, x, split=val, model_name=model_name).accuracy
    rec = {"seed": seed, "steps": int(steps), "validation_accuracy_carrier": before,
           "validation_accuracy_planted": after,
           "untouched_rows_equal": bool(np.array_equal(np.delete(x, pos, 0), np.delete(carrier, pos, 0)))}
    return SoftPrompt(name=f"trained plant {pos} #{seed}", vectors=x, source="memory", kind="TENSOR"), rec


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
                           planted: str = "kept", plant_steps: int = 100, **settings) -> dict[str, Any]:
    """Claim rates of the importance reading on meaningless prompts and detection of planted positions.

    reference: the trained ``SoftPrompt`` whose length and norms every prompt here takes (and whose positions
    are planted); ``ranking``: its positions, most important first (default: ranked here by removal
    ``delta_nll`` on the next ``limit`` examples of the split, disjoint from the ones the claims are made on).
    ``settings`` go to :func:`analyzer.faithfulness.importance` (the null's size...).  Only the removal is
    scored (the claim), no curve.  ``planted="trained"``: the plants are :func:`trained_plant` (``planted_k``
    random positions of 1..n-1 per plant, ``plant_steps`` Adam steps) instead of the reference's rows kept."""
    from analyzer.faithfulness import importance

    say = progress or (lambda msg: None)
    ref = np.asarray(reference.vectors, np.float32)
    t0 = time.perf_counter()

    def run(p):
        say(f"{p.name}: {ref.shape[0]} removals × {limit} examples")
        r = importance(model, tokenizer, p, task, vocab, limit=limit, split=split, replacements=("removed",),
                       curve=False, model_name=model_name, **settings)
        return {"name": p.name, "claimed": [p_.index for p_ in r.positions if p_.significant],
                "p": [p_.p for p_ in r.positions], "q": [p_.q for p_ in r.positions],
                "delta_nll": [p_.removed.delta_nll for p_ in r.positions],
                "original": r.original.to_dict() if r.original else {},
                "null": r.null.to_dict() if r.null else {}}

    out: dict[str, Any] = {"reference": reference.name, "task": getattr(task, "name", task), "limit": limit,
                           "n_positions": int(ref.shape[0]), "seed": seed, "families": {}, "planted": {}}
    for fam in families:
        recs = [run(meaningless_prompt(fam, ref, model, vocab, seed + i)) for i in range(per_family)]
        n_pos = sum(len(r["p"]) for r in recs)
        out["families"][fam] = {"prompts": recs,
                                "any_claim": _share(sum(bool(r["claimed"]) for r in recs), len(recs)),
                                "position_rate": _share(sum(len(r["claimed"]) for r in recs), n_pos)}
    if planted_count and planted == "trained":
        recs, found, false, n_planted = [], 0, 0, 0
        for i in range(planted_count):
            rng = np.random.default_rng([seed, 100 + i, 7])
            pos = sorted(int(j) for j in rng.choice(np.arange(1, ref.shape[0]), size=planted_k, replace=False))
            say(f"training plant {i + 1}/{planted_count} at positions {pos}")
            prompt, rec = trained_plant(model, tokenizer, ref, pos, vocab, task, seed + 100 + i, steps=plant_steps,
                                        model_name=model_name, progress=say)
            r = run(prompt)
            r.update(rec, positions=pos)
            recs.append(r)
            found += len(set(r["claimed"]) & set(pos))
            false += len(set(r["claimed"]) - set(pos))
            n_planted += len(pos)
        out["planted"] = {"mode": "trained", "steps": plant_steps, "prompts": recs,
                          "detected": _share(found, n_planted),
                          "false_positions": _share(false, planted_count * ref.shape[0] - n_planted)}
    elif planted_count:
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


def run_importance_calibration(*, reference: str = "sentiment-labels", task: str = "sentiment", per_family: int = 5,
                               planted_k: int = 3, planted_count: int = 4, limit: int = 50, seed: int = 1,
                               threads: int = 2, out: str | Path | None = None, families: Sequence[str] = FAMILIES,
                               progress: Callable[[str], None] | None = None, planted: str = "kept",
                               plant_steps: int = 100, null_size: int | None = None) -> dict[str, Any]:
    """:func:`importance_calibration` on SmolLM2 with a shipped sample prompt as the reference; writes ``out``."""
    import torch

    from analyzer import load_prompt, load_vocabulary
    from analyzer.models import load_frozen_model

    torch.set_num_threads(int(threads))
    root = Path(__file__).resolve().parents[1]
    model, tok = load_frozen_model("smollm2-135m")
    vocab = load_vocabulary("smollm2-135m")
    if reference == "instruction":      # the task's instruction, its tokens as the model embeds them (vocabulary norms)
        from analyzer.tasks import get_task
        from analyzer.types import SoftPrompt

        ids = tok.encode(get_task(task).instruction, add_special_tokens=False)
        with torch.no_grad():
            rows = model.get_input_embeddings()(torch.as_tensor(ids)).float().numpy()
        ref = SoftPrompt(name=f"{task} instruction", vectors=rows, source="memory", kind="TENSOR")
    else:
        ref = load_prompt(root / "sample_prompts" / reference if (root / "sample_prompts" / reference).exists()
                          else reference)
    res = importance_calibration(model, tok, vocab, ref, task, per_family=per_family, planted_k=planted_k,
                                 planted_count=planted_count, limit=limit, seed=seed, model_name="smollm2-135m",
                                 families=families, progress=progress, planted=planted, plant_steps=plant_steps,
                                 **({"null_size": int(null_size), "null_prompts": null_prompts_for(null_size)}
                                    if null_size else {}))
    res["settings"] = {"model": "smollm2-135m", "reference": reference, "task": task, "per_family": per_family,
                       "families": list(families),
                       "planted_k": planted_k, "planted_count": planted_count, "planted": planted,
                       "plant_steps": plant_steps, "null_size": null_size, "limit": limit, "seed": seed,
                       "alpha": 0.05, "claim": "position i matters: removal delta_nll above its null, BH q < 0.05 "
                                                "over the prompt's positions"}
    if out:
        Path(out).write_text(json.dumps(res, indent=1, default=float))
    return res


def reread(cal: dict[str, Any], null, alpha: float = 0.05) -> dict[str, Any]:
    """The claims of a stored calibration (``cal``: what :func:`importance_calibration` returned; every prompt's
    removal ``delta_nll`` per position is in it) against another removal ``null`` of the same reference norms
    (:func:`analyzer.faithfulness.importance.removal_tests`): no model runs."""
    from analyzer.faithfulness.importance import removal_tests

    def claimed(rec):
        return [i for i, t in enumerate(removal_tests(rec["delta_nll"], null, alpha)) if t.significant]

    out: dict[str, Any] = {"families": {}, "planted": {}}
    for fam, f in cal.get("families", {}).items():
        c = [claimed(r) for r in f["prompts"]]
        out["families"][fam] = {"any_claim": _share(sum(bool(x) for x in c), len(c)),
                                "position_rate": _share(sum(len(x) for x in c), sum(len(r["p"]) for r in f["prompts"]))}
    p = cal.get("planted") or {}
    if p:
        found = false = n_pl = n_all = 0
        for r in p["prompts"]:
            pos = set(r.get("positions", p.get("positions", [])))
            c = set(claimed(r))
            found, false = found + len(c & pos), false + len(c - pos)
            n_pl, n_all = n_pl + len(pos), n_all + len(r["p"])
        out["planted"] = {"detected": _share(found, n_pl), "false_positions": _share(false, n_all - n_pl)}
    return out


def cached_null(model, tokenizer, vocab, reference, task, *, size: int, prompts: int | None = None, limit: int = 32,
                split: str = "test", model_name: str | None = None, progress: Callable[[str], None] | None = None):
    """The removal null at the reference's norms, ``size`` removals from ``prompts`` (default
    :func:`null_prompts_for`) pseudo-prompts on the first
    ``limit`` examples of ``split`` -- what :func:`analyzer.faithfulness.importance` computes and caches for a
    prompt of those norms with ``null_size=size`` (read from the cache when it is there)."""
    from analyzer.faithfulness._removal_null import removal_null
    from analyzer.faithfulness._variants import VariantScorer
    from analyzer.tasks import get_task

    task = get_task(task)
    ex = task.split(split)[:limit]
    norms = np.linalg.norm(np.asarray(reference.vectors, np.float32), axis=1)
    return removal_null(lambda e: VariantScorer(model, tokenizer, task, e, model_name=model_name), vocab, norms,
                        task=task, examples=ex, model_name=str(model_name), size=size,
                        prompts=prompts or null_prompts_for(size),
                        progress=progress)


def print_tables(res: dict[str, Any]) -> None:
    def row(label, s):
        return f"| {label} | {s['n']} | {s['k']} | {s['share']:.3f} | [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}] |"

    st = res.get("settings", {})
    print(f"\nImportance reading (SmolLM2, reference {st.get('reference')}, {st.get('limit')} {st.get('task')} test "
          f"examples; a claim = removal delta_nll above its null, BH q < 0.05 over positions; 95% Wilson intervals)\n")
    print("| meaningless family | n | with a claim | share | 95% CI |\n|:---|---:|---:|---:|---:|")
    for fam, f in res["families"].items():
        print(row(f"{fam}: prompts", f["any_claim"]))
        print(row(f"{fam}: positions", f["position_rate"]))
    p = res.get("planted") or {}
    if p:
        if p.get("mode") == "trained":
            print(f"\nPlanted: {len(p['prompts'])} prompts of vocabulary-shaped noise at the reference norms, "
                  f"{len(p['prompts'][0]['positions'])} random positions of each trained in place ({p['steps']} steps, "
                  f"norms kept)\n")
            for r in p["prompts"]:
                print(f"  {r['positions']}: validation accuracy {r['validation_accuracy_carrier']:.2f} -> "
                      f"{r['validation_accuracy_planted']:.2f}; claimed {r['claimed']}")
        else:
            print(f"\nPlanted: the reference's {len(p['positions'])} most important positions {p['positions']} "
                  f"(ranked on other examples) in vocabulary-shaped noise\n")
        print("| planted | n | claimed | share | 95% CI |\n|:---|---:|---:|---:|---:|")
        print(row("planted positions found", p["detected"]))
        print(row("other positions claimed", p["false_positions"]))
    print(f"\nWall time: {res.get('seconds', 0) / 60:.1f} min")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", default="sentiment-labels",
                    help="a sample prompt's name, a prompt path, or 'instruction' (the task's instruction embedded)")
    ap.add_argument("--task", default="sentiment")
    ap.add_argument("--per-family", type=int, default=5, help="meaningless prompts per family (default 5)")
    ap.add_argument("--planted-count", type=int, default=4, help="planted prompts (default 4)")
    ap.add_argument("--planted-k", type=int, default=3, help="positions planted per prompt (default 3)")
    ap.add_argument("--limit", type=int, default=50, help="test examples per claim (default 50)")
    ap.add_argument("--planted", choices=("kept", "trained"), default="kept",
                    help="kept: the reference's most important rows kept in noise; trained: noise with planted-k "
                         "positions trained in place (norms kept)")
    ap.add_argument("--plant-steps", type=int, default=100, help="training steps of a trained plant (default 100)")
    ap.add_argument("--null-size", type=int, default=None,
                    help="removals in the null (default: importance's own, 200 from 20 pseudo-prompts; its "
                         "resolution is "
                         "1/(size+1)); a larger one keeps 10 removals per pseudo-prompt")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--families", default=";".join(FAMILIES),
                    help="meaningless families, separated by ';' ('' for the planted part alone)")
    ap.add_argument("--out", default="/tmp/importance_calibration.json")
    a = ap.parse_args(argv)
    res = run_importance_calibration(reference=a.reference, task=a.task, per_family=a.per_family,
                                     planted_k=a.planted_k, planted_count=a.planted_count, limit=a.limit,
                                     seed=a.seed, threads=a.threads, out=a.out, planted=a.planted,
                                     plant_steps=a.plant_steps, null_size=a.null_size,
                                     families=[f.strip() for f in a.families.split(";") if f.strip()],
                                     progress=lambda m: print(m, file=sys.stderr, flush=True))
    print_tables(res)
    return 0


__all__ = ["FAMILIES", "meaningless_prompt", "planted_prompt", "trained_plant", "reread", "cached_null",
           "null_prompts_for", "rank_positions", "importance_calibration", "run_importance_calibration",
           "print_tables"]


if __name__ == "__main__":
    sys.exit(main())

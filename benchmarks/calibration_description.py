"""Calibration of the description reading (``analyzer.faithfulness.describe_prompt``): how often it claims "the
model describes this prompt as about T" for prompts that mean nothing, and how often it finds planted signal.

* Meaningless families (from ``calibration_families``), all held out from the description null's four
  constructions (random tokens, vocabulary-shaped noise, isotropic directions, tokens plus isotropic noise):
  random-weight token mixtures, heavy-tailed noise, low-rank noise, near-copies of a few tokens,
  dimension-permuted trained prompts, and trained sample prompts read against another task.  A prompt *has a
  false claim* when either class-rate row is significant above its null (BH over the rows, q < 0.05).
* Planted signal, per built-in task: its instruction embedded as the prompt (token embeddings tiled to 20 rows,
  as PEFT's TEXT init), and its label words embedded the same way, each bare and with isotropic noise of
  expected norm 0.5x and 1x each row's norm (three seeds each): the detection rate of the same claim.

Every prompt runs through the reading as shipped (default 10-cell layer grid, 20 null prompts per
construction, 16 new tokens; keyword share off, since no claim rests on it) on SmolLM2.  The null's texts are
cached per norm profile, so the cost is one null per profile (~5 min on 2 idle cores) plus ~5 s per prompt.

``run_description_calibration`` is the callable (``bench_calibration.py --reading description`` calls it);
``python benchmarks/calibration_description.py --out /tmp/description_calibration.json`` runs it alone."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration_families import FAMILY_BY_NAME, Context, tensor_prompt, wilson  # noqa: E402

FAMILIES = ("random-weight token mixtures", "heavy-tailed noise", "low-rank noise", "near-copies of a few tokens",
            "dimension-permuted trained prompts", "trained prompt, wrong task")
TASKS = ("sentiment", "spam", "question-type")
PLANTED_KINDS = ("instruction", "label_words")
LEVELS = (0.0, 0.5, 1.0)
SEEDS_PER_LEVEL = 3


def share(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return {"k": int(k), "n": int(n), "share": k / n if n else float("nan"), "ci95": [lo, hi]}


def planted_description(model, tokenizer, ctx: Context, task: str, kind: str, level: float, seed: int, n: int = 20):
    """A prompt made of the task's instruction (or label words) embedded and tiled to ``n`` rows, plus isotropic
    noise of expected norm ``level`` x each row's norm."""
    from analyzer.faithfulness.description import planted_prompt
    from analyzer.tasks import get_task

    t = get_task(task)
    text = t.instruction if kind == "instruction" else " ".join(t.label_words)
    x = planted_prompt(model, tokenizer, text, n).numpy().astype(np.float64)
    if level:
        rng = ctx.rng(f"planted-description-{task}-{kind}-{level}", seed)
        x = x + (level * np.linalg.norm(x, axis=1, keepdims=True) / np.sqrt(x.shape[1])) * rng.standard_normal(x.shape)
    return tensor_prompt(f"planted-{kind}-{task}-{level}-{seed}", x), text


def _record(res, task: str, params: dict, seconds: float) -> dict:
    claims = [t.to_dict() for t in res.tests if t.claim]
    best = res.best.to_dict()
    return {"name": res.prompt.name, "task": task, "params": params, "norm_profile": res.prompt.norm_profile,
            "claim": bool(res.describes_task), "class_rate_mean": res.class_rate_mean,
            "best": {k: best[k] for k in ("source_layer", "target_layer", "text", "class_rate", "p")},
            "rows": [{k: t[k] for k in ("measure", "value", "null_mean", "p", "q", "significant")} for t in claims],
            "null_cached": res.null.cached, "seconds": round(seconds, 2)}


def run_description_calibration(*, per_family: int = 20, seeds_per_level: int = SEEDS_PER_LEVEL,
                                families=FAMILIES, levels=LEVELS, null_size: int | None = None, seed: int = 0,
                                out: str | Path | None = None, threads: int = 2, resume: bool = False,
                                progress: Callable[[str], None] | None = None) -> dict:
    """Run the calibration; returns (and writes to ``out`` after every prompt) the results dict.  ``resume``:
    prompts already in ``out`` from a run with the same settings are read back, not run again (each prompt is
    made from its family, index and seed alone, so a resumed run is the run it continues; ``per_family`` and
    ``seeds_per_level`` may grow between runs)."""
    import torch

    from analyzer import load_vocabulary
    from analyzer.faithfulness import describe_prompt
    from analyzer.models import load_frozen_model

    torch.set_num_threads(int(threads))
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    model, tok = load_frozen_model("smollm2-135m")
    vocab = load_vocabulary("smollm2-135m")
    ctx = Context(vocab, seed=seed)
    kw = {"vocab": vocab, "keywords": [], "planted": (), "other_readings": False, "model_name": "smollm2-135m"}
    if null_size is not None:
        kw["null_size"] = int(null_size)
    results: dict = {"settings": {"model": "smollm2-135m", "per_family": per_family, "levels": list(levels),
                                  "seeds_per_level": seeds_per_level, "null_size": null_size or "default",
                                  "seed": seed, "alpha": 0.05,
                                  "claim": "the grid-mean class rate significant above its null (q < 0.05)"},
                     "families": {}, "planted": {}}
    done: dict = {}
    if resume and out and Path(out).is_file():
        old = json.loads(Path(out).read_text())
        free = ("per_family", "seeds_per_level")   # more prompts or seeds extend a run; anything else starts anew
        if {k: v for k, v in old.get("settings", {}).items() if k not in free} == \
                {k: v for k, v in results["settings"].items() if k not in free}:
            for name, f in old.get("families", {}).items():
                for i, r in enumerate(f.get("prompts", [])):
                    done[("family", name, i)] = r
            for kind, by_level in old.get("planted", {}).items():
                for level, g in by_level.items():
                    for r in g.get("prompts", []):
                        done[("planted", kind, str(level), r["task"], r["params"]["seed"])] = r
            say(f"resuming: {len(done)} prompts read back from {out}")
        else:
            say(f"not resuming: {out} was written with other settings")

    def write():
        results["wall_s"] = round(time.perf_counter() - t0, 1)
        if out:
            Path(out).write_text(json.dumps(results, indent=1, default=float))

    def one(prompt, task, params):
        t = time.perf_counter()
        res = describe_prompt(model, tok, prompt, task, progress=lambda m: say(f"    {m}") if "null" in m else None,
                              **kw)
        return _record(res, task, params, time.perf_counter() - t)

    for name in families:
        fam = FAMILY_BY_NAME[name]
        recs = []
        for i in range(per_family):
            prompt, task, params = fam.make(ctx, i)
            recs.append(done.get(("family", name, i)) or one(prompt, task, params))
            say(f"{name} {i + 1}/{per_family}: claim={recs[-1]['claim']} best={recs[-1]['best']['text']!r}")
            results["families"][name] = {"held_out": True, "false_claims": share(sum(r["claim"] for r in recs),
                                                                                 len(recs)), "prompts": recs}
            write()
    for kind in PLANTED_KINDS:
        for level in levels:
            recs = []
            for task in TASKS:
                for s in range(1 if level == 0 else seeds_per_level):
                    prompt, text = planted_description(model, tok, ctx, task, kind, level, s)
                    recs.append(done.get(("planted", kind, str(level), task, s))
                                or one(prompt, task, {"kind": kind, "level": level, "text": text, "seed": s}))
                    say(f"planted {kind} {task} level {level}: claim={recs[-1]['claim']} "
                        f"best={recs[-1]['best']['text']!r}")
            results["planted"].setdefault(kind, {})[str(level)] = {
                "detection": share(sum(r["claim"] for r in recs), len(recs)), "prompts": recs}
            write()
    all_fp = [r["claim"] for f in results["families"].values() for r in f["prompts"]]
    results["false_claims_all"] = share(sum(all_fp), len(all_fp))
    write()
    return results


def print_tables(results: dict) -> None:
    print("\nDescription reading, meaningless prompts (SmolLM2; false claim = the grid-mean class rate q < 0.05 "
          "above its null; 95% Wilson intervals)\n")
    print("| family | n | false claims | share | 95% CI |\n|:---|---:|---:|---:|---:|")
    for name, f in results["families"].items():
        s = f["false_claims"]
        print(f"| {name} | {s['n']} | {s['k']} | {s['share']:.3f} | [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}] |")
    s = results.get("false_claims_all")
    if s:
        print(f"| all | {s['n']} | {s['k']} | {s['share']:.3f} | [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}] |")
    print("\nPlanted signal (the task's instruction or label words embedded, tiled to 20 rows, + isotropic noise; "
          "3 tasks)\n")
    print("| planted | noise level | n | detected | rate | 95% CI |\n|:---|---:|---:|---:|---:|---:|")
    for kind, by_level in results["planted"].items():
        for level, g in by_level.items():
            s = g["detection"]
            print(f"| {kind} | {level} | {s['n']} | {s['k']} | {s['share']:.3f} | "
                  f"[{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}] |")
    print(f"\nWall time: {results.get('wall_s', 0) / 60:.1f} min")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-family", type=int, default=20, help="prompts per meaningless family (default 20)")
    ap.add_argument("--seeds-per-level", type=int, default=SEEDS_PER_LEVEL)
    ap.add_argument("--families", default=";".join(FAMILIES), help="families, separated by ';'")
    ap.add_argument("--null-size", type=int, default=None, help="null prompts per construction (default: shipped)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/description_calibration.json")
    ap.add_argument("--resume", action="store_true", help="read back the prompts already in --out (same settings)")
    a = ap.parse_args(argv)
    fams = [f.strip() for f in a.families.split(";") if f.strip()]
    unknown = [f for f in fams if f not in FAMILY_BY_NAME]
    if unknown:
        sys.exit(f"error: unknown families {unknown}; known: {list(FAMILY_BY_NAME)}")
    res = run_description_calibration(per_family=a.per_family, seeds_per_level=a.seeds_per_level, families=fams,
                                      null_size=a.null_size, out=a.out, threads=a.threads, resume=a.resume,
                                      progress=lambda m: print(m, file=sys.stderr, flush=True))
    print_tables(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())

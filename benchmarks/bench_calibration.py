"""Calibration benchmark (issue 10, point 7): how often the analysis makes a claim about prompts that mean
nothing, and how often it finds task signal that was planted.

On SmolLM2 with k=10 and the quick settings (``analysis_settings(full=False)``; ``--full`` adds the text space,
the vocabulary neighbour graph and CSLS), every prompt goes through ``analyzer.analyze`` and its table of tests
is read: a prompt *has a claim* when any row with ``claim=True`` (null ``matched`` or ``init``) is significant
(Benjamini-Hochberg ``q < 0.05`` over the prompt's rows).

* Meaningless families (``calibration_families.FAMILIES``, ``--per-family`` prompts each, 20 virtual tokens
  unless the family says otherwise): the share of prompts with any claim and the share per test row
  (measure, space, null), each with a 95% Wilson interval.  For a trained prompt read against the wrong task,
  claims that do not concern the task (tightness against its own initialisation...) may be true; the column
  that matters there is the *task-relatedness* claim (rows whose measure contains "task-related" or
  "specificity"), split into "higher than chance" (the false "related to T" claim) and "lower".
* Planted signal: 20 embeddings of task words (sentiment and spam prompts alternating) plus isotropic noise at
  0.1, 0.3, 0.5 and 1.0 x each vector's norm (``--per-level`` prompts each): the detection rate of the claim
  "related to the task", task specificity (model space) higher than under the matched null.

Goals (from the issue): every meaningless family's share with any claim <= 0.05; power >= 0.9 at noise 0.3.
Nothing here is tuned to them.  Raw results go to ``--out`` (JSON).  All draws use fixed seeds.

The default run (6 families x 50 + 4 levels x 50 = 500 analyses, ~2.4 s each on an idle 2-core machine, 2.85 s
measured on a shared one) takes 20-24 min -- a little over the ~20 min aimed at, kept because 50 prompts per
family is the least the issue asks for; ``--families all`` adds two more held-out families (sparse vectors,
tokens shrunk to the mean, ~5 min more)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from _common import ROOT, table
from calibration_families import (FAMILIES, FAMILY_BY_NAME, NOISE_LEVELS, PARTIAL_COUNTS, Context, claim_rows,
                                  detects_task, fired, is_task_measure, planted, planted_partial, planted_words,
                                  PLANTED_TASKS, row_key, run_one, wilson)

DEFAULT_FAMILIES = ("vocabulary-shaped Gaussian", "random-weight token mixtures",
                    "random-weight token mixtures, 8/50 tokens", "token + isotropic noise",
                    "trained prompt, wrong task", "dimension-permuted trained prompts")
GOAL_FP, GOAL_POWER, GOAL_LEVEL = 0.05, 0.9, 0.3
SLIM = ("measure", "space", "null", "value", "null_mean", "effect", "p", "q", "direction", "significant", "p_other")


def share(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return {"k": int(k), "n": int(n), "share": k / n if n else float("nan"), "ci95": [lo, hi]}


def fmt(s: dict) -> str:
    return f"{s['share']:.3f}"


def fmt_ci(s: dict) -> str:
    return f"[{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"


def record(prompt, task: str, params: dict, tests: list[dict]) -> dict:
    rows = claim_rows(tests)
    f = fired(tests)
    task_f = [r for r in f if is_task_measure(r)]
    return {"name": prompt.name, "task": task, "n_tokens": int(prompt.vectors.shape[0]), "params": params,
            "claims": [{k: r.get(k) for k in SLIM} for r in rows],
            "fired": [row_key(r) for r in f],
            "any_claim": bool(f),
            "task_claim": bool(task_f),
            "task_claim_higher": any((r["value"] or 0) > (r["null_mean"] or 0) for r in task_f),
            "task_claim_lower": any((r["value"] or 0) < (r["null_mean"] or 0) for r in task_f),
            # a one-sided task row (specificity) beyond chance the other way: described in its verdict, not claimed
            "task_described_lower": any(is_task_measure(r) and r.get("p_other") is not None and r["p_other"] < 0.05
                                        for r in rows),
            "detects_task": detects_task(tests)}


def summarize_group(recs: list[dict]) -> dict:
    n = len(recs)
    keys = Counter()
    seen = Counter()
    for r in recs:
        for c in r["claims"]:
            k = row_key(c)
            seen[k] += 1
        for k in set(r["fired"]):
            keys[k] += 1
    return {"n": n,
            "any_claim": share(sum(r["any_claim"] for r in recs), n),
            "task_claim": share(sum(r["task_claim"] for r in recs), n),
            "task_claim_higher": share(sum(r["task_claim_higher"] for r in recs), n),
            "task_claim_lower": share(sum(r["task_claim_lower"] for r in recs), n),
            "task_described_lower": share(sum(r.get("task_described_lower", False) for r in recs), n),
            "per_measure": {k: share(keys[k], seen[k]) for k in sorted(seen)}}


def code_version() -> dict:
    """The commit and whether analyzer/ had uncommitted changes when the run started (results depend on it)."""
    import subprocess

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {"commit": git("rev-parse", "HEAD"), "analyzer_dirty": bool(git("status", "--porcelain", "analyzer"))}


def parse_families(text: str) -> tuple[list[str], list[str]]:
    """``(known names, unknown parts)`` of a comma-separated list; a name may itself hold a comma ("trained
    prompt, wrong task"): the longest run of parts that is a known name wins."""
    parts = [s.strip() for s in text.split(",")]
    names, bad, i = [], [], 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            if ", ".join(parts[i:j]) in FAMILY_BY_NAME:
                names.append(", ".join(parts[i:j]))
                i = j
                break
        else:
            if parts[i]:
                bad.append(parts[i])
            i += 1
    return names, bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-family", type=int, default=50, help="prompts per meaningless family (default 50)")
    ap.add_argument("--per-level", type=int, default=50, help="planted prompts per noise level (default 50)")
    ap.add_argument("--families", default="default",
                    help="'default', 'all', or a comma-separated list of family names")
    ap.add_argument("--no-planted", action="store_true", help="skip the planted-signal part")
    ap.add_argument("--partial", default=",".join(map(str, PARTIAL_COUNTS)),
                    help="planted signal in m of 20 positions, the rest vocabulary-shaped noise: the counts m, "
                         f"comma-separated (default {','.join(map(str, PARTIAL_COUNTS))}; '' for none)")
    ap.add_argument("--levels", default=",".join(map(str, NOISE_LEVELS)),
                    help=f"planted noise levels, comma-separated (default {','.join(map(str, NOISE_LEVELS))})")
    ap.add_argument("--full", action="store_true",
                    help="the full analysis (text space, vocabulary neighbour graph, CSLS; much slower)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the prompt generators (the analysis keeps its own)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "artifacts" / "bench" / "calibration.json"),
                    help="raw results (JSON); default artifacts/bench/calibration.json (not committed)")
    ap.add_argument("--reading", choices=["analysis", "description", "importance"], default="analysis",
                    help="the claims to calibrate: the analysis's table of tests (default), the model's description "
                         "(calibration_description.py) or which positions matter (calibration_importance.py); each "
                         "has its own families and planted signal; --per-family, --seed and --out apply")
    args = ap.parse_args()
    if args.reading == "importance":
        from calibration_importance import print_tables, run_importance_calibration

        out = args.out if args.out != ap.get_default("out") else str(ROOT / "artifacts" / "bench" /
                                                                     "calibration-importance.json")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        per = args.per_family if args.per_family != ap.get_default("per_family") else 5
        print_tables(run_importance_calibration(per_family=per, seed=args.seed or 1, out=out,
                                                progress=lambda m: print(m, file=sys.stderr, flush=True)))
        return
    if args.reading == "description":
        from calibration_description import print_tables, run_description_calibration

        out = args.out if args.out != ap.get_default("out") else str(ROOT / "artifacts" / "bench" /
                                                                     "calibration-description.json")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        print_tables(run_description_calibration(per_family=args.per_family, seed=args.seed, out=out,
                                                 progress=lambda m: print(m, file=sys.stderr, flush=True)))
        return
    if args.families == "default":
        fams = [FAMILY_BY_NAME[n] for n in DEFAULT_FAMILIES]
    elif args.families == "all":
        fams = list(FAMILIES)
    else:
        names, bad = parse_families(args.families)
        if bad:
            sys.exit(f"error: unknown families {bad}; known: {list(FAMILY_BY_NAME)}")
        fams = [FAMILY_BY_NAME[n] for n in names]

    t0 = time.perf_counter()
    from analyzer import load_vocabulary
    from analyzer.analysis import analysis_settings
    from analyzer.neighbors import NeighborIndex

    vocab = load_vocabulary("smollm2-135m")
    index = NeighborIndex(k=args.k).fit(vocab)
    settings = analysis_settings(full=args.full)
    ctx = Context(vocab, seed=args.seed)
    try:
        levels = tuple(float(x) for x in args.levels.split(",") if x.strip())
        partial = tuple(int(x) for x in args.partial.split(",") if x.strip())
    except ValueError:
        sys.exit(f"error: --levels and --partial expect comma-separated numbers like 0.1,0.3 and 1,2; got "
                 f"{args.levels!r}, {args.partial!r}")
    total = len(fams) * args.per_family + (0 if args.no_planted else (len(levels) + len(partial)) * args.per_level)
    done = 0

    def tick(label: str) -> None:
        nonlocal done
        done += 1
        if done % 10 == 0 or done == total:
            el = time.perf_counter() - t0
            print(f"  [{done}/{total}] {label}  {el:.0f} s elapsed, ~{el / done * (total - done):.0f} s left",
                  file=sys.stderr, flush=True)

    from analyzer.nulls import CONSTRUCTIONS

    results: dict = {"settings": {"model": "smollm2-135m", "k": args.k, "analysis": settings.to_dict(),
                                  "seed": args.seed, "per_family": args.per_family, "per_level": args.per_level,
                                  "alpha": 0.05, "null_constructions": list(CONSTRUCTIONS), **code_version()},
                     "families": {}, "planted": {}}
    for fam in fams:
        recs = []
        for i in range(args.per_family):
            p, task, params = fam.make(ctx, i)
            recs.append(record(p, task, params, run_one(p, task, vocab, index, settings, k=args.k)))
            tick(fam.name)
        groups = {}
        for r in recs:
            g = r["params"].get("source") and f"{r['params']['source']} @ {r['task']}"
            if "n_tokens" in r["params"]:
                g = f"{r['n_tokens']} tokens"
            if g:
                groups.setdefault(g, []).append(r)
        results["families"][fam.name] = {"description": fam.description, "held_out": fam.held_out,
                                         **summarize_group(recs),
                                         "groups": {g: summarize_group(v) for g, v in groups.items()},
                                         "prompts": recs}
    if not args.no_planted:
        results["planted_words"] = {t: [w for w, _ in planted_words(vocab, words)] for t, words in PLANTED_TASKS}
        def planted_run(make, label: str) -> dict:
            recs = []
            for i in range(args.per_level):
                p, task, params = make(i)
                recs.append(record(p, task, params, run_one(p, task, vocab, index, settings, k=args.k)))
                tick(label)
            return {"power": share(sum(r["detects_task"] for r in recs), len(recs)), **summarize_group(recs),
                    "prompts": recs}

        for lvl in levels:
            results["planted"][str(lvl)] = {"level": lvl, **planted_run(lambda i: planted(ctx, i, lvl),
                                                                         f"planted {lvl}")}
        for m in partial:
            results.setdefault("planted_partial", {})[str(m)] = {
                "task_positions": m, **planted_run(lambda i: planted_partial(ctx, i, m), f"planted in {m}/20")}
    wall = time.perf_counter() - t0
    results["wall_s"] = wall
    out = Path(args.out)
    if not out.is_absolute():
        out = ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))      # before the tables: nothing lost

    # ------------------------------------------------------------------ tables
    letters = {fam.name: chr(ord("a") + j) for j, fam in enumerate(fams)}
    what = "full analysis" if args.full else "quick settings"
    print(f"\nMeaningless prompts (SmolLM2, k={args.k}, {what}; alpha 0.05 after BH; 95% Wilson intervals). "
          "*any claim*: a significant row with null matched or init; *task claim ↑*: a significant "
          "task-related/specificity row above its null mean (the false \"related to the task\" claim), "
          "*task ↓ described*: the one-sided specificity beyond chance the other way (p_other < 0.05; said in the "
          "row's verdict, not a claim).\n")
    rows = []
    for fam in fams:
        s = results["families"][fam.name]
        top = max(s["per_measure"].items(), key=lambda kv: (kv[1]["k"], kv[0]), default=(None, None))
        top_s = f"{top[0]} ({top[1]['k']}/{top[1]['n']})" if top[0] and top[1]["k"] else "–"
        rows.append([f"({letters[fam.name]}) {fam.name}", "yes" if fam.held_out else "no", s["n"],
                     f"{s['any_claim']['k']} ({fmt(s['any_claim'])})", fmt_ci(s["any_claim"]),
                     f"{s['task_claim_higher']['k']} ({fmt(s['task_claim_higher'])})", fmt_ci(s["task_claim_higher"]),
                     s["task_described_lower"]["k"], top_s])
        for g, gs in s["groups"].items():
            rows.append([f"↳ {g}", "", gs["n"], f"{gs['any_claim']['k']} ({fmt(gs['any_claim'])})",
                         fmt_ci(gs["any_claim"]), f"{gs['task_claim_higher']['k']} ({fmt(gs['task_claim_higher'])})",
                         fmt_ci(gs["task_claim_higher"]), gs["task_described_lower"]["k"], ""])
    print(table(["family", "held out", "n", "any claim", "95% CI", "task claim ↑", "95% CI", "task ↓ described",
                 "most frequent claim"], rows))

    keys = sorted({k for fam in fams for k in results["families"][fam.name]["per_measure"]})
    print("\nShare of prompts per claim row (measure [space] vs null), per family: fired/tested, 95% Wilson "
          "upper bound in brackets.\n")
    mrows = []
    for k in keys:
        cells = []
        for fam in fams:
            m = results["families"][fam.name]["per_measure"].get(k)
            cells.append("–" if m is None else f"{m['k']}/{m['n']} (≤{m['ci95'][1]:.2f})")
        mrows.append([k] + cells)
    print(table(["claim row"] + [f"({letters[f.name]})" for f in fams], mrows))

    if not args.no_planted:
        print("\nPlanted signal: 20 embeddings of task words (sentiment and spam prompts alternating; "
              + ", ".join(f"{t}: {len(w)} words" for t, w in results["planted_words"].items()) + ") + "
              "isotropic noise of expected norm level x each vector's norm; detection = the claim 'related to the "
              "task': task specificity (model space) higher than under the matched null, q < 0.05.\n")
        def power_table(first: str, part: dict, keys) -> None:
            rows = [[x, part[str(x)]["n"], part[str(x)]["power"]["k"], fmt(part[str(x)]["power"]),
                     fmt_ci(part[str(x)]["power"]), fmt(part[str(x)]["any_claim"])] for x in keys]
            print(table([first, "n", "detected", "power", "95% CI", "any claim"], rows))

        power_table("noise level", results["planted"], levels)
        if partial:
            print("\nPartial signal: m of 20 positions are task words + isotropic noise at 0.3x norm, the other "
                  "20 - m vocabulary-shaped Gaussian noise (random order); detection as above.\n")
            power_table("task-word positions", results["planted_partial"], partial)

    # ------------------------------------------------------------------ goals
    print("\nGoals:")
    for fam in fams:
        s = results["families"][fam.name]
        key = "task_claim_higher" if fam.name == "trained prompt, wrong task" else "any_claim"
        v = s[key]
        ok = v["share"] <= GOAL_FP
        print(f"- ({letters[fam.name]}) {fam.name}: {key.replace('_', ' ')} share {v['share']:.3f} "
              f"(95% CI {fmt_ci(v)}) {'≤' if ok else '>'} {GOAL_FP}: {'met' if ok else 'NOT met'}")
    if not args.no_planted and str(GOAL_LEVEL) in results["planted"]:
        pw = results["planted"][str(GOAL_LEVEL)]["power"]
        ok = pw["share"] >= GOAL_POWER
        print(f"- planted, noise {GOAL_LEVEL}: power {pw['share']:.3f} (95% CI {fmt_ci(pw)}) "
              f"{'≥' if ok else '<'} {GOAL_POWER}: {'met' if ok else 'NOT met'}")
    print(f"\nWall time: {wall / 60:.1f} min ({total} analyses, {wall / max(total, 1):.2f} s each). "
          f"Raw results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()

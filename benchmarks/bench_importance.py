"""Benchmark of the importance reading on SmolLM2: a 20-token sample prompt (sentiment-labels), the three
replacements (removed, nearest token, vocabulary mean) on 100 test examples, the removal null read from the cache
(a first, untimed run fills it).  Reports the median wall time over ``--repeats`` runs and the example forwards
per second (every variant of the prompt scored on every example).  ``--curve`` adds the partial-projection curve
(10 random orders at 4 counts); ``--plain`` also times the removals without the prompt's cached keys and values
(the plain shared forward), to show what the prefix cache saves.  Not a test: timings never go in tests."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _common import ROOT, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompt", default=str(ROOT / "sample_prompts" / "sentiment-labels"))
    ap.add_argument("--task", default="sentiment")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--curve", action="store_true", help="also the partial-projection curve")
    ap.add_argument("--plain", action="store_true", help="also time the removals without the prefix cache")
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = ap.parse_args()

    import torch

    from analyzer.faithfulness import importance
    from analyzer.loaders import load_prompt, load_vocabulary
    from analyzer.models import load_frozen_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load_frozen_model("smollm2-135m")
    vocab = load_vocabulary("smollm2-135m")
    prompt = load_prompt(args.prompt)

    def once(**kw):
        t = time.perf_counter()
        r = importance(model, tok, prompt, args.task, vocab, limit=args.limit, model_name="smollm2-135m", **kw)
        return time.perf_counter() - t, r

    print("warm-up (fills the null cache when empty; not timed) ...", file=sys.stderr, flush=True)
    t, r = once(replacements=("removed",), curve=False)
    print(f"  warm-up {t:.0f} s, null cached before: {r.null.cached}", file=sys.stderr, flush=True)
    cases = [("three replacements", dict(curve=False))]
    if args.curve:
        cases.append(("three replacements + projection curve", dict(curve=True)))
    if args.plain:
        cases += [("removed only, prefix cache", dict(replacements=("removed",), curve=False)),
                  ("removed only, plain forward", dict(replacements=("removed",), curve=False, prefix_cache=False))]
    rows, out = [], {"prompt": prompt.name, "n_virtual": prompt.num_virtual_tokens, "limit": args.limit,
                     "threads": torch.get_num_threads(), "cases": {}}
    for name, kw in cases:
        secs = []
        for _ in range(args.repeats):
            s, r = once(**kw)
            assert r.null.cached
            secs.append(s)
            print(f"  {name}: {s:.1f} s", file=sys.stderr, flush=True)
        med = statistics.median(secs)
        fw = r.settings["example_forwards"]
        out["cases"][name] = {"seconds": secs, "median": med, "variants": r.settings["variants_scored"],
                              "example_forwards": fw, "examples_per_second": fw / med,
                              "prefix_cache": r.settings["prefix_cache"]}
        rows.append([name, r.settings["variants_scored"], fw, f"{med:.1f}", f"{fw / med:.1f}"])
    print(table(["case", "variants", "example forwards", "median s", "examples/s"], rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

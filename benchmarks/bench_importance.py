"""Benchmark of the importance reading on SmolLM2: a 20-token sample prompt (sentiment-labels), the three
replacements (removed, nearest token, vocabulary mean) on 100 test examples, the removal null read from the cache
(a first, untimed run fills it).  Reports the median wall time over ``--repeats`` runs and the example forwards
per second (every variant of the prompt scored on every example).  ``--curve`` adds the partial-projection curve
(10 random orders at 4 counts); ``--plain`` also times the removals without the prompt's cached keys and values
(the plain shared forward), to show what the prefix cache saves; ``--single`` also times the three replacements
scored one variant per forward (the scorer before it stacked variants), to show what stacking saves.
``--batching`` instead times the example forwards of one prompt's removals on each task under several per-batch
overheads of the batching (``analyzer.training.scoring.length_sorted_batches``), the measurement behind
``BATCH_OVERHEAD_TOKENS``.  Not a
test: timings never go in tests."""

from __future__ import annotations

import argparse
import contextlib
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
    ap.add_argument("--batch-size", type=int, default=32, help="largest batch (--batching)")
    ap.add_argument("--curve", action="store_true", help="also the partial-projection curve")
    ap.add_argument("--plain", action="store_true", help="also time the removals without the prefix cache")
    ap.add_argument("--single", action="store_true", help="also time the three replacements one variant per forward")
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    ap.add_argument("--batching", default=None, metavar="OVERHEADS",
                    help="time the batching instead: comma-separated per-batch overheads in tokens (e.g. 0,48,96,192), "
                         "each with --repeats runs of 4 removal variants on every task")
    args = ap.parse_args()
    if args.batching:
        return batching(args)

    import torch

    from analyzer.faithfulness import importance
    from analyzer.loaders import load_prompt, load_vocabulary
    from analyzer.models import load_frozen_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load_frozen_model("smollm2-135m")
    vocab = load_vocabulary("smollm2-135m")
    prompt = load_prompt(args.prompt)

    def once(single=False, **kw):
        with one_variant_per_forward(single):
            t = time.perf_counter()
            r = importance(model, tok, prompt, args.task, vocab, limit=args.limit, model_name="smollm2-135m", **kw)
            return time.perf_counter() - t, r

    print("warm-up (fills the null cache when empty; not timed) ...", file=sys.stderr, flush=True)
    t, r = once(replacements=("removed",), curve=False)
    print(f"  warm-up {t:.0f} s, null cached before: {r.null.cached}", file=sys.stderr, flush=True)
    cases = [("three replacements", dict(curve=False))]
    if args.curve:
        cases.append(("three replacements + projection curve", dict(curve=True)))
    if args.single:
        cases.append(("three replacements, one variant per forward", dict(curve=False, single=True)))
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


@contextlib.contextmanager
def one_variant_per_forward(on: bool):
    """While ``on``: the scorer takes the variants of a call one at a time (each its own forwards)."""
    from analyzer.faithfulness._variants import VariantScorer

    together = VariantScorer.outcomes
    if on:
        VariantScorer.outcomes = lambda self, prefixes: [together(self, [p])[0] for p in prefixes]
    try:
        yield
    finally:
        VariantScorer.outcomes = together


def batching(args) -> None:
    """Example forwards per second of 4 removal variants on ``--limit`` test examples of each task, under each
    per-batch overhead of the batching (the padded tokens of each batching beside it)."""
    import torch

    from analyzer.faithfulness._variants import VariantScorer, as_matrix
    from analyzer.loaders import load_prompt
    from analyzer.models import load_frozen_model
    from analyzer.tasks import get_task
    from analyzer.training import scoring

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load_frozen_model("smollm2-135m")
    x = as_matrix(load_prompt(args.prompt))
    overheads = [int(v) for v in args.batching.split(",")]
    rows, out = [], {"limit": args.limit, "threads": torch.get_num_threads(), "cases": []}
    for task_name in ("sentiment", "spam", "question-type"):
        task = get_task(task_name)
        ex = task.split("test")[:args.limit]
        s = VariantScorer(model, tok, task, ex, batch_size=args.batch_size, model_name="smollm2-135m")
        for oh in overheads:
            lengths = [len(q) for q in s.seqs]
            s.overhead = oh
            batches = scoring.length_sorted_batches(lengths, args.batch_size, 8192, overhead=oh)   # as the scorer cuts
            padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
            s.logits(x)
            secs = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                for i in range(4):
                    s.logits(torch.cat([x[:i], x[i + 1:]]))
                secs.append(time.perf_counter() - t)
            med = statistics.median(secs)
            case = {"task": task_name, "overhead": oh, "batches": len(batches), "tokens": sum(lengths),
                    "padded": padded, "seconds": secs, "examples_per_second": 4 * len(ex) / med}
            out["cases"].append(case)
            rows.append([task_name, oh, len(batches), f"{1 - sum(lengths) / padded:.2f}", f"{med:.2f}",
                         f"{4 * len(ex) / med:.1f}"])
            print(f"  {task_name} overhead {oh}: {med:.2f} s", file=sys.stderr, flush=True)
    print(table(["task", "overhead (tokens)", "batches", "padding", "median s", "examples/s"], rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

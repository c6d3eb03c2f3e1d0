"""``describe`` on the shipped single-task sample prompts (SmolLM2), and on Gemma 3 270M -- which has no sample
prompts -- a meaningless prompt (random tokens) whose planted signals (the task's instruction, its label words)
must be described: the numbers behind the README's description section.

    python scripts/describe_samples.py --out /tmp/description_samples.json             # SmolLM2, defaults
    python scripts/describe_samples.py --gemma --out /tmp/description_gemma.json       # Gemma 3 270M
    python scripts/describe_samples.py --null-size 2 --prompts sentiment-labels --out /tmp/d.json   # a quick trial

The null's texts are cached per model, length and norm profile, so a second run costs only the prompts' grids.
Each prompt's result is the layout ``softprompt-analyzer describe --format json`` writes; the file is rewritten
after every prompt."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "sample_prompts"
SINGLE_TASK = ("sentiment-labels", "sentiment-random", "sentiment-vocab", "spam-labels", "question-type-text",
               "sentiment-labels-100")
TASKS = ("sentiment", "spam", "question-type")


def portable(obj):
    """The result with no path of this machine in it: the repository's paths made relative to it, the cache's
    written ``<cache>/...`` (the shipped file is read on other machines)."""
    from analyzer.cache import cache_dir

    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v) for v in obj]
    if isinstance(obj, str) and obj.startswith("/"):
        for base, shown in ((cache_dir().resolve(), "<cache>"), (ROOT, None)):
            if Path(obj).is_relative_to(base):
                rel = Path(obj).relative_to(base).as_posix()
                return rel if shown is None else f"{shown}/{rel}"
    return obj


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="JSON file for the results")
    ap.add_argument("--prompts", default=",".join(SINGLE_TASK), help="sample prompts, comma-separated")
    ap.add_argument("--gemma", action="store_true", help="Gemma 3 270M: a random-token prompt per task, planted "
                                                         "instruction and label words")
    ap.add_argument("--null-size", type=int, default=None,
                    help="null prompts per construction (default: the reading's)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from analyzer.faithfulness import describe_for_model, describe_prompt

    extra = {} if a.null_size is None else {"null_size": a.null_size}
    say = lambda msg: print(f"  … {msg}", file=sys.stderr, flush=True)     # noqa: E731
    out: dict = {"model": "gemma3-270m" if a.gemma else "smollm2-135m", "results": {}}
    path = Path(a.out)
    t0 = time.perf_counter()
    if a.gemma:
        import numpy as np

        from analyzer import SoftPrompt, load_vocabulary
        from analyzer.models import load_frozen_model
        from analyzer.nulls import meaningless_queries

        model, tok = load_frozen_model("gemma3-270m")
        vocab = load_vocabulary("gemma3-270m")
        x = meaningless_queries(vocab, "random tokens", 20, seed=7)
        prompt = SoftPrompt(name="random-tokens-20", vectors=np.asarray(x, np.float32), source="synthetic",
                            kind="TENSOR")
        jobs = [(t, lambda t=t: describe_prompt(model, tok, prompt, t, vocab=vocab, model_name="gemma3-270m",
                                                 planted=("instruction", "label_words"), progress=say, **extra))
                for t in TASKS]
    else:
        jobs = [(name, lambda name=name: describe_for_model(None, SAMPLES / name, progress=say, **extra))
                for name in a.prompts.split(",") if name.strip()]
    for name, run in jobs:
        t = time.perf_counter()
        print(f"{name}:", file=sys.stderr, flush=True)
        res = run()
        out["results"][name] = {**portable(res.to_dict()), "seconds": round(time.perf_counter() - t, 1)}
        for line in res.summary():
            print(f"  {line}", file=sys.stderr, flush=True)
        out["wall_s"] = round(time.perf_counter() - t0, 1)
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

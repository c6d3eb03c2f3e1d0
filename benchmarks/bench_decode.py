"""Cost of ``decode`` on SmolLM2 (2 cores): one decode of a sample prompt with the CLI's defaults (as many tokens
as the soft prompt, 200 steps of 8 training examples, the best of 8 scorings on 64 validation examples, then five
columns scored on 200 test examples) -- the issue's target is <= 15 min.  Prints the phases' seconds and the steps
per second.  ``--steps N`` for a shorter run (the per-step cost extrapolates).  Not a test: timings never go in
tests.  ``--from-samples`` instead summarises the decodes ``scripts/decode_samples.py`` recorded."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompt", default="spam-labels")
    ap.add_argument("--task", default="spam")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--from-samples", action="store_true")
    a = ap.parse_args()
    if a.from_samples:
        d = json.loads((ROOT / "sample_prompts" / "decode.json").read_text())
        for name, r in d["prompts"].items():
            t = r["trace"]
            print(f"{name}: {t['seconds']:.0f} s for {t['steps_done']} steps and the test scoring "
                  f"({t['seconds'] / 60:.1f} min)")
        return
    import torch

    from analyzer.decode import DecodeConfig, decode
    from analyzer.loaders import load_prompt, load_vocabulary
    from analyzer.models import load_frozen_model

    t0 = time.perf_counter()
    model, tok = load_frozen_model("smollm2-135m")
    vocab = load_vocabulary("smollm2-135m")
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = decode(model, tok, load_prompt(ROOT / "sample_prompts" / a.prompt), a.task, vocab,
                 DecodeConfig(steps=a.steps), model_name="smollm2-135m")
    total = time.perf_counter() - t0
    opt = res.trace["seconds"]
    print(f"torch threads {torch.get_num_threads()}; model load {t_load:.1f} s")
    print(f"decode of {a.prompt}: {total:.0f} s in all ({total / 60:.1f} min): optimisation {opt:.0f} s "
          f"({a.steps / opt:.2f} steps/s), scoring {total - opt:.0f} s; target <= 900 s: "
          f"{'met' if total <= 900 else 'not met'}")


if __name__ == "__main__":
    main()

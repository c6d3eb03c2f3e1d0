"""``importance`` on the shipped single-task sample prompts, for the README's importance section: the held-out
validity check for every prompt (rank positions by removal on one half of the first 100 test examples, remove the
k top- and k bottom-ranked together on the other half, k = 1, 3, 5), and the full reading (three replacements, the
claim rows, the partial-projection curve) for one prompt.

    python scripts/importance_samples.py                          # -> sample_prompts/importance.json
    python scripts/importance_samples.py --full question-type-text --prompts spam-labels --out /tmp/i.json

The full reading's removal null is computed once per model and norm profile and then read from the cache. The
output holds, per prompt, what ``held_out_validity`` returns, and the full reading in the layout
``softprompt-analyzer importance --format json`` writes."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "sample_prompts"
MODEL = "smollm2-135m"
SINGLE_TASK = {"sentiment-labels": "sentiment", "sentiment-random": "sentiment", "sentiment-vocab": "sentiment",
               "sentiment-labels-100": "sentiment", "spam-labels": "spam", "question-type-text": "question-type"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", default=",".join(SINGLE_TASK), help="sample prompts for the validity check")
    ap.add_argument("--full", default="sentiment-labels", help="the sample prompt read in full ('' for none)")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(SAMPLES / "importance.json"))
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from analyzer.faithfulness import held_out_validity, importance
    from analyzer.loaders import load_prompt, load_vocabulary
    from analyzer.models import load_frozen_model

    model, tok = load_frozen_model(MODEL)
    say = lambda msg: print(f"  … {msg}", file=sys.stderr, flush=True)     # noqa: E731
    out: dict = {"model": MODEL, "settings": {"split": "test", "limit": a.limit, "ks": [1, 3, 5], "seed": 0},
                 "validity": [], "full": None}
    path = Path(a.out)
    t0 = time.perf_counter()
    for name in [p for p in a.prompts.split(",") if p]:
        t = time.perf_counter()
        v = held_out_validity(model, tok, load_prompt(SAMPLES / name), SINGLE_TASK[name], limit=a.limit,
                              model_name=MODEL, progress=say)
        v["seconds"] = round(time.perf_counter() - t, 1)
        out["validity"].append(v)
        print(f"{name}: " + ", ".join(f"k={r['k']} {r['top_minus_bottom_nll']['diff']:+.3f} "
                                      f"[{r['top_minus_bottom_nll']['ci_low']:+.3f}, "
                                      f"{r['top_minus_bottom_nll']['ci_high']:+.3f}] {'holds' if r['holds'] else 'fails'}"
                                      for r in v["ks"]), flush=True)
        path.write_text(json.dumps(out, indent=1, default=float))
    if a.full:
        vocab = load_vocabulary(MODEL)
        r = importance(model, tok, load_prompt(SAMPLES / a.full), SINGLE_TASK[a.full], vocab, limit=a.limit,
                       model_name=MODEL, progress=say)
        out["full"] = r.to_dict()
        print(r.to_table(width=140))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    path.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

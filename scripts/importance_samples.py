"""``importance`` on the shipped single-task sample prompts, for the README's importance section: the held-out
validity check for every prompt (rank positions by removal on one half of the first 100 test examples, remove the
k top- and k bottom-ranked together on the other half, k = 1, 3, 5), and the full reading (three replacements, the
claim rows, the partial-projection curve) for one prompt.

    python scripts/importance_samples.py                          # -> sample_prompts/importance.json
    python scripts/importance_samples.py --full question-type-text --prompts spam-labels --out /tmp/i.json
    python scripts/importance_samples.py --model qwen2.5-coder-0.5b --prompts qwen-sentiment-labels,qwen-spam-labels \
        --full qwen-sentiment-labels,qwen-spam-labels --replacements removed --no-curve \
        --out sample_prompts/qwen2.5-coder-0.5b/importance.json

The full reading's removal null is computed once per model and norm profile and then read from the cache. The
output holds, per prompt, what ``held_out_validity`` returns, and the full reading in the layout
``softprompt-analyzer importance --format json`` writes (a list of them when several prompts are read in full).
Another model's prompts (``--model``) are read from ``sample_prompts/<model>/``, each with the task its
``training_meta.json`` records."""

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
    ap.add_argument("--model", default=MODEL, help="the frozen model (its prompts: sample_prompts/<model>/ unless "
                                                  "it is the default)")
    ap.add_argument("--replacements", default="removed,nearest,mean", help="the full reading's replacements")
    ap.add_argument("--no-curve", action="store_true", help="the full reading without the partial-projection curve")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(SAMPLES / "importance.json"))
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from analyzer.faithfulness import held_out_validity, importance
    from analyzer.loaders import load_prompt, load_vocabulary
    from analyzer.models import load_frozen_model

    model_name = a.model
    folder = SAMPLES if model_name == MODEL else SAMPLES / model_name

    def task_of(name: str) -> str:
        if name in SINGLE_TASK and model_name == MODEL:
            return SINGLE_TASK[name]
        from analyzer.training.config import meta_task_name, read_training_meta

        return meta_task_name(read_training_meta(folder / name))

    model, tok = load_frozen_model(model_name)
    say = lambda msg: print(f"  … {msg}", file=sys.stderr, flush=True)     # noqa: E731
    out: dict = {"model": model_name, "settings": {"split": "test", "limit": a.limit, "ks": [1, 3, 5], "seed": 0},
                 "validity": [], "full": None}
    path = Path(a.out)
    t0 = time.perf_counter()
    for name in [p for p in a.prompts.split(",") if p]:
        t = time.perf_counter()
        v = held_out_validity(model, tok, load_prompt(folder / name), task_of(name), limit=a.limit,
                              model_name=model_name, progress=say)
        v["seconds"] = round(time.perf_counter() - t, 1)
        out["validity"].append(v)
        print(f"{name}: " + ", ".join(f"k={r['k']} {r['top_minus_bottom_nll']['diff']:+.3f} "
                                      f"[{r['top_minus_bottom_nll']['ci_low']:+.3f}, "
                                      f"{r['top_minus_bottom_nll']['ci_high']:+.3f}] {'holds' if r['holds'] else 'fails'}"
                                      for r in v["ks"]), flush=True)
        path.write_text(json.dumps(out, indent=1, default=float))
    fulls = [p for p in a.full.split(",") if p]
    if fulls:
        vocab = load_vocabulary(model_name)
        read = []
        for name in fulls:
            t = time.perf_counter()
            r = importance(model, tok, load_prompt(folder / name), task_of(name), vocab, limit=a.limit,
                           model_name=model_name, progress=say, curve=not a.no_curve,
                           replacements=tuple(x for x in a.replacements.split(",") if x))
            read.append({**r.to_dict(), "seconds": round(time.perf_counter() - t, 1)})
            print(r.to_table(width=140), flush=True)
            out["full"] = read[0] if len(fulls) == 1 else read
            path.write_text(json.dumps(out, indent=1, default=float))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    path.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

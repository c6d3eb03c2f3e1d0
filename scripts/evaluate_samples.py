"""``evaluate`` on the shipped single-task sample prompts, for the README's "What the model makes of a prompt"
section: every prompt on its own task (the first 200 test examples), and the sentiment prompts also on the
evaluation-only ``sentiment-amazon`` (product reviews: another source than their movie-review training set),
each beside zero-shot, the task's instruction and the majority class on the same examples.

    python scripts/evaluate_samples.py                  # ~10 min on 2 cores -> sample_prompts/evaluate.json
    python scripts/evaluate_samples.py --limit 20 --out /tmp/ev.json   # a quick trial

The result is one JSON per task group, the layout ``softprompt-analyzer evaluate --format json`` writes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "sample_prompts"
MODEL = "smollm2-135m"
GROUPS = (  # (prompts, tasks)
    (("sentiment-labels", "sentiment-random", "sentiment-vocab", "sentiment-labels-100"),
     ("sentiment", "sentiment-amazon")),
    (("question-type-text",), ("question-type",)),
    (("spam-labels",), ("spam",)),
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--out", default=str(SAMPLES / "evaluate.json"))
    args = ap.parse_args(argv)
    from analyzer.faithfulness.evaluation import evaluate_prompts
    from analyzer.loaders import load_prompt
    from analyzer.models import load_frozen_model

    model, tok = load_frozen_model(MODEL)
    out = []
    for names, tasks in GROUPS:
        prompts = {n: load_prompt(SAMPLES / n) for n in names}
        res = evaluate_prompts(model, tok, prompts, list(tasks), limit=args.limit, model_name=MODEL,
                               progress=lambda m: print(m, file=sys.stderr, flush=True))
        d = res.to_dict()
        d["prompts"] = [{"name": n, "source": f"sample_prompts/{n}"} for n in names]
        out.append(d)
        print(res.to_markdown())
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Do Lester et al. (2021, §7)'s observations hold for SmolLM2?  Runs ``analyze`` on every prompt in
``sample_prompts/`` (plus random vectors with matched norms) and prints a Markdown table of the measured numbers:
label-word persistence, model-space tightness against random vectors and vocabulary tokens, and neighbours
repeated across positions — each with its null mean and p-value.

    python scripts/lester_observations.py [--k 5]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fmt(c: dict | None) -> str:
    if not c or c.get("p") is None:
        return "—"
    return f"{c['null_mean']:.3f} (p={c['p']:.3f})"


def main() -> None:
    from analyzer import SoftPrompt, analyze, load_prompts, load_vocabulary

    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    vocab = load_vocabulary("smollm2-135m")
    prompts = []
    for d in sorted((ROOT / "sample_prompts").iterdir()):
        if (d / "adapter_config.json").is_file():
            prompts += load_prompts(d)
    rng = np.random.default_rng(0)
    ref = prompts[0].vectors
    rv = rng.normal(size=ref.shape).astype(np.float32)
    rv *= np.linalg.norm(ref, axis=1, keepdims=True) / np.linalg.norm(rv, axis=1, keepdims=True)
    prompts.append(SoftPrompt(name="random-vectors (norms of the first prompt)", vectors=rv, source="-", kind="TENSOR"))
    rows = []
    for p in prompts:
        r = analyze(p, vocab, k=args.k, text_space=False, relatedness=False).prompts[0]
        t = r["tightness"]["model"]
        lab = r["persistence"].get("labels") or {}
        init = r["persistence"].get("init") or {}
        red = r["redundancy"]["positions_sharing_top1"]
        rows.append([p.name, r.get("init") or "—",
                     f"{lab['value']:.2f}" if "value" in lab else "—", fmt((lab.get("null") or {}).get("vocab_tokens")),
                     f"{init['rate']:.2f}" if "rate" in init else "—",
                     f"{t['value']:.3f}", fmt(t["null"].get("random_vectors")), fmt(t["null"].get("vocab_tokens")),
                     f"{red['value']:.2f}", fmt(red["null"].get("random_vectors"))])
    head = ["prompt", "init", f"label word in top-{args.k}", "null: vocab tokens", "init token kept",
            f"tightness (top-{args.k})", "null: random vectors", "null: vocab tokens", "positions sharing a top-1",
            "null: random vectors"]
    print("| " + " | ".join(head) + " |")
    print("|:---|:---|" + "---:|" * (len(head) - 2))
    for r in rows:
        print("| " + " | ".join(map(str, r)) + " |")


if __name__ == "__main__":
    main()

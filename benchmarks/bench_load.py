"""Issue 2 benchmark: embedding-only vocabulary load vs loading the whole model with transformers, on the
real SmolLM2 GGUF, cold cache and warm cache, wall time and peak RSS side by side in one run; and
``report`` end to end on a sample prompt with a warm cache.

Each measurement is a fresh interpreter (imports included).  Repeats are interleaved; medians reported."""

from __future__ import annotations

import argparse
import sys
import tempfile

from _common import ROOT, median, run_child, run_command, table

VOCAB = """
from analyzer import load_vocabulary
v = load_vocabulary("smollm2-135m")
float(v.embeddings[:, 0].sum())  # touch the matrix
"""

TRANSFORMERS = """
import os, torch
from transformers import AutoModelForCausalLM
from analyzer.models import resolve_model
p = resolve_model("smollm2-135m").path
m = AutoModelForCausalLM.from_pretrained(os.path.dirname(p), gguf_file=os.path.basename(p), dtype=torch.float32)
float(m.get_input_embeddings().weight[:, 0].sum())
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompt", default=str(ROOT / "sample_prompts" / "sentiment-labels"))
    args = ap.parse_args()

    res = {k: [] for k in ("vocab_cold", "vocab_warm", "hf_1st", "hf_2nd")}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {"SOFTPROMPT_ANALYZER_CACHE": cache, "TQDM_DISABLE": "1"}
            res["vocab_cold"].append(run_child(VOCAB, env))
            res["vocab_warm"].append(run_child(VOCAB, env))
            res["hf_1st"].append(run_child(TRANSFORMERS, env))
            res["hf_2nd"].append(run_child(TRANSFORMERS, env))

    def med(key, field):
        return median([r[field] for r in res[key]])

    hf_t, hf_m = med("hf_2nd", "seconds"), med("hf_2nd", "peak_rss_mb")
    rows = []
    for key, label in [("vocab_cold", "load_vocabulary, cold cache"), ("vocab_warm", "load_vocabulary, warm cache"),
                       ("hf_1st", "transformers from_pretrained(gguf_file=)"),
                       ("hf_2nd", "transformers from_pretrained, again")]:
        t, m = med(key, "seconds"), med(key, "peak_rss_mb")
        rows.append([label, f"{t:.2f}", f"{hf_t / t:.1f}×", f"{m:.0f}", f"{m / hf_m:.2f}"])
    print(f"SmolLM2-135M GGUF, median of {args.repeats} interleaved runs, fresh interpreter each (imports included)\n")
    print(table(["load", "wall s", "speed-up vs transformers", "peak RSS MB", "RSS / transformers"], rows))

    # report end to end, warm cache (the user's normal cache, warmed by one run first)
    cmd = [str(ROOT / ".venv" / "bin" / "softprompt-analyzer"), "report", args.prompt, "--format", "json"]
    run_command(cmd)
    times = [run_command(cmd) for _ in range(5)]
    print(f"\n`softprompt-analyzer report {args.prompt.replace(str(ROOT) + '/', '')} --format json`, warm cache: "
          f"median {median(times):.2f} s wall over 5 runs (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    sys.exit(main())

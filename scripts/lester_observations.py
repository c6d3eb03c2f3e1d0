"""Do Lester et al. (2021, §7)'s observations hold for SmolLM2?  Runs ``analyze`` on every prompt in
``sample_prompts/`` (plus random vectors with matched norms, read against the first prompt's task) and prints a
Markdown table of the claims from each prompt's table of tests (matched null, Benjamini-Hochberg q): label-word
persistence, model-space tightness, task-relatedness and its specificity, and the change from the initialisation.

    python scripts/lester_observations.py [--k 5]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cell(tests: list[dict], measure: str, null: str = "matched") -> str:
    """``value vs null mean (q, verdict)`` of one claim row, ``value vs null mean (p, described)`` of a
    reference row on the same null, or ``—`` (the scale table's formatting, :mod:`scale_table`)."""
    from scale_table import cell as format_row
    from scale_table import test_row

    return format_row(test_row(tests, measure, null), reference_note=", described")


def main() -> None:
    from analyzer import SoftPrompt, analyze, load_prompts, load_vocabulary
    from analyzer.analysis import analysis_settings
    from analyzer.report import prompt_task

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
    prompts.append(SoftPrompt(name="random vectors (norms of the first prompt)", vectors=rv, source="-",
                              kind="TENSOR"))
    first_task = prompt_task(prompts[0])
    rows = []
    for p in prompts:
        task = prompt_task(p) or first_task
        r = analyze(p, vocab, task=task, k=args.k, settings=analysis_settings(full=False)).prompts[0]
        t = r["tests"]
        init = r["persistence"].get("init") or {}
        red = r["redundancy"]["positions_sharing_top1"]
        rows.append([p.name, r.get("init") or "—", task,
                     cell(t, "label-word rate"), cell(t, "label-word rate", "init"),
                     f"{init['rate']:.2f}" if "rate" in init else "—",
                     cell(t, "tightness"), cell(t, "tightness", "init"), cell(t, "task-related share"),
                     cell(t, "task specificity"), f"{red['value']:.0f}",
                     str(sum(x["significant"] for x in t if x["claim"])) + f" of {sum(x['claim'] for x in t)}"])
    head = ["prompt", "init", "task", f"label word in top-{args.k}", "label words vs init", "init token kept",
            f"tightness (top-{args.k})", "tightness vs init", "task-related share", "task specificity",
            "positions sharing a top-1", "significant claims"]
    print("| " + " | ".join(head) + " |")
    print("|:---|:---|:---|" + "---:|" * (len(head) - 3))
    for r in rows:
        print("| " + " | ".join(map(str, r)) + " |")


if __name__ == "__main__":
    main()

"""Does the finding hold as models grow (issue 23)?  The Lester observations and the projection gap for the sample
prompts of every embedded model that is installed, side by side (``make sample-scale`` trains the Gemma and Qwen
prompts; this script reads them):

* trained prompts (``sample_prompts/`` for SmolLM2, ``sample_prompts/<model>/`` for the others): the claims of
  ``analyze`` (matched null, Benjamini-Hochberg q) -- label word among the top-k neighbours, tightness against the
  matched null and against the init, task-related share and task specificity -- and the projection gap
  (soft prompt's test accuracy minus its nearest-token projection's, paired bootstrap 95% CI) beside zero-shot;
* two untrained prompts per model, read against sentiment, as the same procedure's controls: ``random init``
  (what ``train --init random`` starts from: uniform in [-0.5, 0.5]) must show nothing, and ``text init`` (the
  sentiment instruction's own token rows, 20 of them: planted signal) must be found tight.  These need only the
  vocabulary, so the 1.5B (whose frozen model is not run here) gets them too.

    python scripts/scale_table.py [--k 5] [--limit 200] [--models smollm2-135m,qwen2.5-coder-0.5b]

Writes ``sample_prompts/scale.json`` and prints the Markdown table the README and Findings show."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

# model -> (folder of its trained sample prompts, their names); the 1.5B has none (vocabulary-only readings)
MODELS = {
    "smollm2-135m": ("sample_prompts", ["sentiment-labels", "spam-labels"]),
    "gemma3-270m": ("sample_prompts/gemma3-270m", ["gemma-sentiment-labels"]),
    "qwen2.5-coder-0.5b": ("sample_prompts/qwen2.5-coder-0.5b", ["qwen-sentiment-labels", "qwen-spam-labels"]),
    "qwen2.5-coder-1.5b": (None, []),
}
RUN_MODEL = {"smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b"}    # projection gap (runs the frozen model)
CONTROL_TASK = "sentiment"
CONTROL_LENGTH = 20


def control_prompts(name: str, vocab):
    """The two untrained controls at ``name``'s width: random init and the sentiment instruction's token rows."""
    import os

    import torch
    from transformers import AutoTokenizer

    from analyzer.models import resolve_model
    from analyzer.tasks import get_task
    from analyzer.types import SoftPrompt

    g = torch.Generator().manual_seed(0)          # analyzer.training.initialize.init_prompt's "random"
    rand = (torch.rand(CONTROL_LENGTH, vocab.embeddings.shape[1], generator=g) - 0.5).numpy()
    src = resolve_model(name)
    d, f = os.path.split(src.path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f) if src.kind == "gguf" else AutoTokenizer.from_pretrained(d)
    ids = tok.encode(get_task(CONTROL_TASK).instruction, add_special_tokens=False)
    ids = (ids * (CONTROL_LENGTH // len(ids) + 1))[:CONTROL_LENGTH]        # tiled, as PEFT's TEXT init does
    text = np.asarray(vocab.embeddings, np.float32)[ids]
    return [SoftPrompt(name="random init", vectors=rand.astype(np.float32), source="-", kind="TENSOR"),
            SoftPrompt(name="text init (instruction)", vectors=text, source="-", kind="TENSOR")]


# the table's readings: (measure, null) of a row of the prompt's table of tests (the model space)
MEASURES = {"label_word": ("label-word rate", "matched"), "tightness": ("tightness", "matched"),
            "tightness_vs_init": ("tightness", "init"), "task_related": ("task-related share", "matched"),
            "specificity": ("task specificity", "matched")}


def test_row(tests, measure: str, null: str) -> dict | None:
    """One row of the statistics layer's table, as it stands: value, null mean, p, q (claims only), verdict."""
    from analyzer._format import short_verdict

    for r in tests:
        if r["measure"] == measure and r["null"] == null and r["space"] in ("model", "-"):
            return {"value": r["value"], "null_mean": r["null_mean"], "p": r["p"], "n_null": r["n_null"],
                    "direction": r["direction"], "claim": bool(r["claim"]), "q": r["q"] if r["claim"] else None,
                    "verdict": short_verdict(r) if r["claim"] else "reference (not a claim)"}
    return None


def cell(r: dict | None, reference_note: str = "") -> str:
    """``value vs null (q, verdict)`` for a claim, ``value vs null (p<reference_note>)`` for a reference row, ``—``
    when absent (``r``: a :func:`test_row`)."""
    from analyzer.stats import format_p

    if r is None:
        return "—"
    if r["claim"]:
        return f"{r['value']:.3f} vs {r['null_mean']:.3f} ({format_p(r['q'], None, 'q')}, {r['verdict']})"
    return (f"{r['value']:.3f} vs {r['null_mean']:.3f} "
            f"({format_p(r['p'], r['n_null'], direction=r['direction'])}{reference_note})")


def _gap(g: dict) -> dict:
    acc = g["accuracy"]
    gap = g["gap"]
    return {"soft": acc["soft"]["accuracy"], "zero_shot": acc["none"]["accuracy"],
            "projection": acc["projection"]["accuracy"], "gap": gap["diff"], "gap_ci": [gap["ci_low"], gap["ci_high"]],
            "gap_mcnemar_p": gap["mcnemar"]["p_value"], "n": g["n"]}


def rows_for(name: str, k: int, limit: int) -> list[dict]:
    from analyzer import analyze, load_prompts, load_vocabulary
    from analyzer.analysis import analysis_settings
    folder, names = MODELS[name]
    t0 = time.perf_counter()
    vocab = load_vocabulary(name)
    print(f"{name}: vocabulary {vocab.embeddings.shape} in {time.perf_counter() - t0:.0f} s", flush=True)
    trained = []
    finished = set(json.loads((ROOT / folder / "results.json").read_text())["runs"]) \
        if folder and (ROOT / folder / "results.json").is_file() else set()
    for n in names:
        d = ROOT / folder / n
        if n in finished and (d / "adapter_config.json").is_file():     # trained and scored by train_samples.py
            trained += load_prompts(d)
        else:
            print(f"  {n}: not trained yet (no finished run in {ROOT / folder / 'results.json'}); skipped", flush=True)
    model = tok = None
    if trained and name in RUN_MODEL:
        from analyzer.models import load_frozen_model

        model, tok = load_frozen_model(name)
    out = []
    from analyzer.report import prompt_task

    for p, task in [(p, None) for p in trained] + [(p, CONTROL_TASK) for p in control_prompts(name, vocab)]:
        task = task or prompt_task(p)
        t0 = time.perf_counter()
        r = analyze(p, vocab, task=task, k=k, settings=analysis_settings(full=False)).prompts[0]
        t = r["tests"]
        row = {"model": name, "vocabulary": list(vocab.embeddings.shape), "prompt": p.name, "task": task,
               "trained": p in trained, **{key: test_row(t, *what) for key, what in MEASURES.items()},
               "significant": f"{sum(x['significant'] for x in t if x['claim'])} of {sum(x['claim'] for x in t)}",
               "analyze_seconds": round(time.perf_counter() - t0, 1)}
        if model is not None and p in trained:
            from analyzer.faithfulness.projection import projection_gap

            g = projection_gap(model, tok, p, task, vocab, limit=limit, model_name=name,
                               conditions=("none", "projection", "soft"))
            row.update(_gap(g))
        print(f"  {p.name}: {row}", flush=True)
        out.append(row)
    del model
    return out


def markdown(rows: list[dict], k: int) -> str:
    head = ["model (V × d)", "prompt", "soft / zero-shot / projection (test)", "projection gap [95% CI]",
            f"label word in top-{k}", f"tightness (top-{k}) vs matched null", "tightness vs init",
            "task-related share", "task specificity"]
    lines = ["| " + " | ".join(head) + " |", "|:---|:---|---:|---:|" + "---:|" * (len(head) - 4)]
    for r in rows:
        v = "×".join(f"{x:,}" for x in r["vocabulary"])
        acc = (f"{r['soft']:.3f} / {r['zero_shot']:.3f} / {r['projection']:.3f}" if "soft" in r else "—")
        gap = (f"{r['gap']:+.3f} [{r['gap_ci'][0]:+.3f}, {r['gap_ci'][1]:+.3f}]"
               if r.get("gap") is not None and r.get("gap_ci") else "—")
        lines.append(f"| {r['model']} ({v}) | {r['prompt']} | {acc} | {gap} | "
                     + " | ".join(cell(r[key]) for key in MEASURES) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from analyzer.models import is_installed

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--limit", type=int, default=200, help="test examples of the projection gap")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default=str(ROOT / "sample_prompts" / "scale.json"))
    args = ap.parse_args(argv)
    path = Path(args.out)
    done = {"rows": []}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if not is_installed(name):
            print(f"{name}: not installed (softprompt-analyzer models --install {name}); skipped", flush=True)
            continue
        rows = rows_for(name, args.k, args.limit)
        # read again just before writing: other models' rows may have been written meanwhile by another run
        done = json.loads(path.read_text()) if path.is_file() else {"rows": []}
        done["rows"] = [r for r in done["rows"] if r["model"] != name] + rows
        order = list(MODELS)
        done["rows"].sort(key=lambda r: (order.index(r["model"]), not r["trained"], r["prompt"]))
        done.update(k=args.k, limit=args.limit)
        path.write_text(json.dumps(done, indent=2) + "\n")
    print(markdown(done["rows"], args.k))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

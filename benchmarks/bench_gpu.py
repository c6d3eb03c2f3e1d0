"""Issue 23 benchmark: the GPU path.  On a machine where torch sees a CUDA GPU:

* the all-pairs K-neighbour pass (K = 10, what CSLS and hubness need) on every installed real vocabulary
  (SmolLM2-135M, Gemma 3 270M, Qwen2.5-Coder 0.5B / 1.5B) and on the synthetic 128k x 2,048 and 128k x 4,096
  vocabularies (:mod:`analyzer._synthetic`): float32 (exact) and bfloat16 tiles with a float32 re-rank, wall
  time, the GPU's peak memory, and recall@10 of the bfloat16 pass against the float32 one over *every* row;
* prompt-tuning steps on the GPU (``analyzer.training.train``, 20 virtual tokens, the sentiment task, batch 8):
  mean step time, float32 and bfloat16;
* the model readings on the GPU (SmolLM2, the 20-token sentiment-labels sample): ``evaluate`` on 200 test examples
  and ``importance`` with the three replacements on 100 (its removal null built first, untimed), each beside the
  same reading on the CPU (the accuracies, and the largest difference of a removal's gold-label NLL change).

On a machine without one it says so and exits with status 0 (``make bench`` runs every ``bench_*.py``).

    python benchmarks/bench_gpu.py [--steps 20] [--skip-train] [--models qwen2.5-coder-0.5b ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import table  # noqa: E402

REAL = ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
SYNTHETIC = [(131_072, 2048), (131_072, 4096)]


def neighbourhood_rows(models: list[str], synthetic: list[tuple[int, int]]) -> list[list]:
    import dataclasses

    import numpy as np
    import torch

    from analyzer import load_vocabulary
    from analyzer._synthetic import synthetic_embeddings
    from analyzer.models import is_installed
    from analyzer.neighbors import vocab_neighborhood

    vocabs = []
    for name in models:
        if is_installed(name):
            vocabs.append((name, lambda name=name: load_vocabulary(name)))
        else:
            print(f"{name} is not installed (softprompt-analyzer models --install {name}): skipped")
    for n, d in synthetic:
        def make(n=n, d=d):
            base = load_vocabulary("smollm2-135m")  # only for the Vocabulary's fields; rows replaced
            toks = tuple(f"tok{i}" for i in range(n))
            return dataclasses.replace(base, name=f"synthetic {n}x{d}", embeddings=synthetic_embeddings(n, d),
                                       tokens=toks, raw_tokens=toks, excluded=np.zeros(n, bool),
                                       key=f"bench-gpu-synthetic-{n}x{d}")
        vocabs.append((f"synthetic {n}x{d}", make))
    rows = []
    for label, make in vocabs:
        v = make()
        res = {}
        for exact in (True, False):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            nb = vocab_neighborhood(v, 10, cache=False, exact=exact, device="cuda")
            torch.cuda.synchronize()
            res[exact] = (nb, time.perf_counter() - t, torch.cuda.max_memory_allocated() / 2**20)
        ex, ap = res[True][0], res[False][0]
        keep = np.where(ex.indexed)[0]
        recall = float(np.mean([np.intersect1d(a, b).size / 10 for a, b in zip(ap.ids[keep], ex.ids[keep])]))
        f32 = v.size * v.dim * 4 / 2**20
        for exact, what in ((True, "float32 (exact)"), (False, "bfloat16 + float32 re-rank")):
            nb, sec, mem = res[exact]
            rows.append([label, f"{v.size:,} x {v.dim:,}", what, f"{sec:.2f}", f"{mem:.0f}", f"{mem / f32:.2f}",
                         "1.000" if exact else f"{recall:.3f}"])
        print(f"{label}: done", file=sys.stderr, flush=True)
    return rows


def training_rows(model: str, steps: int) -> list[list]:
    from analyzer.models import is_installed
    from analyzer.training import TrainConfig, train

    if not is_installed(model):
        return []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "bfloat16"):
            cfg = TrainConfig(model=model, task="sentiment", out=f"{tmp}/{dtype}", steps=steps, batch_size=8,
                              num_virtual_tokens=20, prompt_tuning_init="labels", eval_every=0, eval_examples=1,
                              snapshot_every=0, checkpoint_every=steps, seed=0, dtype=dtype, device="cuda")
            r = train(cfg)
            rows.append([model, dtype, steps, f"{r.mean_step_time * 1000:.0f}",
                         f"{r.tokens_per_second:.0f}" if r.tokens_per_second else ""])
    return rows


def reading_rows(model: str = "smollm2-135m") -> list[list]:
    """The model readings on CUDA and on the CPU, side by side (see the module's text)."""
    import numpy as np

    from analyzer.faithfulness import importance
    from analyzer.loaders import load_prompt, load_vocabulary
    from analyzer.models import is_installed, load_frozen_model
    from analyzer.training.scoring import evaluate

    if not is_installed(model):
        return []
    prompt = load_prompt(Path(__file__).resolve().parents[1] / "sample_prompts" / "sentiment-labels")
    vocab = load_vocabulary(model)
    rows, got = [], {}
    for device in ("cuda", "cpu"):
        frozen, tok = load_frozen_model(model, device=device)
        t = time.perf_counter()
        ev = evaluate(frozen, tok, "sentiment", prompt, limit=200, model_name=model)
        t_eval = time.perf_counter() - t
        kw = dict(limit=100, model_name=model, curve=False)
        importance(frozen, tok, prompt, "sentiment", vocab, replacements=("removed",), **kw)   # fills the null
        t = time.perf_counter()
        imp = importance(frozen, tok, prompt, "sentiment", vocab, **kw)
        t_imp = time.perf_counter() - t
        got[device] = np.array([p.removed.delta_nll for p in imp.positions])
        rows.append([device, f"{ev.accuracy:.3f}", f"{t_eval:.1f}", f"{ev.n / t_eval:.0f}",
                     f"{t_imp:.1f}", f"{imp.settings['example_forwards'] / t_imp:.0f}"])
        del frozen
    diff = float(np.abs(got["cuda"] - got["cpu"]).max())
    rows[0].append(f"{diff:.4f}")
    rows[1].append("")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=REAL, help="real vocabularies to run (when installed)")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic 128k vocabularies")
    ap.add_argument("--steps", type=int, default=20, help="training steps per precision")
    ap.add_argument("--train-model", default="qwen2.5-coder-0.5b", help="model of the training steps")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-readings", action="store_true", help="skip the model readings (evaluate, importance)")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(f"bench_gpu: no CUDA GPU here (torch {torch.__version__}, {build}); nothing to measure. On a GPU "
              f"machine: make install TORCH_SPEC=\"torch --index-url https://download.pytorch.org/whl/cu126\", "
              f"then python benchmarks/bench_gpu.py")
        return 0
    print(f"bench_gpu: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}\n")
    rows = neighbourhood_rows(args.models, [] if args.no_synthetic else SYNTHETIC)
    print("All-pairs K=10 neighbourhood on the GPU (first time, no cache); recall@10 of the bfloat16 pass "
          "against the float32 one over every row\n")
    print(table(["vocabulary", "V x d", "pass", "wall s", "GPU peak MB", "GPU peak / f32 matrix", "recall@10"],
                rows))
    if not args.skip_train:
        trows = training_rows(args.train_model, args.steps)
        if trows:
            print(f"\nPrompt tuning on the GPU ({args.steps} steps, batch 8, 20 virtual tokens, sentiment)\n")
            print(table(["model", "dtype", "steps", "mean step ms", "tokens/s"], trows))
        else:
            print(f"\n{args.train_model} is not installed: no training rows "
                  f"(softprompt-analyzer models --install {args.train_model})")
    if not args.skip_readings:
        rrows = reading_rows()
        if rrows:
            print("\nModel readings, SmolLM2, sentiment-labels: evaluate on 200 test examples, importance (three "
                  "replacements, removal null cached) on 100; the largest difference of a removal's NLL change "
                  "between the two devices\n")
            print(table(["device", "accuracy", "evaluate s", "examples/s", "importance s", "examples/s",
                         "max |ΔNLL cuda - cpu|"], rrows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

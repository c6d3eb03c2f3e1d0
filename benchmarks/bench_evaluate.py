"""Cost of ``evaluate`` on SmolLM2 (2 cores): one sample prompt on 200 test examples of its task (the issue's
target: <= 30 s), and the whole command (the prompt plus its three baselines: zero-shot, the instruction, the
majority class) -- medians of 3 runs in one process, the model loaded once; examples per second."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import table  # noqa: E402

N = 200
REPEATS = 3


def main() -> None:
    import torch

    from analyzer.faithfulness.evaluation import evaluate_prompts
    from analyzer.loaders import load_prompt
    from analyzer.models import load_frozen_model
    from analyzer.training.scoring import evaluate

    root = Path(__file__).resolve().parents[1]
    model, tok = load_frozen_model("smollm2-135m")
    prompt = load_prompt(root / "sample_prompts" / "sentiment-labels")
    evaluate(model, tok, "sentiment", prompt, limit=8)            # warm-up
    one, whole = [], []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        evaluate(model, tok, "sentiment", prompt, limit=N)
        one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        evaluate_prompts(model, tok, {"p": prompt}, ["sentiment"], limit=N, model_name="smollm2-135m")
        whole.append(time.perf_counter() - t0)
    m1, m2 = statistics.median(one), statistics.median(whole)
    print(f"torch threads: {torch.get_num_threads()}; medians of {REPEATS}, one process, model loaded once\n")
    print(table(["what", "seconds (median)", "examples/s"],
                [[f"the prompt on {N} sentiment test examples", f"{m1:.1f}", f"{N / m1:.1f}"],
                 [f"`evaluate` (prompt + zero-shot + instruction) on {N}", f"{m2:.1f}", f"{3 * N / m2:.1f}"]]))


if __name__ == "__main__":
    main()

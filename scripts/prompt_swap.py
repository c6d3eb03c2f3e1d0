"""The per-task prompt swap of the shipped single-task sample prompts (``make sample-swap``): one frozen SmolLM2,
the ``sentiment-labels``, ``question-type-text`` and ``spam-labels`` prompts and the zero-shot template, each
scored on every task's first 200 test examples -- the examples of the table in ``sample_prompts/README.md`` --
written to ``sample_prompts/swap.json`` (read by the dashboard's Compare section when the selected prompts are
exactly these, matched by content hash).

    python scripts/prompt_swap.py                   # ~5-10 min on 2 busy cores
    python scripts/prompt_swap.py --limit 50        # a quick trial (written to --out, not over swap.json)

``readme_section()`` renders the result as a Markdown section for ``sample_prompts/README.md``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "sample_prompts"
MODEL = "smollm2-135m"
PROMPTS = ("sentiment-labels", "question-type-text", "spam-labels")
LIMIT = 200            # the README table's test examples (scripts/train_samples.py scores task.test[:200])
SWAP_FILE = "swap.json"


def readme_section(folder: str | Path = SAMPLES, file: str = SWAP_FILE,
                   title: str = "## One model, a prompt per task", how: str = "`make sample-swap`") -> str:
    """``title`` with the swap table of ``folder/file``; "" when there is none."""
    from analyzer.swap import SwapResult

    path = Path(folder) / file
    if not path.is_file():
        return ""
    res = SwapResult.read(path)
    return (f"{title}\n\n"
            f"The frozen model and the template stay the same; only the prompt in front changes ({how}, "
            "`softprompt-analyzer swap`). Every cell is scored on the same test examples of its row's task, so a "
            "row's cells are paired (exact McNemar test).\n\n" + res.to_markdown())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", default=str(SAMPLES), help="the folder holding the sample prompts")
    ap.add_argument("--limit", type=int, default=LIMIT, help=f"test examples per task (default {LIMIT})")
    ap.add_argument("--out", default=None, help=f"where to write the JSON (default <samples>/{SWAP_FILE})")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = ap.parse_args(argv)
    from analyzer.exceptions import AnalyzerError
    from analyzer.swap import swap_for_model
    from analyzer.cache import atomic_write_text

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    samples = Path(args.samples).resolve()
    out = Path(args.out).resolve() if args.out else None
    if ROOT in samples.parents:   # recorded as the prompts' sources: relative to the repository, not this machine
        os.chdir(ROOT)
        samples = samples.relative_to(ROOT)
    missing = [p for p in PROMPTS if not (samples / p / "adapter_config.json").is_file()]
    if missing:
        print(f"error: no adapter for {', '.join(missing)} in {samples}; expected the sample prompts "
              f"{', '.join(PROMPTS)} (make sample-prompts trains them)", file=sys.stderr)
        return 2
    if out is None:
        out = samples / (SWAP_FILE if args.limit == LIMIT else f"swap-limit{args.limit}.json")
    t0 = time.perf_counter()
    try:
        res = swap_for_model(MODEL, [str(samples / p) for p in PROMPTS], limit=args.limit,
                             progress=lambda msg: print(f"… {msg}", file=sys.stderr, flush=True))
    except AnalyzerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic_write_text(out, res.to_json() + "\n")
    print(res.to_table())
    print(f"wrote {out} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

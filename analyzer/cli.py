"""Command line: argument parsing and output formatting only; every computation is a public API call.

``softprompt-analyzer report PROMPT... [--model M] [-k K] [--task T] [--metric ...] [--format ...] [--out FILE]``
``softprompt-analyzer models``

Bad input prints one line on stderr and exits 2; nothing prints a traceback unless
``SOFTPROMPT_ANALYZER_DEBUG=1``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .exceptions import AnalyzerError

EXIT_USAGE = 2
EXIT_INTERNAL = 1


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _write_output(text: str, out: str | None) -> None:
    if out:
        from .cache import atomic_write_text

        try:
            atomic_write_text(out, text if text.endswith("\n") else text + "\n")
        except OSError as e:
            raise AnalyzerError(f"Cannot write the output file {out!r}: {e.strerror}.") from None
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


# -- subcommands -------------------------------------------------------------------------------------
def cmd_report(args) -> int:
    from . import build_report, load_vocabulary
    from .models import model_for_prompts

    prompts = _load_all(args.prompts, args.task)
    model = model_for_prompts(prompts, args.model)
    vocab = load_vocabulary(model)
    report = build_report(prompts, vocab, k=args.k, metric=args.metric, include_special=args.include_special)
    _write_output(report.render(args.format), args.out)
    return 0


def _load_all(paths, task_index):
    from . import load_prompts

    prompts = []
    for path in paths:
        prompts += load_prompts(path, task=task_index)
    return prompts


def cmd_analyze(args) -> int:
    from . import load_vocabulary
    from .analysis import analyze
    from .models import model_for_prompts

    prompts = _load_all(args.prompts, args.task_index)
    vocab = load_vocabulary(model_for_prompts(prompts, args.model))
    say = (lambda msg: print(f"… {msg}", file=sys.stderr)) if not args.quiet else None
    report = analyze(prompts, vocab, task=args.task, k=args.k, metric=args.metric, seed=args.seed,
                     n_null=args.n_null, text_space=not args.no_text_space, faithfulness=args.faithfulness,
                     faithfulness_limit=args.faithfulness_limit, include_special=args.include_special, progress=say)
    _write_output(report.render(args.format), args.out)
    return 0


def cmd_models(args) -> int:
    from .models import list_models

    rows = list_models()
    if args.format == "json":
        import json

        _write_output(json.dumps(rows, indent=2), None)
        return 0
    for r in rows:
        mark = "installed" if r["installed"] else "not installed"
        default = " (default)" if r["default"] else ""
        print(f"{r['name']}{default}: {r['description']}; vocab {r['vocab_size']:,} × {r['dim']}; {r['license']}; "
              f"{mark}" + ("" if r["installed"] else f" — install with: {r['install']}"))
    return 0


# -- parser ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="softprompt-analyzer",
                                description="Look inside learned soft prompts (PEFT prompt tuning).")
    from . import __version__

    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("report", help="nearest vocabulary neighbours of every virtual token")
    r.add_argument("prompts", nargs="+", metavar="PROMPT",
                   help="PEFT adapter directory or tensor file (.safetensors .npy .npz .pt)")
    r.add_argument("--model", "-m", default=None,
                   help="embedded name (smollm2-135m), HF directory, .gguf file or hub id; default: the adapter's "
                        "base model, else smollm2-135m")
    r.add_argument("-k", type=_positive_int, default=10, help="neighbours per virtual token (default 10)")
    r.add_argument("--task", type=int, default=None, help="task index of a multitask prompt-tuning adapter")
    r.add_argument("--metric", choices=["cosine", "csls", "l2", "dot"], default="cosine",
                   help="neighbour metric (csls = hubness-corrected cosine)")
    r.add_argument("--include-special", action="store_true",
                   help="include special tokens and unused rows among the neighbours")
    r.add_argument("--format", "-f", choices=["table", "json", "markdown"], default="table")
    r.add_argument("--out", "-o", default=None, help="write to this file instead of stdout")
    r.set_defaults(func=cmd_report)

    a = sub.add_parser("analyze", help="neighbours + tightness, null baselines, hubness, relatedness, faithfulness")
    a.add_argument("prompts", nargs="+", metavar="PROMPT", help="PEFT adapter directory or tensor file")
    a.add_argument("--model", "-m", default=None, help="as for `report`")
    a.add_argument("--task", "-t", default=None,
                   help="task for relatedness/faithfulness: a built-in name (see `tasks`) or a CSV/JSONL file; "
                        "default: the task the adapter records")
    a.add_argument("--task-index", type=int, default=None, help="task index of a multitask prompt-tuning adapter")
    a.add_argument("-k", type=_positive_int, default=10, help="neighbours per virtual token (default 10)")
    a.add_argument("--metric", choices=["cosine", "csls", "l2", "dot"], default="cosine",
                   help="neighbour metric; csls = hubness-corrected cosine")
    a.add_argument("--include-special", action="store_true")
    a.add_argument("--seed", type=int, default=0, help="seed of every null sample (same inputs → same report)")
    a.add_argument("--n-null", type=_positive_int, default=500, help="null sample size per baseline (default 500)")
    a.add_argument("--no-text-space", action="store_true", help="skip the external MiniLM embedding space")
    a.add_argument("--faithfulness", action="store_true",
                   help="also run the frozen model: projection gap, Prompt-F1, logit lens, self-description")
    a.add_argument("--faithfulness-limit", type=_positive_int, default=200,
                   help="held-out examples for the accuracy comparison (default 200)")
    a.add_argument("--format", "-f", choices=["table", "json", "markdown", "html"], default="table")
    a.add_argument("--out", "-o", default=None, help="write to this file instead of stdout")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress messages on stderr")
    a.set_defaults(func=cmd_analyze)

    m = sub.add_parser("models", help="list the embedded models and whether each is installed")
    m.add_argument("--format", "-f", choices=["table", "json"], default="table")
    m.set_defaults(func=cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AnalyzerError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an unexpected failure still gets one line, with the way to see more
        if os.environ.get("SOFTPROMPT_ANALYZER_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        print(f"internal error: {type(e).__name__}: {msg} (set SOFTPROMPT_ANALYZER_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

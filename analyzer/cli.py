"""Command line: argument parsing and output formatting only; every computation is a public API call.

``softprompt-analyzer report PROMPT... [--model M] [-k K] [--task-index N] [--metric ...] [--format ...] [--out FILE]``
``softprompt-analyzer models [--install [NAME...] [--yes] [--force]]``
``softprompt-analyzer samples [DIR] [--force]``
``softprompt-analyzer waywardness --task T --target TEXT [--gammas 0,0.03,0.3,3] [--init MODE|PROMPT] ...``
``softprompt-analyzer swap PROMPT... [--task T ...] [--limit N] [--format ...] [--out FILE]``
``softprompt-analyzer importance PROMPT [--task T] [--limit N] [--split test|validation] [--format ...] [--out FILE]``
``softprompt-analyzer evaluate PROMPT... [--task T ...] [--limit N] [--split test|validation] [--format ...]``
``softprompt-analyzer describe PROMPT [--task T] [--layers 0,8,15,22] [--null-size N] [--format ...] [--out FILE]``
``softprompt-analyzer decode PROMPT [--task T] [--length N] [--fluency L] [--steps S] [--out DIR] [--resume]``
``softprompt-analyzer compare PROMPT... [--tasks T1,T2,...] [--no-transfer] [--limit N] [--format ...] [--out FILE]``
(``--out`` of ``decode``, as of ``train``, is a folder: the run's files; the result is printed in ``--format``)

One tool: every flag has help and shows its default (``--help``); ``--task`` is a task (a built-in name or a
CSV/JSONL file) wherever it appears, ``--task-index`` a task of a multitask adapter; every command that writes a
report takes ``--format/-f table|json|markdown|html`` and ``--out/-o FILE``; every command that prints progress
takes ``-q/--quiet``, and its progress is plain lines on stderr (a line per phase, a heartbeat every few seconds,
a line before and after the model load) that read the same in a log file; ``--model ''`` is refused.

Bad input prints one line on stderr and exits 2 -- so does an operating-system error (an unreadable file or
folder, a read-only or full disk: the path, what was wanted, what to do) and a ``--seed`` outside
``[0, 2**32 - 1]`` in any command; nothing prints a traceback unless ``SOFTPROMPT_ANALYZER_DEBUG=1``."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from ._cli_args import EXIT_USAGE, build_parser, param_flags
from ._progress import loading
from .exceptions import AnalyzerError, os_error_message, os_errors

EXIT_INTERNAL = 1

def cli_parser():
    """The command line's parser (:func:`~analyzer._cli_args.build_parser`; ``--device`` on every command of
    :data:`~analyzer._cli_args.DEVICE_COMMANDS`)."""
    return build_parser()


def _use_device(args):
    """The command's ``--device`` as the process default while it runs (:func:`analyzer._device.using_device`):
    the all-pairs neighbour pass and whatever else asks :func:`~analyzer._device.resolve_device` follow it;
    ``cuda`` without a GPU stops the command at its start with one line."""
    from ._device import using_device

    device = getattr(args, "device", None)
    ok = isinstance(device, str) and device.split(":")[0] in ("auto", "cpu", "cuda")
    return using_device(device.split(":")[0] if ok else None)


@contextmanager
def _progress(args):
    """The ``progress`` callable of a command: None with ``--quiet``, else a :class:`~analyzer._progress.Progress`
    (a line per phase and a heartbeat line while a phase runs on), stopped before the output is written."""
    if getattr(args, "quiet", False):
        yield None
        return
    from ._progress import Progress

    with Progress() as say:
        yield say


def _write_output(text: str, out: str | None) -> None:
    if out:
        from .cache import atomic_write_text

        with os_errors("write the output file (--out)", path=out):
            atomic_write_text(out, text if text.endswith("\n") else text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


# -- subcommands -------------------------------------------------------------------------------------
def _report_task_index(args) -> int | None:
    """``report --task-index``; the old spelling ``report --task N`` still works, with a warning (``--task`` names a
    task in every other command)."""
    if args.legacy_task is None:
        return args.task_index
    try:
        index = int(args.legacy_task)
    except ValueError:
        raise AnalyzerError(f"`report` reads no task (its neighbours do not depend on one); got --task "
                            f"{args.legacy_task!r}. --task-index N picks one task of a multitask adapter; task "
                            f"relatedness is `softprompt-analyzer analyze --task {args.legacy_task}`.") from None
    if index < 0 or (args.task_index is not None and args.task_index != index):
        raise AnalyzerError(f"--task {args.legacy_task!r} of `report` is the old spelling of --task-index, which "
                            f"takes a task index >= 0" + (f" (and --task-index {args.task_index} was given too)"
                                                          if args.task_index is not None else "") + ".")
    print(f"warning: `report --task {index}` is now `report --task-index {index}` (--task names a task in every "
          f"command)", file=sys.stderr)
    return index


def cmd_report(args) -> int:
    from . import build_report, load_vocabulary
    from .models import model_for_prompts

    prompts = _load_all(args.prompts, _report_task_index(args))
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
    name = model_for_prompts(prompts, args.model)
    with _progress(args) as say:
        with loading(say, name, "the vocabulary of"):
            vocab = load_vocabulary(name)
        settings = analysis_settings(full=True, text_space=not args.no_text_space, seed=args.seed,
                                     n_null=args.n_null)
        report = analyze(prompts, vocab, task=args.task, label_words=words, text_column=args.text_column,
                         label_column=args.label_column, k=args.k, metric=args.metric, settings=settings,
                         faithfulness=args.faithfulness, faithfulness_limit=args.faithfulness_limit,
                         include_special=args.include_special, progress=say)
    _write_output(report.render(args.format), args.out)
    return 0


def _train_config(a):
    """The TrainConfig of `train`'s arguments: each field from its flag (``_cli_args.TRAIN_DESTS``)."""
    from ._cli_args import TRAIN_DESTS
    from .tasks import parse_label_words
    from .training import TrainConfig

    settings = {name: getattr(a, dest) for name, dest in TRAIN_DESTS.items()}
    return TrainConfig(**{**settings, "label_words": parse_label_words(a.label_words)})


def cmd_train(a) -> int:
    from .training import ProgressBar, train
    from .training.run_meta import RunMeta

    cfg = _train_config(a)
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
        print(RunMeta.load(res.out).summary(res), file=sys.stderr)
    return 0


def cmd_waywardness(a) -> int:
    from .faithfulness import waywardness_for_model
    from .tasks import parse_label_words

    with _progress(a) as say:
        res = waywardness_for_model(a.model, a.task, a.target, init=a.init,
                                    label_words=parse_label_words(a.label_words), gammas=a.gammas, steps=a.steps,
                                    limit=a.limit, split=a.split, progress=say, num_virtual_tokens=a.virtual_tokens,
                                    batch_size=a.batch_size, lr=a.lr, seed=a.seed, max_length=a.max_length)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_swap(a) -> int:
    from .swap import swap_for_model

    with _progress(a) as say:
        res = swap_for_model(a.model, a.prompts, a.task or None, limit=a.limit, progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_evaluate(a) -> int:
    from .faithfulness.evaluation import evaluate_for_model
    from .tasks import parse_label_words

    with _progress(a) as say:
        res = evaluate_for_model(a.model, a.prompts, a.task or None, split=a.split, limit=a.limit,
                                 task_index=a.task_index, label_words=parse_label_words(a.label_words),
                                 text_column=a.text_column, label_column=a.label_column, progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_importance(a) -> int:
    from .faithfulness import importance_for_model
    from .tasks import parse_label_words

    with _progress(a) as say:
        res = importance_for_model(a.model, a.prompt, a.task, label_words=parse_label_words(a.label_words),
                                   task_index=a.task_index, split=a.split, limit=a.limit, seed=a.seed,
                                   n_orders=a.orders, curve=not a.no_curve, null_size=a.null_size,
                                   null_limit=a.null_limit, progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_describe(a) -> int:
    from .faithfulness import describe_for_model
    from .tasks import parse_label_words

    with _progress(a) as say:
        res = describe_for_model(a.model, a.prompt, a.task, task_index=a.task_index,
                                 label_words=parse_label_words(a.label_words), layers=a.layers,
                                 all_pairs=a.all_pairs, null_size=a.null_size, max_new_tokens=a.max_new_tokens,
                                 planted=() if a.no_planted else ("instruction",),
                                 other_readings=not a.no_other_readings, seed=a.seed, progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_decode(a) -> int:
    from .decode import DecodeConfig, decode_for_model
    from .tasks import parse_label_words

    lengths = a.length or [None]
    sweep = len(a.fluency) > 1 or len(lengths) > 1
    config = DecodeConfig(length=lengths[0], steps=a.steps, lr=a.lr, batch_size=a.batch_size,
                          task_weight=a.task_weight, agreement_weight=a.agreement_weight, fluency=a.fluency[0],
                          class_balanced=not a.unbalanced, init=a.init, eval_every=a.eval_every,
                          checkpoint_every=a.eval_every, seed=a.seed)
    kw = dict(label_words=parse_label_words(a.label_words), task_index=a.task_index, config=config, limit=a.limit,
              out=a.out, resume=a.resume)
    if sweep:
        kw.update(fluencies=a.fluency, lengths=lengths)
    else:
        kw.update(overwrite=a.overwrite)
    with _progress(a) as say:
        res = decode_for_model(a.model, a.prompt, a.task, progress=say, **kw)
    _write_output(res.render(a.format), None)
    if a.out:
        what = "the frontier's decodes and frontier.json" if sweep else "a PEFT adapter and decode.json"
        print(f"wrote the decoded prompt to {a.out} ({what})", file=sys.stderr)
    return 0


def cmd_compare(a) -> int:
    from .decode import compare_for_model

    with _progress(a) as say:
        res = compare_for_model(a.model, a.prompts, tasks=a.tasks, transfer=not a.no_transfer,
                                activation=not a.no_activation, limit=a.limit, n_perm=a.permutations, seed=a.seed,
                                progress=say)
    _write_output(res.render(a.format), a.out)
    return 0


def cmd_tasks(args) -> int:
    from .tasks import list_tasks

    rows = list_tasks()
    if args.format == "json":
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
    from .ui.launch import check_port_free, run_app

    check_port_free(args.address, args.port)
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


def in_flag_terms(message: str, flags: dict[str, str]) -> str:
    """An API message in the terms of the command line: ``The 'steps' parameter of DecodeConfig must be ...``
    becomes ``--steps must be ...`` when ``flags`` (:func:`~analyzer._cli_args.param_flags`) names the flag that
    fed ``steps`` (the one place every command's parameter errors get their flags)."""
    import re

    def flag(m):
        named = flags.get(f"{m.group(2)}.{m.group(1)}") or flags.get(m.group(1))
        if not named:
            return m.group(0)
        # a flag left out is the API's None: on the command line "or None" means nothing
        return named + re.sub(r" or None$", "", m.group(3) or "")

    return re.sub(r"The '(\w+)' parameter of ([\w.]+)( must be [^.]*)?", flag, message)


def main(argv: list[str] | None = None) -> int:
    import warnings

    parser = cli_parser()
    args = parser.parse_args(argv)
    try:
        with _use_device(args), warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return int(globals()[f"cmd_{args.command}"](args) or 0)
    except AnalyzerError as e:
        from .exceptions import TrainingError

        msg = in_flag_terms(str(e), param_flags(parser, args.command))   # API parameter names -> flags typed
        if isinstance(e, TrainingError):     # TrainConfig's other wordings (resume mismatches, cross-field rules)
            from .training.config import in_cli_terms

            msg = in_cli_terms(msg)
        print(f"error: {msg}", file=sys.stderr)
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

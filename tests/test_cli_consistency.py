"""A CLI that reads as one tool (issue 20, point 8): every flag has help and shows its default; one spelling of
each option across commands; errors name the flag the user typed; `--model ''` refused; a busy port named; progress
lines when stderr is not a terminal (and around the model load); "final loss" is the last step's loss.
Tiny synthetic model only."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from analyzer._cli_args import REPORT_FORMATS, TRAIN_LR, build_parser
from analyzer.cli import main
from test_training import WORDS, make_task_csv

ROOT = Path(__file__).resolve().parents[1]
#: the commands that print progress on stderr, and those that write a report
PROGRESS = ("analyze", "train", "waywardness", "swap", "evaluate", "importance", "describe", "decode", "compare")
REPORTS = ("report", "analyze", "waywardness", "swap", "evaluate", "importance", "describe", "compare")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(sp: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Visible actions by their long flag (or dest for positionals)."""
    out = {}
    for a in sp._actions:
        if isinstance(a, (argparse._HelpAction, argparse._VersionAction)) or a.help == argparse.SUPPRESS:
            continue
        longs = [s for s in a.option_strings if s.startswith("--")]
        out[longs[0] if longs else (a.option_strings or [a.dest])[0]] = a
    return out


def _one_line_error(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error:") and "Traceback" not in err, err
    return err.strip()


# ------------------------------------------------------------------------------------------ help and defaults
def test_the_commands_are_the_expected_ones():
    assert set(_subparsers()) == {"report", "analyze", "train", "waywardness", "swap", "evaluate", "importance",
                                  "describe", "decode", "compare", "tasks", "app", "models", "samples"}


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_flag_has_help_and_shows_its_default(command):
    sp = _subparsers()[command]
    formatter = sp._get_formatter()
    for flag, action in _options(sp).items():
        assert action.help and action.help.strip(), f"{command} {flag} has no help"
        text = formatter._expand_help(action)
        takes_value = not isinstance(action, (argparse._StoreTrueAction, argparse._StoreConstAction))
        if action.required or not takes_value or (not action.option_strings and action.nargs not in ("?", "*")):
            continue
        assert "default" in text.lower(), f"{command} {flag}: the help does not say its default: {text!r}"
        d = action.default
        if isinstance(d, (list, tuple)):
            shown = ",".join(f"{v:g}" for v in d)
        elif isinstance(d, float):
            shown = f"{d:g}"
        else:
            shown = None if d is None else str(d)
        if shown is not None:
            assert shown in text, f"{command} {flag}: default {shown!r} not in {text!r}"
    assert sp.description, f"{command} --help has no description"


def test_train_help_shows_the_lr_default_and_why(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    out = out[out.index("options:"):]                 # the help, past the usage line
    assert TRAIN_LR == 0.3 and "--lr LR AdamW peak learning rate, in (0, 10] (default 0.3" in out
    assert "every sample prompt was trained" in out
    for flag, default in [("--steps STEPS", "300"), ("--eval-every EVAL_EVERY", "50"), ("--device DEVICE", "auto"),
                          ("--virtual-tokens VIRTUAL_TOKENS", "20"), ("--max-length MAX_LENGTH", "128")]:
        i = out.index(flag)
        assert f"(default: {default})" in out[i:i + 300], flag
    # the samples really were trained at that rate
    rates = {json.loads(p.read_text())["config"]["lr"] for p in (ROOT / "sample_prompts").glob("*/training_meta.json")
             if "-100" not in p.parent.name}
    assert rates == {TRAIN_LR}


# ------------------------------------------------------------------------------------------ one spelling
def test_one_spelling_of_each_option_across_commands():
    subs = _subparsers()
    for name, sp in subs.items():
        opts = _options(sp)
        for flag, short in (("--model", "-m"), ("--quiet", "-q"), ("--format", "-f"), ("--out", "-o")):
            if flag in opts:
                assert short in opts[flag].option_strings, f"{name} {flag} lacks {short}"
        if name in REPORTS:
            assert tuple(opts["--format"].choices) == REPORT_FORMATS == ("table", "json", "markdown", "html"), name
            assert "--out" in opts, name
        if name in PROGRESS:
            assert "--quiet" in opts, name
        if "--task-index" in opts:
            assert opts["--task-index"].type("0") == 0
    # --task is a task (a name or a file) wherever it is visible: never an index
    with_task = [n for n, sp in subs.items() if "--task" in _options(sp)]
    assert set(with_task) == {"analyze", "train", "waywardness", "swap", "evaluate", "importance", "describe",
                              "decode"}
    for n in with_task:
        assert _options(subs[n])["--task"].type("sentiment") == "sentiment", n
    # the listings take --format json too; the old `tasks --json` still works
    assert build_parser().parse_args(["tasks", "--json"]).format == "json"
    assert build_parser().parse_args(["tasks", "-f", "json"]).format == "json"


def test_report_task_is_now_task_index_with_the_old_spelling_kept(tmp_path, capsys):
    import numpy as np

    from analyzer.cli import _report_task_index

    args = build_parser().parse_args(["report", "p.npy", "--task", "1"])
    assert _report_task_index(args) == 1
    err = capsys.readouterr().err
    assert "warning: `report --task 1` is now `report --task-index 1`" in err
    assert build_parser().parse_args(["report", "p.npy", "--task-index", "2"]).task_index == 2
    np.save(tmp_path / "p.npy", np.ones((3, 32), np.float32))
    assert main(["report", str(tmp_path / "p.npy"), "--task", "sentiment"]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "--task-index" in err and "analyze --task sentiment" in err


# ------------------------------------------------------------------------------------------ errors name flags
@pytest.mark.parametrize("args, flag, field", [
    (["--init", "text", "--init-text", "  "], "--init-text", "prompt_tuning_init_text"),
    (["--init-text", "hello"], "--init-text", "prompt_tuning_init_text"),
    (["--steps", "10", "--warmup-steps", "11"], "--warmup-steps", "warmup_steps"),
    (["--ranks", "2"], "--ranks", "num_ranks"),
    (["--keep-best", "--eval-every", "0"], "--eval-every", "eval_every"),
    (["--template", "no placeholder"], "--template", "'template'"),
    (["--label-words", "pos=the,neg=  "], "--label-words", "label_words"),
])
def test_train_errors_name_the_flag_not_the_field(args, flag, field, tmp_path, capsys):
    rc = main(["train", "--task", "sentiment", "--out", str(tmp_path / "run"), *args])
    err = _one_line_error(capsys.readouterr().err)
    assert rc == 2 and flag in err and field not in err and "TrainConfig" not in err, err
    assert not (tmp_path / "run").exists()


def test_the_python_api_keeps_the_field_names():
    from analyzer.exceptions import TrainingError
    from analyzer.training import TrainConfig
    from analyzer.training.config import FLAGS, in_cli_terms

    with pytest.raises(TrainingError, match="'prompt_tuning_init_text' parameter of TrainConfig"):
        TrainConfig(out="x", prompt_tuning_init="text", prompt_tuning_init_text=" ")
    assert in_cli_terms("Task 't' has 3 training examples, fewer than batch_size 8; lower --batch-size or add "
                        "data.") == "Task 't' has 3 training examples, fewer than --batch-size 8; lower --batch-size " \
                                    "or add data."
    msg = ("Cannot resume the run in r: its checkpoint was trained with num_virtual_tokens=4 but this run asks for 5 "
           "(--virtual-tokens). Use the same setting")
    assert in_cli_terms(msg) == ("Cannot resume the run in r: its checkpoint was trained with --virtual-tokens 4 but "
                                 "this run asks for 5. Use the same setting")
    # every field a CLI user can set has its flag, and every flag is one `train` has
    train_flags = set(_options(_subparsers()["train"]))
    assert set(FLAGS.values()) <= train_flags


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:        # a value argparse refuses
        return e.code


@pytest.mark.parametrize("command, args, flag, param", [
    ("train", ["--task", "sentiment", "--out", "{tmp}/run", "--max-length", "2"], "--max-length", "max_length"),
    ("decode", ["{prompt}", "--model", "{tiny}", "--task", "sentiment", "--steps", "0"], "--steps", "'steps'"),
    ("waywardness", ["--task", "sentiment", "--target", "  "], "--target", "target_text"),
    ("importance", ["{prompt}", "--model", "{tiny}", "--task", "sentiment", "--limit", "1", "-q"], "--limit",
     "'limit'"),
    ("importance", ["{prompt}", "--model", "{tiny}", "--task", "sentiment", "--null-limit", "1", "-q"],
     "--null-limit", "null_limit"),
])
def test_every_command_names_the_flag_of_a_bad_value(command, args, flag, param, tmp_path, capsys, tiny_llama_dir):
    """`waywardness --target "  "` said "The 'target_text' parameter of waywardness_for_model ...": an API
    parameter error reads in the flags of the command that fed it (one line, exit 2)."""
    import numpy as np

    np.save(tmp_path / "p.npy", np.ones((3, 32), np.float32))
    fill = {"{tmp}": str(tmp_path), "{prompt}": str(tmp_path / "p.npy"), "{tiny}": str(tiny_llama_dir)}
    argv = [command, *(fill.get(a, a.replace("{tmp}", str(tmp_path))) for a in args)]
    assert _exit_code(argv) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert flag in err and param not in err and "parameter of" not in err, err


def test_decode_config_errors_name_the_flag():
    """DecodeConfig's field names (checkpoint_every is fed by --eval-every) read as `decode`'s flags."""
    from analyzer._cli_args import param_flags
    from analyzer.cli import in_flag_terms
    from analyzer.decode import DecodeConfig
    from analyzer.exceptions import AnalyzerError

    flags = param_flags(build_parser(), "decode")
    for field, bad, flag in [("steps", 0, "--steps"), ("batch_size", 0, "--batch-size"), ("length", 0, "--length"),
                             ("eval_every", 0, "--eval-every"), ("checkpoint_every", 0, "--eval-every"),
                             ("fluency", -1.0, "--fluency"), ("lr", 0.0, "--lr"), ("init", "x", "--init"),
                             ("seed", -1, "--seed"), ("task_weight", -1.0, "--task-weight")]:
        with pytest.raises(AnalyzerError, match=f"'{field}' parameter of DecodeConfig") as e:
            DecodeConfig(**{field: bad})
        assert in_flag_terms(str(e.value), flags).startswith(f"{flag} must be "), (field, str(e.value))
    # a parameter no flag feeds keeps its name
    with pytest.raises(AnalyzerError) as e:
        DecodeConfig(max_length=2)
    assert in_flag_terms(str(e.value), flags).startswith("The 'max_length' parameter of DecodeConfig")


def test_a_parameter_name_two_flags_share_is_told_apart_by_its_owner():
    """`analyze` has --task (a task) and --task-index (load_prompts' task): the owner picks the flag."""
    from analyzer._cli_args import param_flags
    from analyzer.cli import in_flag_terms

    flags = param_flags(build_parser(), "analyze")
    said = "The 'task' parameter of load_prompts must be an int in [0, 2] (...). Got 5 instead."
    assert in_flag_terms(said, flags) == "--task-index must be an int in [0, 2] (...). Got 5 instead."
    assert in_flag_terms("The 'task' parameter of get_task must be x.", flags) == "--task must be x."
    assert in_flag_terms("The 'gamma' parameter of f must be x.", flags) == "The 'gamma' parameter of f must be x."


# ------------------------------------------------------------------------------------------ --model ''
_REQUIRED = {"report": ["p.npy"], "analyze": ["p.npy"], "swap": ["p"], "evaluate": ["p"], "importance": ["p"],
             "describe": ["p"], "decode": ["p"], "compare": ["p"], "train": ["--task", "sentiment", "--out", "o"],
             "waywardness": ["--task", "sentiment", "--target", "x"], "app": []}


@pytest.mark.parametrize("command", sorted(_REQUIRED))
@pytest.mark.parametrize("model", ["", "   "])
def test_empty_model_is_refused_by_every_command(command, model, capsys):
    assert "--model" in _options(_subparsers()[command])
    with pytest.raises(SystemExit) as e:
        main([command, *_REQUIRED[command], "--model", model])
    assert e.value.code == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "--model" in err and repr(model) in err, err


def test_every_command_with_a_model_is_checked():
    assert {n for n, sp in _subparsers().items() if "--model" in _options(sp)} == set(_REQUIRED)


# ------------------------------------------------------------------------------------------ busy port
def test_a_busy_port_is_named_with_how_to_choose_another(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc = main(["app", "--port", str(port), "--no-browser"])
    err = _one_line_error(capsys.readouterr().err)
    assert rc == 2 and f"Port {port}" in err and "in use" in err and "--port N" in err, err


def test_a_free_port_passes_the_check():
    from analyzer.ui.launch import check_port_free

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check_port_free("127.0.0.1", port)       # nothing listens there now


# ------------------------------------------------------------------------------------------ progress helpers
class _Lines(io.StringIO):
    """A non-terminal stream that signals when a line matching ``pattern`` is written."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern, self.seen = re.compile(pattern), threading.Event()

    def write(self, s):
        n = super().write(s)
        if self.pattern.search(self.getvalue()):
            self.seen.set()
        return n


def test_progress_prints_a_heartbeat_while_a_phase_runs_on():
    from analyzer._progress import Progress

    stream = _Lines(r"… loading model m \.\.\. \(still running, \d+ s\)")
    with Progress(file=stream, every=0.05) as say:
        say("loading model m ...")
        assert stream.seen.wait(120), stream.getvalue()
    assert stream.getvalue().startswith("… loading model m ...\n")


def test_throttle_is_time_based_not_per_step():
    from analyzer._progress import Throttle

    now = [0.0]
    t = Throttle(5.0, clock=lambda: now[0])
    fired = []
    for step in range(1, 101):          # 100 steps over 20 s of the fake clock
        now[0] = step * 0.2
        fired.append(t.ready())
    assert fired[0] and sum(fired) == 4  # the first, then one every 5 s (at 5.2, 10.2, 15.2 s)


def test_progress_bar_writes_lines_off_a_terminal():
    from analyzer.training import ProgressBar, TrainConfig

    out = io.StringIO()                 # not a terminal
    bar = ProgressBar(file=out, every=1e9)
    bar.on_model_load("tiny")
    bar.on_model_loaded("tiny", 1.25)
    bar.on_start(TrainConfig(out="x", steps=5), 0, 5)
    for step, loss in enumerate([0.9, 0.8, 0.7, 0.6, 0.5], 1):
        bar.on_step(step, loss, 0.1)
    bar.on_end(None)
    lines = out.getvalue().splitlines()
    assert lines[0] == "… loading model tiny ..." and lines[1] == "… model tiny loaded in 1.2 s"
    steps = [ln for ln in lines if ": step " in ln]
    assert [ln.split(": step ")[1].split(",")[0] for ln in steps] == ["1/5", "5/5"]   # first and last only
    assert "loss 0.5000" in steps[-1] and "\r" not in out.getvalue()


# ------------------------------------------------------------------------------------------ a real run, piped
@pytest.fixture(scope="module")
def piped_run(tiny_llama_dir, tmp_path_factory):
    """`train` on the tiny model through the console entry point with stderr a pipe (not a terminal)."""
    tmp = tmp_path_factory.mktemp("piped")
    csv = make_task_csv(tmp / "task.csv")
    out = tmp / "run"
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "analyzer", "train", "--model", str(tiny_llama_dir), "--task", str(csv),
                        "--label-words", words, "--virtual-tokens", "4", "--steps", "12", "--batch-size", "8",
                        "--eval-every", "6", "--eval-examples", "16", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    return out, csv, words, p.stderr


def test_train_off_a_terminal_prints_progress_lines_and_the_model_load(piped_run, tiny_llama_dir):
    _, csv, _, err = piped_run
    lines = err.splitlines()
    assert f"… loading model {tiny_llama_dir} ..." in lines
    assert any(re.fullmatch(rf"… model {re.escape(str(tiny_llama_dir))} loaded in \d+\.\d s", ln) for ln in lines)
    steps = [ln for ln in lines if ln.startswith(f"train {csv}: step ")]
    assert steps[0].startswith(f"train {csv}: step 1/12, loss ") and steps[-1].startswith(f"train {csv}: step 12/12")
    assert "\r" not in err and "it/s" not in err          # no tqdm bar in a log


def test_final_loss_is_the_last_steps_loss(piped_run):
    out, _, _, err = piped_run
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    last = [r for r in log if "loss" in r][-1]
    assert last["step"] == 12
    m = re.search(r"final loss (\d+\.\d{4}) \(step 12; mean of the last 10 steps (\d+\.\d{4})\)", err)
    assert m, err
    assert m.group(1) == f"{last['loss']:.4f}"
    assert m.group(2) == f"{sum(r['loss'] for r in log if 'loss' in r and r['step'] > 2) / 10:.4f}"
    # the progress line of the last step shows the same loss
    assert f"step 12/12, loss {last['loss']:.4f}" in err


def test_resume_mismatch_names_the_flag(piped_run, tiny_llama_dir, capsys):
    out, csv, words, _ = piped_run
    rc = main(["train", "--model", str(tiny_llama_dir), "--task", str(csv), "--label-words", words,
               "--virtual-tokens", "4", "--steps", "14", "--batch-size", "8", "--seed", "3", "--out", str(out),
               "--resume", "-q"])
    err = _one_line_error(capsys.readouterr().err)
    assert rc == 2 and "trained with --seed 0 but this run asks for 3" in err and "seed=" not in err, err


def test_evaluate_frames_the_model_load(piped_run, tiny_llama_dir, capsys):
    out, csv, words, _ = piped_run
    rc = main(["evaluate", str(out), "--model", str(tiny_llama_dir), "--task", str(csv), "--label-words", words,
               "--limit", "8", "--format", "json"])
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = err.splitlines()
    i = lines.index(f"… loading model {tiny_llama_dir} ...")
    assert re.fullmatch(rf"… model {re.escape(str(tiny_llama_dir))} loaded in \d+\.\d s", lines[i + 1]), lines
    rc = main(["evaluate", str(out), "--model", str(tiny_llama_dir), "--task", str(csv), "--label-words", words,
               "--limit", "8", "--format", "json", "-q"])
    assert rc == 0 and capsys.readouterr().err == ""

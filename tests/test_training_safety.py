"""Training that cannot damage its folder or silently go wrong (issue 20): one run per folder (a lock a killed run
does not leave stuck), no empty folder left by a failed run; out-of-range settings refused up front, and a run that
diverges stops with one line and keeps its last good checkpoint."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_cli_train import run_cli
from test_training import WORDS, config, task_csv, tiny

from analyzer.exceptions import TaskError, TrainingError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHARED_FIXTURES = (task_csv, tiny)      # the task file and the loaded tiny llama of test_training


def hold_lock_in_child(out: Path) -> subprocess.Popen:
    """A child process holding the run folder's lock; returns once it says (through its stdout pipe) it holds it."""
    code = textwrap.dedent(f"""
        import sys
        from analyzer.training.runlock import RunFolderLock
        RunFolderLock({str(out)!r}).acquire()
        print("locked", flush=True)
        sys.stdin.read()          # hold it until killed (or stdin closes)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_no_stuck_lock(tiny, tiny_llama_dir, task_csv,
                                                                                 tmp_path, monkeypatch):
    from types import SimpleNamespace

    import analyzer.ui._common as common
    from analyzer.training import train
    from analyzer.training.runlock import LOCK_FILE, run_holder
    from analyzer.ui._runner import TrainingRunner

    out = tmp_path / "run"
    child = hold_lock_in_child(out)
    try:
        holder = run_holder(out)
        assert holder is not None and holder.startswith(f"pid {child.pid} on host ") and "started 20" in holder
        words = ",".join(f"{k}={v}" for k, v in WORDS.items())
        for extra in ((), ("--resume",)):       # a new run and a resumed one take the same lock
            _, err, rc = run_cli("train", "--model", tiny_llama_dir, "--task", task_csv, "--label-words", words,
                                 "--virtual-tokens", "4", "--steps", "2", "--out", out, "--quiet", *extra)
            assert rc == 2 and len(err.strip().splitlines()) == 1, err
            assert f"is in use by another training run (pid {child.pid} on host" in err, err
            assert "choose another --out" in err and "Traceback" not in err
        model, tok = tiny
        with pytest.raises(TrainingError, match=f"in use by another training run \\(pid {child.pid} "):
            train(config(tiny_llama_dir, task_csv, out, steps=2), model=model, tokenizer=tok)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]     # nothing written beside the holder
        # the dashboard: refused before a thread starts, shown as a one-line box
        shown = []
        monkeypatch.setattr(common.st, "error", lambda msg, **kw: shown.append(msg))
        runner = TrainingRunner(train_fn=lambda cfg, **kw: pytest.fail("started a second writer"))
        with common.guard("resuming the run"):
            runner.start(SimpleNamespace(out=str(out), steps=5, resume=True))
        assert len(shown) == 1 and f"(pid {child.pid} on host" in shown[0] and "\n" not in shown[0]
        assert runner.jobs() == []
        # the runs list says the folder is in training, even before the holder's first checkpoint
        from analyzer.ui._sources import run_info
        from analyzer.ui.train import run_status
        status, state = run_status(str(out), None, run_info(str(out)))
        assert state is None and status.startswith(":blue[in training by another process] (pid "
                                                   f"{child.pid} on host ") and status.endswith(", no checkpoint yet")
    finally:
        child.kill()            # SIGKILL: no clean-up code runs in the child
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert run_holder(out) is None
    model, tok = tiny
    res = train(config(tiny_llama_dir, task_csv, out, steps=2, eval_every=0, eval_examples=4), model=model,
                tokenizer=tok)
    assert res.steps == 2 and (out / "adapter_model.safetensors").is_file()
    assert not (out / LOCK_FILE).exists()       # given back at the end


def test_a_failed_train_leaves_no_folder_it_created(tiny, tiny_llama_dir, task_csv, tmp_path):
    from analyzer.training import train
    from analyzer.training.runlock import LOCK_FILE

    model, tok = tiny
    with pytest.raises(TaskError, match="Unknown task"):
        train(config(tiny_llama_dir, "nosuchtask", tmp_path / "a" / "b" / "run"), model=model, tokenizer=tok)
    with pytest.raises(TrainingError, match="fewer than batch_size 512"):
        train(config(tiny_llama_dir, task_csv, tmp_path / "big", batch_size=512), model=model, tokenizer=tok)
    with pytest.raises(TrainingError, match="Nothing to resume"):
        train(config(tiny_llama_dir, task_csv, tmp_path / "none", resume=True), model=model, tokenizer=tok)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # a folder the user made is kept, empty or not (only the lock file goes)
    (tmp_path / "mine").mkdir()
    with pytest.raises(TaskError):
        train(config(tiny_llama_dir, "nosuchtask", tmp_path / "mine"), model=model, tokenizer=tok)
    assert (tmp_path / "mine").is_dir() and not (tmp_path / "mine" / LOCK_FILE).exists()
    # the CLI: an error found after the folder was made
    _, err, rc = run_cli("train", "--model", tiny_llama_dir, "--task", "nosuchtask", "--out", tmp_path / "cli")
    assert rc == 2 and "Unknown task" in err and not (tmp_path / "cli").exists()


# ------------------------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("value", ["1e30", "nan", "inf", "0", "-0.1", "ten"])
def test_an_out_of_range_lr_is_refused_in_one_line(value, capsys):
    from analyzer.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "sentiment", "--out", "never-made", "--lr", value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"argument --lr: expected a learning rate in (0, 10], got '{value}'" in err
    assert not Path("never-made").exists()
    with pytest.raises(TrainingError, match=r"'lr' parameter of TrainConfig must be a finite number in \(0, 10\]"):
        from analyzer.training import TrainConfig

        TrainConfig(out="x", lr=float(value) if value != "ten" else value)


def test_other_out_of_range_settings_are_refused(capsys):
    from analyzer.cli import main
    from analyzer.training import TrainConfig

    for args, said in ((["--eval-every", "-1"], "argument --eval-every: expected an integer >= 0, got '-1'"),
                       (["--virtual-tokens", "5000"], "expected a positive integer in [1, 4096], got '5000'")):
        with pytest.raises(SystemExit):
            main(["train", "--task", "sentiment", "--out", "never-made", *args])
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(TrainingError, match=r"lr \* weight_decay < 1 .* Got 0.5"):
        TrainConfig(out="x", lr=3.0, weight_decay=0.5)
    with pytest.raises(TrainingError, match=r"'warmup_steps' .* int in \[0, 10\]. Got 11"):
        TrainConfig(out="x", steps=10, warmup_steps=11)


def _checkpoint_step(out: Path) -> int:
    import json

    from safetensors import safe_open

    with safe_open(str(out / "checkpoint.safetensors"), "pt") as f:
        return json.loads(f.metadata()["checkpoint"])["step"]


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tiny, tiny_llama_dir, task_csv, tmp_path):
    """lr 10 is accepted, and on the tiny llama (embedding rows of norm ~0.1) the prompt explodes in ~12 steps."""
    import re

    import numpy as np
    from safetensors.torch import load_file

    from analyzer import load_prompt
    from analyzer.training import read_snapshots, read_training_log, train
    from analyzer.training.config import read_training_meta
    from analyzer.training.divergence import norm_limit
    from analyzer.ui._runner import run_state

    model, tok = tiny
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as e:
        train(config(tiny_llama_dir, task_csv, out, lr=10.0, steps=60, checkpoint_every=5, snapshot_every=1,
                     eval_every=0, eval_examples=4), model=model, tokenizer=tok)
    msg = str(e.value)
    m = re.fullmatch(r"Training diverged at step (\d+) \(--lr 10\): a prompt row reached norm \S+, over 1000x the "
                     r"vocabulary's longest embedding \(\S+\); the last good checkpoint \(step (\d+)\) and its adapter "
                     rf"are kept in {re.escape(str(out))}; continue from it with --resume and a lower --lr, or start "
                     r"again with --overwrite\.", msg)
    assert m, msg
    bad, kept = int(m[1]), int(m[2])
    assert kept == (bad - 1) // 5 * 5 and kept > 0
    assert _checkpoint_step(out) == kept
    limit = norm_limit(model.get_input_embeddings().weight)
    adapter = load_prompt(out)                     # loadable, finite, below the limit: the last good prompt
    assert adapter.num_virtual_tokens == 4 and np.isfinite(adapter.vectors).all()
    assert np.linalg.norm(adapter.vectors, axis=1).max() <= limit
    ck = load_file(str(out / "checkpoint.safetensors"))["prompt"].numpy()
    np.testing.assert_array_equal(adapter.vectors, ck)
    assert max(read_snapshots(out)) == bad - 1 and max(r["step"] for r in read_training_log(out)) == bad - 1
    # the run record says so, and the dashboard lists it as diverged, not as resumable as it is
    meta = read_training_meta(out)
    assert meta["steps_done"] == kept and meta["diverged"]["step"] == bad and meta["diverged"]["lr"] == 10.0
    state = run_state(out)
    assert state.step == kept and state.diverged["step"] == bad and not state.interrupted
    from analyzer.ui._sources import run_info
    from analyzer.ui.train import run_status
    status, _ = run_status(str(out), None, run_info(str(out)))
    assert status.startswith(f":red[diverged] at step {bad} (lr 10.0: a prompt row reached norm ") and \
        status.endswith(f"the adapter holds step {kept}; resume it from the CLI with a lower --lr"), status
    # the run goes on from the kept checkpoint at a lower lr
    res = train(config(tiny_llama_dir, task_csv, out, lr=0.05, steps=kept + 3, checkpoint_every=5, snapshot_every=1,
                       eval_every=0, eval_examples=4, resume=True), model=model, tokenizer=tok)
    assert res.start_step == kept and res.steps == kept + 3
    assert "diverged" not in read_training_meta(out) and run_state(out).diverged is None


def test_a_nan_loss_stops_the_run_before_it_writes(tiny, tiny_llama_dir, task_csv, tmp_path):
    import numpy as np

    from analyzer import load_prompt
    from analyzer.training import train

    calls = []

    def nan_at_step_3(prompt):
        calls.append(1)
        return prompt.sum() * (float("nan") if len(calls) == 3 else 0.0)

    model, tok = tiny
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"^Training diverged at step 3 \(--lr 0.05\): the loss became nan; the "
                                            r"last good checkpoint \(step 2\) and its adapter are kept in "):
        train(config(tiny_llama_dir, task_csv, out, steps=6, checkpoint_every=2, eval_every=0, eval_examples=4),
              model=model, tokenizer=tok, extra_loss=nan_at_step_3)
    assert _checkpoint_step(out) == 2 and np.isfinite(load_prompt(out).vectors).all()
    # diverged before anything was saved: said so
    with pytest.raises(TrainingError, match=r"at step 1 .*nothing was saved before it; start again with a lower "
                                            r"--lr \(and --overwrite"):
        train(config(tiny_llama_dir, task_csv, tmp_path / "early", steps=6, checkpoint_every=2, eval_every=0,
                     eval_examples=4), model=model, tokenizer=tok, extra_loss=lambda p: p.sum() * float("nan"))


def test_a_diverging_multitask_run_keeps_its_last_good_adapter(tiny, tiny_llama_dir, tmp_path):
    import numpy as np

    from test_multitask import _task_csv

    from analyzer import load_prompts
    from analyzer.training import TrainConfig, train

    a, b = _task_csv(tmp_path / "toy.csv", ("the", "was")), _task_csv(tmp_path / "mirror.csv", ("was", "the"))
    cfg = TrainConfig(model=str(tiny_llama_dir), task=f"{a},{b}", out=str(tmp_path / "run"), num_virtual_tokens=4,
                      prompt_tuning_init="vocab", steps=80, batch_size=8, lr=1.0, eval_every=0, eval_examples=4,
                      checkpoint_every=1, seed=1)
    model, tok = tiny
    kept = r"the last good adapter \(step \d+\) is kept in .*; start again with a lower --lr and --overwrite"
    with pytest.raises(TrainingError, match=r"^Training diverged at step \d+ \(--lr 1\): .*" + kept):
        train(cfg, model=model, tokenizer=tok)
    for p in load_prompts(tmp_path / "run"):
        assert np.isfinite(p.vectors).all()


def test_the_cli_exits_2_with_one_line_on_divergence(tiny_llama_dir, task_csv, tmp_path):
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    _, err, rc = run_cli("train", "--model", tiny_llama_dir, "--task", task_csv, "--label-words", words,
                         "--virtual-tokens", "4", "--steps", "60", "--lr", "10", "--eval-every", "0",
                         "--eval-examples", "4", "--checkpoint-every", "5", "--out", tmp_path / "run", "--quiet")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: Training diverged at step ") and "last good checkpoint (step" in err


def test_the_dashboard_shows_a_diverged_run_as_a_one_line_failure(tiny, tiny_llama_dir, task_csv, tmp_path,
                                                                   monkeypatch):
    from analyzer.ui._runner import TrainingRunner

    model, tok = tiny
    monkeypatch.setattr("analyzer.training.trainer.divergence", lambda loss, prompt, limit: "the loss became nan")
    runner = TrainingRunner()
    job = runner.start(config(tiny_llama_dir, task_csv, tmp_path / "bad", steps=4, eval_every=0, eval_examples=4),
                       model=model, tokenizer=tok)
    runner.wait(job.id, 600)
    assert job.status == "failed" and job.traceback is None      # the page shows job.error in an error box
    assert job.error.startswith("Training diverged at step 1 (--lr 0.05): the loss became nan; nothing was saved")


def test_a_log_that_is_not_a_regular_file_is_refused_not_waited_on(tmp_path):
    """A FIFO where a run's log goes would block the writer until some reader came; it is refused in one line.
    A symlink to a regular file is written through (the link stays a link)."""
    import os

    from analyzer.training.files import open_log

    fifo = tmp_path / "training_log.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(TrainingError, match=r"is not a regular file \(a FIFO, device, socket or folder\)") as e:
        open_log(fifo, "a")
    assert "\n" not in str(e.value)
    real = tmp_path / "real.jsonl"
    real.write_text('{"step": 1}\n')
    link = tmp_path / "linked.jsonl"
    link.symlink_to(real)
    with open_log(link, "a") as f:
        f.write('{"step": 2}\n')
    assert link.is_symlink() and real.read_text().splitlines() == ['{"step": 1}', '{"step": 2}']

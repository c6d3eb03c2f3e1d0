"""Training that cannot damage its folder (issue 20): one run per folder (a lock a killed run does not leave
stuck), no empty folder left by a failed run."""

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

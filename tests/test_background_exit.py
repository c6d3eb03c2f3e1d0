"""Interpreter exit while the dashboard's background threads work: the process must end cleanly (exit status 0),
never abort with a C++ "terminate called without an active exception" (SIGABRT) because a thread was left in
native code (torch, FAISS) while the interpreter finalized.  The lanes' and the training runner's threads are
not daemons, even when started from a daemon thread (Streamlit's script-run thread); at exit the queued calls are
cancelled and the running one is waited for, and another Ctrl-C (or a SIGTERM) quits at once instead.

Each scenario runs in its own Python process; every wait is on an event (a line on a pipe, a process exit),
never a sleep; timeouts are only safety nets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from app_helpers import ROOT, sample_labels

SAFETY_S = 120
NOTICE = "softprompt-analyzer: waiting for"

LANE_SCRIPT = """\
import sys, threading
from analyzer.ui._runner import BackgroundLane

lanes = []   # created from a daemon thread, as Streamlit's script-run thread creates the dashboard's lanes
maker = threading.Thread(target=lambda: lanes.append(BackgroundLane("test-exit-lane")), daemon=True)
maker.start(); maker.join()
started = threading.Event()

def work():
    started.set()
    data = sys.stdin.buffer.read()          # blocks (in C) until the test closes this process's stdin
    print("running call finished", len(data), flush=True)
    return data

lanes[0].submit(work)
lanes[0].submit(lambda: print("queued call ran", flush=True))
started.wait()
print("main ends", flush=True)
"""

TRAIN_SCRIPT = """\
import sys, threading
from types import SimpleNamespace
from analyzer.ui._runner import TrainingRunner

started = threading.Event()

def train(config, callbacks=(), stop_event=None, model=None, tokenizer=None):
    for cb in callbacks:
        cb.on_start(config, 0, 10)
    started.set()
    sys.stdin.buffer.read()                 # "training" until the test closes this process's stdin
    print("training finished", flush=True)
    return SimpleNamespace(stopped=False)

runner = TrainingRunner(train_fn=train)
starter = threading.Thread(target=lambda: runner.start(SimpleNamespace(out=sys.argv[1], steps=10)), daemon=True)
starter.start(); starter.join()
started.wait()
print("main ends", flush=True)
"""


def _start(script: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _until_exit_waits(proc: subprocess.Popen) -> str:
    """Read until the main script has ended and the exit hook says what it waits for; returns that line."""
    assert proc.stdout.readline() == "main ends\n"
    for line in proc.stderr:                # ends at EOF if the process dies instead
        if line.startswith(NOTICE):
            return line
    pytest.fail(f"no exit notice; the process ended with {proc.wait(SAFETY_S)}")


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    """Wait for the exit (its output is small: the pipes cannot fill), then read what is left of the output."""
    try:
        rc = proc.wait(SAFETY_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, proc.stdout.read(), proc.stderr.read()


def test_exit_waits_for_the_running_background_call_and_cancels_the_queued_ones():
    proc = _start(LANE_SCRIPT)
    assert "test-exit-lane" in _until_exit_waits(proc)
    proc.stdin.close()                      # the running call may now finish
    rc, out, err = _finish(proc)
    assert rc == 0, f"exit status {rc}:\n{err[-3000:]}"
    assert "running call finished" in out and "queued call ran" not in out
    assert "terminate called" not in err


def test_another_ctrl_c_quits_at_once_while_the_exit_waits():
    proc = _start(LANE_SCRIPT)
    try:
        _until_exit_waits(proc)
        proc.send_signal(signal.SIGINT)     # the running call never finishes: its stdin stays open
        rc, out, err = _finish(proc)
    finally:
        proc.stdin.close()
    assert rc == 128 + signal.SIGINT, f"exit status {rc}:\n{err[-3000:]}"
    assert "running call finished" not in out and "terminate called" not in err


def test_exit_waits_for_a_training_run(tmp_path):
    proc = _start(TRAIN_SCRIPT, str(tmp_path / "run"))
    assert "training run 'run'" in _until_exit_waits(proc)
    proc.stdin.close()
    rc, out, err = _finish(proc)
    assert rc == 0, f"exit status {rc}:\n{err[-3000:]}"
    assert "training finished" in out


@pytest.mark.integration
def test_app_on_a_cold_cache_renders_and_exits_cleanly(smollm2_available, tmp_path):
    """``AppTest`` of app.py with an empty cache: the page renders, its first metrics start in the background
    (on a cold cache they are still computing, in torch, when the script ends) and the process exits 0."""
    labels = sample_labels()
    if not labels:
        pytest.skip("no sample prompts in this checkout")
    script = ("import json, sys\n"
              "from streamlit.testing.v1 import AppTest\n"
              "at = AppTest.from_file(sys.argv[1], default_timeout=900).run()\n"
              "print(json.dumps({'exceptions': [e.value for e in at.exception],"
              " 'errors': [e.value for e in at.error],"
              " 'options': list(at.sidebar.multiselect(key='prompt').options),"
              " 'selected': list(at.sidebar.multiselect(key='prompt').value)}), flush=True)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTPROMPT_ANALYZER_")}
    env["SOFTPROMPT_ANALYZER_CACHE"] = str(tmp_path / "cold-cache")      # empty: everything is computed
    proc = subprocess.run([sys.executable, "-c", script, str(ROOT / "app.py")], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{proc.stderr[-4000:]}"
    assert "terminate called" not in proc.stderr
    page = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not page["exceptions"] and not page["errors"], page
    assert page["options"] == labels and page["selected"], page

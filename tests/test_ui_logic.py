"""The streamlit-free logic behind the dashboard: uploads, the training runner, prompt discovery."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from analyzer.exceptions import InputFileError, TrainingError

# ------------------------------------------------------------------------------------------------ uploads


def _adapter_files(n=3, d=8):
    from safetensors.numpy import save

    cfg = {"peft_type": "PROMPT_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": n, "token_dim": d,
           "num_transformer_submodules": 1, "base_model_name_or_path": None}
    weights = save({"prompt_embeddings": np.arange(n * d, dtype=np.float32).reshape(n, d)})
    return {"adapter_config.json": json.dumps(cfg).encode(), "adapter_model.safetensors": weights}


def _zip(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize("name, expected", [
    ("my adapter.zip", "my_adapter.zip"), ("../../etc/passwd", "passwd"), ("C:\\x\\evil.npy", "evil.npy"),
    (".hidden", "hidden"), ("", "upload"), ("ünïcode name.safetensors", "n_code_name.safetensors"),
])
def test_sanitize_name(name, expected):
    from analyzer.ui._uploads import sanitize_name

    assert sanitize_name(name) == expected


def test_zipped_adapter_is_extracted_and_loadable(tmp_path):
    from analyzer import load_prompt
    from analyzer.ui._uploads import save_upload

    members = {f"sent adapter/{k}": v for k, v in _adapter_files().items()}
    members["sent adapter/notes.txt"] = b"skipped"
    data = _zip(members)
    path = save_upload("sent adapter.zip", data, tmp_path)
    assert path.name == "sent_adapter" and path.parent.parent == tmp_path
    assert sorted(p.name for p in path.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    p = load_prompt(path)
    assert p.vectors.shape == (3, 8)
    assert save_upload("sent adapter.zip", data, tmp_path) == path  # same bytes, same place


def test_tensor_uploads(tmp_path):
    from analyzer import load_prompt
    from analyzer.ui._uploads import save_upload

    buf = io.BytesIO()
    np.save(buf, np.ones((2, 8), np.float32))
    p = save_upload("../weird name.npy", buf.getvalue(), tmp_path)
    assert p.name == "weird_name.npy" and tmp_path in p.parents
    assert load_prompt(p).vectors.shape == (2, 8)
    with pytest.raises(InputFileError, match="not a .npy file"):
        save_upload("fake.npy", b"not numpy", tmp_path)


@pytest.mark.parametrize("name", ["prompt.pt", "prompt.pth", "adapter_model.bin", "x.pkl", "x.pickle"])
def test_pickles_are_refused(tmp_path, name):
    from analyzer.ui._uploads import save_upload

    with pytest.raises(InputFileError, match="pickles are refused"):
        save_upload(name, b"\x80\x04data", tmp_path)


def test_pickle_inside_zip_is_refused(tmp_path):
    from analyzer.ui._uploads import save_upload

    files = _adapter_files()
    members = {"a/adapter_config.json": files["adapter_config.json"], "a/adapter_model.bin": b"\x80\x04"}
    with pytest.raises(InputFileError, match="adapter_model.bin, a pickle"):
        save_upload("a.zip", _zip(members), tmp_path)


def test_unsafe_zips_are_refused(tmp_path):
    from analyzer.ui import _uploads
    from analyzer.ui._uploads import save_upload

    files = _adapter_files()
    with pytest.raises(InputFileError, match=r"unsafe path '\.\./evil'"):
        save_upload("t.zip", _zip({**files, "../evil": b"x"}), tmp_path)
    with pytest.raises(InputFileError, match="unsafe path '/abs'"):
        save_upload("t.zip", _zip({**files, "/abs": b"x"}), tmp_path)
    with pytest.raises(InputFileError, match="symbolic link"):
        save_upload("t.zip", _zip(files, symlink="link"), tmp_path)
    with pytest.raises(InputFileError, match="zip bomb"):
        save_upload("t.zip", _zip({**files, "big.bin": b"\0" * (20 * 2**20)}), tmp_path)
    many = {**files, **{f"f{i}.txt": b"x" for i in range(_uploads.MAX_MEMBERS)}}
    with pytest.raises(InputFileError, match="members"):
        save_upload("t.zip", _zip(many), tmp_path)
    with pytest.raises(InputFileError, match="exactly one PEFT adapter"):
        save_upload("t.zip", _zip({"readme.txt": b"x"}), tmp_path)
    with pytest.raises(InputFileError, match="not a valid zip"):
        save_upload("t.zip", b"PK\x03\x04garbage", tmp_path)
    assert not any(tmp_path.rglob("evil")) and not any(tmp_path.rglob("abs"))


def test_size_limit_and_extension(tmp_path):
    from analyzer.ui._uploads import save_upload

    with pytest.raises(InputFileError, match="limit is 1 MB"):
        save_upload("big.npy", b"\x93NUMPY" + b"\0" * (2 * 2**20), tmp_path, max_mb=1)
    with pytest.raises(InputFileError, match="extension '.txt'"):
        save_upload("notes.txt", b"hello", tmp_path)
    with pytest.raises(InputFileError, match="empty"):
        save_upload("x.npy", b"", tmp_path)


def test_zip_adapter_roundtrip(tmp_path):
    from analyzer.ui._uploads import save_upload, zip_adapter

    d = tmp_path / "run"
    d.mkdir()
    for k, v in _adapter_files().items():
        (d / k).write_bytes(v)
    (d / "checkpoint.safetensors").write_bytes(b"never shipped")
    data = zip_adapter(d)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["run/adapter_config.json", "run/adapter_model.safetensors"]
    assert (save_upload("run.zip", data, tmp_path / "up") / "adapter_config.json").is_file()


# ------------------------------------------------------------------------------------------------ runner


#: a safety net only: how long a test waits for an event that should come at once before it fails
SAFETY_S = 60


class FakeTrain:
    """Stands in for analyzer.training.train: reports ``steps`` steps, stopping early when told to.

    With ``hold_at``, the first run pauses after reporting that step until it is stopped, and sets ``reached``
    when it gets there: a test knows the run is in progress, and at which step, without timing anything."""

    def __init__(self, steps=50, fail=None, hold_at=None):
        self.steps, self.fail, self.hold_at, self.calls = steps, fail, hold_at, 0
        self.reached = threading.Event()

    def __call__(self, config, *, callbacks, stop_event, model, tokenizer):
        from types import SimpleNamespace

        self.calls += 1
        hold_at, self.hold_at = self.hold_at, None
        for cb in callbacks:
            cb.on_start(config, 0, self.steps)
            cb.on_eval(0, 0.5)
        for s in range(1, self.steps + 1):
            if self.fail and s == 3:
                raise self.fail
            for cb in callbacks:
                cb.on_step(s, 1.0 / s, 0.01)
            if s == hold_at:
                self.reached.set()
                if not stop_event.wait(SAFETY_S):
                    raise RuntimeError(f"FakeTrain held at step {s} for {SAFETY_S} s and was never stopped")
            if stop_event.is_set():
                return SimpleNamespace(stopped=True, steps=s)
        return SimpleNamespace(stopped=False, steps=self.steps)


def _finished(runner, job):
    """Wait for ``job``'s thread to end (the join is the synchronisation; its timeout only a safety net)."""
    runner.wait(job.id, SAFETY_S)
    assert not job.thread.is_alive(), f"job {job.name} still {job.status} after {SAFETY_S} s (step {job.step})"
    return job


def _config(out):
    from types import SimpleNamespace

    return SimpleNamespace(out=str(out), steps=50)


def test_runner_runs_one_job_at_a_time_and_stops(tmp_path):
    from analyzer.ui._runner import TrainingRunner

    fake = FakeTrain(steps=500, hold_at=5)
    runner = TrainingRunner(train_fn=fake)
    job = runner.start(_config(tmp_path / "a"))
    assert runner.active() is job and runner.get(job.id) is job
    with pytest.raises(TrainingError, match="already in progress"):
        runner.start(_config(tmp_path / "b"))
    assert fake.reached.wait(SAFETY_S), f"the run never reached step 5: {job.status} {job.error}"
    assert job.running and job.step == 5
    assert runner.stop(job.id)
    _finished(runner, job)
    assert job.status == "stopped" and job.step == 5 and fake.calls == 1
    rows = job.snapshot_rows()
    assert rows[0] == {"step": 0, "eval_accuracy": 0.5} and rows[-1]["step"] == job.step
    assert runner.active() is None
    with pytest.raises(TrainingError, match="already used"):
        runner.start(_config(tmp_path / "a"))
    second = _finished(runner, runner.start(_config(tmp_path / "b")))
    assert second.status == "done" and second.progress() == 1.0 and fake.calls == 2


def test_runner_reports_failures(tmp_path):
    from analyzer.ui._runner import TrainingRunner

    runner = TrainingRunner(train_fn=FakeTrain(fail=TrainingError("The loss became nan at step 3; lower --lr")))
    job = _finished(runner, runner.start(_config(tmp_path / "x")))
    assert job.status == "failed" and job.error.startswith("The loss became nan")
    runner = TrainingRunner(train_fn=FakeTrain(fail=RuntimeError("boom\nsecond line")))
    job = _finished(runner, runner.start(_config(tmp_path / "y")))
    assert job.status == "failed" and job.error == "RuntimeError: boom" and "Traceback" in job.traceback


def test_runner_is_thread_safe_under_concurrent_starts(tmp_path):
    from analyzer.ui._runner import TrainingRunner

    fake = FakeTrain(steps=100, hold_at=1)  # the first run to start holds until stopped: it is running throughout
    runner = TrainingRunner(train_fn=fake)
    started, refused = [], []

    def go(i):
        try:
            started.append(runner.start(_config(tmp_path / f"r{i}")))
        except TrainingError:
            refused.append(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(started) == 1 and len(refused) == 7 and fake.calls <= 1
    runner.stop(started[0].id)
    assert _finished(runner, started[0]).status == "stopped" and fake.calls == 1


# ------------------------------------------------------------------------------------------------ sources


def test_discover_and_run_info(tmp_path):
    from analyzer.ui._sources import discover, run_info, stamp

    for name in ("b-adapter", "group/a-adapter"):
        d = tmp_path / name
        d.mkdir(parents=True)
        for k, v in _adapter_files().items():
            (d / k).write_bytes(v)
    (tmp_path / "loose.npy").write_bytes(b"x")
    (tmp_path / "b-adapter" / "snapshots.safetensors").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden").mkdir()
    found = discover(tmp_path)
    assert list(found) == ["b-adapter", "group/a-adapter", "loose.npy"]
    assert discover(tmp_path / "b-adapter", prefix="x/") == {"x/b-adapter": str(tmp_path / "b-adapter")}
    assert discover(tmp_path / "missing") == {}
    meta = {"task": {"name": "sentiment"}, "init": {"mode": "labels"}, "steps_done": 40,
            "final_eval": {"accuracy": 0.8}}
    (tmp_path / "b-adapter" / "training_meta.json").write_text(json.dumps(meta))
    info = run_info(tmp_path / "b-adapter")
    assert (info.task, info.init, info.steps, info.accuracy, info.has_snapshots) == ("sentiment", "labels", 40,
                                                                                     0.8, True)
    assert run_info(tmp_path / "loose.npy").task is None
    s1 = stamp(tmp_path / "b-adapter")
    (tmp_path / "b-adapter" / "adapter_model.safetensors").write_bytes(b"changed!")
    assert stamp(tmp_path / "b-adapter") != s1


# ------------------------------------------------------------------------------------------------ launch


def test_app_command_binds_localhost_and_caps_uploads(tmp_path):
    from analyzer.ui.launch import app_command

    cmd, env, cwd = app_command(port=8600, prompts=tmp_path, model="smollm2-135m", browser=False)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]).name == "dashboard.py" and cwd == Path.cwd()
    # the packaged entry script renders the page; its settings lie beside it (Streamlit's script-level config)
    assert "render()" in Path(cmd[4]).read_text() and (Path(cmd[4]).parent / ".streamlit/config.toml").is_file()
    opts = dict(zip(cmd[5::2], cmd[6::2]))  # a later flag wins, as in streamlit's own parsing
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.port"] == "8600"
    assert opts["--server.maxUploadSize"] == "50" and opts["--client.showErrorDetails"] == "none"
    assert opts["--server.headless"] == "true" and opts["--server.fileWatcherType"] == "none"
    assert opts["--global.developmentMode"] == "false" and opts["--browser.gatherUsageStats"] == "false"
    assert env["SOFTPROMPT_ANALYZER_PROMPTS"] == str(tmp_path.resolve())
    assert env["SOFTPROMPT_ANALYZER_MODEL"] == "smollm2-135m"


def test_app_cli_serves_without_prompting_and_opens_the_browser_when_ready(tmp_path):
    """What `make demo` runs: no first-run e-mail prompt on stdin, and the browser (here a script named by
    $BROWSER, which Python's webbrowser runs with the URL) opens only once the server answers."""
    import os
    import sys

    from serving import serve_then_stop

    env = dict(os.environ, SOFTPROMPT_ANALYZER_PROMPTS=str(tmp_path))
    log = serve_then_stop([sys.executable, "-m", "analyzer", "app"], env=env, workdir=tmp_path)
    assert "Email" not in log


def test_app_cli_killed_takes_its_server_with_it(tmp_path):
    """SIGKILL of `softprompt-analyzer app` (it cannot catch it) still stops the streamlit server it started: the
    server runs with a parent-death signal, so no orphan keeps serving."""
    import os
    import sys

    from serving import serve_then_stop

    env = dict(os.environ, SOFTPROMPT_ANALYZER_PROMPTS=str(tmp_path))
    serve_then_stop([sys.executable, "-m", "analyzer", "app"], env=env, workdir=tmp_path, kill=True)


def test_browser_url():
    from analyzer.ui.launch import browser_url

    assert browser_url("127.0.0.1", 8600) == "http://127.0.0.1:8600"
    assert browser_url("0.0.0.0", None) == "http://127.0.0.1:8501"
    assert browser_url("::1", 9000) == "http://[::1]:9000"


@pytest.mark.parametrize("kwargs, match", [({"port": 0}, "'port' parameter of run_app must be an int in"), ({"port": "80"}, "port"),
                                           ({"address": " "}, "address"), ({"prompts": "/no/such/dir"}, "not a dir")])
def test_app_command_errors(kwargs, match):
    from analyzer.exceptions import AnalyzerError
    from analyzer.ui.launch import app_command

    with pytest.raises(AnalyzerError, match=match):
        app_command(**kwargs)


def test_core_package_never_imports_streamlit():
    import subprocess
    import sys

    code = ("import sys, analyzer, analyzer.projection, analyzer.plotting, analyzer.ui.launch, analyzer.ui._uploads, "
            "analyzer.ui._runner; from analyzer.plotting import plot_prompt_map; "
            "assert 'streamlit' not in sys.modules and 'umap' not in sys.modules and 'plotly' not in sys.modules, "
            "[m for m in ('streamlit', 'umap', 'plotly') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_streamlit_is_imported_only_by_the_ui_package():
    from app_helpers import ROOT

    offenders = [p.relative_to(ROOT).as_posix() for p in (ROOT / "analyzer").rglob("*.py")
                 if "ui" not in p.relative_to(ROOT / "analyzer").parts
                 and ("import streamlit" in p.read_text() or "from streamlit" in p.read_text())]
    assert offenders == []


def test_background_lane_runs_in_order_and_reports_errors():
    from analyzer.ui._runner import BackgroundLane

    lane = BackgroundLane("test-lane")
    order = []
    futs = [lane.submit(lambda i=i: order.append(i) or i * i) for i in range(5)]
    bad = lane.submit(lambda: 1 / 0)
    assert [f.result(5) for f in futs] == [0, 1, 4, 9, 16] and order == [0, 1, 2, 3, 4]
    with pytest.raises(ZeroDivisionError):
        bad.result(5)
    assert not lane._thread.daemon  # joined at exit: never left in native code while the interpreter finalizes
    assert lane.shutdown(SAFETY_S)   # an idle lane's thread ends at once


def test_background_lane_shutdown_cancels_queued_calls():
    from analyzer.ui._runner import BackgroundLane

    lane = BackgroundLane("test-lane-2")
    gate, started = threading.Event(), threading.Event()

    def work():
        started.set()
        return gate.wait(SAFETY_S)

    running = lane.submit(work)
    assert started.wait(5)    # the first call is running (not merely queued) before the shutdown
    queued = [lane.submit(lambda: 1) for _ in range(3)]
    settled, lock, left = threading.Event(), threading.Lock(), [len(queued)]

    def on_done(_):
        with lock:
            left[0] -= 1
            if not left[0]:
                settled.set()

    for f in queued:
        f.add_done_callback(on_done)  # runs when the call is cancelled (or, wrongly, run)
    stopper = threading.Thread(target=lane.shutdown, args=(SAFETY_S,))
    stopper.start()           # cancels the queued calls at once, then waits for the running one (and the thread)
    assert settled.wait(SAFETY_S), "shutdown did not settle the queued calls while one was still running"
    assert not running.done()
    gate.set()
    stopper.join(SAFETY_S)
    assert not stopper.is_alive(), "shutdown did not return once the running call had finished"
    assert not lane._thread.is_alive()
    assert running.result(5) is True
    assert all(f.cancelled() for f in queued)
    assert lane.submit(lambda: 1).cancelled()


# ------------------------------------------------------------------------------------- typed paths off loopback


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
    ("localhost", True), ("LocalHost", True), (" 127.0.0.1 ", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("10.0.0.5", False), ("fe80::1", False),
    ("2001:db8::1", False), ("example.org", False), ("localhost.example.org", False), ("unix:///tmp/st.sock", False),
    # unset or empty: Streamlit then binds every interface (0.0.0.0, or the dual-stack ::), not localhost
    (None, False), ("", False), ("  ", False),
])
def test_is_loopback(address, loopback):
    from analyzer.ui._access import is_loopback

    assert is_loopback(address) is loopback


@pytest.mark.parametrize("address, shown", [("0.0.0.0", "0.0.0.0"), ("::", "::"), ("192.168.1.20", "192.168.1.20"),
                                            (None, "every interface"), ("", "every interface")])
def test_path_access_off_loopback(address, shown):
    from analyzer.ui._access import path_access

    access = path_access(address)
    reason = access.reason
    assert access.allowed is False
    assert reason.startswith(f"The server listens on {shown}") and "typed paths" in reason
    assert "--allow-paths" in reason and reason.endswith(".") and ". " not in reason  # one sentence
    assert path_access(address, allow_paths=True) == path_access("127.0.0.1") == path_access("::1")
    assert path_access("localhost").allowed and path_access("localhost").reason is None


def test_allow_paths_requested_by_script_args_or_environment():
    from analyzer.ui._access import ENV_ALLOW_PATHS, allow_paths_requested

    assert ENV_ALLOW_PATHS == "SOFTPROMPT_ANALYZER_ALLOW_PATHS"
    assert not allow_paths_requested([], {})
    assert allow_paths_requested(["--allow-paths"], {})  # streamlit run app.py -- --allow-paths
    assert allow_paths_requested([], {ENV_ALLOW_PATHS: "1"})  # what `softprompt-analyzer app --allow-paths` sets
    assert allow_paths_requested([], {ENV_ALLOW_PATHS: "true"})
    for off in ("", "0", "false", "no"):
        assert not allow_paths_requested(["--other"], {ENV_ALLOW_PATHS: off})


def test_app_command_passes_allow_paths_only_when_asked(monkeypatch):
    from analyzer.ui.launch import app_command

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_ALLOW_PATHS", "1")  # left over in the caller's shell: not inherited
    _, env, _ = app_command(address="0.0.0.0")
    assert "SOFTPROMPT_ANALYZER_ALLOW_PATHS" not in env
    _, env, _ = app_command(address="0.0.0.0", allow_paths=True)
    assert env["SOFTPROMPT_ANALYZER_ALLOW_PATHS"] == "1"


@pytest.mark.parametrize("flags, allowed", [([], None), (["--allow-paths"], "1")])
def test_app_cli_allow_paths_reaches_the_server_environment(monkeypatch, capsys, flags, allowed):
    """`softprompt-analyzer app --address 0.0.0.0 --allow-paths`: the flag reaches the environment of the
    streamlit process (Popen is replaced by a recorder, so no server starts)."""
    from analyzer import cli
    from analyzer.ui import launch

    started = {}

    class FakeServer:
        def __init__(self, cmd, env, **kwargs):
            started.update(cmd=cmd, env=env)

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(launch.subprocess, "Popen", FakeServer)
    monkeypatch.setattr(launch, "_stop_child_on_sigterm", lambda proc: None)
    monkeypatch.delenv("SOFTPROMPT_ANALYZER_ALLOW_PATHS", raising=False)
    assert cli.main(["app", "--address", "0.0.0.0", "--no-browser", *flags]) == 0
    opts = dict(zip(started["cmd"][5::2], started["cmd"][6::2]))
    assert opts["--server.address"] == "0.0.0.0"
    assert started["env"].get("SOFTPROMPT_ANALYZER_ALLOW_PATHS") == allowed
    err = capsys.readouterr().err
    assert "reachable from the network" in err
    assert ("typed paths and model names are off" in err) is (allowed is None)


def test_run_state_marks_an_interrupted_run_and_not_a_finished_or_stopped_one(tmp_path):
    import json

    from safetensors.numpy import save_file

    from analyzer.ui._runner import run_state

    def write(step, steps, meta=None):
        d = tmp_path / f"run-{step}-{steps}-{bool(meta)}"
        d.mkdir()
        ck = {"step": step, "config": {"model": "m", "task": "t", "steps": steps}}
        save_file({"prompt": np.zeros((2, 3), np.float32)}, str(d / "checkpoint.safetensors"),
                  metadata={"checkpoint": json.dumps(ck)})
        if meta is not None:
            (d / "training_meta.json").write_text(json.dumps(meta))
        return d

    killed = run_state(write(25, 100))                      # SIGKILL at step 31: the checkpoint of step 25
    assert killed.interrupted and (killed.step, killed.steps) == (25, 100) and killed.config["task"] == "t"
    assert not run_state(write(100, 100)).interrupted        # finished
    assert not run_state(write(40, 100, {"stopped": True, "steps_done": 40})).interrupted   # stopped on purpose
    assert run_state(tmp_path) is None                        # no checkpoint
    (tmp_path / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    assert run_state(tmp_path) is None


def test_runner_resumes_in_a_folder_it_ran_before(tmp_path):
    from types import SimpleNamespace

    from analyzer.ui._runner import TrainingRunner

    def train(config, callbacks=(), stop_event=None, model=None, tokenizer=None):
        return SimpleNamespace(stopped=False)

    runner = TrainingRunner(train_fn=train)
    first = runner.start(SimpleNamespace(out=str(tmp_path / "r"), steps=3))
    runner.wait(first.id, 30)
    with pytest.raises(TrainingError, match="already used"):
        runner.start(SimpleNamespace(out=str(tmp_path / "r"), steps=3))
    again = runner.start(SimpleNamespace(out=str(tmp_path / "r"), steps=3, resume=True))
    runner.wait(again.id, 30)
    assert again.status == "done" and [j.id for j in runner.jobs()] == [again.id]

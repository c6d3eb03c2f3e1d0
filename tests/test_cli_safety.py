"""Nothing lost, nothing silently wrong (issue 20): operating-system errors are user errors (one line with the path,
what was wanted and what to do; exit 2), and every seed is checked up front.  Tiny synthetic model only."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analyzer.cli import main
from analyzer.exceptions import AnalyzerError, TaskError, os_error_message

ROOT = Path(__file__).resolve().parents[1]


def _one_line_error(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error:") and "Traceback" not in err and "internal error" not in err, err
    return err.strip()


@pytest.fixture(scope="module")
def unprivileged():
    """A command prefix under which file permissions are enforced: nothing for a normal user; as root (where the
    suite runs in CI) ``setpriv --bounding-set -all``, which drops CAP_DAC_OVERRIDE so that mode 000 is unreadable."""
    if os.geteuid() != 0:
        return []
    exe = shutil.which("setpriv")
    if exe is None:
        pytest.skip("running as root without setpriv: file permissions are not enforced")
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"perm-probe-{os.getpid()}"
    probe.write_text("x")
    probe.chmod(0)
    try:
        denied = subprocess.run([exe, "--bounding-set", "-all", "cat", str(probe)], capture_output=True).returncode
    finally:
        probe.unlink()
    if denied == 0:
        pytest.skip("setpriv could not drop CAP_DAC_OVERRIDE here")
    return [exe, "--bounding-set", "-all"]


def _run(prefix, *args):
    p = subprocess.run([*prefix, sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True,
                       text=True, cwd=ROOT, timeout=600)
    return p.stdout, p.stderr, p.returncode


@pytest.fixture()
def perm_tree(tmp_path, tiny_llama_dir):
    """Unreadable things: a prompt file, a folder that cannot be searched, a model file, a task file, and a
    read-only folder for --out."""
    prompt = tmp_path / "p.npy"
    np.save(prompt, np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32))
    unread = tmp_path / "unread.npy"
    shutil.copy(prompt, unread)
    noexec = tmp_path / "noexec"
    noexec.mkdir()
    shutil.copy(prompt, noexec / "p.npy")
    model = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, model)
    task = tmp_path / "t.csv"
    task.write_text("text,label\ngood film,pos\nbad film,neg\n")
    rodir = tmp_path / "rodir"
    rodir.mkdir()
    unread.chmod(0)
    (model / "model.safetensors").chmod(0)
    task.chmod(0)
    noexec.chmod(0o600)
    rodir.chmod(0o555)
    yield {"prompt": prompt, "unread": unread, "noexec": noexec, "model": model, "task": task, "rodir": rodir,
           "tiny": tiny_llama_dir}
    for p in (noexec, rodir):
        p.chmod(0o755)


@pytest.mark.parametrize("case", ["prompt file", "prompt in a folder without x", "model file", "task file",
                                  "--out in a read-only folder"])
def test_unreadable_and_unwritable_paths_are_one_line(case, perm_tree, unprivileged):
    t = perm_tree
    args, path, wanted = {
        "prompt file": (["report", t["unread"], "--model", t["tiny"]], t["unread"], "read the soft prompt"),
        "prompt in a folder without x": (["report", t["noexec"] / "p.npy", "--model", t["tiny"]],
                                         t["noexec"] / "p.npy", "read the soft prompt"),
        "model file": (["report", t["prompt"], "--model", t["model"]], t["model"] / "model.safetensors",
                       "load the model"),
        "task file": (["analyze", t["prompt"], "--model", t["tiny"], "--task", t["task"], "-q"], t["task"],
                      "read the task file"),
        "--out in a read-only folder": (["report", t["prompt"], "--model", t["tiny"], "--out", t["rodir"] / "r.txt"],
                                        t["rodir"] / "r.txt", "write the output file (--out)"),
    }[case]
    out, err, rc = _run(unprivileged, *args)
    assert rc == 2, err
    line = _one_line_error(err)
    assert f"Cannot {wanted} '{path}'" in line and "permission denied" in line and "ls -l" in line, line
    assert not out.strip()
    if case.startswith("--out"):
        assert list(t["rodir"].iterdir()) == []          # no temporary file left behind


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"),
                                          (errno.EACCES, "permission denied"), (errno.EISDIR, "is a folder")])
def test_os_errors_anywhere_are_exit_2_with_the_path(code, reason, tmp_path, monkeypatch, capsys, tiny_llama_dir):
    """An OSError from any depth (here: the report's writer, and a command itself) is one line with its path."""
    target = tmp_path / "r.txt"

    def full(path, text):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr("analyzer.cache.atomic_write_text", full)
    prompt = tmp_path / "p.npy"
    np.save(prompt, np.ones((2, 32), np.float32))
    rc = main(["report", str(prompt), "--model", str(tiny_llama_dir), "--out", str(target)])
    line = _one_line_error(capsys.readouterr().err)
    assert rc == 2 and f"'{target}'" in line and reason in line and "--out" in line, line

    def boom(args):
        raise OSError(code, os.strerror(code), "/some/where")

    monkeypatch.setattr("analyzer.cli.cmd_report", boom)
    rc = main(["report", str(prompt)])
    line = _one_line_error(capsys.readouterr().err)
    assert rc == 2 and "'/some/where'" in line and reason in line, line


def test_os_error_message_shapes():
    e = PermissionError(errno.EACCES, "Permission denied", "/x/.r.txt.abc.tmp")
    assert os_error_message(e, "write the output file", path="/x/r.txt") == (
        "Cannot write the output file '/x/r.txt': permission denied; check the permissions of the path and its "
        "folders (ls -l), or choose another path.")
    e = FileNotFoundError(errno.ENOENT, "No such file or directory", "/x")
    assert "(at '/x')" in os_error_message(e, "write the output file", path="/x/y/r.txt")
    assert os_error_message(OSError("weird")).startswith("Cannot read or write: weird;")


@pytest.mark.parametrize("command", ["analyze", "train", "waywardness", "importance", "describe"])
@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5", "x"])
def test_every_seed_is_checked_up_front(command, seed, capsys):
    """`analyze --seed -1` was `internal error: ValueError: expected non-negative integer`: every command's --seed
    goes through one check before anything loads."""
    with pytest.raises(SystemExit) as e:
        main([command, *([] if command in ("train", "waywardness") else ["p.npy"]), "--seed", seed])
    assert e.value.code == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "--seed" in line and "[0, 4294967295]" in line and repr(seed) in line, line


def test_seed_checked_in_the_api():
    from analyzer.analysis import analysis_settings
    from analyzer.stats import SEED_MAX, check_seed
    from analyzer.training.config import TrainConfig

    assert check_seed(SEED_MAX) == SEED_MAX and check_seed(np.int64(3)) == 3
    for bad in (-1, SEED_MAX + 1, 1.0, True, "0"):
        with pytest.raises(AnalyzerError, match=r"\[0, 4294967295\]"):
            check_seed(bad)
    with pytest.raises(AnalyzerError, match="seed"):
        analysis_settings(seed=-1)
    with pytest.raises(AnalyzerError, match="seed"):
        TrainConfig(model="m", task="sentiment", out="o", seed=SEED_MAX + 1)


def test_task_folder_is_named_a_folder(tmp_path, capsys, tiny_llama_dir):
    from analyzer.tasks import get_task

    (tmp_path / "data").mkdir()
    for name in (str(tmp_path / "data"), str(tmp_path / "data") + "/"):
        with pytest.raises(TaskError) as e:
            get_task(name)
        msg = str(e.value)
        assert "is a folder" in msg and "does not exist" not in msg and "CSV" in msg, msg
    with pytest.raises(TaskError, match="does not exist"):
        get_task(str(tmp_path / "data" / "nope.csv"))
    os.mkfifo(tmp_path / "fifo.csv")
    with pytest.raises(TaskError, match="not a regular file"):
        get_task(str(tmp_path / "fifo.csv"))
    prompt = tmp_path / "p.npy"
    np.save(prompt, np.ones((2, 32), np.float32))
    rc = main(["analyze", str(prompt), "--model", str(tiny_llama_dir), "--task", str(tmp_path / "data"), "-q"])
    line = _one_line_error(capsys.readouterr().err)
    assert rc == 2 and "is a folder" in line and str(tmp_path / "data") in line



# ------------------------------------------------------------------------------------ --out never replaces its node
@pytest.fixture()
def report_args(tmp_path, tiny_llama_dir):
    prompt = tmp_path / "p.npy"
    np.save(prompt, np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32))
    return ["report", str(prompt), "--model", str(tiny_llama_dir), "-k", "2", "--format", "json"]


def test_out_through_a_symlink_writes_its_target(report_args, tmp_path, capsys):
    target = tmp_path / "real.json"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    assert main([*report_args, "--out", str(link)]) == 0, capsys.readouterr().err
    assert link.is_symlink() and os.readlink(link) == target.name
    assert '"prompts"' in target.read_text() and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_out_keeps_the_mode_of_an_existing_file(report_args, tmp_path, capsys):
    out = tmp_path / "private.json"
    out.write_text("old")
    out.chmod(0o600)
    assert main([*report_args, "--out", str(out)]) == 0, capsys.readouterr().err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and '"prompts"' in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npy", "private.json"]     # no temporary file left


def test_out_to_a_fifo_writes_through_it(report_args, tmp_path, capsys):
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    assert main([*report_args, "--out", str(fifo)]) == 0, capsys.readouterr().err
    reader.join(timeout=60)
    assert got and '"prompts"' in got[0]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_out_to_dev_null_leaves_the_device(report_args, capsys):
    assert main([*report_args, "--out", os.devnull]) == 0, capsys.readouterr().err
    st = os.lstat(os.devnull)
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


@pytest.mark.parametrize("how", ["folder", "link to a folder"])
def test_out_to_a_folder_is_refused(how, report_args, tmp_path, capsys):
    folder = tmp_path / "reports"
    folder.mkdir()
    out = folder
    if how == "link to a folder":
        out = tmp_path / "link"
        out.symlink_to(folder)
    assert main([*report_args, "--out", str(out)]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert f"'{out}'" in line and "is a folder" in line and "never replaced" in line, line
    assert folder.is_dir() and list(folder.iterdir()) == [] and (how == "folder" or out.is_symlink())


def test_every_writer_follows_the_rule(tmp_path):
    """The one helper (cache.atomic_path) under the text/bytes writers, a training adapter and the samples."""
    import torch

    from analyzer.cache import atomic_write_bytes, atomic_write_text, write_target
    from analyzer.samples import write_samples
    from analyzer.training.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, save_adapter

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (elsewhere / "config.json").write_text("{}")
    (elsewhere / "config.json").chmod(0o600)
    (run / ADAPTER_CONFIG).symlink_to(elsewhere / "config.json")
    (run / ADAPTER_WEIGHTS).write_bytes(b"old")
    (run / ADAPTER_WEIGHTS).chmod(0o640)
    save_adapter(run, torch.ones(2, 4), base_model_name_or_path="m")
    assert (run / ADAPTER_CONFIG).is_symlink() and "num_virtual_tokens" in (elsewhere / "config.json").read_text()
    assert stat.S_IMODE((elsewhere / "config.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((run / ADAPTER_WEIGHTS).stat().st_mode) == 0o640
    os.mkfifo(tmp_path / "fifo")
    assert write_target(tmp_path / "fifo")[2] is True and write_target(os.devnull)[2] is True
    with pytest.raises(AnalyzerError, match="is a folder"):
        atomic_write_text(tmp_path / "run", "x")
    with pytest.raises(NotADirectoryError):
        atomic_write_bytes(tmp_path / "run" / ADAPTER_WEIGHTS / "x", b"x")
    samples = tmp_path / "samples"
    first = write_samples(samples)
    name, folder = next(iter(first.items()))
    f = next(p for p in folder.iterdir() if p.is_file())
    f.chmod(0o600)
    write_samples(samples, force=True)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_dashboard_shows_os_errors_as_one_line(tmp_path, monkeypatch):
    """The dashboard's section guard and its training runner word an OSError as the CLI does."""
    from types import SimpleNamespace

    import analyzer.ui._common as common
    from analyzer.ui._runner import TrainingRunner

    shown = []
    monkeypatch.setattr(common.st, "error", lambda msg, **kw: shown.append(msg))
    with common.guard("the map"):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/prompt.npy")
    assert shown == ["Cannot read or write '/data/prompt.npy': permission denied; check the permissions of the path "
                     "and its folders (ls -l), or choose another path."]

    def unwritable(config, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", config.out)

    runner = TrainingRunner(train_fn=unwritable)
    job = runner.start(SimpleNamespace(out=str(tmp_path / "run"), steps=5))
    runner.wait(job.id, 60)
    assert job.status == "failed" and job.error.startswith(f"Cannot read or write '{tmp_path / 'run'}': permission")

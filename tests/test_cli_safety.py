"""Nothing lost, nothing silently wrong (issue 20): operating-system errors are user errors (one line with the path,
what was wanted and what to do; exit 2), and every seed is checked up front.  Tiny synthetic model only."""

from __future__ import annotations

import errno
import os
import shutil
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


"""Start a dashboard CLI (``softprompt-analyzer app`` in some form) and stop it, waiting on events only: the CLI
opens "the browser" (a script named by $BROWSER that reports its URL over a socket) once the server answers its
health check; the wait ends on that connection or on the CLI's exit (its pidfd)."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_then_stop(argv: list[str], *, env: dict, workdir: Path, cwd: Path | None = None,
                    safety_s: float = 120, kill: bool = False) -> str:
    """Run ``argv + ["--port", P]`` until the browser opens at its URL, check ``/_stcore/health`` answers 200
    while the CLI runs, SIGTERM the CLI (``kill``: SIGKILL, which it cannot catch) and check nothing is left
    listening; returns the CLI's output."""
    port = free_port()
    listener = socket.create_server(("127.0.0.1", 0))
    fake = workdir / "browser.py"
    fake.write_text(f"#!{sys.executable}\nimport socket, sys\n"
                    f"with socket.create_connection(('127.0.0.1', {listener.getsockname()[1]})) as s:\n"
                    f"    s.sendall(sys.argv[1].encode())\n")
    fake.chmod(0o755)
    log = workdir / "server.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen([*argv, "--port", str(port)], env=dict(env, BROWSER=str(fake)), cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        assert browser_opened(listener, proc, log, safety_s) == url
        with urllib.request.urlopen(url + "/_stcore/health", timeout=5) as r:
            assert r.status == 200  # it was opened because the server was answering
        assert proc.poll() is None
        # stopping the CLI (SIGTERM, or SIGKILL) stops the server it started: nothing is left listening.  The
        # CLI's processes now: the server (and whatever it started), perhaps the fake browser still exiting
        fds = open_pidfds(descendants(proc.pid))
        proc.kill() if kill else proc.terminate()
        proc.wait(safety_s)
        try:
            for fd in fds:            # wait for each descendant's exit (an event), not for a deadline
                with selectors.DefaultSelector() as sel:
                    sel.register(fd, selectors.EVENT_READ)
                    assert sel.select(safety_s), f"a process the CLI started outlived it by {safety_s} s"
        finally:
            for fd in fds:
                os.close(fd)
        with pytest.raises(OSError):
            urllib.request.urlopen(url + "/_stcore/health", timeout=5)
        return log.read_text(errors="replace")
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()


def descendants(pid: int) -> list[int]:
    """The pids of ``pid``'s children, their children and so on, read from ``/proc/<pid>/task/<tid>/children``
    of every thread (a child belongs to the thread that started it: a server starts its helpers from worker
    threads).  A snapshot: a process that exits while the tree is read is simply left out."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except (FileNotFoundError, ProcessLookupError):
            continue          # gone since it was listed
        for tid in tids:
            try:
                kids = [int(c) for c in Path(f"/proc/{parent}/task/{tid}/children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue      # that thread (or the whole process) ended since
            found += kids
            todo += kids
    return found


def open_pidfds(pids) -> list[int]:
    """A pidfd (readable once the process has exited) for each of ``pids`` still there -- zombies included,
    whose pidfds are readable at once.  A process already exited and reaped (a listed child whose parent waited
    for it before its pidfd could be opened) is skipped: it has done what the caller would wait for."""
    fds = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def browser_opened(listener, proc, log, safety_s=120):
    """The URL the fake browser was started with, as soon as it connects to ``listener``; fails as soon as the
    CLI process exits instead (and, only as a safety net, after ``safety_s`` seconds of neither)."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ, "browser")
            sel.register(pidfd, selectors.EVENT_READ, "exited")
            ready = {key.data for key, _ in sel.select(safety_s)}
    finally:
        os.close(pidfd)
    tail = log.read_text(errors="replace")[-2000:]
    assert "browser" in ready, (f"the CLI exited ({proc.poll()}) without opening the browser:\n{tail}" if ready
                                else f"no browser opened within {safety_s} s:\n{tail}")
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(safety_s)
        return b"".join(iter(lambda: conn.recv(4096), b"")).decode()

"""The process helpers of ``serving.py``: a listed child may exit, and be reaped by its parent, before its pidfd
is opened (the fake browser, which the CLI's ``webbrowser.open`` waits for, does exactly that); that child has
already done what the caller waits for, so it is skipped, never an error.  Every wait here is on an event (a
pidfd, a pipe); timeouts are only safety nets."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from pathlib import Path

import pytest

from serving import descendants, open_pidfds

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open") or not os.path.exists(
    f"/proc/self/task/{os.getpid()}/children"), reason="needs Linux pidfds and /proc/<pid>/task/<tid>/children")

SAFETY_S = 60


def _readable(fd: int, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        return bool(sel.select(timeout))


def _waiting_child() -> subprocess.Popen:
    """A child that runs until its stdin is closed."""
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)


def test_open_pidfds_skips_a_child_already_exited_and_reaped():
    reaped = subprocess.Popen([sys.executable, "-c", "pass"])
    reaped.wait()                                    # exited and reaped: its pid no longer names a process
    with pytest.raises(ProcessLookupError):
        os.pidfd_open(reaped.pid)                    # what the unguarded helper died of
    live = _waiting_child()
    try:
        fds = open_pidfds([reaped.pid, live.pid])
        try:
            assert len(fds) == 1                     # the reaped child skipped, the live one kept
            assert not _readable(fds[0], 0)          # ... and it is the live one: not exited yet
            live.stdin.close()                       # let it end
            assert _readable(fds[0], SAFETY_S)       # its exit is the event the pidfd reports
        finally:
            for fd in fds:
                os.close(fd)
    finally:
        if live.poll() is None:
            live.kill()
        live.wait()


def test_open_pidfds_keeps_a_zombie_readable_at_once():
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    own = os.pidfd_open(zombie.pid)
    try:
        assert _readable(own, SAFETY_S)              # it has exited; not reaped yet (no wait() so far)
        fds = open_pidfds([zombie.pid])
        try:
            assert len(fds) == 1 and _readable(fds[0], 0)
        finally:
            for fd in fds:
                os.close(fd)
    finally:
        os.close(own)
        zombie.wait()


def test_descendants_finds_grandchildren_started_from_any_thread():
    """A child started from a worker thread is listed under that thread's ``children`` file, not the main
    thread's; a grandchild is found through its parent."""
    code = ("import subprocess, sys, threading\n"
            "started, done = threading.Event(), threading.Event()\n"
            "kids = []\n"
            "def start():\n"            # the starting thread stays alive: its child is listed under it only
            "    kids.append(subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'],"
            " stdin=subprocess.PIPE))\n"
            "    started.set(); done.wait()\n"
            "t = threading.Thread(target=start); t.start(); started.wait()\n"
            "print(kids[0].pid, flush=True)\n"
            "sys.stdin.read()\n"
            "kids[0].stdin.close(); kids[0].wait(); done.set(); t.join()\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        grandchild = int(parent.stdout.readline())
        main_thread_kids = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        assert str(grandchild) not in main_thread_kids      # what reading the main thread's file alone misses
        assert grandchild in descendants(os.getpid())
        assert descendants(parent.pid) == [grandchild]
        assert parent.pid in descendants(os.getpid())
    finally:
        parent.stdin.close()
        assert parent.wait(SAFETY_S) == 0


def test_descendants_of_a_process_gone_is_empty():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert descendants(gone.pid) == []

"""Start the dashboard server: what ``softprompt-analyzer app`` runs.  Imports no streamlit (the server is a
child process ``python -m streamlit run <package>/ui/_app/dashboard.py``), so ``--help`` stays fast.  The entry
script and its settings (``_app/.streamlit/config.toml``) ship inside the package, so the same command works from
a wheel and from a checkout.

The server binds to 127.0.0.1 unless another address is given (off loopback, typed paths and model names are off
in the page unless ``allow_paths``: see :mod:`analyzer.ui._access`); uploads are capped at
:data:`~analyzer.ui._uploads.MAX_UPLOAD_MB`; error details (tracebacks) never reach the page."""

from __future__ import annotations

import os
import subprocess
import sys
from numbers import Integral
from pathlib import Path

from .._params import Interval, Text, check_params
from ..exceptions import AnalyzerError
from ._access import ALLOW_PATHS_FLAG, ENV_ALLOW_PATHS, is_loopback
from ._sources import ENV_MODEL, ENV_PROMPTS
from ._uploads import MAX_UPLOAD_MB

DEFAULT_PORT = 8501


APP_DIR = "_app"
ENTRY_SCRIPT = "dashboard.py"
CONFIG_FILE = ".streamlit/config.toml"


def _app_file(rel: str) -> Path:
    from importlib.resources import files

    p = Path(str(files("analyzer.ui") / APP_DIR / rel))
    if not p.is_file():
        raise AnalyzerError(f"The dashboard file {rel!r} is missing from the installed package (expected at "
                            f"{str(p)!r}); reinstall softprompt-analyzer (pip install --force-reinstall).")
    return p


def app_path() -> Path:
    """The dashboard's entry script inside the package (``analyzer/ui/_app/dashboard.py``)."""
    return _app_file(ENTRY_SCRIPT)


def config_flags() -> list[str]:
    """Every setting of the shipped ``.streamlit/config.toml`` as ``--section.key value`` flags, in file order."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    with open(_app_file(CONFIG_FILE), "rb") as f:
        config = tomllib.load(f)
    flags = []
    for section, options in config.items():
        for key, value in options.items():
            flags += [f"--{section}.{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


def app_command(*, port: int | None = None, address: str = "127.0.0.1", model: str | None = None,
                prompts: str | os.PathLike | None = None, browser: bool = True,
                allow_paths: bool = False) -> tuple[list[str], dict, Path]:
    """``(argv, env, cwd)`` of the server process (pure; see :func:`run_app`); ``cwd`` is the caller's folder, so
    relative paths typed in the page mean what they mean in the shell that started it.  ``allow_paths`` sets
    ``SOFTPROMPT_ANALYZER_ALLOW_PATHS=1`` for the server; without it the variable is removed, so only the flag
    turns typed paths on off loopback."""
    port, address = check_params("run_app", {"port": port, "address": address}, {
        "port": [Interval(Integral, 1, 65535), None], "address": [Text()]}).values()
    # the shipped settings first (always headless: a non-headless first run asks for an e-mail address on stdin,
    # which blocks `make demo` in a fresh environment; run_app opens the browser itself once the server answers),
    # then this call's address and the uploader's cap; a later flag wins
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_path()), *config_flags(),
           "--server.address", address.strip(),
           "--server.maxUploadSize", str(MAX_UPLOAD_MB)]
    if port is not None:
        cmd += ["--server.port", str(port)]
    env = dict(os.environ)
    if model:
        env[ENV_MODEL] = str(model)
    if prompts:
        p = Path(prompts).expanduser()
        if not p.is_dir():
            raise AnalyzerError(f"The prompt folder {str(prompts)!r} is not a directory.")
        env[ENV_PROMPTS] = str(p.resolve())
    env.pop(ENV_ALLOW_PATHS, None)
    if allow_paths:
        env[ENV_ALLOW_PATHS] = "1"
    return cmd, env, Path.cwd()


def _port_in_use(address: str, port: int) -> bool:
    """Whether binding ``address:port`` fails because something already listens there (as the server's own bind
    would: SO_REUSEADDR set, so a port in TIME_WAIT counts as free)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(address.strip() or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return False                     # an address that does not resolve: the server says so itself
    for family, kind, proto, _, sockaddr in infos[:1]:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(sockaddr)
            except OSError as e:
                return e.errno == errno.EADDRINUSE
    return False


def check_port_free(address: str, port: int | None) -> None:
    """AnalyzerError, in one line naming the port and how to choose another, when another program listens on
    ``address:port`` (Streamlit itself would print a traceback-free but buried message and exit)."""
    port = DEFAULT_PORT if port is None else port
    if not _port_in_use(address, port):
        return
    free = next((q for q in range(port + 1, min(port + 50, 65535) + 1) if not _port_in_use(address, q)), None)
    hint = f", e.g. --port {free} (free now)" if free is not None else ""
    raise AnalyzerError(f"Port {port} on {address.strip()} is already in use by another program (another dashboard?); "
                        f"choose another with --port N{hint}.")


def browser_url(address: str, port: int | None) -> str:
    """Where a local browser reaches a server bound to ``address`` (a wildcard address means this machine)."""
    host = address.strip()
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port or DEFAULT_PORT}"


def wait_until_serving(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    """Whether the server ``proc`` answers its health check at ``url`` within ``timeout`` s (False when it exits)."""
    import time
    import urllib.request

    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def _stop_child_on_sigterm(proc: subprocess.Popen) -> None:
    """A SIGTERM to this process (``kill``, ``timeout``, a test's ``terminate()``) stops the server too, instead of
    leaving it running as an orphan; Ctrl-C already reaches both through the terminal's process group."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, frame):
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _die_with_parent():
    """A ``preexec_fn`` that makes the server get SIGTERM when this process dies, however it dies (SIGKILL
    included: Linux's parent-death signal); None where the platform has none (the SIGTERM handler still works)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def arm():
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)      # PR_SET_PDEATHSIG
        if os.getppid() != parent:                       # the parent died before the signal was armed
            os._exit(1)

    return arm


def run_app(*, port: int | None = None, address: str = "127.0.0.1", model: str | None = None,
            prompts: str | os.PathLike | None = None, browser: bool = True, allow_paths: bool = False) -> int:
    """Run the dashboard until Ctrl-C; returns the server's exit status.  With ``browser``, the default web
    browser opens the page as soon as the server answers its health check."""
    cmd, env, cwd = app_command(port=port, address=address, model=model, prompts=prompts, browser=browser,
                                allow_paths=allow_paths)
    if not is_loopback(address):
        paths = ("typed paths and model names are ON (--allow-paths)" if allow_paths else
                 f"typed paths and model names are off in it ({ALLOW_PATHS_FLAG} allows them)")
        print(f"warning: binding to {address}: the dashboard (which has no login) is reachable from the network; "
              f"{paths}.", file=sys.stderr)
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent())
    _stop_child_on_sigterm(proc)
    try:
        url = browser_url(address, port)
        if browser and wait_until_serving(url, proc, timeout=120):
            import webbrowser

            if not webbrowser.open(url):
                print(f"open {url} in a browser", file=sys.stderr)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 130


__all__ = ["app_path", "config_flags", "app_command", "browser_url", "wait_until_serving", "check_port_free",
           "run_app"]

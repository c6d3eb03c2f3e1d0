"""Shared helpers for benchmark scripts: run a snippet in a fresh interpreter, read its wall time and peak
RSS, and print a Markdown table.  Timings never go in tests; these scripts are run by ``make bench``."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD_TAIL = """
import json as _j, resource as _r, time as _t
print("__BENCH__" + _j.dumps({"seconds": _t.perf_counter() - __t0, "peak_rss_mb": _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(code: str, env: dict | None = None, *, wall: bool = False) -> dict:
    """Run ``code`` in a fresh Python; returns seconds (in-process, from first statement, or whole-process
    wall time when ``wall``) and the child's peak RSS in MB."""
    import time

    src = "import time as _tt\n__t0 = _tt.perf_counter()\n" + textwrap.dedent(code) + _CHILD_TAIL
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, env=e, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr[-3000:]}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("__BENCH__")][-1]
    res = json.loads(line[len("__BENCH__"):])
    if wall:
        res["seconds"] = elapsed
    return res


def run_command(cmd: list[str], env: dict | None = None) -> float:
    import time

    e = dict(os.environ)
    e.update(env or {})
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=e, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {out.stderr[-2000:]}")
    return time.perf_counter() - t0


def median(xs):
    return statistics.median(xs)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else ":---" for i in range(len(header))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)

"""Issue 23 benchmark: the toolkit at real-model scale.  The real Qwen2.5-Coder vocabularies (151,936 x 896 and
151,936 x 1,536, when installed; skipped with the install command otherwise) and synthetic ones that mimic real
vocabularies (:mod:`analyzer._synthetic`: anisotropic, heavy-tailed norms; 128k x 2,048 and 128k x 4,096).

For each vocabulary, every step in a fresh interpreter (imports included), wall time and the child's peak RSS,
also as a multiple of the float32 embedding matrix:

* ``load, cold`` / ``load, warm``: ``load_vocabulary`` into an empty cache (GGUF dequantisation, or reading the
  synthetic safetensors folder), then from the cache (a memory-map);
* ``report``: ``softprompt-analyzer report`` of a 20-token prompt (random vocabulary rows plus noise, seed 0);
* ``CSLS neighbourhood, first`` / ``cached``: :func:`analyzer.neighbors.vocab_neighborhood` (every token's 10
  nearest tokens, K = 10), computed, then read back from the cache (median of 3);
* ``analyze, first`` / ``cached``: ``softprompt-analyzer analyze --no-text-space`` of the same prompt (no task,
  so no relatedness); "first" has every analysis cache empty except the neighbourhood the row above built;
* ``map layout, first`` / ``cached``: the dashboard map (``UmapLayout`` on 4,000 sampled rows, every row
  placed, ``VocabularyMap`` clusters), as ``analyzer.ui.resources`` builds it.

Recall@10: the neighbourhood against exact brute-force float32 search on a fixed sample of rows (seed 1, 300
rows, not the sample the search checks itself on); the map layout's kNN graph is exact (no approximate step).
Markdown table on stdout; ``--out`` also writes it to a file.  ``--quick`` runs one small synthetic
vocabulary (for tests/test_bench_scale.py).  ``--fit`` prints the statistics the synthetic generator was fitted
to, for the installed real vocabularies and for a draw of the generator."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import ROOT, median, table

COLUMNS = ["vocabulary", "V x d", "step", "wall s", "peak RSS MB", "RSS / f32 matrix", "recall@10", "note"]
REAL = [("qwen2.5-coder-0.5b", 151_936, 896), ("qwen2.5-coder-1.5b", 151_936, 1536)]
SYNTHETIC = [(131_072, 2048), (131_072, 4096)]
QUICK = [(3000, 64)]

_TAIL = """
import json as _j, resource as _r, time as _t
print("__BENCH__" + _j.dumps({"seconds": _t.perf_counter() - __t0,
      "peak_rss_mb": _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024, **globals().get("OUT", {})}))
"""


def child(code: str, env: dict, timeout: float | None = None) -> dict:
    """Run ``code`` in a fresh interpreter: seconds from its first statement, peak RSS, and its ``OUT`` dict."""
    src = "import time as _tt\n__t0 = _tt.perf_counter()\n" + textwrap.dedent(code) + _TAIL
    e = {**os.environ, "TQDM_DISABLE": "1", **env}
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, env=e, cwd=ROOT,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr[-3000:]}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("__BENCH__")][-1]
    return json.loads(line[len("__BENCH__"):])


LOAD = """
from analyzer import load_vocabulary
v = load_vocabulary({model!r})
float(v.embeddings[:, 0].sum()); float(v.embeddings[-1].sum())  # touch the matrix
"""

CLI = """
from analyzer.cli import main
rc = main({argv!r})
assert rc in (0, None), rc
"""

NEIGH = """
import time
import numpy as np
from analyzer import load_vocabulary
from analyzer.neighbors import normalize_rows, vocab_neighborhood
v = load_vocabulary({model!r})
t = time.perf_counter()
nb = vocab_neighborhood(v, 10)
sec = time.perf_counter() - t
OUT = {{"inner_seconds": sec, "method": nb.method, "exact": nb.exact, "self_recall": nb.recall}}
if {check}:
    keep = np.where(nb.indexed)[0]
    rows = np.sort(np.random.default_rng(1).choice(keep, min(300, keep.size), replace=False))
    q = normalize_rows(v.embeddings[rows])
    best = np.full((rows.size, 10), -np.inf, np.float32); bid = np.zeros((rows.size, 10), np.int64)
    for a in range(0, keep.size, 16384):
        ids = keep[a:a + 16384]
        s = q @ normalize_rows(v.embeddings[ids]).T
        s[ids[None, :] == rows[:, None]] = -np.inf
        allv = np.concatenate([best, s], 1); alli = np.concatenate([bid, np.broadcast_to(ids, s.shape)], 1)
        o = np.argsort(-allv, axis=1, kind="stable")[:, :10]
        best = np.take_along_axis(allv, o, 1); bid = np.take_along_axis(alli, o, 1)
    OUT["recall"] = float(np.mean([np.intersect1d(a, b).size / 10 for a, b in zip(nb.ids[rows], bid)]))
"""

MAP = """
from analyzer import load_vocabulary
from analyzer.projection import UmapLayout
from analyzer.vocab_map import VocabularyMap
v = load_vocabulary({model!r})
VocabularyMap().fit(UmapLayout(n_components=2).fit(v))
"""

PROMPT = """
import numpy as np
from analyzer import load_vocabulary
v = load_vocabulary({model!r})
keep = np.where(~np.asarray(v.excluded))[0]
rng = np.random.default_rng(0)
rows = np.asarray(v.embeddings[np.sort(rng.choice(keep, 20, replace=False))], np.float32)
scale = float(np.median(np.linalg.norm(rows, axis=1))) / np.sqrt(rows.shape[1])
np.save({path!r}, (rows + 0.5 * scale * rng.standard_normal(rows.shape)).astype(np.float32))
"""


def installed(name: str) -> bool:
    from analyzer.models import is_installed

    return is_installed(name)


def synthetic_folder(n: int, d: int, where: Path) -> Path:
    """Write the synthetic vocabulary's Hugging Face folder (float16 weights: half the disk; the loader reads them
    as float32), in a child so this process stays small."""
    path = where / f"synthetic-{n}x{d}"
    code = f"""
import numpy as np
from analyzer._synthetic import QWEN_LIKE, synthetic_embeddings, write_hf_folder
write_hf_folder({str(path)!r}, synthetic_embeddings({n}, {d}).astype(np.float16), name="synthetic-{n}x{d}",
                spec=QWEN_LIKE)
"""
    child(code, {})
    return path


STEPS = ("load", "report", "neighbourhood", "analyze", "map")


def bench_vocab(label: str, model: str, n: int, d: int, *, repeats: int, check: bool, say,
                steps=STEPS, on_row=None) -> list[list]:
    """Every step on one vocabulary in its own empty cache; the table's rows for it (each also handed to
    ``on_row`` as soon as it is measured, so a long run that is stopped keeps every finished step)."""
    f32_mb = n * d * 4 / 2**20
    rows: list[list] = []

    def add(step: str, r: dict, *, recall: str = "", note: str = "", seconds: float | None = None):
        sec = r["seconds"] if seconds is None else seconds
        rows.append([label, f"{n:,} x {d:,}", step, f"{sec:.2f}" if sec < 10 else f"{sec:.0f}",
                     f"{r['peak_rss_mb']:.0f}", f"{r['peak_rss_mb'] / f32_mb:.2f}", recall, note])
        say(f"  {step}: {sec:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
        if on_row is not None:
            on_row(rows[-1])

    with tempfile.TemporaryDirectory(prefix="bench-scale-cache-") as cache:
        env = {"SOFTPROMPT_ANALYZER_CACHE": cache}
        add("load, cold", child(LOAD.format(model=model), env))
        warm = [child(LOAD.format(model=model), env) for _ in range(repeats)]
        add("load, warm", warm[0], seconds=median([w["seconds"] for w in warm]),
            note=f"median of {repeats}" if repeats > 1 else "")
        prompt = str(Path(cache) / "prompt.npy")
        child(PROMPT.format(model=model, path=prompt), env)
        if "report" in steps:
            add("report", child(CLI.format(argv=["report", prompt, "--model", model, "--format", "json", "-k",
                                                 "10"]), env), note="cosine index built")
        if "neighbourhood" in steps:
            _neighbourhood(add, model, env, repeats, check)
        argv = ["analyze", prompt, "--model", model, "--no-text-space", "-q", "--format", "json", "--out",
                str(Path(cache) / "analyze.json")]
        if "analyze" in steps:
            add("analyze, first", child(CLI.format(argv=argv), env), note="neighbourhood already cached")
            again = [child(CLI.format(argv=argv), env) for _ in range(max(1, repeats))]
            add("analyze, cached", again[0], seconds=median([a["seconds"] for a in again]),
                note=f"median of {repeats}" if repeats > 1 else "")
        if "map" in steps:
            add("map layout, first", child(MAP.format(model=model), env), recall="exact",
                note="UMAP on 4,000 rows (exact kNN), every row placed")
            add("map layout, cached", child(MAP.format(model=model), env))
    return rows


def _neighbourhood(add, model: str, env: dict, repeats: int, check: bool) -> None:
    """The CSLS neighbourhood, computed (with its recall against brute force) and then read from the cache."""
    first = child(NEIGH.format(model=model, check=check), env)
    rec = f"{first['recall']:.3f}" if "recall" in first else ("exact" if first["exact"] else "")
    how = first["method"] if first["exact"] else f"{first['method']}; its own check {first['self_recall']:.3f}"
    add("CSLS neighbourhood, first", first, seconds=first["inner_seconds"], recall=rec, note=how)
    cached = [child(NEIGH.format(model=model, check=False), env) for _ in range(max(1, repeats))]
    add("CSLS neighbourhood, cached", cached[0], seconds=median([c["inner_seconds"] for c in cached]),
        note="read from the cache" + (f", median of {repeats}" if repeats > 1 else ""))


def fit_stats() -> None:
    """The statistics the synthetic generator was fitted to: real vocabularies and one draw."""
    import numpy as np

    from analyzer import load_vocabulary
    from analyzer._synthetic import embedding_stats, synthetic_embeddings

    for name in ["smollm2-135m"] + [m for m, _, _ in REAL]:
        if installed(name):
            v = load_vocabulary(name)
            keep = np.where(~np.asarray(v.excluded))[0]
            print(name, json.dumps({k: round(x, 3) for k, x in embedding_stats(v.embeddings[keep]).items()}))
    print("synthetic 30000x896", json.dumps({k: round(x, 3) for k, x in
                                               embedding_stats(synthetic_embeddings(30000, 896)).items()}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small synthetic vocabulary (a smoke test, < 1 min)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="run only these vocabularies: qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, 131072x2048, ...")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the cheap (warm/cached) steps; median")
    ap.add_argument("--out", default=None, help="also write the Markdown table (with a header) to this file")
    ap.add_argument("--steps", nargs="*", choices=STEPS, default=None,
                    help="the steps to run besides the load (default: all; --quick: load, report, neighbourhood)")
    ap.add_argument("--fit", action="store_true", help="print the generator's fitting statistics and exit")
    args = ap.parse_args(argv)
    if args.fit:
        fit_stats()
        return 0

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    plan: list[tuple[str, str | None, int, int]] = []
    skipped = []
    if args.quick:
        plan = [(f"synthetic {n}x{d}", None, n, d) for n, d in QUICK]
    else:
        for name, n, d in REAL:
            if args.only is None or name in args.only:
                if installed(name):
                    plan.append((name, name, n, d))
                else:
                    skipped.append(f"{name} is not installed: `softprompt-analyzer models --install {name}`")
        plan += [(f"synthetic {n}x{d}", None, n, d) for n, d in SYNTHETIC
                 if args.only is None or f"{n}x{d}" in args.only]
    repeats = 1 if args.quick else args.repeats
    import torch

    header = (f"bench_scale: {os.cpu_count()} CPU cores, torch {torch.__version__}, "
              f"{'CUDA' if torch.cuda.is_available() else 'no GPU'}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    rows: list[list] = []
    out = Path(args.out) if args.out else None

    def keep(row: list) -> None:
        rows.append(row)
        if out:  # after each step: a long run that is stopped keeps what it measured
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(header + "\n\n" + table(COLUMNS, rows) + "\n" + "".join(f"\n{s}\n" for s in skipped))

    for label, model, n, d in plan:
        say(f"{label} ({n:,} x {d:,})")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-scale-vocab-") as where:
            path = model or str(synthetic_folder(n, d, Path(where)))
            steps = args.steps or (STEPS[:3] if args.quick else STEPS)
            bench_vocab(label, path, n, d, repeats=repeats, check=True, say=say, steps=steps, on_row=keep)
        say(f"  ({time.perf_counter() - t0:.0f} s in all)")
    for s in skipped:
        print(s)
    print(header + "\n")
    print(table(COLUMNS, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

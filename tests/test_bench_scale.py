"""benchmarks/bench_scale.py --quick: the scale benchmark's smoke mode runs end to end on a small synthetic
vocabulary and prints its Markdown table (expected columns, one row per step, a recall in [0, 1]); and the
synthetic generator behind it has the statistics its docstring claims (anisotropy, skewed heavy-tailed norms)."""

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _table(text: str) -> list[list[str]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def test_quick_mode_prints_the_table(tmp_path):
    out = tmp_path / "scale.md"
    run = subprocess.run([sys.executable, "bench_scale.py", "--quick", "--out", str(out)], cwd=ROOT / "benchmarks",
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = _table(run.stdout)
    assert rows[0] == ["vocabulary", "V x d", "step", "wall s", "peak RSS MB", "RSS / f32 matrix", "recall@10",
                       "note"]
    body = rows[2:]
    steps = [r[2] for r in body]
    assert steps == ["load, cold", "load, warm", "report", "CSLS neighbourhood, first", "CSLS neighbourhood, cached"]
    for r in body:
        assert float(r[3]) >= 0 and float(r[4]) > 0 and float(r[5]) > 0
    recall = float(body[3][6])
    assert 0.0 <= recall <= 1.0
    assert recall == 1.0  # the quick vocabulary is small, so its search is exact
    assert _table(out.read_text())[2:] == body  # the same table is written to --out


def test_synthetic_generator_matches_its_documented_statistics():
    from analyzer._synthetic import QWEN_LIKE, embedding_stats, synthetic_embeddings

    x = synthetic_embeddings(6000, 256, seed=3)
    assert x.shape == (6000, 256) and x.dtype == np.float32
    np.testing.assert_array_equal(x, synthetic_embeddings(6000, 256, seed=3))  # deterministic in the seed
    st = embedding_stats(x, sample=6000)
    # the first direction carries ~top_var of the variance (sample eigenvalues wobble: +-30%)
    assert 0.7 * QWEN_LIKE.top_var < st["top_var"] < 1.5 * QWEN_LIKE.top_var
    assert abs(st["mean_cos"] - QWEN_LIKE.mean_cos) < 0.04  # the shared mean direction
    assert abs(st["log_norm_sd"] - QWEN_LIKE.log_norm_sd) < 0.02
    assert st["log_norm_skew"] < -0.5 and st["log_norm_kurt"] > 3.5  # a long tail of small norms


def test_synthetic_folder_loads_as_a_vocabulary(tmp_path, monkeypatch):
    from analyzer import load_vocabulary
    from analyzer._synthetic import synthetic_embeddings, write_hf_folder

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))
    x = synthetic_embeddings(500, 32, seed=1)
    v = load_vocabulary(write_hf_folder(tmp_path / "syn", x))
    assert (v.size, v.dim) == (500, 32)
    np.testing.assert_allclose(np.asarray(v.embeddings), x, rtol=0, atol=0)
    assert v.tokens[7] == "tok7"

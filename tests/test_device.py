"""The device choice (analyzer/_device.py, the commands' --device) and the streamed all-pairs pass
(analyzer/_knn.py) that runs on it: on the CPU here; the CUDA cases skip without a GPU."""

import argparse

import numpy as np
import pytest

from analyzer import AnalyzerError

try:
    import torch

    HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover - torch is a dependency
    HAS_CUDA = False

needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU: the GPU path of the all-pairs pass "
                                "(bfloat16 tiles, float32 re-rank) is compared with the CPU's there")


@pytest.fixture
def no_env(monkeypatch):
    from analyzer import _device

    monkeypatch.delenv(_device.ENV, raising=False)
    return _device


def test_auto_resolves_to_the_gpu_only_when_torch_sees_one(no_env, monkeypatch):
    D = no_env
    monkeypatch.setattr(D, "cuda_available", lambda: False)
    assert D.resolve_device("auto") == "cpu" and D.resolve_device(None) == "cpu" and D.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(D, "cuda_available", lambda: True)
    assert D.resolve_device("auto") == "cuda" and D.resolve_device("cuda") == "cuda"
    assert D.resolve_device("cpu") == "cpu"  # an explicit cpu is never overridden


def test_cuda_without_a_gpu_is_one_clear_line(no_env, monkeypatch):
    D = no_env
    monkeypatch.setattr(D, "cuda_available", lambda: False)
    with pytest.raises(AnalyzerError) as e:
        D.resolve_device("cuda")
    msg = str(e.value)
    assert "\n" not in msg and "expected a CUDA GPU" in msg and "--device cpu" in msg
    with pytest.raises(AnalyzerError, match="expected one of auto, cpu, cuda; got 'gpu'"):
        D.resolve_device("gpu")


def test_the_default_is_scoped_and_inherited_through_the_environment(no_env, monkeypatch):
    D = no_env
    monkeypatch.setattr(D, "cuda_available", lambda: False)
    with D.using_device("cpu"):
        assert D.default_device() == "cpu" and D.resolve_device() == "cpu"
        import os

        assert os.environ[D.ENV] == "cpu"  # a worker process started inside follows it
    assert D.ENV not in __import__("os").environ  # restored afterwards
    monkeypatch.setenv(D.ENV, "tpu")
    with pytest.raises(AnalyzerError, match="SOFTPROMPT_ANALYZER_DEVICE: expected one of"):
        D.resolve_device()


def test_device_flag_on_every_computing_command():
    from analyzer._cli_args import DEVICE_COMMANDS
    from analyzer.cli import cli_parser

    p = cli_parser()
    for cmd in DEVICE_COMMANDS:
        needs = {"report": ["x.npy"], "analyze": ["x.npy"], "swap": ["x.npy"], "evaluate": ["x.npy"],
                 "importance": ["x.npy"], "describe": ["x.npy"], "decode": ["x.npy"], "compare": ["x.npy", "y.npy"],
                 "waywardness": ["--task", "sentiment", "--target", "t"], "app": []}[cmd]
        assert p.parse_args([cmd, *needs]).device == "auto"
        assert p.parse_args([cmd, *needs, "--device", "CPU"]).device == "cpu"
    assert p.parse_args(["train", "--task", "sentiment", "--out", "o", "--device", "cuda:1"]).device == "cuda:1"
    from analyzer._cli_types import device_name

    with pytest.raises(argparse.ArgumentTypeError, match="expected auto, cpu or cuda, got 'gpu'"):
        device_name("gpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal on a machine without a CUDA GPU")
def test_cli_refuses_cuda_without_a_gpu_in_one_line(capsys, no_env):
    from analyzer.cli import main

    assert main(["report", "does-not-matter.npy", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: --device cuda: expected a CUDA GPU")
    assert no_env.ENV not in __import__("os").environ  # the command left the process default as it was


def test_cli_bad_device_value_is_refused_by_argparse(capsys):
    from analyzer.cli import main

    with pytest.raises(SystemExit) as e:
        main(["analyze", "x.npy", "--device", "gpu"])
    assert e.value.code == 2 and "expected auto, cpu or cuda, got 'gpu'" in capsys.readouterr().err


# --- the streamed all-pairs pass -------------------------------------------------------------------------------

def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("n,tile,group", [(1000, 128, 16), (1021, 128, 16), (2500, 256, 64), (700, 2048, 64)])
def test_streamed_top_groups_equal_the_full_matrix_of_group_maxima(n, tile, group):
    """The running top-P per row picks groups whose maxima are exactly the P largest of the full matrix's row
    (float32: the same products; ties may pick another group of the same maximum)."""
    from analyzer._knn import _group_maxima, _top_groups

    x = torch.from_numpy(_unit(np.random.default_rng(n), n, 24))
    G = _group_maxima(x, torch.float32, tile=tile, group=group)
    for P in (11, 40):
        sel = _top_groups(x, torch.float32, P, tile=tile, group=group)
        assert sel.shape == (n, min(P, G.shape[1]))
        got = torch.gather(G, 1, sel).sort(1, descending=True).values
        torch.testing.assert_close(got, torch.topk(G, sel.shape[1], dim=1).values, rtol=0, atol=0)
        assert all(len(set(r)) == sel.shape[1] for r in sel.tolist())  # no group twice


def test_tile_side_follows_the_memory_budget():
    from analyzer._knn import _TILE, _stream_tile

    assert _stream_tile(150_000, 16, 64, 256 << 20, 4) == _TILE
    for n, budget in [(2_000_000, 64 << 20), (262_144, 8 << 20)]:
        t = _stream_tile(n, 16, 64, budget, 4)
        assert t % 64 == 0 and t < _TILE
        assert 2 * t * t * 4 + t * -(-n // 64) * 4 + t * (16 + t // 64) * 12 <= budget


def test_check_rows_get_their_own_rows_of_the_matrix():
    from analyzer._knn import _group_maxima

    x = torch.from_numpy(_unit(np.random.default_rng(5), 900, 16))
    rows = np.array([0, 3, 899, 450])
    torch.testing.assert_close(_group_maxima(x, torch.float32, tile=128, rows=rows),
                               _group_maxima(x, torch.float32, tile=128)[rows], rtol=0, atol=1e-6)


def test_neighbourhood_follows_the_process_device(no_env, monkeypatch):
    from test_neighbors import make_vocab

    from analyzer import _device
    from analyzer.neighbors import vocab_neighborhood

    monkeypatch.setattr(_device, "cuda_available", lambda: False)
    v = make_vocab(n=300, d=12)
    a = vocab_neighborhood(v, 5, cache=False, device="cpu")
    b = vocab_neighborhood(v, 5, cache=False)  # auto -> cpu here
    np.testing.assert_array_equal(a.ids, b.ids)
    with pytest.raises(AnalyzerError, match="expected a CUDA GPU"):
        vocab_neighborhood(v, 5, cache=False, device="cuda")


@needs_cuda
def test_gpu_neighbourhood_matches_the_cpu(no_env):
    from analyzer import Vocabulary
    from analyzer._synthetic import synthetic_embeddings
    from analyzer.neighbors import vocab_neighborhood

    n = 6000
    toks = tuple(f"t{i}" for i in range(n))
    v = Vocabulary(name="synthetic", source="memory", embeddings=synthetic_embeddings(n, 96, seed=2), tokens=toks,
                   raw_tokens=toks, excluded=np.zeros(n, bool), tied=False, key="test-gpu-6000")
    cpu = vocab_neighborhood(v, 10, cache=False, device="cpu", exact=True)
    gpu_exact = vocab_neighborhood(v, 10, cache=False, device="cuda", exact=True)
    gpu_bf16 = vocab_neighborhood(v, 10, cache=False, device="cuda", exact=False, recall_sample=500)
    # float32 on the GPU (torch leaves TF32 off for matmuls): the same cosines up to summation order
    np.testing.assert_allclose(gpu_exact.sims, cpu.sims, atol=1e-5)
    rec = np.mean([np.intersect1d(a, b).size / 10 for a, b in zip(gpu_bf16.ids, cpu.ids)])
    assert rec >= 0.95 and gpu_bf16.recall >= 0.95 and "on the GPU" in gpu_bf16.method


@pytest.mark.skipif(HAS_CUDA, reason="checks the message of a machine without a CUDA GPU")
def test_bench_gpu_says_there_is_no_gpu_and_exits_cleanly():
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
    run = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("bench_gpu: no CUDA GPU here") and "nothing to measure" in run.stdout


def test_int8_pass_quantises_per_row_and_reaches_recall_with_exact_scores():
    """The int8 first pass (one scale per row, int32 products) is close to the float32 products, and after the
    float32 re-rank of the best groups it finds the true neighbours and scores them exactly."""
    from analyzer._knn import _Operand, _rerank_selected, _top_groups
    from analyzer._synthetic import synthetic_embeddings
    from analyzer.neighbors import normalize_rows

    x = normalize_rows(synthetic_embeddings(3000, 128, seed=4))
    xt = torch.from_numpy(x)
    op = _Operand(xt, torch.int8)
    approx = op.scores(op.block(slice(0, 500)), op.block(slice(0, 3000)))
    # rounding to 1/127 of each row's largest entry: a few thousandths on a cosine, well under 0.03
    np.testing.assert_allclose(approx.numpy(), x[:500] @ x.T, atol=0.03)
    sel = _top_groups(xt, torch.int8, 24, tile=512)
    sims, ids = _rerank_selected(xt, sel, np.arange(3000), 11)
    full = x @ x.T
    ref = np.argsort(-full, axis=1)[:, :11]
    assert np.mean([np.intersect1d(a, b).size / 11 for a, b in zip(ids, ref)]) >= 0.95
    np.testing.assert_allclose(sims, np.take_along_axis(full, ids, 1), atol=1e-5)

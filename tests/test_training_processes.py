"""Training in real subprocesses: a SIGKILLed run resumed from its checkpoint ends where an uninterrupted run
ends, and a 2-process DDP run (torchrun, gloo on CPU) matches a single-process run on the same global batch."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_training import WORDS, make_task_csv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def env():
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    return e


def cfg(model, task, out, **kw):
    d = dict(model=str(model), task=str(task), out=str(out), label_words=WORDS, num_virtual_tokens=4, steps=10,
             batch_size=8, lr=0.05, eval_every=5, checkpoint_every=3, snapshot_every=2, seed=11)
    d.update(kw)
    return d


def prompt_of(out):
    from safetensors.torch import load_file

    return load_file(str(Path(out) / "adapter_model.safetensors"))["prompt_embeddings"]


def run_module(config: dict, *launcher, timeout=300):
    return subprocess.run([*launcher, "-m", "analyzer.training", "--quiet", "--config", json.dumps(config)],
                          env=env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


KILLER = """
import json, os, signal, sys
from analyzer.training import Callback, TrainConfig, train

class Die(Callback):
    def on_step(self, step, loss, lr):
        if step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)     # no cleanup, no final checkpoint

train(TrainConfig.from_dict(json.loads(sys.argv[1])), callbacks=[Die()])
"""


def test_killed_run_resumes_to_the_uninterrupted_result(tiny_llama_dir, tmp_path):
    task = make_task_csv(tmp_path / "task.csv")
    full = run_module(cfg(tiny_llama_dir, task, tmp_path / "full"), sys.executable)
    assert full.returncode == 0, full.stderr[-2000:]

    killed = subprocess.run([sys.executable, "-c", KILLER.format(kill_at=8),
                             json.dumps(cfg(tiny_llama_dir, task, tmp_path / "run"))],
                            env=env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    from safetensors import safe_open

    with safe_open(str(tmp_path / "run" / "checkpoint.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["checkpoint"])["step"] == 6       # the last checkpoint before the kill
    resumed = run_module(cfg(tiny_llama_dir, task, tmp_path / "run", resume=True), sys.executable)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    torch.testing.assert_close(prompt_of(tmp_path / "run"), prompt_of(tmp_path / "full"), rtol=1e-5, atol=1e-6)
    log = [json.loads(x) for x in (tmp_path / "run" / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 11))   # steps 7-8 of the killed run replaced


def test_ddp_two_processes_match_one(tiny_llama_dir, tmp_path):
    task = make_task_csv(tmp_path / "task.csv")
    # float32: the claim is that splitting the global batch changes nothing but the last bits; bfloat16 autocast
    # (dtype auto on a CPU with native bfloat16) rounds per batch shape, far above these tolerances
    single = run_module(cfg(tiny_llama_dir, task, tmp_path / "single", steps=6, dtype="float32"), sys.executable)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = run_module(cfg(tiny_llama_dir, task, tmp_path / "ddp", steps=6, dtype="float32"), sys.executable, "-m",
                     "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    meta = json.loads((tmp_path / "ddp" / "training_meta.json").read_text())
    assert meta["world_size"] == 2
    a, b = prompt_of(tmp_path / "single"), prompt_of(tmp_path / "ddp")
    assert not torch.equal(a, prompt_of(tmp_path / "single").new_zeros(a.shape))
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    la = [json.loads(x) for x in (tmp_path / "single" / "training_log.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "ddp" / "training_log.jsonl").read_text().splitlines()]
    for x, y in zip(la, lb):
        if "loss" in x:
            assert x["step"] == y["step"] and x["loss"] == pytest.approx(y["loss"], rel=1e-4)

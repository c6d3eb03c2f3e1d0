"""Multitask prompt tuning (analyzer.training.multitask): one PEFT MULTITASK_PROMPT_TUNING adapter for several
tasks.  On a tiny random llama with a task and its mirror (the same reviews, the label words swapped): one plain
prompt cannot do both (its accuracy on the mirror is one minus its accuracy on the task), so a multitask prompt
that does both has learned through its task factors.  PEFT itself loads the adapter and builds the same prompts
and the same logits."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from analyzer.exceptions import TrainingError
from analyzer.tasks import get_task

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_VIRTUAL = 6


def _task_csv(path, words: tuple[str, str], n: int = 96):
    """Label values are the label words (a file task's default verbalizer): positive reviews are ``words[0]``."""
    pos = ["the movie was great", "the acting was wonderful", "great and wonderful film"]
    neg = ["the film was terrible", "boring, a waste of time", "terrible and boring"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            src, lab = (pos, words[0]) if i % 2 else (neg, words[1])
            w.writerow([f"{src[i % 3]} {i}", lab])
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The steerable tiny llama, the two mirrored CSV tasks, and one 160-step multitask run over both."""
    from analyzer.models import load_frozen_model
    from analyzer.training import History, TrainConfig, train
    from tiny_models import make_tiny_llama

    root = tmp_path_factory.mktemp("multitask")
    make_tiny_llama(root / "model", initializer_range=0.3)
    model, tok = load_frozen_model(root / "model")
    a = _task_csv(root / "toy.csv", ("the", "was"))
    b = _task_csv(root / "mirror.csv", ("was", "the"))
    cfg = TrainConfig(model=str(root / "model"), task=f"{a},{b}", out=str(root / "run"),
                      num_virtual_tokens=N_VIRTUAL, prompt_tuning_init="random", steps=160, batch_size=8, lr=0.3,
                      eval_every=40, eval_examples=40, seed=1)
    hist = History()
    res = train(cfg, callbacks=[hist], model=model, tokenizer=tok)
    return {"root": root, "model": model, "tok": tok, "tasks": (a, b), "cfg": cfg, "res": res, "hist": hist}


def test_the_run_writes_a_peft_multitask_adapter_and_its_record(setup):
    out = setup["root"] / "run"
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "MULTITASK_PROMPT_TUNING"
    assert (cfg["num_tasks"], cfg["num_ranks"], cfg["num_virtual_tokens"]) == (2, 1, N_VIRTUAL)
    meta = json.loads((out / "training_meta.json").read_text())
    assert meta["multitask"] is True and [t["name"] for t in meta["tasks"]] == ["toy", "mirror"]
    assert meta["steps_done"] == 160 and [e["step"] for e in meta["evals"]] == [0, 40, 80, 120, 160]
    assert set(meta["evals_by_task"][-1]) == {"step", "toy", "mirror"}
    assert meta["final_eval"]["step"] == 160 and "kept" not in meta["final_eval"]
    # each task's accuracy is over its own validation examples (at most eval_examples)
    assert meta["final_eval"]["n"] == {t.name: len(t.validation[:40]) for t in map(get_task, setup["tasks"])}
    log = [json.loads(x) for x in (out / "training_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if r["step"] > 0]
    assert [r["task"] for r in steps[:4]] == ["toy", "mirror", "toy", "mirror"]   # round the tasks in turn
    # callbacks see the mean of the tasks' accuracies
    assert setup["hist"].evals[-1][1] == pytest.approx(np.mean([meta["evals_by_task"][-1][t]
                                                                for t in ("toy", "mirror")]))


def test_each_task_prompt_does_its_own_task_which_one_plain_prompt_cannot(setup):
    """On mirrored tasks one prompt's accuracies sum to one; both task prompts above 0.75 sum to more."""
    from analyzer.loaders import load_prompts
    from analyzer.report import prompt_task
    from analyzer.tasks import get_task
    from analyzer.training import evaluate

    prompts = load_prompts(setup["root"] / "run")
    assert [p.name for p in prompts] == ["run/task0", "run/task1"]
    assert [p.task_index for p in prompts] == [0, 1]
    assert [prompt_task(p) for p in prompts] == ["toy", "mirror"]
    acc = {}
    for p in prompts:
        for path in setup["tasks"]:
            task = get_task(path)
            acc[p.task_index, task.name] = evaluate(setup["model"], setup["tok"], task, p, split="test").accuracy
    assert acc[0, "toy"] >= 0.75 and acc[1, "mirror"] >= 0.75, acc
    assert acc[0, "toy"] + acc[0, "mirror"] == pytest.approx(1.0) and acc[1, "mirror"] > acc[0, "mirror"]


def test_peft_loads_the_adapter_and_builds_the_same_prompts_and_logits(setup):
    """PEFT's MultitaskPromptEmbedding (shared * cols[t] @ rows[t]) on the saved weights equals our loader's
    prompts, and PeftModel's forward with task_ids gives our scorer's label logits (float32, one kernel path:
    abs 1e-4 on logits of order 1)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from analyzer.loaders import load_prompts
    from analyzer.tasks import get_task
    from analyzer.training.scoring import PromptedClassifier, encode_examples, pad_batch

    base = AutoModelForCausalLM.from_pretrained(setup["root"] / "model")
    pm = PeftModel.from_pretrained(base, setup["root"] / "run").eval()
    enc = pm.prompt_encoder["default"]
    ours = load_prompts(setup["root"] / "run")
    idx = torch.arange(N_VIRTUAL).unsqueeze(0)
    task = get_task(setup["tasks"][1])
    seqs = encode_examples(setup["tok"], task, task.test[:3])
    label_ids = task.label_token_ids(setup["tok"], str(setup["root"] / "model"))
    for t, p in enumerate(ours):
        with torch.no_grad():
            theirs = enc(idx, torch.tensor([t]))[0].numpy()
        np.testing.assert_allclose(theirs, p.vectors, rtol=1e-5, atol=1e-6)
        clf = PromptedClassifier(setup["model"], label_ids)
        for s in seqs:
            ids, lens = pad_batch([s], 0)
            with torch.no_grad():
                mine = clf(ids, lens, prefix=torch.from_numpy(p.vectors))[0].numpy()
                full = pm(input_ids=ids, attention_mask=torch.ones_like(ids), task_ids=torch.tensor([t])).logits
            np.testing.assert_allclose(full[0, -1, label_ids].numpy(), mine, atol=1e-4)


def test_the_swap_marks_each_task_prompt_right_on_its_own_task(setup):
    from analyzer.loaders import load_prompts
    from analyzer.swap import prompt_swap
    from analyzer.tasks import get_task

    prompts = {p.name: p for p in load_prompts(setup["root"] / "run")}
    res = prompt_swap(setup["model"], setup["tok"], prompts, [get_task(t) for t in setup["tasks"]], limit=None)
    assert res.row("toy").right == ("run/task0",) and res.row("mirror").right == ("run/task1",)
    for task in ("toy", "mirror"):
        row = res.row(task)
        assert row.best_right.accuracy > row.best_wrong.accuracy


@pytest.mark.parametrize("kw, words", [
    (dict(prompt_tuning_init="labels"), "Pass --init text .*, vocab or random"),
    (dict(resume=True), "cannot be resumed"),
    (dict(label_words={"the": "x"}), "label-words"),
])
def test_bad_multitask_settings_fail_with_one_clear_line(setup, tmp_path, kw, words):
    from analyzer.training import TrainConfig, train

    a, b = setup["tasks"]
    kw = dict(kw)
    with pytest.raises(TrainingError, match=words):
        train(TrainConfig(model=str(setup["root"] / "model"), task=f"{a},{b}", out=str(tmp_path / "x"), steps=2,
                          prompt_tuning_init=kw.pop("prompt_tuning_init", "random"), **kw),
              model=setup["model"], tokenizer=setup["tok"])


def test_a_task_named_twice_is_refused_by_the_config(setup, tmp_path):
    from analyzer.training import TrainConfig

    a, _ = setup["tasks"]
    with pytest.raises(TrainingError, match="distinct"):
        TrainConfig(model="m", task=f"{a}, {a}", out=str(tmp_path))


def test_cli_trains_a_multitask_prompt_and_refuses_a_bad_init_in_one_line(setup, tmp_path):
    a, b = setup["tasks"]
    model = str(setup["root"] / "model")
    cmd = [sys.executable, "-m", "analyzer", "train", "--model", model, "--task", f"{a},{b}", "--quiet",
           "--virtual-tokens", "4", "--steps", "4", "--eval-every", "2", "--eval-examples", "8"]
    bad = subprocess.run(cmd + ["--out", str(tmp_path / "bad"), "--init", "labels"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "vocab or random" in bad.stderr
    ok = subprocess.run(cmd + ["--out", str(tmp_path / "ok"), "--init", "random", "--ranks", "2", "--keep-best"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    cfg = json.loads((tmp_path / "ok" / "adapter_config.json").read_text())
    assert (cfg["peft_type"], cfg["num_tasks"], cfg["num_ranks"]) == ("MULTITASK_PROMPT_TUNING", 2, 2)
    fe = json.loads((tmp_path / "ok" / "training_meta.json").read_text())["final_eval"]
    assert "2 tasks" in ok.stderr
    # the summary gives the accuracies of the prompts the adapter holds: the kept evaluation's
    assert f"the adapter holds the best evaluation's prompts (step {fe['step']}, {fe['accuracy']:.3f})" in ok.stderr
    name = get_task(a).name
    assert f"task 0 {name} {fe['by_task'][name]:.3f}" in ok.stderr


def test_keep_best_keeps_the_best_mean_evaluations_adapter(setup, tmp_path):
    """Re-running the fixture's run with keep_best: the same path (same seed and data order), the adapter of the
    first best mean validation accuracy; its task prompts score on validation what the record says."""
    from analyzer.loaders import load_prompts
    from analyzer.tasks import get_task
    from analyzer.training import TrainConfig, train
    from analyzer.training.scoring import evaluate

    cfg = TrainConfig.from_dict({**setup["cfg"].to_dict(), "out": str(tmp_path / "best"), "keep_best": True,
                                 "steps": 80, "eval_every": 20})
    train(cfg, model=setup["model"], tokenizer=setup["tok"])
    meta = json.loads((tmp_path / "best" / "training_meta.json").read_text())
    first_best = max(((e["step"], e["accuracy"]) for e in meta["evals"]), key=lambda e: e[1])
    fe = meta["final_eval"]
    assert (fe["kept"], fe["step"]) == ("best", first_best[0])
    kept = load_prompts(tmp_path / "best")
    for p, path in zip(kept, setup["tasks"]):
        task = get_task(path)
        acc = evaluate(setup["model"], setup["tok"], task, p, split=task.validation[:40]).accuracy
        # validation during training ran in the run's precision (bfloat16 autocast where the CPU's probe passes),
        # evaluate() in float32: on the same 40 examples at most one near-tie may flip
        assert acc == pytest.approx(fe["by_task"][task.name], abs=1 / 40 + 1e-9)
    # the kept prompts are the ones trained at that step: the same run without keep_best, stopped there, ends
    # with them (same machine, same batches: equal up to float rounding); at step 0 the factors are the init's 1
    if fe["step"] == 0:
        from safetensors.numpy import load_file

        w = load_file(str(tmp_path / "best" / "adapter_model.safetensors"))
        np.testing.assert_allclose(w["prefix_task_cols"] @ w["prefix_task_rows"], 1.0, rtol=1e-6)
        return
    stop = threading.Event()

    class StopAt:
        def on_step(self, step, loss, lr):
            if step == fe["step"]:
                stop.set()

    train(TrainConfig.from_dict({**cfg.to_dict(), "out": str(tmp_path / "at"), "keep_best": False}),
          callbacks=[StopAt()], stop_event=stop, model=setup["model"], tokenizer=setup["tok"])
    assert json.loads((tmp_path / "at" / "training_meta.json").read_text())["steps_done"] == fe["step"]
    for p, q in zip(kept, load_prompts(tmp_path / "at")):
        np.testing.assert_allclose(p.vectors, q.vectors, rtol=1e-5, atol=1e-6)


def test_task_prompts_stay_float32_under_the_runs_bfloat16_autocast():
    """Only the frozen model's products run in bfloat16: each task's prompt (shared * cols[t] @ rows[t]) is the
    float32 one the adapter saves, not one rounded to bfloat16 by the autocast around the model."""
    from analyzer.training.multitask import task_prompts

    g = torch.Generator().manual_seed(0)
    shared = torch.randn(6, 32, generator=g)
    cols, rows = 1 + 0.1 * torch.randn(2, 6, 2, generator=g), 0.5 + 0.1 * torch.randn(2, 2, 32, generator=g)
    ref = (shared.double().unsqueeze(0) * (cols.double() @ rows.double())).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = task_prompts(shared, cols, rows)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)   # bfloat16 would be off by ~1e-2


def test_a_file_task_whose_name_holds_a_comma_is_one_task(setup, tmp_path):
    from analyzer.training import TrainConfig

    path = tmp_path / "toy, copy.csv"
    path.write_text(open(setup["tasks"][0]).read())
    assert TrainConfig(model="m", task=str(path), out=str(tmp_path / "o")).tasks == [str(path)]
    a, b = setup["tasks"]
    assert TrainConfig(model="m", task=f"{a}, {b}", out=str(tmp_path / "o")).tasks == [a, b]


def test_an_interrupted_keep_best_run_writes_the_best_evaluations_adapter(setup, tmp_path):
    """A multitask run cannot be resumed, so an interrupt ends it: the adapter it leaves follows keep_best."""
    from analyzer.training import TrainConfig, train

    class Interrupt:
        def on_step(self, step, loss, lr):
            if step == 7:
                raise KeyboardInterrupt

    cfg = TrainConfig.from_dict({**setup["cfg"].to_dict(), "out": str(tmp_path / "i"), "keep_best": True,
                                 "steps": 40, "eval_every": 2})
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Interrupt()], model=setup["model"], tokenizer=setup["tok"])
    meta = json.loads((tmp_path / "i" / "training_meta.json").read_text())
    assert meta["stopped"] is True and meta["steps_done"] == 7
    evals = [(e["step"], e["accuracy"]) for e in meta["evals"]]
    assert [s for s, _ in evals] == [0, 2, 4, 6]
    fe = meta["final_eval"]
    assert (fe["kept"], fe["step"], fe["accuracy"]) == ("best", *max(evals, key=lambda e: e[1]))


def test_the_dashboard_lists_a_multitask_run_with_its_tasks(setup):
    from analyzer.ui._sources import run_info

    assert run_info(setup["root"] / "run").task == "toy, mirror"

"""Runs trained elsewhere, recorded in the toolkit's format: PEFT + transformers.Trainer with PromptRunCallback, and
a plain PyTorch loop with RunRecorder's two-line hook, on the tiny llama; the Trajectory view's readers and the
training-dynamics reading take the result."""

import json

import numpy as np
import pytest

from analyzer.exceptions import TrainingError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["the movie was great", "the film was terrible", "great acting and wonderful", "boring, a waste of time"]


def _peft_model(tiny_llama_dir, init="RANDOM"):
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    kw = {"prompt_tuning_init_text": "the movie was", "tokenizer_name_or_path": str(tiny_llama_dir)} \
        if init == "TEXT" else {}
    cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4, prompt_tuning_init=init, **kw)
    cfg.base_model_name_or_path = str(tiny_llama_dir)
    return get_peft_model(base, cfg)


def _examples(tok, n=32):
    rows = []
    for i in range(n):
        ids = tok(TEXTS[i % 4] + " was")["input_ids"]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids})
    return rows


def test_trainer_callback_writes_our_run_format(tiny_llama_dir, tmp_path):
    from transformers import AutoTokenizer, Trainer, TrainingArguments, default_data_collator

    from analyzer.loaders import load_prompt
    from analyzer.training import read_snapshots, read_training_log
    from analyzer.training.recorder import PromptRunCallback

    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    model = _peft_model(tiny_llama_dir, "TEXT")
    init = model.get_prompt_embedding_to_save("default").clone()
    data = [dict(r, input_ids=r["input_ids"][:5], attention_mask=[1] * 5, labels=r["input_ids"][:5])
            for r in _examples(tok) if len(r["input_ids"]) >= 5]
    out = tmp_path / "hf-run"
    args = TrainingArguments(output_dir=str(out), max_steps=10, per_device_train_batch_size=4, learning_rate=0.3,
                             logging_steps=2, save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator,
                      callbacks=[PromptRunCallback(task="tiny", every=5)])
    trainer.train()

    snaps = read_snapshots(out)
    assert list(snaps) == [0, 5, 10]
    assert np.allclose(snaps[0], init.numpy())                        # the init, before any step
    final = load_prompt(out)                                          # PEFT's adapter, saved at the end
    assert np.allclose(snaps[10], final.vectors) and not np.allclose(snaps[0], snaps[10])
    rows = read_training_log(out)
    assert [r["step"] for r in rows if "loss" in r] == [2, 4, 6, 8, 10]
    assert all(np.isfinite(r["loss"]) and r["lr"] >= 0 for r in rows if "loss" in r)
    meta = json.loads((out / "training_meta.json").read_text())
    assert meta["task"] == {"name": "tiny"} and meta["steps_done"] == 10 and meta["init"]["mode"] == "text"
    assert meta["model"] == str(tiny_llama_dir) and meta["num_virtual_tokens"] == 4
    # what the dashboard's Trajectory section asks of a folder
    from analyzer.ui._sources import run_info

    info = run_info(out)
    assert info.has_snapshots and info.has_log and info.task == "tiny" and info.steps == 10


def test_plain_loop_two_line_hook(tiny_llama_dir, tmp_path):
    from transformers import AutoTokenizer

    from analyzer.training import read_snapshots, read_training_log
    from analyzer.training.recorder import RunRecorder

    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    model = _peft_model(tiny_llama_dir)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    batch = {k: torch.tensor([r[k][:4] for r in _examples(tok, 4)]) for k in ("input_ids", "attention_mask",
                                                                               "labels")}
    rec = RunRecorder(model, tmp_path / "loop", total_steps=40, model="tiny-llama")     # line 1
    for step in range(1, 41):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.step(step, loss=loss.item(), eval_accuracy=0.5 if step % 20 == 0 else None)  # line 2
    snaps = read_snapshots(tmp_path / "loop")        # readable without close(): every 5% of 40 steps
    assert list(snaps) == list(range(0, 41, 2))
    rec.close()
    assert (tmp_path / "loop" / "adapter_config.json").is_file()
    rows = read_training_log(tmp_path / "loop")
    assert len([r for r in rows if "loss" in r]) == 40
    assert [r["step"] for r in rows if "eval_accuracy" in r] == [20, 40]
    meta = json.loads((tmp_path / "loop" / "training_meta.json").read_text())
    assert meta["model"] == "tiny-llama" and [e["step"] for e in meta["evals"]] == [20, 40]


def test_recorder_bad_input_is_one_clear_line(tmp_path):
    from analyzer.training.recorder import RunRecorder

    with pytest.raises(TrainingError, match=r"shape \(n_virtual, d\); got a tensor of shape \(3,\)"):
        RunRecorder(torch.zeros(3), tmp_path / "a")
    with pytest.raises(TrainingError, match="got str"):
        RunRecorder("prompt", tmp_path / "b")
    with pytest.raises(TrainingError, match="'every' parameter of RunRecorder must be an int >= 1"):
        RunRecorder(torch.zeros(2, 4), tmp_path / "c", every=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainingError, match="is a file; expected a directory"):
        RunRecorder(torch.zeros(2, 4), tmp_path / "file")
    p = torch.nn.Parameter(torch.zeros(2, 4))
    rec = RunRecorder(p, tmp_path / "t", every=3)         # a bare tensor works too
    with torch.no_grad():
        p += 1
    rec.step(3, loss=float("nan"))                        # a NaN loss is left out of the log, the snapshot is taken
    from analyzer.training import read_snapshots

    assert list(read_snapshots(tmp_path / "t")) == [0, 3] and not (tmp_path / "t" / "training_log.jsonl").exists()


def test_large_snapshot_files_shrink_to_float16_after_step_zero(tmp_path):
    import torch

    from analyzer.training.files import SNAPSHOTS, read_snapshots, shrink_snapshots, snapshot_key, write_snapshots

    g = torch.Generator().manual_seed(0)
    snaps = {snapshot_key(s): torch.randn(100, 64, generator=g) * 0.05 for s in (0, 50, 100)}
    write_snapshots(tmp_path, snaps, task="sentiment")
    size = (tmp_path / SNAPSHOTS).stat().st_size
    assert not shrink_snapshots(tmp_path, size)                    # at the limit: left alone
    assert shrink_snapshots(tmp_path, size - 1)
    assert (tmp_path / SNAPSHOTS).stat().st_size < 0.7 * size
    back = read_snapshots(tmp_path)
    assert sorted(back) == [0, 50, 100] and all(v.dtype == np.float32 for v in back.values())
    assert np.array_equal(back[0], snaps[snapshot_key(0)].numpy())          # the init stays exact
    for s in (50, 100):
        want = snaps[snapshot_key(s)].numpy()
        assert np.allclose(back[s], want, rtol=1e-3, atol=1e-6) and not np.array_equal(back[s], want)


def test_a_recorder_holds_its_run_folder_until_closed(tmp_path):
    """Two writers on one run folder would interleave their logs: the second recorder is refused in one line while
    the first is open, and the folder is free again once it is closed."""
    import torch

    from analyzer.exceptions import TrainingError
    from analyzer.training import RunRecorder
    from analyzer.training.runlock import run_holder

    prompt = torch.nn.Parameter(torch.zeros(2, 4))
    first = RunRecorder(prompt, tmp_path / "run", model="tiny")
    assert run_holder(tmp_path / "run") is not None
    with pytest.raises(TrainingError, match="is in use by another training run") as e:
        RunRecorder(prompt, tmp_path / "run", model="tiny")
    assert "\n" not in str(e.value)
    first.step(1, loss=0.5)
    first.close(save_adapter=False)
    assert run_holder(tmp_path / "run") is None
    RunRecorder(prompt, tmp_path / "run", model="tiny", resume=True, start_step=1).close(save_adapter=False)

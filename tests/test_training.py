"""The trainer on a tiny random llama: config checks, init modes, output files in PEFT's format, frozen weights,
callbacks, stop / Ctrl-C / resume, evaluate, and bad input."""

import json
import math
import re
import warnings

import numpy as np
import pytest

from analyzer.exceptions import ShapeMismatchError, TrainingError

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_task_csv(path, n=96):
    """A task whose label words (' the' / ' was') are single tokens of the tiny tokenizer."""
    import csv

    pos = ["the movie was great", "the acting was wonderful", "great film and wonderful acting"]
    neg = ["the film was terrible", "boring, a waste of time", "terrible and boring film"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            src, lab = (pos, "pos") if i % 2 else (neg, "neg")
            w.writerow([f"{src[i % 3]} {' '.join(['again'] * (i % 7))} {i}", lab])
    return path


WORDS = {"pos": "the", "neg": "was"}


@pytest.fixture(scope="module")
def task_csv(tmp_path_factory):
    return str(make_task_csv(tmp_path_factory.mktemp("task") / "tiny_task.csv"))


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from analyzer.models import load_frozen_model

    return load_frozen_model(str(tiny_llama_dir))


def config(tiny_llama_dir, task_csv, out, **kw):
    from analyzer.training import TrainConfig

    base = dict(model=str(tiny_llama_dir), task=task_csv, out=str(out), label_words=WORDS, num_virtual_tokens=4,
                steps=12, batch_size=8, lr=0.05, eval_every=4, checkpoint_every=4, snapshot_every=3, seed=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def run(tiny, tiny_llama_dir, task_csv, tmp_path_factory):
    """One 12-step run with the model passed in, its weights copied before."""
    from analyzer.training import History, train

    model, tok = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hist = History()
    out = tmp_path_factory.mktemp("run") / "adapter"
    res = train(config(tiny_llama_dir, task_csv, out), callbacks=[hist], model=model, tokenizer=tok)
    return res, hist, before, out


# ------------------------------------------------------------------------------------------- config
def test_config_validation_names_the_bad_value():
    from analyzer.training import TrainConfig

    with pytest.raises(TrainingError, match=r"'steps' parameter of TrainConfig must be an int >= 1. Got 0"):
        TrainConfig(out="x", steps=0)
    with pytest.raises(TrainingError, match=r"'lr' .* Got nan"):
        TrainConfig(out="x", lr=float("nan"))
    with pytest.raises(TrainingError, match=r"'prompt_tuning_init' .* \['text', 'labels', 'vocab', 'random'\]. "
                                            r"Got 'word'"):
        TrainConfig(out="x", prompt_tuning_init="word")
    with pytest.raises(TrainingError, match="only used with init 'text'; got init 'labels'"):
        TrainConfig(out="x", prompt_tuning_init_text="hello")
    with pytest.raises(TrainingError, match="'out'"):
        TrainConfig()
    with pytest.raises(TrainingError, match=r"'num_virtual_tokens' .* Got True"):
        TrainConfig(out="x", num_virtual_tokens=True)
    c = TrainConfig(out="x", prompt_tuning_init="SAMPLE_VOCAB")
    assert c.prompt_tuning_init == "vocab" and c.tokenizer_name_or_path == c.model
    assert TrainConfig.from_dict(c.to_dict()) == c
    lrs = [c.lr_at(s) for s in range(1, c.steps + 1)]
    assert lrs[c.warmup - 1] == pytest.approx(c.lr) and lrs[-1] == pytest.approx(0.1 * c.lr)


# ------------------------------------------------------------------------------------------- init
def test_init_modes(tiny, task_csv):
    from analyzer.training import init_prompt

    model, tok = tiny
    emb = model.get_input_embeddings().weight
    kw = dict(embeddings=emb, tokenizer=tok, num_virtual_tokens=7, seed=1)
    t = init_prompt("text", text="the movie", **kw)
    ids = tok.encode("the movie", add_special_tokens=False)
    assert list(t.token_ids) == (ids * 7)[:7] and torch.equal(t.vectors, emb[list(t.token_ids)])
    from analyzer.tasks import load_task_file

    task = load_task_file(task_csv, label_words=WORDS)
    lab = init_prompt("labels", task=task, **kw)
    # the labels init starts from the very tokens training scores (one rule: Task.label_token_ids)
    assert list(lab.token_ids[:2]) == task.label_token_ids(tok)
    assert set(lab.token_ids[:2]) == {tok.convert_tokens_to_ids("Ġthe"), tok.convert_tokens_to_ids("Ġwas")}
    assert torch.equal(lab.vectors[2:], emb[list(lab.token_ids[2:])])
    v = init_prompt("vocab", **kw)
    assert len(set(v.token_ids)) == 7 and not set(v.token_ids) & set(tok.all_special_ids)
    assert v.token_ids == init_prompt("vocab", **kw).token_ids            # seeded
    r = init_prompt("random", **kw)
    assert r.token_ids is None and r.vectors.shape == (7, emb.shape[1])
    assert -0.5 <= float(r.vectors.min()) and float(r.vectors.max()) <= 0.5
    with pytest.raises(TrainingError, match="non-empty"):
        init_prompt("text", text=" ", **kw)


# ------------------------------------------------------------------------------------------- a run
def test_run_writes_peft_adapter_log_snapshots(run, tiny_llama_dir):
    res, hist, _, out = run
    assert res.steps == 12 and not res.stopped and res.eval_accuracy is not None
    for f in ("adapter_config.json", "adapter_model.safetensors", "training_log.jsonl", "snapshots.safetensors",
              "checkpoint.safetensors", "training_meta.json"):
        assert (out / f).is_file(), f
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "PROMPT_TUNING" and cfg["task_type"] == "CAUSAL_LM"
    assert cfg["base_model_name_or_path"] == str(tiny_llama_dir)
    assert cfg["num_virtual_tokens"] == 4 and cfg["prompt_tuning_init"] == "SAMPLE_VOCAB"  # PEFT's nearest mode
    assert "init_token_ids" not in cfg  # PEFT would warn about an unknown key; the ids ride in the metadata
    from analyzer import load_prompt

    assert len(load_prompt(out).init_token_ids) == 4
    from analyzer.training import read_snapshots, read_training_log

    rows = read_training_log(out)
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 13))
    assert all(math.isfinite(r["loss"]) and r["lr"] > 0 for r in steps)
    assert [r["step"] for r in rows if "eval_accuracy" in r] == [0, 4, 8, 12]
    assert [s for s, _, _ in hist.steps] == list(range(1, 13)) and [s for s, _ in hist.evals] == [0, 4, 8, 12]
    snaps = read_snapshots(out)
    assert list(snaps) == [0, 3, 6, 9, 12] and snaps[0].shape == (4, 32)
    from safetensors.torch import load_file

    final = load_file(str(out / "adapter_model.safetensors"))["prompt_embeddings"]
    assert np.array_equal(snaps[12], final.numpy()) and not np.array_equal(snaps[0], snaps[12])
    from analyzer.loaders import load_prompt

    sp = load_prompt(out)                      # the analysis side reads what the trainer wrote
    assert sp.kind == "PROMPT_TUNING" and sp.init == "LABELS" and len(sp.init_token_ids) == 4
    assert sp.base_model == str(tiny_llama_dir) and np.array_equal(sp.vectors, final.numpy())
    meta = json.loads((out / "training_meta.json").read_text())
    assert meta["init"]["mode"] == "labels" and meta["task"]["label_words"] == ["was", "the"]
    assert tuple(meta["init"]["token_ids"]) == sp.init_token_ids
    assert meta["steps_done"] == 12


def test_model_stays_frozen_and_bit_identical(run, tiny):
    _, _, before, _ = run
    model, _ = tiny
    assert all(not p.requires_grad for p in model.parameters())
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_peft_loads_adapter_with_identical_logits(run, tiny, tiny_llama_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from analyzer.training.scoring import PromptedClassifier

    _, _, _, out = run
    model, tok = tiny
    prompt = load_file(str(out / "adapter_model.safetensors"))["prompt_embeddings"]
    ids = [tok.convert_tokens_to_ids("Ġwas"), tok.convert_tokens_to_ids("Ġthe")]
    ours = PromptedClassifier(model, ids, prompt)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(base, str(out)).eval()
    assert not [w for w in caught if "Unexpected keyword" in str(w.message)]  # our config is PEFT's own
    texts = ["Input: the movie was great\nLabel:", "Input: boring, a waste of time again again\nLabel:"]
    with torch.no_grad():
        for text in texts:
            x = torch.tensor([tok.encode(text)])
            full = peft_model(input_ids=x).logits[0, -1]
            mine = ours(x, torch.tensor([x.shape[1]]))[0]
            torch.testing.assert_close(mine, full[ids], rtol=1e-5, atol=1e-6)
        # the whole-vocabulary logits too: our prompt in front of the plain model = PEFT's model
        x = torch.tensor([tok.encode(texts[0])])
        emb = torch.cat([prompt[None], model.get_input_embeddings()(x)], 1)
        torch.testing.assert_close(model(inputs_embeds=emb).logits, peft_model(input_ids=x).logits)


def test_evaluate_none_text_ids_soft(run, tiny, task_csv):
    from analyzer.tasks import get_task
    from analyzer.training import evaluate, read_snapshots
    from analyzer.types import SoftPrompt

    _, _, _, out = run
    model, tok = tiny
    task = get_task(task_csv, label_words=WORDS)
    zero = evaluate(model, tok, task, None, split="validation")
    hard = evaluate(model, tok, task, "Say the or was.", split="validation")
    snaps = read_snapshots(out)
    soft = evaluate(model, tok, task, SoftPrompt("p", snaps[12], "x", "PROMPT_TUNING"), split="validation")
    arr = evaluate(model, tok, task, torch.from_numpy(snaps[12]), split="validation")
    from_dir = evaluate(model, tok, task, out, split="validation")          # a Path: the adapter directory
    assert from_dir.predictions.tolist() == soft.predictions.tolist()
    ids = evaluate(model, tok, task, [5, 6, 7], split="validation")
    assert (zero.prompt_kind, hard.prompt_kind, soft.prompt_kind, ids.prompt_kind) == ("none", "text", "soft",
                                                                                        "token_ids")
    assert soft.n == zero.n == len(task.validation) and 0 <= soft.accuracy <= 1
    np.testing.assert_allclose(soft.label_probs, arr.label_probs)
    assert soft.label_probs.shape == (soft.n, 2) and np.allclose(soft.label_probs.sum(1), 1, atol=1e-5)
    # the validation accuracy the trainer logged at the end is evaluate()'s
    log = [json.loads(x) for x in (out / "training_log.jsonl").read_text().splitlines()]
    assert log[-1]["eval_accuracy"] == pytest.approx(soft.accuracy)
    from analyzer.exceptions import AnalyzerError

    for bad, said in (({"limit": -1}, "The 'limit' parameter of evaluate must be an int >= 1 or None. Got -1"),
                      ({"batch_size": True}, "The 'batch_size' parameter of evaluate must be an int >= 1. Got True")):
        with pytest.raises(AnalyzerError, match=re.escape(said)):
            evaluate(model, tok, task, None, split="validation", **bad)
    with pytest.raises(ShapeMismatchError, match="dim 5 but the model .* has dim 32"):
        evaluate(model, tok, task, np.zeros((3, 5), np.float32), split="validation")


def test_long_texts_are_cut_keeping_the_template_end(tiny, task_csv):
    from analyzer.tasks import Example, get_task
    from analyzer.training.scoring import encode_examples

    _, tok = tiny
    task = get_task(task_csv, label_words=WORDS)
    tail = tok.encode("\nLabel:", add_special_tokens=False)
    short = tok.encode(task.format("short"))
    m = len(short) + 2
    seqs = encode_examples(tok, task, [Example("the movie " * 50, 0), Example("short", 1)], max_length=m)
    assert len(seqs[0]) == m and seqs[0][-len(tail):] == tail
    assert seqs[1] == short
    lead = encode_examples(tok, task, [Example("the movie " * 50, 0)], max_length=m, instruction="the was")
    assert lead[0][-len(tail):] == tail and lead[0][:3] == tok.encode("the was\n")[:3]


def test_length_grouped_batches_cover_each_epoch_once():
    from analyzer.training.trainer import LengthGroupedBatches

    lengths = [(i * 7) % 23 + 1 for i in range(100)]
    b = LengthGroupedBatches(lengths, 8, seed=0, megabatch=4)
    ep = b.epoch(0)
    flat = [i for batch in ep for i in batch]
    assert len(ep) == 12 and len(flat) == len(set(flat)) == 96
    assert ep == LengthGroupedBatches(lengths, 8, seed=0, megabatch=4).epoch(0) and ep != b.epoch(1)
    assert b.batch(13) == b.epoch(1)[0]
    pad = sum(max(lengths[i] for i in bt) * len(bt) for bt in ep)
    assert pad < 1.25 * sum(lengths[i] for i in flat)   # grouped: little padding


# ------------------------------------------------------------------------------------------- stop / resume
def test_stop_then_resume_equals_uninterrupted(tiny, tiny_llama_dir, task_csv, tmp_path):
    from analyzer.training import Callback, StopFlag, train
    from safetensors.torch import load_file

    model, tok = tiny
    full = train(config(tiny_llama_dir, task_csv, tmp_path / "full"), model=model, tokenizer=tok)

    flag = StopFlag()

    class StopAt(Callback):
        def on_step(self, step, loss, lr):
            if step == 5:
                flag.stop()

    part = train(config(tiny_llama_dir, task_csv, tmp_path / "part"), callbacks=[flag, StopAt()], model=model,
                 tokenizer=tok)
    assert part.stopped and part.steps == 5
    assert json.loads((tmp_path / "part" / "training_meta.json").read_text())["stopped"] is True
    rest = train(config(tiny_llama_dir, task_csv, tmp_path / "part", resume=True), model=model, tokenizer=tok)
    assert rest.start_step == 5 and rest.steps == 12 and not rest.stopped
    a = load_file(str(tmp_path / "full" / "adapter_model.safetensors"))["prompt_embeddings"]
    b = load_file(str(tmp_path / "part" / "adapter_model.safetensors"))["prompt_embeddings"]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    log = [json.loads(x) for x in (tmp_path / "part" / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 13))
    assert full.evals == [e for e in rest.evals if e[0] != 5]      # + the evaluation when it stopped at 5


def test_stop_event(tiny, tiny_llama_dir, task_csv, tmp_path):
    import threading

    from analyzer.training import train

    ev = threading.Event()
    ev.set()
    model, tok = tiny
    res = train(config(tiny_llama_dir, task_csv, tmp_path / "r"), stop_event=ev, model=model, tokenizer=tok)
    assert res.stopped and res.steps == 1 and (tmp_path / "r" / "checkpoint.safetensors").is_file()


def test_ctrl_c_writes_a_checkpoint(tiny, tiny_llama_dir, task_csv, tmp_path):
    from analyzer.training import Callback, train
    from safetensors import safe_open

    class CtrlC(Callback):
        def on_step(self, step, loss, lr):
            if step == 6:
                raise KeyboardInterrupt

    model, tok = tiny
    with pytest.raises(KeyboardInterrupt):
        train(config(tiny_llama_dir, task_csv, tmp_path / "r", checkpoint_every=100), callbacks=[CtrlC()],
              model=model, tokenizer=tok)
    with safe_open(str(tmp_path / "r" / "checkpoint.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["checkpoint"])["step"] == 6
    res = train(config(tiny_llama_dir, task_csv, tmp_path / "r", resume=True), model=model, tokenizer=tok)
    assert res.start_step == 6 and res.steps == 12


def test_resume_refuses_another_model_or_prompt_size(run, tiny, tiny_llama_dir, task_csv, tmp_path):
    from analyzer.training import train

    _, _, _, out = run
    model, tok = tiny
    with pytest.raises(TrainingError, match=r"num_virtual_tokens=4 but this run asks for 8 \(--virtual-tokens\)"):
        train(config(tiny_llama_dir, task_csv, out, resume=True, num_virtual_tokens=8), model=model, tokenizer=tok)
    with pytest.raises(TrainingError, match=r"model=.* but this run asks for 'smollm2-135m' \(--model\)"):
        train(config(tiny_llama_dir, task_csv, out, resume=True, model="smollm2-135m"), model=model, tokenizer=tok)
    with pytest.raises(TrainingError, match="Nothing to resume"):
        train(config(tiny_llama_dir, task_csv, tmp_path / "empty", resume=True), model=model, tokenizer=tok)
    with pytest.raises(TrainingError, match="already holds a training run .* --resume .* --overwrite"):
        train(config(tiny_llama_dir, task_csv, out), model=model, tokenizer=tok)


def test_resume_refuses_a_different_dimension(tiny_llama_dir, task_csv, tmp_path):
    """Same name and prompt size, but the model behind the name changed (dim 32 -> 48)."""
    from tiny_models import make_tiny_llama

    from analyzer.training import train

    d = tmp_path / "m"
    make_tiny_llama(d)
    train(config(d, task_csv, tmp_path / "r", steps=2))
    make_tiny_llama(d, hidden=48)
    with pytest.raises(TrainingError, match=r"prompt is 4 x 32 .* needs 4 x 48"):
        train(config(d, task_csv, tmp_path / "r", steps=4, resume=True))


def test_extra_loss_regularises_the_prompt(tiny, tiny_llama_dir, task_csv, tmp_path):
    from analyzer.training import read_snapshots, train

    model, tok = tiny
    kw = dict(steps=6, snapshot_every=6, eval_every=0, eval_examples=4)
    train(config(tiny_llama_dir, task_csv, tmp_path / "a", **kw), model=model, tokenizer=tok)
    train(config(tiny_llama_dir, task_csv, tmp_path / "b", **kw), model=model, tokenizer=tok,
          extra_loss=lambda p: 100.0 * (p ** 2).sum(-1).mean())
    a, b = read_snapshots(tmp_path / "a"), read_snapshots(tmp_path / "b")
    assert np.array_equal(a[0], b[0])
    assert np.linalg.norm(b[6]) < np.linalg.norm(a[6])


def test_bad_training_input(tiny, tiny_llama_dir, task_csv, tmp_path):
    from analyzer.exceptions import TaskError
    from analyzer.training import train

    model, tok = tiny
    with pytest.raises(TaskError, match=r"'positive' .*not a single token .* tokenizes as"):
        train(config(tiny_llama_dir, task_csv, tmp_path / "a", label_words={"pos": "positive", "neg": "was"}),
              model=model, tokenizer=tok)
    with pytest.raises(TrainingError, match="fewer than batch_size 512"):
        train(config(tiny_llama_dir, task_csv, tmp_path / "b", batch_size=512), model=model, tokenizer=tok)
    with pytest.raises(TaskError, match="Unknown task"):
        train(config(tiny_llama_dir, "nosuchtask", tmp_path / "c"), model=model, tokenizer=tok)


@pytest.mark.parametrize("mode, peft_mode", [("labels", "SAMPLE_VOCAB"), ("vocab", "SAMPLE_VOCAB"),
                                             ("text", "TEXT"), ("random", "RANDOM")])
def test_saved_config_uses_only_peft_init_modes_and_the_loader_keeps_ours(mode, peft_mode, tmp_path):
    """A stricter PEFT could refuse an unknown ``prompt_tuning_init``: the config holds PEFT's own mode, and
    our exact mode comes back from the weights' metadata."""
    from peft import PeftConfig
    from peft.tuners.prompt_tuning.config import PromptTuningInit

    from analyzer import load_prompt
    from analyzer.training.trainer import save_adapter

    out = save_adapter(tmp_path / mode, np.ones((3, 8), np.float32), base_model_name_or_path="some-model",
                       init_mode=mode, init_text="say it" if mode == "text" else None,
                       init_token_ids=[1, 2, 3] if mode != "random" else None)
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert PromptTuningInit(cfg["prompt_tuning_init"]) == PromptTuningInit(peft_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert PeftConfig.from_pretrained(str(out)).prompt_tuning_init == peft_mode
    assert not [w for w in caught if "Unexpected keyword" in str(w.message)]
    p = load_prompt(out)
    assert p.init == mode.upper() and p.init_token_ids == ((1, 2, 3) if mode != "random" else None)
    assert p.init_text == ("say it" if mode == "text" else None)


def test_keep_best_writes_the_best_evaluations_prompt_and_the_checkpoint_keeps_the_last(tiny, tiny_llama_dir,
                                                                                      task_csv, tmp_path):
    """With keep_best the adapter is the snapshot of the first best validation evaluation (evaluations and
    snapshots every 2 steps, so each evaluated prompt is in the snapshots), the record says which, and a
    resume trains on from the last step's prompt, not the kept one."""
    from analyzer.loaders import load_prompt
    from analyzer.training import read_snapshots, train

    model, tok = tiny
    cfg = config(tiny_llama_dir, task_csv, tmp_path / "b", steps=12, eval_every=2, snapshot_every=2, lr=0.3,
                 keep_best=True)
    train(cfg, model=model, tokenizer=tok)
    meta = json.loads((tmp_path / "b" / "training_meta.json").read_text())
    evals = [(e["step"], e["accuracy"]) for e in meta["evals"]]
    first_best = max(evals, key=lambda e: e[1])        # max() keeps the first of equals
    fe = meta["final_eval"]
    assert (fe["kept"], fe["step"], fe["accuracy"]) == ("best", *first_best)
    assert (fe["last_step"], fe["last_accuracy"]) == evals[-1]
    snaps = read_snapshots(tmp_path / "b")
    kept = load_prompt(tmp_path / "b").vectors
    np.testing.assert_array_equal(kept, snaps[first_best[0]])
    from safetensors.torch import load_file

    last = load_file(str(tmp_path / "b" / "checkpoint.safetensors"))["prompt"].numpy()
    np.testing.assert_array_equal(last, snaps[12])
    with pytest.raises(TrainingError, match="eval_every"):
        config(tiny_llama_dir, task_csv, tmp_path / "c", keep_best=True, eval_every=0)


def test_keep_best_survives_a_resume_without_snapshots(tiny, tiny_llama_dir, task_csv, tmp_path):
    """The best evaluation before a stop rides in the checkpoint (no snapshots here to recover it from): a run
    stopped at step 6 and resumed keeps the same best prompt as the uninterrupted run."""
    from analyzer.training import Callback, StopFlag, train
    from safetensors.torch import load_file

    model, tok = tiny
    kw = dict(keep_best=True, eval_every=2, snapshot_every=0, lr=0.3, checkpoint_every=2)
    train(config(tiny_llama_dir, task_csv, tmp_path / "full", **kw), model=model, tokenizer=tok)
    flag = StopFlag()

    class StopAt(Callback):
        def on_step(self, step, loss, lr):
            if step == 6:
                flag.stop()

    train(config(tiny_llama_dir, task_csv, tmp_path / "part", **kw), callbacks=[flag, StopAt()], model=model,
          tokenizer=tok)
    assert "best.prompt" in load_file(str(tmp_path / "part" / "checkpoint.safetensors"))
    train(config(tiny_llama_dir, task_csv, tmp_path / "part", resume=True, **kw), model=model, tokenizer=tok)
    full, part = (json.loads((tmp_path / d / "training_meta.json").read_text())["final_eval"] for d in ("full", "part"))
    assert (part["kept"], part["step"]) == ("best", full["step"]) and part["accuracy"] == pytest.approx(full["accuracy"])
    a, b = (load_file(str(tmp_path / d / "adapter_model.safetensors"))["prompt_embeddings"] for d in ("full", "part"))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_ranks_without_several_tasks_is_refused(tiny_llama_dir, task_csv, tmp_path):
    with pytest.raises(TrainingError, match="--ranks"):
        config(tiny_llama_dir, task_csv, tmp_path / "r", num_ranks=2)

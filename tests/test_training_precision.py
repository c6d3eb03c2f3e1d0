"""The trainer's compute dtype (bfloat16 autocast for the frozen model, float32 prompt and optimizer state, chosen by
the neighbour search's probe, recorded in training_meta.json) and the plateau rule of the sample prompts."""

import json

import pytest

from analyzer.exceptions import TrainingError
from test_training import config

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from analyzer.models import load_frozen_model

    return load_frozen_model(str(tiny_llama_dir))


@pytest.fixture(scope="module")
def task_csv(tmp_path_factory):
    from test_training import make_task_csv

    return str(make_task_csv(tmp_path_factory.mktemp("task") / "tiny_task.csv"))


def test_dtype_setting_is_checked_and_normalised():
    from analyzer.training import TrainConfig

    assert TrainConfig(out="x").dtype == "auto"
    assert TrainConfig(out="x", dtype=" BFloat16 ").dtype == "bfloat16"
    with pytest.raises(TrainingError, match=r"'dtype' parameter of TrainConfig must be one of \['auto', 'float32', "
                                            r"'bfloat16'\]. Got 'fp8'"):
        TrainConfig(out="x", dtype="fp8")


def test_auto_follows_the_probe_and_an_explicit_dtype_wins(monkeypatch):
    from analyzer import neighbors
    from analyzer.training.precision import choose_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(neighbors, "_low_precision_probe", lambda: (None, 1.1))   # no AMX / AVX512-BF16
    p = choose_precision("auto", cpu)
    assert p.dtype == "float32" and p.probe_speedup == 1.1 and "1.1x" in p.reason and not p.autocast
    assert choose_precision("bfloat16", cpu).dtype == "bfloat16"          # asked for: honoured, reason says why
    monkeypatch.setattr(neighbors, "_low_precision_probe", lambda: (torch.bfloat16, 2.2))
    p = choose_precision("auto", cpu)
    assert p.dtype == "bfloat16" and p.autocast and "2.2x" in p.reason
    f = choose_precision("float32", cpu)
    assert f.dtype == "float32" and f.probe_speedup is None   # not even probed


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_bfloat16_run_keeps_prompt_and_optimizer_float32_and_records_it(tiny, tiny_llama_dir, task_csv, tmp_path,
                                                                      dtype):
    from safetensors.torch import load_file

    from analyzer.training import train

    model, tok = tiny
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    out = tmp_path / dtype
    res = train(config(tiny_llama_dir, task_csv, out, dtype=dtype, steps=8, eval_every=4), model=model,
                tokenizer=tok)
    assert res.steps == 8 and res.loss is not None and res.eval_accuracy is not None
    meta = json.loads((out / "training_meta.json").read_text())
    assert meta["precision"]["requested"] == dtype and meta["precision"]["dtype"] == dtype
    assert meta["config"]["dtype"] == dtype
    # the model is untouched (autocast casts copies, never the weights) and stays float32
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ck = load_file(str(out / "checkpoint.safetensors"))
    assert ck["prompt"].dtype == torch.float32
    states = [v for k, v in ck.items() if k.startswith("optimizer.") and v.dim() > 0]
    assert states and all(v.dtype == torch.float32 for v in states)     # AdamW's moments
    assert load_file(str(out / "adapter_model.safetensors"))["prompt_embeddings"].dtype == torch.float32


def test_bfloat16_and_float32_steps_agree_to_bfloat16_precision(tiny, task_csv):
    """The same batch through the frozen model in both dtypes: logits close to bfloat16's resolution, gradients
    pointing the same way (never bit-equal: different kernels)."""
    from analyzer.tasks import get_task
    from analyzer.training.scoring import PromptedClassifier, encode_examples, pad_batch, pad_id_of
    from test_training import WORDS

    model, tok = tiny
    task = get_task(task_csv, label_words=WORDS)
    ids, lens = pad_batch(encode_examples(tok, task, task.train[:8]), pad_id_of(tok))
    y = torch.tensor([ex.label for ex in task.train[:8]])
    torch.manual_seed(0)
    prompt = torch.randn(4, model.get_input_embeddings().weight.shape[1]) * 0.5
    grads, logits = [], []
    for bf16 in (False, True):
        m = PromptedClassifier(model, task.label_token_ids(tok, "tiny"), prompt.clone())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            lo = m(ids, lens)
        torch.nn.functional.cross_entropy(lo, y).backward()
        assert lo.dtype == torch.float32 and m.prompt.grad.dtype == torch.float32
        logits.append(lo.detach())
        grads.append(m.prompt.grad.flatten())
    scale = logits[0].abs().max().item() + 1e-6
    assert (logits[0] - logits[1]).abs().max().item() < 0.05 * scale
    cos = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0).item()
    assert cos > 0.95


def test_plateau_rule():
    from analyzer.training import PlateauStop

    rising = PlateauStop(window=0.3, min_gain=0.01, min_steps=100, min_evals=1)
    for s, a in [(0, 0.5), (50, 0.6), (100, 0.7), (150, 0.75)]:
        rising.on_eval(s, a)
    assert not rising.should_stop()         # still gaining more than 0.01 in the last 30% of the steps
    flat = PlateauStop(window=0.3, min_gain=0.01, min_steps=100, min_evals=1)
    for s, a in [(0, 0.5), (50, 0.8), (100, 0.805), (150, 0.9)]:
        flat.on_eval(s, a)
    # at step 100 the evaluations after step 70 (0.805) gained <= 0.01 over the best before (0.8): it fired there
    # and stays fired
    assert flat.should_stop() and flat.reason.startswith("plateau at step 100") and "0.805" in flat.reason
    early = PlateauStop(window=0.3, min_gain=0.01, min_steps=300)
    for s, a in [(0, 0.5), (50, 0.5), (100, 0.5)]:
        early.on_eval(s, a)
    assert not early.should_stop()          # flat, but before min_steps
    with pytest.raises(ValueError, match="window"):
        PlateauStop(window=1.5)
    with pytest.raises(ValueError, match="min_evals"):
        PlateauStop(min_evals=0)


def test_one_noisy_evaluation_does_not_end_a_run():
    """The run that showed it: evaluations every 100 steps, 0.705 at 200 and 0.715 at 300; the window after step
    210 holds one evaluation, so the default rule (min_evals=3) waits; it fires once three flat ones are in."""
    from analyzer.training import PlateauStop

    def first_stop(rule, path):
        for s, a in path:
            rule.on_eval(s, a)
            if rule.should_stop():
                return s, rule.reason

    path = [(0, 0.395), (100, 0.6), (200, 0.705), (300, 0.715), (400, 0.80), (500, 0.84), (600, 0.86),
            (700, 0.87), (800, 0.872), (900, 0.875), (1000, 0.874)]
    assert first_stop(PlateauStop(min_evals=1), path)[0] == 300      # the old rule: one evaluation in the window
    fired, reason = first_stop(PlateauStop(), path)
    # at 300-700 the window holds 1-2 evaluations; at 800 and 900 it gains 0.032 and 0.015; at 1000 it holds 800,
    # 900, 1000 (best 0.875) against 0.87 before (step 700): the rule fires there
    assert fired == 1000 and "3 evaluations" in reason


def test_plateau_stops_a_run_at_the_evaluation_that_fires(tiny, tiny_llama_dir, task_csv, tmp_path):
    from analyzer.training import PlateauStop, train

    model, tok = tiny
    # a gain of 1.0 is impossible: fires at step 4 (one evaluation in the window is enough here)
    rule = PlateauStop(window=0.3, min_gain=1.0, min_steps=4, min_evals=1)
    res = train(config(tiny_llama_dir, task_csv, tmp_path / "p", steps=12, eval_every=2), model=model,
                tokenizer=tok, callbacks=[rule])
    assert res.stopped and res.steps == 4 and rule.reason.startswith("plateau at step 4")
    rows = [json.loads(line) for line in (tmp_path / "p" / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval_accuracy" in r] == [0, 2, 4]     # no extra step, no extra evaluation


def test_a_plateau_rule_that_cannot_fire_says_so(caplog):
    """300 steps with an evaluation every 50: the last 30% (90 steps) holds at most 2 evaluations, fewer than
    min_evals=3, so the rule could never stop the run; it warns at the start instead of staying silent."""
    import logging
    from types import SimpleNamespace

    from analyzer.training import PlateauStop

    with caplog.at_level(logging.WARNING, logger="analyzer.training.callbacks"):
        PlateauStop().on_start(SimpleNamespace(eval_every=50), 0, 300)
    assert any("cannot fire" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="analyzer.training.callbacks"):
        PlateauStop().on_start(SimpleNamespace(eval_every=50), 0, 1000)     # 300 steps: 6 evaluations
    assert not caplog.records

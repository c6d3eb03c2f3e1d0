"""decode (soft prompt -> hard prompt, PEZ-style) on a tiny random llama: real token ids always, the fluency term
does what it says, a planted text is recovered, a stopped decode resumes where it stopped, the adapter loads in
PEFT and in the toolkit, and bad settings are refused in one line."""

import json
import threading

import numpy as np
import pytest

from analyzer.exceptions import AnalyzerError

torch = pytest.importorskip("torch")

from test_training import WORDS, task_csv  # noqa: E402  (the shared task file fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHARED_FIXTURES = (task_csv,)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny llama whose weights are large enough (0.3) that a prompt moves its label logits."""
    from tiny_models import make_tiny_llama

    from analyzer.loaders import load_vocabulary
    from analyzer.models import load_frozen_model

    d = tmp_path_factory.mktemp("tiny-llama-03")
    make_tiny_llama(d, initializer_range=0.3)
    model, tok = load_frozen_model(str(d))
    return str(d), model, tok, load_vocabulary(str(d))


@pytest.fixture(scope="module")
def task(task_csv):
    from analyzer.tasks import get_task

    return get_task(task_csv, label_words=WORDS)


def _text_prompt(model, tok, text="the movie was great and wonderful"):
    ids = tok.encode(text, add_special_tokens=False)
    return ids, model.get_input_embeddings().weight[ids].detach().clone()


def _run(tiny, task, soft, **kw):
    from analyzer.decode import DecodeConfig, decode

    path, model, tok, vocab = tiny
    opts = {k: kw.pop(k) for k in ("out", "resume", "overwrite", "stop_event", "on_step", "limit") if k in kw}
    opts.setdefault("limit", 24)
    cfg = DecodeConfig(**{"steps": 12, "eval_every": 3, "checkpoint_every": 3, "select_examples": 16, **kw})
    return decode(model, tok, soft, task, vocab, cfg, model_name=path, **opts)


def test_the_decoded_prompt_is_made_of_usable_token_ids(tiny, task):
    from analyzer.decode.pez import usable_mask

    _, model, tok, vocab = tiny
    rng = np.random.default_rng(0)
    soft = torch.as_tensor(rng.normal(size=(6, model.config.hidden_size)).astype(np.float32))
    for length, init in ((6, "projection"), (4, "random"), (9, "projection")):
        res = _run(tiny, task, soft, length=length, init=init)
        ok = usable_mask(vocab, model)
        assert len(res.token_ids) == length and all(ok[i] for i in res.token_ids), res.token_ids
        # the trace's start is where the config says: the projection, resampled to the length
        if init == "projection":
            from analyzer.decode.pez import Projector

            proj = Projector(model, ok)(soft)
            pick = np.round(np.linspace(0, 5, length)).astype(int)
            assert res.trace["start_ids"] == [proj[i] for i in pick]
        # every reference was scored on the same examples
        assert {s.n for s in res.scores.values()} == {res.n} and set(res.versus) == {"soft", "projection",
                                                                                   "instruction", "zero-shot"}
        d = res.to_dict()
        json.dumps(d, allow_nan=False)
        assert d["scores"]["decoded"]["accuracy"] == res.scores["decoded"].accuracy


def test_a_larger_fluency_weight_gives_a_more_likely_hard_prompt(tiny, task):
    """Same start, same batches: the run that weighs the text's NLL ends on a prompt the model finds likelier."""
    _, model, tok, vocab = tiny
    _, soft = _text_prompt(model, tok)
    soft = soft + 0.5 * torch.randn(soft.shape, generator=torch.Generator().manual_seed(1))
    nll = {}
    for lam in (0.0, 5.0):
        res = _run(tiny, task, soft, fluency=lam, init="random", steps=30, eval_every=3, seed=1)
        nll[lam] = res.trace["best_parts"]["fluency"]
        assert np.isclose(np.log(res.perplexity["decoded"]), nll[lam], atol=1e-3)
    assert nll[5.0] < nll[0.0] - 0.1, nll


def test_a_planted_text_is_recovered_by_agreement_alone(tiny, task):
    """The soft prompt *is* a text's embedding: the teacher term alone keeps exactly that text (agreement 1), and
    the decode never returns something worse on its selection set than where it started."""
    _, model, tok, vocab = tiny
    ids, soft = _text_prompt(model, tok)
    res = _run(tiny, task, soft, task_weight=0.0, agreement_weight=1.0, init="projection")
    assert list(res.token_ids) == ids
    assert res.agreement["rate"] == 1.0 and res.trace["best_objective"] <= 1e-6
    # from random tokens the objective can only improve on the start
    res = _run(tiny, task, soft, task_weight=0.0, agreement_weight=1.0, init="random", steps=15)
    assert res.trace["best_objective"] <= res.trace["start_objective"]


def test_a_stopped_decode_resumes_to_the_same_prompt(tiny, task, tmp_path):
    _, model, tok, vocab = tiny
    rng = np.random.default_rng(3)
    soft = torch.as_tensor(rng.normal(size=(5, model.config.hidden_size)).astype(np.float32))
    whole = _run(tiny, task, soft, out=tmp_path / "whole", init="random", seed=2)
    stop = threading.Event()

    def stop_after_step_6(step, loss):
        if step == 6:
            stop.set()

    cut = _run(tiny, task, soft, out=tmp_path / "cut", init="random", seed=2, stop_event=stop,
               on_step=stop_after_step_6)
    assert cut.trace["stopped"] and cut.trace["steps_done"] == 6
    with pytest.raises(AnalyzerError, match="already holds a decode; pass --resume"):
        _run(tiny, task, soft, out=tmp_path / "cut", init="random", seed=2)
    with pytest.raises(AnalyzerError, match="another settings"):
        _run(tiny, task, soft, out=tmp_path / "cut", init="random", seed=5, resume=True)
    res = _run(tiny, task, soft, out=tmp_path / "cut", init="random", seed=2, resume=True)
    assert not res.trace["stopped"] and res.trace["steps_done"] == 12
    assert res.token_ids == whole.token_ids and res.trace["best_step"] == whole.trace["best_step"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "decode_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))


def test_the_written_adapter_loads_in_peft_and_in_the_toolkit(tiny, task, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from analyzer import load_prompt

    path, model, tok, vocab = tiny
    ids, soft = _text_prompt(model, tok)
    out = tmp_path / "dec"
    res = _run(tiny, task, soft, out=out, steps=3)
    saved = json.loads((out / "decode.json").read_text())
    assert saved["token_ids"] == list(res.token_ids) and saved["text"] == res.text
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["prompt_tuning_init"] == "TEXT" and cfg["prompt_tuning_init_text"] == res.text
    p = load_prompt(out)
    want = model.get_input_embeddings().weight[list(res.token_ids)].detach().numpy()
    np.testing.assert_allclose(p.vectors, want, rtol=0, atol=1e-6)
    base = AutoModelForCausalLM.from_pretrained(path)
    peft_model = PeftModel.from_pretrained(base, str(out)).eval()
    got = peft_model.get_prompt_embedding_to_save("default").detach().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kw, words", [
    ({"lr": 0.0}, "The 'lr' parameter of DecodeConfig must be a finite number in (0, 10]. Got 0.0 instead."),
    ({"lr": float("nan")}, "The 'lr' parameter of DecodeConfig"),
    ({"steps": 0}, "The 'steps' parameter of DecodeConfig must be an int >= 1. Got 0 instead."),
    ({"steps": True}, "The 'steps' parameter of DecodeConfig must be an int >= 1. Got True instead."),
    ({"length": 0}, "The 'length' parameter of DecodeConfig must be an int >= 1 or None. Got 0 instead."),
    ({"fluency": -1.0}, "The 'fluency' parameter of DecodeConfig must be a finite number in [0, 10000]."),
    ({"task_weight": 0.0, "agreement_weight": 0.0}, "needs a task or an agreement term"),
    ({"init": "text"}, "The 'init' parameter of DecodeConfig must be one of 'projection', 'random'. Got 'text'"),
    ({"seed": -1}, "The 'seed' parameter of DecodeConfig must be an int in [0, 4294967295]. Got -1 instead."),
])
def test_bad_settings_are_refused_in_one_line(kw, words):
    from analyzer.decode import DecodeConfig

    with pytest.raises(AnalyzerError) as e:
        DecodeConfig(**kw)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_numpy_settings_are_stored_as_python_numbers():
    from analyzer.decode import DecodeConfig

    cfg = DecodeConfig(steps=np.int64(5), lr=np.float32(0.5), seed=np.uint32(3))
    assert (cfg.steps, cfg.lr, cfg.seed) == (5, 0.5, 3)
    assert type(cfg.steps) is int and type(cfg.lr) is float and type(cfg.seed) is int


def test_the_cli_refuses_bad_input_in_one_line(capsys, tmp_path):
    from analyzer.cli import main

    for argv, words in ((["decode", "p", "--fluency", "-2"], "expected a finite weight"),
                        (["decode", "p", "--lr", "0"], "expected a learning rate"),
                        (["decode", str(tmp_path / "missing"), "--task", "sentiment"], "missing")):
        with pytest.raises(SystemExit) if words.startswith("expected") else _no_raise() as e:
            rc = main(argv)
        err = capsys.readouterr().err.strip()
        code = e.value.code if e is not None and hasattr(e, "value") else rc
        assert code == 2 and len(err.splitlines()) == 1 and words in err and "Traceback" not in err, err


class _no_raise:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_the_frontier_sweeps_the_fluency_weight_and_resumes_point_by_point(tiny, task, tmp_path):
    from analyzer.decode import DecodeConfig, decode_frontier
    from analyzer.plotting import plot_decode_frontier

    path, model, tok, vocab = tiny
    _, soft = _text_prompt(model, tok)
    soft = soft + 0.5 * torch.randn(soft.shape, generator=torch.Generator().manual_seed(4))
    cfg = DecodeConfig(steps=6, eval_every=3, checkpoint_every=3, select_examples=16, init="random", seed=1)
    out = tmp_path / "sweep"
    res = decode_frontier(model, tok, soft, task, vocab, fluencies=(0.0, 5.0), lengths=(None, 4), config=cfg,
                          out=out, limit=24, model_name=path)
    rows = res.rows()
    assert [(r.fluency, r.length) for r in rows] == [(0.0, 20), (5.0, 20), (0.0, 4), (5.0, 4)]
    assert set(res.references) == {"soft", "projection", "instruction", "zero-shot"}
    assert res.references["soft"].perplexity is None and res.references["projection"].perplexity > 0
    for name, ref in res.references.items():       # each reference row shows its balanced accuracy too
        assert 0.0 <= ref.balanced_accuracy <= 1.0, name
        assert f"{ref.balanced_accuracy:.3f}" in next(r for r in res._table_rows() if r[0] == f"[{name}]")[2]
    saved = json.loads((out / "frontier.json").read_text())
    assert saved["references"]["zero-shot"]["balanced_accuracy"] == res.references["zero-shot"].balanced_accuracy
    assert [p["name"] for p in saved["points"]] == ["fluency-0", "fluency-5", "fluency-0-length-4",
                                                    "fluency-5-length-4"]
    assert all((out / p["name"] / "adapter_model.safetensors").is_file() for p in saved["points"])
    fig = plot_decode_frontier(res)
    assert fig.layout.xaxis.type == "log" and len([t for t in fig.data if t.name.startswith("decoded")]) == 2
    assert "<h1>Accuracy-readability frontier" in res.render("html")
    # resumed: finished points are read back as they were, not decoded again
    before = {p: (out / p / "decode.json").stat().st_mtime_ns for p in ("fluency-0", "fluency-5")}
    again = decode_frontier(model, tok, soft, task, vocab, fluencies=(0.0, 5.0), config=cfg, out=out, resume=True,
                            limit=24, model_name=path)
    assert {p: (out / p / "decode.json").stat().st_mtime_ns for p in before} == before
    assert [r.text for r in again.rows()] == [r.text for r in rows[:2]]


def test_the_cli_decodes_a_tensor_and_sweeps_the_frontier(tiny, task_csv, tmp_path, capsys):
    from analyzer.cli import main

    path, model, tok, _ = tiny
    _, soft = _text_prompt(model, tok)
    npy = tmp_path / "prompt.npy"
    np.save(npy, soft.numpy())
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    common = ["--model", path, "--task", task_csv, "--label-words", words, "--steps", "3", "--eval-every", "3",
              "--limit", "16", "-q"]
    assert main(["decode", str(npy), *common, "--out", str(tmp_path / "one"), "-f", "json"]) == 0
    cap = capsys.readouterr()
    d = json.loads(cap.out)
    assert d["settings"]["steps"] == 3 and len(d["token_ids"]) == 20 and "wrote the decoded prompt" in cap.err
    assert (tmp_path / "one" / "adapter_config.json").is_file()
    assert main(["decode", str(npy), *common, "--out", str(tmp_path / "one")]) == 2       # a finished decode
    assert "already holds a decode" in capsys.readouterr().err
    assert main(["decode", str(npy), *common, "--fluency", "0,2", "--out", str(tmp_path / "sweep"), "-f",
                 "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| fluency-0 |" in md and "| fluency-2 |" in md and "| [soft] |" in md
    assert (tmp_path / "sweep" / "frontier.json").is_file()


def test_a_degenerate_prompt_in_memory_is_refused_by_decode_and_compare(tiny, task):
    """The loaders' rule for rows of zero or overflowing norm holds for a matrix handed to the API too."""
    from analyzer.decode import compare_prompts

    _, model, tok, _ = tiny
    x = np.random.default_rng(0).normal(size=(4, model.config.hidden_size)).astype(np.float32)
    x[2] = 0
    with pytest.raises(AnalyzerError, match=r"row 2 .*zero|zero.*row 2|rows? 2"):
        _run(tiny, task, torch.as_tensor(x))
    with pytest.raises(AnalyzerError, match=r"2"):
        compare_prompts(model, tok, {"a": x, "b": x + 1}, transfer=False)


def test_the_gain_in_balanced_accuracy_shows_a_majority_class_decode():
    """On an imbalanced task a decode that answers the majority class for every example keeps most of the gain in
    accuracy over a zero-shot that answers the minority class, but none in balanced accuracy; the summary says so
    (the shipped spam decodes were read the first way before this)."""
    from analyzer.decode.result import DecodeResult, gain_recovered
    from analyzer.faithfulness.evaluation import Score

    labels, targets = ["ham", "spam"], np.array([0] * 87 + [1] * 13)
    majority = Score.of(targets == 0, labels, targets, None)          # says "ham" to everything
    minority = Score.of(targets == 1, labels, targets, None)          # says "spam" to everything
    soft = Score.of(np.r_[np.ones(86, bool), [False], np.ones(12, bool), [False]], labels, targets, None)
    res = DecodeResult(model="m", prompt="p", task="spam", split="test", n=100, text="x", token_ids=(1,),
                       tokens=("x",), round_trip=True, scores={"decoded": majority, "soft": soft,
                                                              "zero-shot": minority},
                       versus={}, agreement={"rate": 0.9, "ci": [0.8, 0.95], "n": 100},
                       perplexity={"decoded": 10.0, "projection": 20.0}, trace={}, settings={},
                       gain_recovered=gain_recovered(majority.accuracy, soft.accuracy, minority.accuracy))
    assert res.gain_recovered == pytest.approx((0.87 - 0.13) / (0.98 - 0.13))
    assert res.balanced_gain_recovered == pytest.approx(0.0)             # 0.5 balanced, like zero-shot's
    assert res.to_dict()["balanced_gain_recovered"] == pytest.approx(0.0)
    text = "\n".join(res.summary())
    assert "0% in balanced accuracy" in text and "majority class" in text and "spam 0.00" in text
    assert gain_recovered(0.5, 0.4, 0.6) is None                           # the soft prompt does not beat zero-shot


def test_class_weights_make_every_class_weigh_the_same():
    """The decode's default ("balanced") weights: each class's examples sum to n / classes, so a batch mean cannot
    be lowered by answering the majority class alone; a non-bool setting is refused in one line."""
    from analyzer.decode import DecodeConfig
    from analyzer.decode.pez import class_weights

    t = np.array([0] * 87 + [1] * 13)
    w = class_weights(t)
    assert w[t == 0].sum() == pytest.approx(50.0) and w[t == 1].sum() == pytest.approx(50.0)
    assert w.mean() == pytest.approx(1.0)
    assert class_weights(np.array([2, 2, 5, 5])).tolist() == [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(AnalyzerError, match="class_balanced"):
        DecodeConfig(class_balanced="yes")

"""Faithfulness: projection gap, Prompt-F1, waywardness stress test, logit lens, self-description.

Unit tests run on a tiny random llama (tests/tiny_models.py); the integration tests on the real SmolLM2."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from numeric import assert_same_neighbors

from analyzer import faithfulness as F
from analyzer.exceptions import AnalyzerError, ShapeMismatchError
from analyzer.types import SoftPrompt

TEXT = "the movie was great and the acting was wonderful"
TARGET = "who wrote the book? how many people live there?"
N_VIRTUAL = 8


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from analyzer.loaders import load_vocabulary
    from analyzer.models import load_frozen_model
    from analyzer.neighbors import NeighborIndex

    model, tok = load_frozen_model(tiny_llama_dir)
    vocab = load_vocabulary(tiny_llama_dir)
    index = NeighborIndex(k=1).fit(vocab)
    return model, tok, vocab, index


@pytest.fixture(scope="module")
def toy_task():
    """Two classes whose label words are single tokens of the tiny tokenizer."""
    from analyzer.tasks import Example, Task, split_examples

    pos = ["the movie was great", "the acting was wonderful", "great and wonderful film", "the film was great"]
    neg = ["the film was terrible", "boring, a waste of time", "terrible and boring", "a waste of a movie"]
    ex = [Example(f"{t} {i}", 0) for i in range(8) for t in pos] + \
         [Example(f"{t} {i}", 1) for i in range(8) for t in neg]
    train, val, test = split_examples(ex, test_size=0.25, validation_size=0.2)
    return Task(name="toy", labels=("pos", "neg"), label_words=("the", "was"), train=train, validation=val,
                test=test, template="Review: {text}\nSentiment:",
                instruction="Classify the review as positive or negative.")


@pytest.fixture(scope="module")
def text_prompt(tiny):
    """An untrained TEXT-init prompt: the init text's token embeddings, tiled to N_VIRTUAL (PEFT's rule)."""
    model, tok, vocab, _ = tiny
    ids = tok.encode(TEXT, add_special_tokens=False)
    ids = (ids * N_VIRTUAL)[:N_VIRTUAL]
    vec = model.get_input_embeddings().weight[ids].detach().numpy().copy()
    return SoftPrompt(name="text-init", vectors=vec, source="memory", kind="TENSOR", init="TEXT", init_text=TEXT), ids


# ---------------------------------------------------------------------------------------------- statistics
def test_import_pulls_no_torch():
    code = "import sys, analyzer.faithfulness; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_wilson_interval_known_values():
    lo, hi = F.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = F.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert all(np.isnan(F.wilson_interval(0, 0)))


def test_mcnemar_and_paired_bootstrap():
    a = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([0, 0, 0, 0, 0, 0, 0, 0], bool)
    m = F.mcnemar_exact(a, b)
    assert (m["a_only"], m["b_only"]) == (6, 0) and m["p_value"] == pytest.approx(2 / 64)
    assert F.mcnemar_exact(a, a)["p_value"] == 1.0
    d = F.paired_bootstrap_diff(a, b, n_boot=500, seed=1)
    assert d["diff"] == pytest.approx(0.75) and d["ci_low"] <= 0.75 <= d["ci_high"]
    assert d == F.paired_bootstrap_diff(a, b, n_boot=500, seed=1)          # seeded
    z = F.paired_bootstrap_diff(a, a)
    assert z["diff"] == z["ci_low"] == z["ci_high"] == 0.0
    with pytest.raises(AnalyzerError):
        F.paired_bootstrap_diff(a, b[:3])


def test_prompt_f1_counts_a_multiset():
    assert F.prompt_f1([1, 2, 3], [1, 2, 3])["f1"] == 1.0
    assert F.prompt_f1([1, 2, 3], [4, 5])["f1"] == 0.0
    r = F.prompt_f1([1, 1, 2], [1, 2, 2, 3])           # common = {1:1, 2:1} = 2
    assert r["common"] == 2 and r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert F.prompt_f1([], [1])["f1"] == 0.0


# ---------------------------------------------------------------------------------------------- projection
def test_text_init_projection_is_the_init_text(tiny, text_prompt):
    model, tok, vocab, index = tiny
    prompt, ids = text_prompt
    proj = F.hard_projection(prompt, index, tokenizer=tok)
    assert list(proj.token_ids) == ids
    np.testing.assert_allclose(proj.scores, 1.0, atol=1e-5)
    assert proj.round_trip is True and proj.text == tok.decode(ids)
    f1 = F.projection_f1(proj, TEXT, tok, vocab=vocab)          # the reference tiled like the init
    assert f1["f1"] == 1.0 and f1["f1_loose"] == 1.0 and f1["reference_ids"] == ids
    assert F.projection_f1(proj, TEXT, tok, tile=False)["recall"] < 1.0   # the text is longer than the prompt
    same = F.hard_projection(prompt, vocab, tokenizer=tok)       # a Vocabulary works too
    assert same.token_ids == proj.token_ids
    json.dumps(proj.to_dict(), allow_nan=False)


def test_projection_rejects_wrong_inputs(tiny):
    model, tok, vocab, index = tiny
    with pytest.raises(ShapeMismatchError):
        F.hard_projection(np.zeros((3, vocab.dim + 1), np.float32), index)
    with pytest.raises(AnalyzerError, match="NeighborIndex or a Vocabulary"):
        F.hard_projection(np.zeros((3, vocab.dim), np.float32), "smollm2-135m")
    with pytest.raises(ShapeMismatchError, match="has dim"):
        F.logit_lens(model, tok, np.zeros((2, vocab.dim + 3), np.float32))


def test_projection_gap_text_init(tiny, toy_task, text_prompt):
    """Untrained TEXT-init prompt: soft prompt, its projection and its init are the same input -> same answers."""
    from analyzer.training.scoring import evaluate

    model, tok, vocab, index = tiny
    prompt, ids = text_prompt
    g = F.projection_gap(model, tok, prompt, toy_task, index, limit=None, n_boot=200)
    json.dumps(g, allow_nan=False)
    acc = g["accuracy"]
    assert list(acc) == ["none", "instruction", "init", "projection", "soft"]
    assert acc["soft"]["accuracy"] == acc["projection"]["accuracy"] == acc["init"]["accuracy"]
    assert g["gap"]["diff"] == 0.0 and g["gap"]["agreement"] == 1.0 and g["gap"]["mcnemar"]["p_value"] == 1.0
    n = len(toy_task.test)
    for a in acc.values():
        assert a["n"] == n and 0 <= a["ci_low"] <= a["accuracy"] <= a["ci_high"] <= 1
        assert a["chance"] == 0.5 and 0 < a["majority"] < 1 and a["majority_label"] in toy_task.labels
        assert a["correct"] == round(a["accuracy"] * n)
    # the numbers are the task module's evaluate(), not a copy
    assert acc["none"]["accuracy"] == evaluate(model, tok, toy_task, None).accuracy
    assert acc["projection"]["accuracy"] == evaluate(model, tok, toy_task, ids).accuracy
    soft = evaluate(model, tok, toy_task, prompt)            # the soft matrix itself gives the same answers
    assert np.array_equal(soft.predictions, evaluate(model, tok, toy_task, ids).predictions)
    assert g["prompt_f1"]["init"]["f1"] == 1.0
    assert g["projection"]["token_ids"] == ids
    assert g["same_input"] == [["init", "projection", "soft"]]       # scored once
    assert g["n"] == n and g["chance"] == 0.5


def test_projection_gap_skips_missing_init(tiny, toy_task):
    model, tok, vocab, index = tiny
    rng = np.random.default_rng(0)
    p = SoftPrompt(name="rand", vectors=rng.normal(size=(4, vocab.dim)).astype(np.float32), source="x",
                   kind="TENSOR", init="RANDOM")
    g = F.projection_gap(model, tok, p, toy_task, index, conditions=("init", "projection", "projection_text", "soft"),
                         limit=8, n_boot=100)
    assert "init" in g["skipped"] and set(g["accuracy"]) == {"projection", "projection_text", "soft"}
    assert g["accuracy"]["projection_text"]["prompt"] == g["projection"]["text"]
    assert "init" not in g["prompt_f1"]
    with pytest.raises(AnalyzerError, match="'conditions' parameter of projection_gap must be a list of values among "):
        F.projection_gap(model, tok, p, toy_task, index, conditions=("hard",))


# ---------------------------------------------------------------------------------------------- waywardness
def test_waywardness_stress_test_pulls_projection_to_target(tiny, toy_task):
    from analyzer.plotting._waywardness import plot_waywardness

    model, tok, vocab, index = tiny
    res = F.waywardness_stress_test(model, tok, toy_task, TARGET, index, gammas=(0.0, 30.0),
                                    num_virtual_tokens=N_VIRTUAL, steps=20, batch_size=4, lr=0.1, limit=None)
    json.dumps(res.to_dict(), allow_nan=False)
    free, pulled = res.rows
    assert pulled.distance < 0.5 * free.distance
    assert pulled.prompt_f1 > free.prompt_f1 and pulled.prompt_f1 >= 0.75
    assert len(res.target_ids) == N_VIRTUAL and res.chance == 0.5
    for r in res.rows:
        for key in ("accuracy", "projection_accuracy"):
            a = getattr(r, key)
            assert a.n == len(toy_task.validation) and a.ci_low <= a.accuracy
    fig = plot_waywardness(res, width=600, height=400)
    assert type(fig).__name__ == "Figure" and len(fig.data) == 2 and fig.layout.width == 600
    assert list(fig.data[0].x) == [free.prompt_f1, pulled.prompt_f1]
    assert plot_waywardness(res.rows).data                       # rows alone are enough
    assert plot_waywardness(res.to_dict()["rows"]).data          # and their JSON
    assert type(res).from_dict(json.loads(res.to_json())).to_dict() == res.to_dict()   # the JSON reads back


def test_waywardness_is_reproducible_and_checks_gamma(tiny, toy_task, text_prompt):
    model, tok, vocab, index = tiny
    prompt, _ = text_prompt
    target = np.zeros_like(prompt.vectors)
    a, la = F.train_with_penalty(model, tok, toy_task, prompt, target, 1.0, steps=3, batch_size=4)
    b, lb = F.train_with_penalty(model, tok, toy_task, prompt, target, 1.0, steps=3, batch_size=4)
    assert np.array_equal(a.numpy(), b.numpy()) and la == lb
    for bad in (-1.0, float("nan"), True):
        with pytest.raises(AnalyzerError, match="gamma"):
            F.train_with_penalty(model, tok, toy_task, prompt, target, bad, steps=1)
    with pytest.raises(ShapeMismatchError):
        F.train_with_penalty(model, tok, toy_task, prompt, target[:2], 1.0, steps=1, batch_size=4)
    with pytest.raises(AnalyzerError, match="gammas"):
        F.waywardness_stress_test(model, tok, toy_task, TARGET, index, gammas=(0.0, -1.0))


# ---------------------------------------------------------------------------------------------- logit lens
def test_logit_lens_last_layer_equals_model_logits(tiny, text_prompt):
    import torch

    model, tok, vocab, index = tiny
    prompt, _ = text_prompt
    suffix = " what is it"
    the = tok.convert_tokens_to_ids("the")
    lens = F.logit_lens(model, tok, prompt, k=4, suffix=suffix, vocab=vocab, track={"the": the})
    n_layers = model.config.num_hidden_layers
    s_ids = tok.encode(suffix, add_special_tokens=False)
    assert lens.layers == tuple(range(n_layers + 1)) and lens.n_virtual == N_VIRTUAL
    assert len(lens.positions) == N_VIRTUAL + len(s_ids) and lens.positions[0] == "v0"
    assert lens.top_ids.shape == (n_layers + 1, N_VIRTUAL + len(s_ids), 4)
    emb = model.get_input_embeddings()
    x = torch.cat([torch.as_tensor(prompt.vectors), emb(torch.tensor(s_ids))]).unsqueeze(0)
    with torch.no_grad():
        out = model(inputs_embeds=x, output_hidden_states=True)
        probs = out.logits[0].float().softmax(-1)
        first = model.lm_head(model.model.norm(x))[0].softmax(-1)
    top = probs.topk(4)
    assert_same_neighbors(lens.top_ids[-1], lens.top_probs[-1], top.indices.numpy(), top.values.numpy())
    np.testing.assert_allclose(lens.top_probs[0], first.topk(4).values.numpy(), atol=1e-5)   # layer 0: embeddings
    np.testing.assert_allclose(lens.tracked["the"][-1], probs[:, the].numpy(), atol=1e-6)
    # intermediate layers are the raw residual stream read through the final norm
    mid = model.lm_head(model.model.norm(out.hidden_states[1]))[0].softmax(-1)
    np.testing.assert_allclose(lens.top_probs[1], mid.topk(4).values.detach().numpy(), atol=1e-5)
    assert lens.top_tokens[-1][0][0] == vocab.tokens[lens.top_ids[-1, 0, 0]]
    assert (lens.entropy >= 0).all()
    d = lens.to_dict()
    json.dumps(d, allow_nan=False)
    assert len(d["top"]) == n_layers + 1 and len(d["top"][0]) == len(lens.positions)
    # virtual positions do not depend on what follows (causal attention)
    alone = F.logit_lens(model, tok, prompt, k=4)
    np.testing.assert_allclose(alone.top_probs, lens.top_probs[:, :N_VIRTUAL], atol=1e-5)
    last = F.logit_lens(model, tok, prompt, k=4, suffix=suffix, suffix_positions="last", track={"the": the})
    assert last.positions == lens.positions[:N_VIRTUAL] + lens.positions[-1:]
    np.testing.assert_allclose(last.top_probs[:, -1], lens.top_probs[:, -1], atol=1e-6)
    np.testing.assert_allclose(last.tracked["the"][:, -1], lens.tracked["the"][:, -1], atol=1e-7)
    with pytest.raises(AnalyzerError, match="suffix_positions"):
        F.logit_lens(model, tok, prompt, suffix=suffix, suffix_positions="first")


def test_residual_hooks_are_removed_even_on_error(tiny, text_prompt):
    model, tok, vocab, index = tiny
    layers = model.model.layers

    def counts():
        return [len(layer._forward_hooks) for layer in layers]

    before = counts()          # transformers may keep hooks of its own
    with pytest.raises(RuntimeError):
        with F.residual_stream_hooks(layers):
            assert counts() == [c + 1 for c in before]
            raise RuntimeError("boom")
    assert counts() == before
    F.logit_lens(model, tok, text_prompt[0], k=1)
    assert counts() == before
    with pytest.raises(AnalyzerError, match="'k'"):
        F.logit_lens(model, tok, text_prompt[0], k=0)


def test_plot_logit_lens(tiny, text_prompt):
    from analyzer.plotting._logit_lens import plot_logit_lens

    model, tok, vocab, index = tiny
    lens = F.logit_lens(model, tok, text_prompt[0], k=3, suffix=" the film", vocab=vocab)
    fig = plot_logit_lens(lens, width=700)
    assert type(fig).__name__ == "Figure" and fig.layout.width == 700
    hm = fig.data[0]
    assert len(hm.z) == len(lens.layers) and len(hm.z[0]) == len(lens.positions)
    assert hm.z[-1][0] == pytest.approx(float(lens.top_probs[-1, 0, 0]))
    assert len(plot_logit_lens(lens.to_dict(), virtual_only=True).data[0].z[0]) == N_VIRTUAL
    assert F.LogitLens.from_dict(lens.to_dict()).to_dict() == lens.to_dict()      # the JSON reads back


# ---------------------------------------------------------------------------------------------- self-description
def test_self_description_is_deterministic(tiny, text_prompt):
    model, tok, vocab, index = tiny
    prompt, _ = text_prompt
    a = F.self_description(model, tok, prompt, max_new_tokens=6, index=index)
    b = F.self_description(model, tok, prompt, max_new_tokens=6, index=index)
    assert a == b
    json.dumps(a, allow_nan=False)
    assert [r["question"] for r in a] == list(F.DEFAULT_QUESTIONS)
    for r in a:
        assert set(r) == {"question", "soft", "none", "init", "projection", "differs_from_none"}
        assert 0 < len(r["soft"]["token_ids"]) <= 6
        # an untrained TEXT-init prompt is its init text: same continuation
        assert r["soft"] == r["init"] == r["projection"]
    only = F.self_description(model, tok, prompt.vectors, questions=["Task:"], max_new_tokens=3, baselines=False)
    assert set(only[0]) == {"question", "soft"}
    with pytest.raises(AnalyzerError, match="max_new_tokens"):
        F.self_description(model, tok, prompt, max_new_tokens=0)


def test_analyze_faithfulness_bundle(tiny, toy_task, text_prompt):
    model, tok, vocab, index = tiny
    prompt, ids = text_prompt
    out = F.analyze_faithfulness(model, tok, prompt, vocab, task=toy_task, limit=6, max_new_tokens=4)
    json.dumps(out, allow_nan=False)
    assert set(out) == {"projection_gap", "projection", "prompt_f1", "logit_lens", "self_description"}
    assert set(out["logit_lens"]["tracked"]) == set(toy_task.label_words)
    assert out["logit_lens"]["n_virtual"] == N_VIRTUAL and len(out["logit_lens"]["positions"]) == N_VIRTUAL + 1
    bare = F.analyze_faithfulness(model, tok, prompt, index, reference_text=TEXT, max_new_tokens=2,
                                  questions=["Task:"])
    assert "projection_gap" not in bare and bare["prompt_f1"]["init"]["f1"] == 1.0
    assert bare["prompt_f1"]["reference"]["precision"] == 1.0


# ---------------------------------------------------------------------------------------------- SmolLM2
@pytest.mark.integration
def test_smollm2_text_adapter_faithfulness(smollm2_frozen, smollm2_text_adapter):
    from analyzer.loaders import load_prompt, load_vocabulary
    from analyzer.neighbors import NeighborIndex
    from conftest import INIT_TEXT

    model, tok = smollm2_frozen
    d, init_ids = smollm2_text_adapter
    prompt = load_prompt(d)
    index = NeighborIndex(k=1).fit(load_vocabulary("smollm2-135m"))
    t = time.perf_counter()
    g = F.projection_gap(model, tok, prompt, "sentiment", index, limit=8, n_boot=200)
    t_gap = time.perf_counter() - t
    assert g["projection"]["token_ids"] == init_ids
    assert F.projection_f1(F.hard_projection(prompt, index, tokenizer=tok), INIT_TEXT, tok)["f1"] == 1.0
    acc = g["accuracy"]
    assert acc["soft"]["accuracy"] == acc["projection"]["accuracy"] == acc["init"]["accuracy"]
    assert all(a["n"] == 8 and a["chance"] == 0.5 for a in acc.values())
    t = time.perf_counter()
    lens = F.logit_lens(model, tok, prompt, k=3, vocab=index.vocab_)
    t_lens = time.perf_counter() - t
    assert lens.top_ids.shape == (model.config.num_hidden_layers + 1, 12, 3)
    t = time.perf_counter()
    sd = F.self_description(model, tok, prompt, questions=F.DEFAULT_QUESTIONS[:1], max_new_tokens=8, baselines=False)
    t_sd = time.perf_counter() - t
    again = F.self_description(model, tok, prompt, questions=F.DEFAULT_QUESTIONS[:1], max_new_tokens=8,
                               baselines=False)
    assert again == sd and sd[0]["soft"]["text"].strip()
    print(f"\nSmolLM2: projection gap (5 conditions, 3 distinct inputs x 8 examples) {t_gap:.1f}s, logit lens "
          f"{t_lens:.2f}s, self-description (8 tokens) {t_sd:.1f}s; soft/proj acc {acc['soft']['accuracy']:.3f}; "
          f"self-description {sd[0]['soft']['text']!r}")


def test_waywardness_summary_warns_when_the_unpulled_prompt_learned_nothing():
    def acc(a, bal, above):
        return F.Accuracy(condition="soft", accuracy=a, correct=int(a * 200), n=200, ci_low=a - 0.05,
                          ci_high=a + 0.05, balanced_accuracy=bal, chance=0.5, majority=0.845, majority_label="ham",
                          above_chance=above)

    def row(g, a, bal, above, f1):
        return F.WaywardnessRow(gamma=g, accuracy=acc(a, bal, above), projection_accuracy=acc(0.2, 0.5, False),
                                prompt_f1=f1, prompt_f1_loose=f1, init_f1=1 - f1, distance=1.0, final_loss=0.3,
                                projection=F.HardProjection(token_ids=(1, 2), tokens=("␣a", "|b"), scores=(1.0, 1.0),
                                                            metric="cosine"))

    common = dict(task="spam", target_text="Paris", target_ids=[1, 2], target_accuracy=acc(0.47, 0.6, False),
                  none_accuracy=acc(0.2, 0.5, False), chance=0.5, majority=0.845, settings={"steps": 60})
    majority_only = F.WaywardnessResult(rows=[row(0.0, 0.835, 0.49, False, 0.0), row(3.0, 0.84, 0.5, False, 1.0)],
                                        **common)
    lines = majority_only.summary()
    assert lines[0].startswith("Caution") and "balanced accuracy 0.49" in lines[0] and "60 steps" in lines[0]
    learned = F.WaywardnessResult(rows=[row(0.0, 0.97, 0.95, True, 0.0), row(3.0, 0.96, 0.94, True, 1.0)], **common)
    assert not any(line.startswith("Caution") for line in learned.summary())
    md = learned.to_markdown()
    assert "| 3 | 0.960 [0.91, 1.01] | 0.940 |" in md and "␣a \\|b" in md  # pipes in tokens are escaped
    assert json.loads(learned.to_json())["summary"] == learned.summary()

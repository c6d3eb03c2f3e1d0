"""The input-embedding scale (Gemma multiplies its token embeddings by sqrt(d)): the vocabulary, PEFT's own
TEXT init, our trainer and the analysis all live in the space the model sees.  Tiny random Gemma 1/2/3 models
for the unit tests; the real embedded Gemma 3 270M for the integration test (skipped with the reason when it is
not installed: ``make install-gemma``)."""

import copy
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

HIDDEN = 64
INIT_TEXT = "the movie was great and the acting was wonderful"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["gemma", "gemma2", "gemma3_text"])
def tiny_gemma(request, tmp_path_factory):
    from tiny_models import make_tiny_gemma

    d = tmp_path_factory.mktemp(f"tiny-{request.param}")
    model, tok = make_tiny_gemma(d, request.param, hidden=HIDDEN)
    return d, model, tok


def _peft_text_adapter(model, tok, tok_dir, out, n=10):
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    cfg = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=n,
                             prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=INIT_TEXT,
                             tokenizer_name_or_path=str(tok_dir))
    get_peft_model(copy.deepcopy(model), cfg).save_pretrained(out)
    ids = tok(INIT_TEXT)["input_ids"]      # as PEFT tokenizes it: with the tokenizer's special tokens (Gemma: <bos>)
    return out, (ids * (n // len(ids) + 1))[:n]


def test_scale_is_read_from_the_module_on_meta_and_measured_on_real_weights(tiny_gemma, tiny_llama_dir):
    from transformers import AutoConfig

    from analyzer.scale import config_embed_scale, input_embed_scale

    d, model, _ = tiny_gemma
    measured = input_embed_scale(model.get_input_embeddings())
    assert measured == pytest.approx(math.sqrt(HIDDEN), rel=1e-6)
    assert config_embed_scale(model.config) == pytest.approx(measured, rel=1e-6)   # built on the meta device
    assert config_embed_scale(AutoConfig.from_pretrained(tiny_llama_dir)) == 1.0


def test_scale_that_is_not_one_constant_is_refused():
    from analyzer.scale import input_embed_scale

    class Weird(torch.nn.Embedding):
        def forward(self, ids):
            return super().forward(ids) + 1.0

    with pytest.raises(ValueError, match="does not scale its weight rows by one constant"):
        input_embed_scale(Weird(20, 8))
    assert input_embed_scale(torch.nn.Embedding(20, 8)) == 1.0


def test_vocabulary_is_in_the_space_the_model_sees(tiny_gemma):
    from analyzer import load_vocabulary

    d, model, _ = tiny_gemma
    vocab = load_vocabulary(d)
    assert vocab.embed_scale == pytest.approx(math.sqrt(HIDDEN), rel=1e-6)
    emb = model.get_input_embeddings()
    ids = torch.arange(5, 25)
    with torch.no_grad():
        seen = emb(ids).float().numpy()
    np.testing.assert_allclose(np.asarray(vocab.embeddings)[5:25], seen, rtol=1e-5, atol=1e-6)
    again = load_vocabulary(d)   # the warm load from the cache keeps the scale
    assert again.embed_scale == vocab.embed_scale and "embed_scale=8" in repr(again)
    # indexes, layouts and neighbourhoods derived from raw rows (an older cache) are never reused
    assert again.key == vocab.key and vocab.key.endswith("-x8")


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_peft_text_init_adapter_reads_as_its_init_tokens(tiny_gemma, tmp_path, metric):
    from analyzer import NeighborIndex, build_report, load_prompt, load_vocabulary

    d, model, tok = tiny_gemma
    adapter, ids = _peft_text_adapter(model, tok, d, tmp_path / "adapter")
    vocab, prompt = load_vocabulary(d), load_prompt(adapter)
    report = build_report(prompt, vocab, NeighborIndex(metric=metric, k=3, cache=False).fit(vocab), k=3)
    rows = report.prompts[0]["tokens"]
    assert np.median([r["norm_ratio"] for r in rows]) == pytest.approx(
        np.median(np.linalg.norm(np.asarray(vocab.embeddings)[ids], axis=1)) / report.model["median_norm"],
        rel=1e-4)
    ratios = np.array([r["norm_ratio"] for r in rows])
    assert 0.5 < np.median(ratios) < 2.0          # was ~sqrt(64) = 8 with the raw rows
    assert [r["neighbors"][0]["token_id"] for r in rows] == ids
    top = np.array([r["neighbors"][0]["score"] for r in rows])
    if metric == "cosine":
        np.testing.assert_allclose(top, 1.0, atol=1e-5)
    else:
        np.testing.assert_allclose(top, 0.0, atol=1e-4 * math.sqrt(HIDDEN))   # an L2 distance


def test_trainer_starts_at_the_scaled_init(tiny_gemma, tmp_path):
    import csv

    from analyzer.training import TrainConfig, read_snapshots, train

    d, model, tok = tiny_gemma
    task = tmp_path / "task.csv"
    with open(task, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(24):
            w.writerow([("the movie was great " if i % 2 else "the film was terrible ") + str(i),
                        "pos" if i % 2 else "neg"])
    cfg = TrainConfig(model=str(d), task=str(task), out=str(tmp_path / "run"), label_words={"pos": "the", "neg": "was"},
                      num_virtual_tokens=6, steps=2, batch_size=4, lr=0.01, eval_every=2, snapshot_every=1,
                      checkpoint_every=2, prompt_tuning_init="text", prompt_tuning_init_text=INIT_TEXT, seed=0)
    train(cfg, model=model, tokenizer=tok)
    meta = json.loads((tmp_path / "run" / "training_meta.json").read_text())
    assert meta["embed_scale"] == pytest.approx(math.sqrt(HIDDEN), rel=1e-6)
    first = read_snapshots(tmp_path / "run")[0]          # step 0: the init
    with torch.no_grad():
        seen = model.get_input_embeddings()(torch.tensor(meta["init"]["token_ids"])).float().numpy()
    np.testing.assert_allclose(first, seen, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------- the real Gemma 3 270M
@pytest.fixture(scope="module")
def gemma3():
    from analyzer.models import EMBEDDED_MODELS, is_installed

    if not is_installed("gemma3-270m"):
        pytest.skip(f"Gemma 3 270M is not installed (make install-gemma, or {EMBEDDED_MODELS['gemma3-270m'].pip})")
    from analyzer import load_vocabulary
    from analyzer.models import load_frozen_model

    model, tok = load_frozen_model("gemma3-270m")
    return load_vocabulary("gemma3-270m"), model, tok


def test_gemma3_vocabulary_peft_text_init_and_trainer_share_the_scaled_space(gemma3, tmp_path):
    from analyzer import NeighborIndex, build_report, load_prompt
    from analyzer.training import TrainConfig, read_snapshots, train

    vocab, model, tok = gemma3
    assert vocab.embed_scale == pytest.approx(math.sqrt(640), rel=1e-6)
    tok_dir = tmp_path / "tok"
    tok.save_pretrained(tok_dir)
    adapter, ids = _peft_text_adapter(model, tok, tok_dir, tmp_path / "adapter", n=8)
    prompt = load_prompt(adapter)
    for metric in ("cosine", "l2"):
        index = NeighborIndex(metric=metric, k=2).fit(vocab)
        rows = build_report(prompt, vocab, index, k=2).prompts[0]["tokens"]
        assert np.median([r["norm_ratio"] for r in rows]) == pytest.approx(
            np.median(np.linalg.norm(np.asarray(vocab.embeddings)[ids], axis=1)) / index.median_norm_, rel=1e-3)
        assert 0.5 < np.median([r["norm_ratio"] for r in rows]) < 2.0      # was ~25 against the raw rows
        plain = [i for i, t in enumerate(ids) if not vocab.excluded[t]]      # <bos> is not indexed
        assert len(plain) >= len(ids) - 1
        assert [rows[i]["neighbors"][0]["token_id"] for i in plain] == [ids[i] for i in plain]
        top = np.array([rows[i]["neighbors"][0]["score"] for i in plain])
        # the GGUF rows are dequantized by gguf (vocabulary) and by transformers (model): equal to float32 rounding
        if metric == "cosine":
            np.testing.assert_allclose(top, 1.0, atol=1e-4)
        else:
            assert np.all(top <= 1e-3 * index.median_norm_)
    cfg = TrainConfig(model="gemma3-270m", task="sentiment", out=str(tmp_path / "run"), num_virtual_tokens=4,
                      steps=2, batch_size=2, eval_every=2, eval_examples=4, snapshot_every=1, checkpoint_every=2,
                      prompt_tuning_init="text", prompt_tuning_init_text=INIT_TEXT, max_length=32, seed=0)
    train(cfg, model=model, tokenizer=tok)
    meta = json.loads((tmp_path / "run" / "training_meta.json").read_text())
    first = read_snapshots(tmp_path / "run")[0]
    init_rows = np.asarray(vocab.embeddings)[meta["init"]["token_ids"]]
    np.testing.assert_allclose(first, init_rows, rtol=1e-4, atol=1e-4)
    assert np.median(np.linalg.norm(first, axis=1)) / index.median_norm_ > 0.5

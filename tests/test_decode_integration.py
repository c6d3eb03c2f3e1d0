"""decode and compare on the real SmolLM2 (a few steps, a few examples): the decoded prompt is real SmolLM2 tokens
that re-embed to the adapter's rows, is scored beside the references on the same examples, and loads as a PEFT
adapter; compare's activation overlap runs on a Llama-style decoder of real size."""

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_decode_a_sample_prompt_on_smollm2(smollm2_frozen, tmp_path):
    from analyzer import load_prompt
    from analyzer.decode import DecodeConfig, decode
    from analyzer.loaders import load_vocabulary

    model, tok = smollm2_frozen
    vocab = load_vocabulary("smollm2-135m")
    prompt = load_prompt(ROOT / "sample_prompts" / "spam-labels")
    cfg = DecodeConfig(steps=2, eval_every=1, checkpoint_every=1, select_examples=4, batch_size=2, length=6)
    res = decode(model, tok, prompt, "spam", vocab, cfg, limit=8, out=tmp_path / "dec", model_name="smollm2-135m")
    assert len(res.token_ids) == 6 and not any(vocab.excluded[i] for i in res.token_ids)
    assert res.tokens == tuple(vocab.tokens[i] for i in res.token_ids)
    assert {s.n for s in res.scores.values()} == {8} and res.perplexity["decoded"] > 1
    assert res.perplexity["projection"] > 1 and res.perplexity["instruction"] > 1
    back = load_prompt(tmp_path / "dec")
    want = model.get_input_embeddings().weight[list(res.token_ids)].detach().float().numpy()
    np.testing.assert_allclose(back.vectors, want, rtol=0, atol=1e-6)
    d = json.loads((tmp_path / "dec" / "decode.json").read_text())
    assert d["text"] == tok.decode(list(res.token_ids)) and d["settings"]["length"] == 6


def test_the_shipped_decoded_prompts_load_and_match_their_json():
    """Every decoded sample (scripts/decode_samples.py) is a loadable adapter holding the token rows it names."""
    from analyzer import load_prompt
    from analyzer.models import load_frozen_model

    found = sorted((ROOT / "sample_prompts").glob("*/decoded/decode.json"))
    assert found, "no decoded sample prompt is shipped"
    model, _ = load_frozen_model("smollm2-135m")
    emb = model.get_input_embeddings().weight.detach().float().numpy()
    for path in found:
        d = json.loads(path.read_text())
        p = load_prompt(path.parent)
        np.testing.assert_allclose(p.vectors, emb[d["token_ids"]], rtol=0, atol=1e-6)
        assert d["scores"]["decoded"]["n"] == d["scores"]["soft"]["n"] == d["agreement"]["n"]


def test_activation_overlap_on_smollm2(smollm2_frozen):
    from analyzer import load_prompt
    from analyzer.decode.similarity import activation_overlap

    model, _ = smollm2_frozen
    ps = [load_prompt(ROOT / "sample_prompts" / n).vectors for n in ("sentiment-labels", "spam-labels")]
    on = activation_overlap(model, ps + ps[:1])
    assert np.isclose(on[0, 2], 1.0) and 0 < on[0, 1] < 1
    assert all(not m._forward_pre_hooks for m in model.modules())

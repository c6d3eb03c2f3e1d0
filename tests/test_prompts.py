"""Soft-prompt loader: PEFT adapters of every supported kind, built and saved by PEFT itself on the tiny
llama / T5, checked against PEFT's own tensors; raw tensors in every format; every kind of bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from analyzer.exceptions import AnalyzerError, InputFileError, ShapeMismatchError, UnsupportedAdapterError
from analyzer.loaders._prompt import check_compatible, load_prompt, load_prompts

INIT_TEXT = "the film was"  # 6 tokens with the tiny tokenizer


# ----------------------------------------------------------------------------------------------- helpers
def _causal(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))


def _seq2seq(tiny_t5_dir):
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_pretrained(str(tiny_t5_dir))


def _peft_ids(tok_dir, text, total):
    """What PromptEmbedding.__init__ does for TEXT init."""
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(tok_dir))(text)["input_ids"]
    ids = ids * math.ceil(total / len(ids)) if len(ids) < total else ids
    return tuple(ids[:total])


def _save(peft_model, path, **kw):
    peft_model.save_pretrained(str(path), **kw)
    return Path(path)


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


def _assert_prompt_array(v):
    assert isinstance(v, np.ndarray) and v.dtype == np.float32 and v.flags.c_contiguous and v.ndim == 2


# ----------------------------------------------------------------------------------------------- adapters
@pytest.fixture(scope="module")
def pt_random(tmp_path_factory, tiny_llama_dir):
    import torch
    from peft import PromptTuningConfig, get_peft_model

    torch.manual_seed(1)
    pm = get_peft_model(_causal(tiny_llama_dir), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=6))
    ref = pm.prompt_encoder["default"].embedding.weight.detach().numpy().copy()
    d = tmp_path_factory.mktemp("adapters") / "pt-random"
    return _save(pm, d), ref


@pytest.fixture(scope="module")
def pt_text(tmp_path_factory, tiny_llama_dir):
    import torch
    from peft import PromptTuningConfig, get_peft_model

    torch.manual_seed(2)
    base = _causal(tiny_llama_dir)
    cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=7, prompt_tuning_init="TEXT",
                             prompt_tuning_init_text=INIT_TEXT, tokenizer_name_or_path=str(tiny_llama_dir))
    pm = get_peft_model(base, cfg)
    ref = pm.prompt_encoder["default"].embedding.weight.detach().numpy().copy()
    emb = base.get_input_embeddings().weight.detach().numpy().copy()
    d = tmp_path_factory.mktemp("adapters") / "pt-text"
    return _save(pm, d), ref, emb


def test_prompt_tuning_random(pt_random):
    path, ref = pt_random
    prompts = load_prompts(path)
    assert len(prompts) == 1
    p = prompts[0]
    _assert_prompt_array(p.vectors)
    np.testing.assert_array_equal(p.vectors, ref)
    assert p.name == "pt-random" and p.kind == "PROMPT_TUNING" and p.init == "RANDOM"
    assert p.init_text is None and p.init_token_ids is None
    assert p.num_virtual_tokens == 6 and p.dim == 32
    assert p.source == os.path.abspath(path)
    assert p.base_model and Path(p.base_model).is_dir()
    assert p.config["peft_type"] == "PROMPT_TUNING"
    q = load_prompt(path, name="mine")
    assert q.name == "mine"
    np.testing.assert_array_equal(q.vectors, ref)
    # one of the adapter's files given directly loads the adapter
    assert load_prompt(path / "adapter_model.safetensors").kind == "PROMPT_TUNING"
    assert load_prompt(path / "adapter_config.json").kind == "PROMPT_TUNING"


def test_prompt_tuning_text_init(pt_text, tiny_llama_dir):
    path, ref, emb = pt_text
    p = load_prompt(path)
    np.testing.assert_array_equal(p.vectors, ref)
    assert p.init == "TEXT" and p.init_text == INIT_TEXT
    want = _peft_ids(tiny_llama_dir, INIT_TEXT, 7)  # the text is shorter than 7 tokens: repeated
    assert p.init_token_ids == want
    assert len(set(want)) < 7
    # untrained TEXT init: every virtual token IS its init token's embedding
    np.testing.assert_array_equal(p.vectors, emb[list(p.init_token_ids)])


def test_text_init_truncated_and_custom_ids(tmp_path, pt_text, tiny_llama_dir):
    path, _, emb = pt_text
    # truncation: a long text for 7 rows
    long = tmp_path / "long"
    shutil.copytree(path, long)
    cfg = json.loads((long / "adapter_config.json").read_text())
    cfg["prompt_tuning_init_text"] = "what is the capital of france? where is the river? who wrote the book?"
    (long / "adapter_config.json").write_text(json.dumps(cfg))
    assert load_prompt(long).init_token_ids == _peft_ids(tiny_llama_dir, cfg["prompt_tuning_init_text"], 7)
    # our own trainer's key wins
    cfg["init_token_ids"] = [5, 6, 7, 8, 9, 10, 11]
    (long / "adapter_config.json").write_text(json.dumps(cfg))
    assert load_prompt(long).init_token_ids == (5, 6, 7, 8, 9, 10, 11)
    # our trainer's safetensors metadata works too (the config key above is what earlier versions wrote)
    del cfg["init_token_ids"]
    (long / "adapter_config.json").write_text(json.dumps(cfg))
    from safetensors.torch import load_file, save_file

    w = load_file(str(long / "adapter_model.safetensors"))
    save_file(w, str(long / "adapter_model.safetensors"), {"format": "pt", "init_token_ids": "[4, 3, 2, 1, 0, 9, 8]"})
    assert load_prompt(long).init_token_ids == (4, 3, 2, 1, 0, 9, 8)
    save_file(w, str(long / "adapter_model.safetensors"), {"format": "pt", "init_token_ids": "[4, 3]"})  # wrong length
    assert load_prompt(long).init_token_ids == _peft_ids(tiny_llama_dir, cfg["prompt_tuning_init_text"], 7)
    # tokenizer not available here: the ids are unknown, the rest loads
    cfg["tokenizer_name_or_path"] = str(tmp_path / "does-not-exist")
    (long / "adapter_config.json").write_text(json.dumps(cfg))
    p = load_prompt(long)
    assert p.init_token_ids is None and p.init_text == cfg["prompt_tuning_init_text"]


def test_bin_adapter(tmp_path, tiny_llama_dir):
    import torch
    from peft import PromptTuningConfig, get_peft_model

    torch.manual_seed(3)
    pm = get_peft_model(_causal(tiny_llama_dir), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    ref = pm.prompt_encoder["default"].embedding.weight.detach().numpy().copy()
    path = _save(pm, tmp_path / "bin-adapter", safe_serialization=False)
    assert (path / "adapter_model.bin").exists() and not (path / "adapter_model.safetensors").exists()
    p = load_prompt(path)
    np.testing.assert_array_equal(p.vectors, ref)
    _assert_prompt_array(p.vectors)


@pytest.mark.parametrize("encoder", ["MLP", "LSTM"])
def test_p_tuning_matches_peft_encoder_output(tmp_path, tiny_llama_dir, encoder):
    import torch
    from peft import PromptEncoderConfig, get_peft_model

    torch.manual_seed(4)
    cfg = PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=5, encoder_hidden_size=16,
                              encoder_reparameterization_type=encoder)
    pm = get_peft_model(_causal(tiny_llama_dir), cfg)
    with torch.no_grad():
        enc = pm.prompt_encoder["default"]
        forward = enc(torch.arange(5)[None])[0].numpy().copy()
        to_save = pm.get_prompt_embedding_to_save("default").numpy().copy()
        raw = enc.embedding.weight.detach().numpy().copy()
    path = _save(pm, tmp_path / f"ptuning-{encoder.lower()}")
    p = load_prompt(path)
    assert p.kind == "P_TUNING"
    np.testing.assert_allclose(p.vectors, forward, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p.vectors, to_save, rtol=1e-6, atol=1e-7)
    assert not np.allclose(p.vectors, raw)  # the encoder output, not its input table


@pytest.fixture(scope="module")
def multitask(tmp_path_factory, tiny_llama_dir):
    import torch
    from peft import MultitaskPromptTuningConfig, get_peft_model

    torch.manual_seed(5)
    cfg = MultitaskPromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5, num_tasks=3, num_ranks=2)
    pm = get_peft_model(_causal(tiny_llama_dir), cfg)
    enc = pm.prompt_encoder["default"]
    with torch.no_grad():  # make the task factors far from zero so the comparison means something
        enc.prefix_task_cols.copy_(torch.randn_like(enc.prefix_task_cols))
        enc.prefix_task_rows.copy_(torch.randn_like(enc.prefix_task_rows))
        refs = [enc(torch.arange(5)[None], torch.tensor([t]))[0].numpy().copy() for t in range(3)]
    d = tmp_path_factory.mktemp("adapters") / "mtpt"
    return _save(pm, d), refs


def test_multitask_per_task_matches_peft_forward(multitask):
    path, refs = multitask
    for t in range(3):
        p = load_prompt(path, task=t)
        assert p.name == f"mtpt/task{t}" and p.kind == "MULTITASK_PROMPT_TUNING"
        _assert_prompt_array(p.vectors)
        np.testing.assert_allclose(p.vectors, refs[t], rtol=1e-5, atol=1e-6)
    assert not np.allclose(refs[0], refs[1])
    everything = load_prompts(path)
    assert [p.name for p in everything] == ["mtpt/task0", "mtpt/task1", "mtpt/task2"]
    for p, ref in zip(everything, refs):
        np.testing.assert_allclose(p.vectors, ref, rtol=1e-5, atol=1e-6)


def test_multitask_task_errors(multitask, pt_random):
    path, _ = multitask
    with pytest.raises(AnalyzerError) as e:
        load_prompt(path, task=3)
    msg = _one_line(e)
    assert "num_tasks=3" in msg and "Got 3 instead" in msg and "an int in [0, 2]" in msg
    with pytest.raises(AnalyzerError) as e:
        load_prompt(path, task=-1)
    assert "The 'task' parameter of load_prompts" in _one_line(e) and "Got -1 instead" in _one_line(e)
    with pytest.raises(AnalyzerError) as e:
        load_prompt(path)
    msg = _one_line(e)
    assert "3 tasks" in msg and "task" in msg and "mtpt/task0" in msg
    with pytest.raises(AnalyzerError) as e:
        load_prompt(pt_random[0], task=1)
    assert "MULTITASK_PROMPT_TUNING" in _one_line(e)


@pytest.fixture(scope="module")
def seq2seq(tmp_path_factory, tiny_t5_dir):
    import torch
    from peft import PromptTuningConfig, get_peft_model

    torch.manual_seed(6)
    cfg = PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=4, prompt_tuning_init="TEXT",
                             prompt_tuning_init_text=INIT_TEXT, tokenizer_name_or_path=str(tiny_t5_dir))
    pm = get_peft_model(_seq2seq(tiny_t5_dir), cfg)
    assert pm.peft_config["default"].num_transformer_submodules == 2
    ref = pm.prompt_encoder["default"].embedding.weight.detach().numpy().copy()
    assert ref.shape == (8, 32)
    d = tmp_path_factory.mktemp("adapters") / "t5-pt"
    return _save(pm, d), ref


def test_seq2seq_two_halves(seq2seq, tiny_t5_dir):
    path, ref = seq2seq
    enc, dec = load_prompts(path)
    assert (enc.name, dec.name) == ("t5-pt/encoder", "t5-pt/decoder")
    np.testing.assert_array_equal(enc.vectors, ref[:4])
    np.testing.assert_array_equal(dec.vectors, ref[4:])
    for p in (enc, dec):
        _assert_prompt_array(p.vectors)
        assert p.kind == "PROMPT_TUNING" and p.num_virtual_tokens == 4
    ids = _peft_ids(tiny_t5_dir, INIT_TEXT, 8)
    assert enc.init_token_ids == ids[:4] and dec.init_token_ids == ids[4:]
    with pytest.raises(AnalyzerError) as e:
        load_prompt(path)
    msg = _one_line(e)
    assert "t5-pt/encoder" in msg and "t5-pt/decoder" in msg and "load_prompts" in msg


def test_seq2seq_multitask(tmp_path, tiny_t5_dir):
    import torch
    from peft import MultitaskPromptTuningConfig, get_peft_model

    torch.manual_seed(7)
    cfg = MultitaskPromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3, num_tasks=2, num_ranks=1)
    pm = get_peft_model(_seq2seq(tiny_t5_dir), cfg)
    enc_mod = pm.prompt_encoder["default"]
    with torch.no_grad():
        enc_mod.prefix_task_cols.copy_(torch.randn_like(enc_mod.prefix_task_cols))
        ref = enc_mod(torch.arange(6)[None], torch.tensor([1]))[0].numpy().copy()
    path = _save(pm, tmp_path / "t5-mt")
    enc, dec = load_prompts(path, task=1)
    assert (enc.name, dec.name) == ("t5-mt/task1/encoder", "t5-mt/task1/decoder")
    np.testing.assert_allclose(np.vstack([enc.vectors, dec.vectors]), ref, rtol=1e-5, atol=1e-6)
    assert len(load_prompts(path)) == 4


# ----------------------------------------------------------------------------------------------- refused adapters
def test_prefix_tuning_refused(tmp_path, tiny_llama_dir):
    from peft import PrefixTuningConfig, get_peft_model

    path = _save(get_peft_model(_causal(tiny_llama_dir), PrefixTuningConfig(task_type="CAUSAL_LM",
                                                                            num_virtual_tokens=4)), tmp_path / "px")
    with pytest.raises(UnsupportedAdapterError) as e:
        load_prompts(path)
    msg = _one_line(e)
    assert "PREFIX_TUNING" in msg and "key/value" in msg and "token-embedding" in msg


def test_lora_refused(tmp_path, tiny_llama_dir):
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(_causal(tiny_llama_dir), LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj"]))
    path = _save(pm, tmp_path / "lora")
    with pytest.raises(UnsupportedAdapterError) as e:
        load_prompt(path)
    msg = _one_line(e)
    assert "LORA" in msg and "PROMPT_TUNING" in msg and "P_TUNING" in msg and "MULTITASK_PROMPT_TUNING" in msg


# ----------------------------------------------------------------------------------------------- raw tensors
@pytest.fixture
def matrix():
    return np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)


def test_raw_safetensors(tmp_path, matrix):
    import torch
    from safetensors.torch import save_file

    save_file({"anything": torch.from_numpy(matrix)}, str(tmp_path / "one.safetensors"))
    p = load_prompt(tmp_path / "one.safetensors")
    assert p.kind == "TENSOR" and p.name == "one" and p.base_model is None
    np.testing.assert_array_equal(p.vectors, matrix)
    _assert_prompt_array(p.vectors)
    # several tensors, one named prompt_embeddings
    save_file({"prompt_embeddings": torch.from_numpy(matrix), "other": torch.zeros(3, 3)},
              str(tmp_path / "named.safetensors"))
    np.testing.assert_array_equal(load_prompt(tmp_path / "named.safetensors").vectors, matrix)
    # several tensors, exactly one of them 2-D
    save_file({"emb": torch.from_numpy(matrix), "step": torch.tensor([3.0])}, str(tmp_path / "one2d.safetensors"))
    np.testing.assert_array_equal(load_prompt(tmp_path / "one2d.safetensors").vectors, matrix)
    # bf16 is widened to float32 exactly
    bf = torch.from_numpy(matrix).to(torch.bfloat16)
    save_file({"w": bf}, str(tmp_path / "bf16.safetensors"))
    np.testing.assert_array_equal(load_prompt(tmp_path / "bf16.safetensors").vectors, bf.float().numpy())
    # ambiguous
    save_file({"a": torch.zeros(2, 3), "b": torch.zeros(4, 3)}, str(tmp_path / "two.safetensors"))
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "two.safetensors")
    assert "prompt_embeddings" in _one_line(e) and "a [2, 3]" in str(e.value)


def test_raw_numpy(tmp_path, matrix):
    np.save(tmp_path / "p.npy", np.asfortranarray(matrix.astype(np.float64)))
    p = load_prompt(tmp_path / "p.npy", name="x")
    assert p.name == "x" and p.kind == "TENSOR"
    _assert_prompt_array(p.vectors)
    np.testing.assert_allclose(p.vectors, matrix)
    np.savez(tmp_path / "one.npz", matrix)
    np.testing.assert_array_equal(load_prompt(tmp_path / "one.npz").vectors, matrix)
    np.savez(tmp_path / "keyed.npz", prompt_embeddings=matrix, extra=np.zeros((2, 2)))
    np.testing.assert_array_equal(load_prompt(tmp_path / "keyed.npz").vectors, matrix)


def test_raw_torch(tmp_path, matrix):
    import torch

    torch.save(torch.from_numpy(matrix), tmp_path / "p.pt")
    np.testing.assert_array_equal(load_prompt(tmp_path / "p.pt").vectors, matrix)
    torch.save({"prompt_embeddings": torch.from_numpy(matrix).half()}, tmp_path / "d.pth")
    p = load_prompt(tmp_path / "d.pth")
    _assert_prompt_array(p.vectors)
    np.testing.assert_allclose(p.vectors, matrix, atol=1e-2)


# ----------------------------------------------------------------------------------------------- bad input
class _Evil:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused_without_executing(tmp_path, pt_random):
    import pickle

    import torch

    marker = tmp_path / "PWNED"
    evil = _Evil()
    evil.marker = str(marker)
    torch.save({"prompt_embeddings": evil}, tmp_path / "evil.pt")
    with open(tmp_path / "legacy.pth", "wb") as f:
        pickle.dump(evil, f)
    adapter = tmp_path / "evil-adapter"
    adapter.mkdir()
    shutil.copy(pt_random[0] / "adapter_config.json", adapter)
    shutil.copy(tmp_path / "evil.pt", adapter / "adapter_model.bin")
    for path in (tmp_path / "evil.pt", tmp_path / "legacy.pth", adapter):
        with pytest.raises(InputFileError) as e:
            load_prompts(path)
        msg = _one_line(e)
        assert "never executed" in msg and "safetensors" in msg
    np.save(tmp_path / "obj.npy", np.array([1, "x"], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "obj.npy")
    assert "never executed" in _one_line(e)
    assert not marker.exists()


def test_nan_and_inf_rows_named(tmp_path, matrix, pt_random):
    bad = matrix.copy()
    bad[1, 2] = np.nan
    bad[3, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "bad.npy")
    msg = _one_line(e)
    assert "rows 1, 3 of 5" in msg and "NaN" in msg and "Inf" in msg
    # inside an adapter too
    import torch
    from safetensors.torch import load_file, save_file

    adapter = tmp_path / "nan-adapter"
    shutil.copytree(pt_random[0], adapter)
    sd = load_file(str(adapter / "adapter_model.safetensors"))
    sd["prompt_embeddings"][4] = float("nan")
    save_file(sd, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(InputFileError) as e:
        load_prompt(adapter)
    assert "row 4 of 6" in _one_line(e)
    del torch


def _degenerate(kind, matrix):
    m = matrix.copy()
    if kind == "all-zero":
        return np.zeros_like(m), "rows 0, 1, 2, 3, 4 (all 5) are all zeros"
    if kind == "zero-row":
        m[2] = 0.0
        return m, "row 2 (of 5) is all zeros"
    if kind == "subnormal":
        m[1] = np.float32(1e-40)          # subnormal entries: the float32 norm is 0
        m[3] = np.float32(1e-21)          # normal entries whose squares underflow float32
        return m, "rows 1, 3 (of 5) have norms"
    if kind == "overflow":
        m[:] = np.float32(1e38)           # finite in float32; the norm is not
        return m, "rows 0, 1, 2, 3, 4 (all 5) have norms 2.8e+38"
    m[4] *= np.float32(1e20)              # finite norm ~3e20: its square overflows float32
    return m, "row 4 (of 5) has norm"


@pytest.mark.parametrize("kind", ["all-zero", "zero-row", "subnormal", "overflow", "square-overflow"])
def test_degenerate_rows_are_refused_naming_the_rows(kind, tmp_path, matrix, pt_random):
    """One rule for every prompt (check_rows): a row whose cosine is undefined or whose norm overflows float32
    refuses the whole prompt in one line that names the rows and why — never scored, never silently dropped."""
    import torch
    from safetensors.torch import load_file, save_file

    from analyzer import build_report
    from analyzer.loaders._tensor import MAX_ROW_NORM, MIN_ROW_NORM, check_rows

    bad, expect = _degenerate(kind, matrix)
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "bad.npy")
    msg = _one_line(e)
    assert expect in msg and "'bad'" in msg and ("cosine undefined" in msg or "overflows float32" in msg), msg
    # inside an adapter too (the PEFT loader applies the same rule)
    adapter = tmp_path / "bad-adapter"
    shutil.copytree(pt_random[0], adapter)
    sd = load_file(str(adapter / "adapter_model.safetensors"))
    sd["prompt_embeddings"] = torch.from_numpy(_degenerate(kind, sd["prompt_embeddings"].numpy())[0])
    save_file(sd, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(InputFileError) as e:
        load_prompt(adapter)
    assert "bad-adapter" in _one_line(e)
    # an in-memory prompt handed to the API meets the same line (check_compatible runs the rule)
    from analyzer.types import SoftPrompt

    p = SoftPrompt(name="mem", vectors=bad, source="memory", kind="TENSOR")
    with pytest.raises(InputFileError) as e:
        check_compatible(p, SimpleNamespace(name="tiny", dim=bad.shape[1]))
    assert expect in _one_line(e)
    with pytest.raises(InputFileError):
        build_report(p, SimpleNamespace(name="tiny", dim=bad.shape[1]))
    # the bounds are the float32 limits of a squared norm; a prompt just inside them loads
    ok = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    check_rows((ok * MAX_ROW_NORM * 0.99).astype(np.float32), name="big", source="memory")
    check_rows((ok.astype(np.float64) * MIN_ROW_NORM * 1.01).astype(np.float32), name="small", source="memory")


def test_empty_and_corrupt_files(tmp_path, pt_random):
    for fname in ("e.safetensors", "e.npy", "e.npz", "e.pt"):
        (tmp_path / fname).write_bytes(b"")
        with pytest.raises(InputFileError) as e:
            load_prompt(tmp_path / fname)
        assert "empty" in _one_line(e)
    for fname in ("c.safetensors", "c.npy", "c.npz", "c.pt"):
        (tmp_path / fname).write_bytes(b"not a tensor at all " * 8)
        with pytest.raises(InputFileError) as e:
            load_prompt(tmp_path / fname)
        msg = _one_line(e)
        assert "not a valid" in msg and fname in msg
    # truncated safetensors
    good = (pt_random[0] / "adapter_model.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "t.safetensors")
    _one_line(e)
    # adapter with an empty / invalid config, or no weights
    for content, expect in ((b"", "empty"), (b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"),
                            (b'{"r": 8}', "peft_type")):
        d = tmp_path / f"cfg{len(content)}"
        shutil.copytree(pt_random[0], d)
        (d / "adapter_config.json").write_bytes(content)
        with pytest.raises(InputFileError) as e:
            load_prompt(d)
        assert expect in _one_line(e)
    d = tmp_path / "no-weights"
    d.mkdir()
    shutil.copy(pt_random[0] / "adapter_config.json", d)
    with pytest.raises(InputFileError) as e:
        load_prompt(d)
    msg = _one_line(e)
    assert "adapter_model.safetensors" in msg and "adapter_model.bin" in msg and "no weights" in msg


def test_missing_path_and_dir_without_adapter(tmp_path, pt_random):
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "nope")
    assert "No such file or directory" in _one_line(e) and "nope" in str(e.value)
    with pytest.raises(InputFileError) as e:
        load_prompt("someuser/some-adapter")
    assert "local files only" in _one_line(e)
    d = tmp_path / "run"
    d.mkdir()
    (d / "notes.txt").write_text("hi")
    shutil.copytree(pt_random[0], d / "checkpoint-10")
    with pytest.raises(InputFileError) as e:
        load_prompts(d)
    msg = _one_line(e)
    assert "adapter_config.json" in msg and "notes.txt" in msg and "checkpoint-10" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError) as e:
        load_prompts(tmp_path / "empty")
    assert "empty" in _one_line(e)


def test_shape_disagreements(tmp_path, pt_random):
    for key, value, expect in (("num_virtual_tokens", 9, "num_virtual_tokens=9"),
                               ("token_dim", 64, "token_dim=64"),
                               ("num_transformer_submodules", 2, "num_transformer_submodules=2")):
        d = tmp_path / key
        shutil.copytree(pt_random[0], d)
        cfg = json.loads((d / "adapter_config.json").read_text())
        cfg[key] = value
        (d / "adapter_config.json").write_text(json.dumps(cfg))
        with pytest.raises(ShapeMismatchError) as e:
            load_prompt(d)
        assert expect in _one_line(e)


def test_wrong_ndim_and_dtype(tmp_path):
    np.save(tmp_path / "three.npy", np.zeros((1, 4, 8), dtype=np.float32))
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "three.npy")
    assert "(1, 4, 8)" in _one_line(e) and "2-D" in str(e.value)
    np.save(tmp_path / "vec.npy", np.zeros(8, dtype=np.float32))
    with pytest.raises(InputFileError):
        load_prompt(tmp_path / "vec.npy")
    np.save(tmp_path / "ids.npy", np.arange(12).reshape(3, 4))
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "ids.npy")
    assert "int64" in _one_line(e) and "token ids" in str(e.value)
    (tmp_path / "p.txt").write_text("1 2 3")
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "p.txt")
    assert ".safetensors" in _one_line(e)
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(InputFileError) as e:
        load_prompt(tmp_path / "m.gguf")
    assert "--model" in _one_line(e)
    np.save(tmp_path / "ok.npy", np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(AnalyzerError) as e:
        load_prompt(tmp_path / "ok.npy", task=0)
    _one_line(e)


def test_check_compatible(pt_random, tmp_path):
    p = load_prompt(pt_random[0], name="x")
    check_compatible(p, SimpleNamespace(name="tiny", dim=32))
    with pytest.raises(ShapeMismatchError) as e:
        check_compatible(p, SimpleNamespace(name="smollm2-135m", dim=576))
    msg = _one_line(e)
    assert msg.startswith("Soft prompt 'x' has dim 32 but the vocabulary of smollm2-135m has dim 576 "
                          f"(adapter trained on {p.base_model})")
    np.save(tmp_path / "r.npy", np.ones((2, 7), dtype=np.float32))
    with pytest.raises(ShapeMismatchError) as e:
        check_compatible(load_prompt(tmp_path / "r.npy"), SimpleNamespace(name="m", dim=8))
    assert "dim 7" in _one_line(e) and "dim 8" in str(e.value)


def test_import_pulls_no_torch():
    code = ("import sys; import analyzer.loaders._prompt, analyzer.loaders._peft, analyzer.loaders._tensor; "
            "bad = [m for m in ('torch', 'safetensors', 'transformers', 'peft') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])

"""The vocabulary loader: HF directories (safetensors, sharded, .bin), GGUF, the cache, readable tokens,
bad input.  Unit tests use tiny synthetic models; the integration tests use the real embedded SmolLM2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from analyzer.exceptions import AnalyzerError, InputFileError, ModelNotFoundError
from analyzer.loaders import load_vocabulary
from analyzer.loaders._vocab import _read_gguf_lean, _read_gguf_reader, readable_token

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "gguf", "safetensors")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache per test, so the cold path really runs (tiny models are deterministic)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(d))
    return d


# ------------------------------------------------------------------------------------------------------
# readable tokens (pure)
# ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, scheme, expected", [
    ("Ġthe", "bytelevel", "␣the"),
    ("Ċ", "bytelevel", "↵"),
    ("ĊĊ", "bytelevel", "↵↵"),
    ("ĉ", "bytelevel", "⇥"),
    ("Ġ", "bytelevel", "␣"),
    ("the", "bytelevel", "the"),
    ("ĠcafÃ©", "bytelevel", "␣café"),        # UTF-8 c3 a9 decoded
    ("âĢ", "bytelevel", "<0xE2><0x80>"),    # an incomplete 3-byte sequence
    ("Ġâ", "bytelevel", "␣<0xE2>"),
    ("<|im_start|>", "bytelevel", "<|im_start|>"),
    ("日本", "bytelevel", "日本"),            # an added token written as plain text
    ("▁the", "sentencepiece", "␣the"),
    ("▁▁", "sentencepiece", "␣␣"),
    ("<0x0A>", "sentencepiece", "↵"),
    ("<0x09>", "sentencepiece", "⇥"),
    ("<0x20>", "sentencepiece", "␣"),
    ("<0x41>", "sentencepiece", "A"),
    ("<0xE2>", "sentencepiece", "<0xE2>"),
    ("<s>", "sentencepiece", "<s>"),
    ("##ing", "wordpiece", "##ing"),
    ("a b\tc\nd", "plain", "a␣b⇥c↵d"),
    ("\x00", "plain", "<0x00>"),
])
def test_readable_token(raw, scheme, expected):
    assert readable_token(raw, scheme) == expected


def test_readable_token_rejects_unknown_scheme():
    with pytest.raises(AnalyzerError, match="scheme"):
        readable_token("x", "bpe")


# ------------------------------------------------------------------------------------------------------
# Hugging Face directories
# ------------------------------------------------------------------------------------------------------

N_TOKENIZER = 300   # tiny_models.train_tokenizer(vocab_size=300); 8 unused rows follow
SPECIAL_IDS = {0, 1, 2, 3}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, tokenizer, dir) of a tiny untied llama saved as model.safetensors."""
    from tiny_models import make_tiny_llama

    d = tmp_path_factory.mktemp("vocab-llama")
    model, tok = make_tiny_llama(d)
    return model, tok, d


@pytest.fixture(scope="module")
def expected(tiny):
    return tiny[0].get_input_embeddings().weight.detach().numpy().copy()


def _copy_tokenizer_and_config(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, dst / name)
    return dst


def _check_tiny_vocab(v, expected, tok):
    assert v.embeddings.dtype == np.float32
    assert v.embeddings.shape == expected.shape == (N_TOKENIZER + 8, 32)
    np.testing.assert_array_equal(np.asarray(v.embeddings), expected)
    assert set(np.flatnonzero(v.excluded)) == SPECIAL_IDS | set(range(N_TOKENIZER, N_TOKENIZER + 8))
    assert v.raw_tokens[:N_TOKENIZER] == tuple(tok.convert_ids_to_tokens(list(range(N_TOKENIZER))))
    assert v.tokens[N_TOKENIZER] == v.raw_tokens[N_TOKENIZER] == f"<unused:{N_TOKENIZER}>"
    the = v.raw_tokens.index("Ġthe")
    assert v.tokens[the] == "␣the"
    assert all("Ġ" not in t for t in v.tokens)
    assert len(v.tokens) == len(v.raw_tokens) == v.size


def test_hf_safetensors(tiny, expected, fresh_cache):
    _, tok, d = tiny
    v = load_vocabulary(d)
    _check_tiny_vocab(v, expected, tok)
    assert v.tied is False
    assert v.architecture == "LlamaForCausalLM"
    assert v.source == str(d / "model.safetensors")
    assert v.name == str(d)
    assert v.n_included == N_TOKENIZER - len(SPECIAL_IDS)


def test_warm_hit_is_a_memmap_with_equal_contents(tiny, expected, fresh_cache):
    _, tok, d = tiny
    cold = load_vocabulary(d)
    warm = load_vocabulary(d)
    assert isinstance(warm.embeddings, np.memmap)
    assert not warm.embeddings.flags.writeable
    np.testing.assert_array_equal(np.asarray(warm.embeddings), expected)
    assert warm.tokens == cold.tokens and warm.raw_tokens == cold.raw_tokens
    np.testing.assert_array_equal(warm.excluded, cold.excluded)
    assert warm.key == cold.key and warm.tied == cold.tied and warm.architecture == cold.architecture
    entries = [p for p in (fresh_cache / "vocab").iterdir() if p.name != "names"]
    assert len(entries) == 1 and (entries[0] / "embeddings.npy").is_file()
    again = load_vocabulary(d, refresh=True)
    np.testing.assert_array_equal(np.asarray(again.embeddings), expected)


def _mapped_rss_kb(path) -> int:
    """Resident kB of this process's mappings of ``path`` (Linux ``/proc/self/smaps``)."""
    total, mine = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:          # a mapping's header line
            mine = line.rstrip().endswith(str(path))
        elif mine and line.startswith("Rss:"):
            total += int(head[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads /proc/self/smaps (Linux)")
def test_rows_gathers_a_copy_and_drops_the_mapped_pages(tiny, expected, fresh_cache):
    _, _, d = tiny
    load_vocabulary(d)
    v = load_vocabulary(d)                       # the warm hit: a read-only memory-map of the cache file
    path = Path(v.embeddings.filename)
    assert float(np.asarray(v.embeddings).sum()) == pytest.approx(float(expected.sum()), rel=1e-5)
    assert _mapped_rss_kb(path) > 0              # the whole matrix was just read
    ids = np.array([[3, 0], [7, 3]])
    got = v.rows(ids)
    assert got.dtype == np.float32 and got.shape == (2, 2, v.dim)
    np.testing.assert_array_equal(got, expected[ids])
    assert _mapped_rss_kb(path) == 0             # the gather's pages left the resident set
    got[0, 0] = 1e9                              # a copy: the vocabulary is untouched
    np.testing.assert_array_equal(np.asarray(v.embeddings)[3], expected[3])
    np.testing.assert_array_equal(load_vocabulary(d).rows([5]), expected[[5]])


def test_hf_sharded_opens_only_the_shard_with_the_embeddings(tiny, expected, tmp_path, fresh_cache, monkeypatch):
    model, tok, d = tiny
    sd = _copy_tokenizer_and_config(d, tmp_path / "sharded")
    model.save_pretrained(sd, max_shard_size="20KB")
    index = json.loads((sd / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 2 and not (sd / "model.safetensors").exists()

    import safetensors

    opened = []
    real = safetensors.safe_open

    def spy(path, *a, **k):
        opened.append(Path(path).name)
        return real(path, *a, **k)

    monkeypatch.setattr(safetensors, "safe_open", spy)
    v = load_vocabulary(sd)
    _check_tiny_vocab(v, expected, tok)
    assert opened == [index["weight_map"]["model.embed_tokens.weight"]]
    assert Path(v.source).name == opened[0]
    assert v.tied is False  # lm_head.weight is in the index


def test_hf_pytorch_bin(tiny, expected, tmp_path, fresh_cache):
    import torch

    model, tok, d = tiny
    bd = _copy_tokenizer_and_config(d, tmp_path / "bin")
    torch.save(model.state_dict(), bd / "pytorch_model.bin")
    v = load_vocabulary(bd)
    _check_tiny_vocab(v, expected, tok)
    assert v.source == str(bd / "pytorch_model.bin")


def test_hf_keys_without_the_base_model_prefix(tiny, expected, tmp_path, fresh_cache):
    """A checkpoint saved from the base model (``embed_tokens.weight``) with an LM-head config."""
    from safetensors.torch import save_file

    model, tok, d = tiny
    pd = _copy_tokenizer_and_config(d, tmp_path / "noprefix")
    sd = {k.removeprefix("model."): v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(sd, str(pd / "model.safetensors"))
    v = load_vocabulary(pd)
    np.testing.assert_array_equal(np.asarray(v.embeddings), expected)
    assert v.tied is True  # no separate lm_head tensor


def test_hf_tied_config(tmp_path, fresh_cache):
    from tiny_models import make_tiny_llama

    model, tok = make_tiny_llama(tmp_path / "tied", tie=True, hidden=16, layers=1)
    v = load_vocabulary(tmp_path / "tied")
    assert v.tied is True
    np.testing.assert_array_equal(np.asarray(v.embeddings), model.get_input_embeddings().weight.detach().numpy())


def test_hf_half_precision_is_converted_to_float32(tiny, tmp_path, fresh_cache):
    import torch
    from safetensors.torch import save_file

    model, tok, d = tiny
    hd = _copy_tokenizer_and_config(d, tmp_path / "bf16")
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()},
              str(hd / "model.safetensors"))
    v = load_vocabulary(hd)
    want = model.get_input_embeddings().weight.detach().to(torch.bfloat16).float().numpy()
    assert v.embeddings.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(v.embeddings), want)


def test_hf_t5_shared_embeddings(tiny_t5_dir, fresh_cache):
    """An encoder-decoder: the input embeddings are ``shared.weight`` (also the encoder/decoder embed_tokens)."""
    from transformers import T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(tiny_t5_dir)
    v = load_vocabulary(tiny_t5_dir)
    np.testing.assert_array_equal(np.asarray(v.embeddings), model.get_input_embeddings().weight.detach().numpy())
    assert v.architecture == "T5ForConditionalGeneration"
    assert v.tied is bool(model.config.tie_word_embeddings)
    assert v.tokens[v.raw_tokens.index("Ġthe")] == "␣the"


def test_damaged_cache_entry_is_rebuilt(tiny, expected, fresh_cache):
    d = tiny[2]
    v = load_vocabulary(d)
    entry = fresh_cache / "vocab" / v.key
    (entry / "vocab.json").write_text('{"format": 1}')
    again = load_vocabulary(d)
    np.testing.assert_array_equal(np.asarray(again.embeddings), expected)
    (entry / "embeddings.npy").write_bytes(b"garbage")
    again = load_vocabulary(d)
    np.testing.assert_array_equal(np.asarray(again.embeddings), expected)


# ------------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------------

def test_missing_path(tmp_path, fresh_cache):
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_vocabulary(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_vocabulary(tmp_path / "nope.gguf")


def test_empty_weights_file(tiny, tmp_path, fresh_cache):
    ed = _copy_tokenizer_and_config(tiny[2], tmp_path / "empty")
    (ed / "model.safetensors").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        load_vocabulary(ed)
    assert not (fresh_cache / "vocab").exists() or not any((fresh_cache / "vocab").iterdir())


def test_corrupt_safetensors(tiny, tmp_path, fresh_cache):
    cd = _copy_tokenizer_and_config(tiny[2], tmp_path / "corrupt")
    (cd / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all" * 4)
    with pytest.raises(InputFileError, match="corrupt"):
        load_vocabulary(cd)


def test_truncated_safetensors(tiny, tmp_path, fresh_cache):
    cd = _copy_tokenizer_and_config(tiny[2], tmp_path / "truncated")
    data = (tiny[2] / "model.safetensors").read_bytes()
    (cd / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError):
        load_vocabulary(cd)


def test_corrupt_bin(tiny, tmp_path, fresh_cache):
    cd = _copy_tokenizer_and_config(tiny[2], tmp_path / "corrupt-bin")
    (cd / "pytorch_model.bin").write_bytes(b"PK\x03\x04 this is not a zip archive" * 10)
    with pytest.raises(InputFileError, match="corrupt"):
        load_vocabulary(cd)


def test_directory_without_weights(tiny, tmp_path, fresh_cache):
    nd = _copy_tokenizer_and_config(tiny[2], tmp_path / "noweights")
    with pytest.raises(InputFileError, match="neither"):
        load_vocabulary(nd)


def test_directory_without_config_or_gguf(tmp_path, fresh_cache):
    (tmp_path / "bare").mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_vocabulary(tmp_path / "bare")


def test_no_embedding_tensor(tiny, tmp_path, fresh_cache):
    import torch
    from safetensors.torch import save_file

    nd = _copy_tokenizer_and_config(tiny[2], tmp_path / "noembed")
    save_file({"something.else": torch.zeros(3, 4)}, str(nd / "model.safetensors"))
    with pytest.raises(InputFileError, match="No input-embedding tensor.*model.embed_tokens.weight"):
        load_vocabulary(nd)


def test_no_tokenizer(tiny, tmp_path, fresh_cache):
    nd = tmp_path / "notok"
    nd.mkdir()
    shutil.copy(tiny[2] / "config.json", nd / "config.json")
    shutil.copy(tiny[2] / "model.safetensors", nd / "model.safetensors")
    with pytest.raises(InputFileError, match="tokenizer"):
        load_vocabulary(nd)


class _Evil:
    """Pickled by reference to os.makedirs: unpickling it would create the marker directory."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_malicious_pickle_is_refused_without_running(tiny, tmp_path, fresh_cache):
    import torch

    pd = _copy_tokenizer_and_config(tiny[2], tmp_path / "evil")
    marker = tmp_path / "PWNED"
    torch.save({"model.embed_tokens.weight": _Evil(str(marker))}, pd / "pytorch_model.bin")
    with pytest.raises(InputFileError, match="pickles are not executed.*safetensors"):
        load_vocabulary(pd)
    assert not marker.exists()


def test_hub_unreachable(fresh_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="hub is unreachable.*local model directory"):
        load_vocabulary("some-org/some-model-that-is-not-cached")


def test_hub_downloads_only_config_tokenizer_and_weights(tiny, expected, fresh_cache, monkeypatch):
    """A hub id, with hf_hub_download served from a local directory: only the needed files are asked for."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    _, tok, d = tiny
    asked = []

    def fake_download(repo_id, filename, **kwargs):
        assert repo_id == "org/tiny"
        asked.append(filename)
        if not (d / filename).is_file():
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(d / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    v = load_vocabulary("org/tiny")
    _check_tiny_vocab(v, expected, tok)
    assert v.name == "org/tiny"
    fetched = [f for f in asked if (d / f).is_file()]
    assert set(fetched) == {"config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}
    assert not any(f.endswith(".bin") for f in fetched)


# ------------------------------------------------------------------------------------------------------
# GGUF
# ------------------------------------------------------------------------------------------------------

GGUF_TOKENS = ["<unk>", "<s>", "</s>", "Ġthe", "Ċ", "Ġcat", "a", "<0x0A>", "<pad_unused>", "Ã©"]
GGUF_TYPES = [2, 3, 3, 1, 1, 1, 1, 6, 5, 1]   # unknown, control, control, normal..., byte, unused, normal


def _write_gguf(path: Path, emb: np.ndarray, *, qtype=None, tied=True, tokens=GGUF_TOKENS, types=GGUF_TYPES,
                tok_model="gpt2", with_tokens=True):
    import gguf
    from gguf.quants import quantize

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_embedding_length(emb.shape[1])
    if with_tokens:
        w.add_tokenizer_model(tok_model)
        w.add_token_list(tokens)
        w.add_token_types(types)
    if qtype is None or qtype == gguf.GGMLQuantizationType.F32:
        w.add_tensor("token_embd.weight", emb.astype(np.float32))
    elif qtype == gguf.GGMLQuantizationType.F16:
        w.add_tensor("token_embd.weight", emb.astype(np.float16))
    else:
        w.add_tensor("token_embd.weight", quantize(emb.astype(np.float32), qtype),
                     raw_dtype=qtype)
    w.add_tensor("output_norm.weight", np.ones(emb.shape[1], dtype=np.float32))
    if not tied:
        w.add_tensor("output.weight", np.zeros_like(emb, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def gguf_emb():
    rng = np.random.default_rng(0)
    return rng.standard_normal((12, 64)).astype(np.float32)   # 12 rows, 10 tokens: 2 unused rows


@pytest.mark.parametrize("qname", ["F32", "F16", "Q8_0", "Q4_0"])
def test_gguf_roundtrip(tmp_path, fresh_cache, gguf_emb, qname):
    import gguf
    from gguf.quants import dequantize, quantize

    qtype = getattr(gguf.GGMLQuantizationType, qname)
    p = _write_gguf(tmp_path / f"tiny-{qname}.gguf", gguf_emb, qtype=qtype)
    v = load_vocabulary(p)
    if qname == "F32":
        want = gguf_emb
    elif qname == "F16":
        want = gguf_emb.astype(np.float16).astype(np.float32)
    else:
        want = dequantize(quantize(gguf_emb, qtype), qtype)
        assert not np.array_equal(want, gguf_emb)          # really quantized
    assert v.embeddings.shape == (12, 64) and v.embeddings.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(v.embeddings), want)
    assert v.tied is True
    assert v.architecture == "llama"
    assert v.source == str(p)
    assert list(v.raw_tokens[:10]) == GGUF_TOKENS
    assert v.raw_tokens[10:] == ("<unused:10>", "<unused:11>")
    assert v.tokens[3] == "␣the" and v.tokens[4] == "↵" and v.tokens[9] == "é"
    # unknown, control and unused types and the rows beyond the tokens are excluded; byte tokens are kept
    assert set(np.flatnonzero(v.excluded)) == {0, 1, 2, 8, 10, 11}


def test_gguf_untied_and_sentencepiece(tmp_path, fresh_cache, gguf_emb):
    toks = ["<unk>", "<s>", "</s>", "▁the", "<0x0A>", "▁cat", "a", "<0x20>", "b", "c"]
    p = _write_gguf(tmp_path / "sp.gguf", gguf_emb, tied=False, tokens=toks, tok_model="llama")
    v = load_vocabulary(p)
    assert v.tied is False
    assert v.tokens[3] == "␣the" and v.tokens[4] == "↵" and v.tokens[7] == "␣"


def test_gguf_lean_parser_matches_gguf_reader(tmp_path, gguf_emb):
    import gguf

    for q in ("F32", "Q8_0"):
        p = _write_gguf(tmp_path / f"cmp-{q}.gguf", gguf_emb, qtype=getattr(gguf.GGMLQuantizationType, q),
                        tied=False)
        a, b = _read_gguf_lean(p), _read_gguf_reader(p)
        assert a.tensor_names == b.tensor_names == {"token_embd.weight", "output_norm.weight", "output.weight"}
        assert a.embd_type == b.embd_type and a.embd_dims == b.embd_dims
        np.testing.assert_array_equal(a.embd_data, b.embd_data)
        assert {k: list(v) if isinstance(v, (list, np.ndarray)) else v for k, v in a.meta.items()} == \
               {k: list(v) if isinstance(v, (list, np.ndarray)) else v for k, v in b.meta.items()}


def test_gguf_content_change_is_not_served_stale(tmp_path, fresh_cache, gguf_emb):
    p = _write_gguf(tmp_path / "m.gguf", gguf_emb)
    first = load_vocabulary(p)
    np.testing.assert_array_equal(np.asarray(first.embeddings), gguf_emb)
    _write_gguf(p, gguf_emb * 2)
    second = load_vocabulary(p)
    assert second.key != first.key
    np.testing.assert_array_equal(np.asarray(second.embeddings), gguf_emb * 2)


def test_gguf_bad_files(tmp_path, fresh_cache, gguf_emb):
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        load_vocabulary(empty)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"this is not a gguf file" * 100)
    with pytest.raises(InputFileError, match="corrupt or not a GGUF"):
        load_vocabulary(garbage)
    good = _write_gguf(tmp_path / "good.gguf", gguf_emb).read_bytes()
    for n, cut in enumerate((len(good) // 2, 100)):     # inside the embedding data; inside the header
        truncated = tmp_path / f"truncated{n}.gguf"
        truncated.write_bytes(good[:cut])
        with pytest.raises(InputFileError, match="truncated|corrupt"):
            load_vocabulary(truncated)
    noembd = tmp_path / "noembd.gguf"
    import gguf

    w = gguf.GGUFWriter(str(noembd), "llama")
    w.add_tensor("output_norm.weight", np.ones(4, dtype=np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    with pytest.raises(InputFileError, match="token_embd.weight"):
        load_vocabulary(noembd)
    notok = _write_gguf(tmp_path / "notok.gguf", gguf_emb, with_tokens=False)
    with pytest.raises(InputFileError, match="token strings"):
        load_vocabulary(notok)


def test_directory_with_a_single_gguf(tmp_path, fresh_cache, gguf_emb):
    d = tmp_path / "gdir"
    d.mkdir()
    _write_gguf(d / "model.gguf", gguf_emb)
    v = load_vocabulary(d)
    assert v.source == str(d / "model.gguf")


# ------------------------------------------------------------------------------------------------------
# a warm hit imports no heavy library
# ------------------------------------------------------------------------------------------------------

def _warm_modules(model: str, cache: Path) -> dict:
    code = textwrap.dedent(f"""
        import json, sys, time
        t = time.perf_counter()
        from analyzer.loaders import load_vocabulary
        import numpy as np
        v = load_vocabulary({model!r})
        print(json.dumps({{"heavy": [m for m in {HEAVY!r} if m in sys.modules],
                          "memmap": isinstance(v.embeddings, np.memmap), "size": v.size,
                          "seconds": time.perf_counter() - t}}))
    """)
    env = {**os.environ, "SOFTPROMPT_ANALYZER_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_warm_hit_imports_no_heavy_library(tiny, tmp_path, fresh_cache, gguf_emb):
    model, _, d = tiny
    sd = _copy_tokenizer_and_config(d, tmp_path / "sharded-warm")
    model.save_pretrained(sd, max_shard_size="20KB")
    g = _write_gguf(tmp_path / "warm.gguf", gguf_emb, qtype=None)
    for m in (str(d), str(sd), str(g)):
        load_vocabulary(m)                          # cold, in this process
        info = _warm_modules(m, fresh_cache)
        assert info["heavy"] == [], (m, info)
        assert info["memmap"] is True


# ------------------------------------------------------------------------------------------------------
# integration: the real embedded SmolLM2
# ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2_transformers_embeddings(smollm2_available):
    """What transformers dequantizes from the same GGUF (~30 s; once per module)."""
    import torch
    from transformers import AutoModelForCausalLM

    from analyzer.models import resolve_model

    path = Path(resolve_model("smollm2-135m").path)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    emb = model.get_input_embeddings().weight.detach().numpy().copy()
    tied = bool(model.config.tie_word_embeddings)
    del model
    return emb, tied


@pytest.mark.integration
def test_smollm2_gguf_matches_transformers(smollm2_available, smollm2_transformers_embeddings, fresh_cache):
    want, hf_tied = smollm2_transformers_embeddings
    v = load_vocabulary("smollm2-135m")
    assert v.name == "smollm2-135m" and v.source.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (v.size, v.dim) == (49152, 576)
    assert v.tied is True and hf_tied is True
    assert v.architecture == "llama"
    assert want.shape == v.embeddings.shape
    np.testing.assert_allclose(np.asarray(v.embeddings), want, atol=1e-6, rtol=0)


@pytest.mark.integration
def test_smollm2_tokens_and_warm_load(smollm2_available, fresh_cache):
    v = load_vocabulary("smollm2-135m")
    the = v.raw_tokens.index("Ġthe")
    assert v.tokens[the] == "␣the"
    assert v.tokens[v.raw_tokens.index("Ċ")] == "↵"
    assert v.raw_tokens[0] == "<|endoftext|>" and v.excluded[0]
    assert v.raw_tokens[1] == "<|im_start|>" and v.excluded[1] and v.excluded[2]
    assert not v.excluded[the]
    assert 10 <= int(v.excluded.sum()) <= 100          # the control tokens only
    assert all("Ġ" not in t and "Ċ" not in t for t in v.tokens)
    info = _warm_modules("smollm2-135m", fresh_cache)
    assert info["heavy"] == [] and info["memmap"] is True and info["size"] == 49152

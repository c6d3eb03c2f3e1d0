"""The vocabulary loader: a model's input-embedding matrix and its token strings, without the model.

Only the input-embedding tensor is read:

* **GGUF** (the embedded models): ``token_embd.weight`` only, dequantized with ``gguf.quants.dequantize``;
  token strings and types from the GGUF metadata; tied when the file has no ``output.weight``.
* **Hugging Face directory** (or a hub id, downloading only config, tokenizer and the weight file that holds
  the embeddings): the tensor's name comes from the architecture in ``config.json`` — the model class is
  instantiated on the meta device (no memory, no weights, ``trust_remote_code`` never enabled) and the name of
  ``get_input_embeddings().weight`` is matched against the checkpoint's keys (with or without the
  ``base_model_prefix``).  ``model.safetensors``, a sharded safetensors index (only the shard holding the
  tensor is opened), and ``pytorch_model.bin`` (``torch.load(weights_only=True)``: pickles are never executed).

The float32 matrix is cached as ``.npy`` (plus token strings, mask and metadata as JSON) under
``<cache>/vocab/<content hash of the source files>/``; the next load memory-maps it and imports neither torch,
transformers nor gguf."""

from __future__ import annotations

import json
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cache import atomic_path, atomic_write_text, cache_dir, entry_dir, file_key
from ..exceptions import AnalyzerError, InputFileError, ModelNotFoundError, os_errors
from ..types import ModelSource, Vocabulary

# Bump when the cached layout or the meaning of its contents changes: older entries are rebuilt.
# 2: rows are stored in the space the model sees (embed_scale x the checkpoint's rows; see analyzer.scale).
_CACHE_FORMAT = 2

SCHEMES = ("bytelevel", "sentencepiece", "wordpiece", "plain")

# GGUF token types (gguf.TokenType) that are excluded from neighbour results.
_GGUF_UNKNOWN, _GGUF_CONTROL, _GGUF_UNUSED = 2, 3, 5

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                    "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model",
                    "sentencepiece.bpe.model")
_SAFETENSORS, _SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
_BIN, _BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
# Only used when transformers does not know the architecture (custom code that we never execute): a tensor
# whose name ends with one of these, tried in order, and only when exactly one key matches.
_KNOWN_EMBEDDING_SUFFIXES = ("embed_tokens.weight", "tok_embeddings.weight", "word_embeddings.weight",
                             "wte.weight", "embed_in.weight", "shared.weight")


# ----------------------------------------------------------------------------------------------------------
# readable token strings (pure; no models needed)
# ----------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's ``bytes_to_unicode`` table: printable character → byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_SP_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def _escape_byte(b: int) -> str:
    return f"<0x{b:02X}>"


def _decode_bytes(data: bytes) -> str:
    """UTF-8 decode; bytes that do not form a complete sequence are shown as ``<0xE2>`` escapes."""
    text = data.decode("utf-8", errors="surrogateescape")
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return "".join(_escape_byte(ord(ch) - 0xDC00) if "\udc80" <= ch <= "\udcff" else ch for ch in text)


def _visible(text: str) -> str:
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ch < " " or ch == "\x7f" or (unicodedata.category(ch) == "Cc"):
            out.append(_escape_byte(ord(ch)) if ord(ch) < 256 else f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    return "".join(out)


def readable_token(raw: str, scheme: str = "plain") -> str:
    """A token string as a person reads it, whitespace made visible.

    ``scheme``: ``bytelevel`` (GPT-2 byte-level BPE: ``Ġthe`` → ``␣the``, ``Ċ`` → ``↵``, bytes of an incomplete
    UTF-8 sequence → ``<0xE2>``), ``sentencepiece`` (``▁the`` → ``␣the``, ``<0x0A>`` → ``↵``), ``wordpiece`` or
    ``plain`` (only whitespace made visible).  Spaces become ``␣``, newlines ``↵``, tabs ``⇥``.

    >>> readable_token("Ġthe", "bytelevel"), readable_token("▁the", "sentencepiece")
    ('␣the', '␣the')
    """
    if scheme not in SCHEMES:
        raise AnalyzerError(f"The 'scheme' of readable_token must be one of {list(SCHEMES)}. Got {scheme!r} instead.")
    if scheme == "bytelevel":
        if raw.isascii() and raw.isprintable() and " " not in raw:
            return raw                            # "!".."~" stand for themselves in the byte table
        table = _byte_decoder()
        if raw and all(ch in table for ch in raw):
            return _visible(_decode_bytes(bytes(table[ch] for ch in raw)))
        return _visible(raw)                      # an added token written as plain text
    if scheme == "sentencepiece":
        m = _SP_BYTE.match(raw)
        if m:
            b = int(m.group(1), 16)
            return _visible(chr(b)) if b < 0x80 else _escape_byte(b)
        return _visible(raw.replace("▁", " "))
    return _visible(raw)


def _guess_scheme(raw_tokens: list[str | None]) -> str:
    """Fallback when the tokenizer does not say: count the markers each scheme leaves in its strings."""
    sample = [t for t in raw_tokens if t]
    counts = {"bytelevel": sum(t.startswith("Ġ") or "Ċ" in t for t in sample),
              "sentencepiece": sum(t.startswith("▁") for t in sample),
              "wordpiece": sum(t.startswith("##") for t in sample)}
    best = max(counts, key=counts.get)
    return best if counts[best] >= max(1, len(sample) // 100) else "plain"


def _scheme_from_tokenizer_json(spec: dict) -> str | None:
    """Byte-level or SentencePiece-like, from a ``tokenizer.json``'s pre-tokenizer, decoder and model."""
    types: set[str] = set()
    replaces_metaspace = False

    def walk(node: Any) -> None:
        nonlocal replaces_metaspace
        if isinstance(node, dict):
            if isinstance(node.get("type"), str):
                types.add(node["type"])
                if node["type"] == "Replace" and "▁" in json.dumps(node, ensure_ascii=False):
                    replaces_metaspace = True
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for part in ("pre_tokenizer", "decoder", "normalizer"):
        walk(spec.get(part))
    if "ByteLevel" in types:
        return "bytelevel"
    model = spec.get("model") or {}
    if "Metaspace" in types or "ByteFallback" in types or replaces_metaspace or model.get("byte_fallback"):
        return "sentencepiece"
    if model.get("type") == "WordPiece" or "WordPiece" in types:
        return "wordpiece"
    return None


# ----------------------------------------------------------------------------------------------------------
# the public entry point
# ----------------------------------------------------------------------------------------------------------

@dataclass
class _Built:
    """What a cold load produces before it is cached."""

    embeddings: np.ndarray
    raw_tokens: list[str]
    tokens: list[str]
    excluded: np.ndarray
    tied: bool
    architecture: str | None
    scheme: str
    embed_scale: float = 1.0
    extra: dict = field(default_factory=dict)


@dataclass
class _Plan:
    """Which files a model's vocabulary is read from: their content is the cache key."""

    key_files: list[Path]
    source: Path
    build: Callable[[], _Built]


def load_vocabulary(model: str | os.PathLike | None = None, *, refresh: bool = False) -> Vocabulary:
    """Load a model's input-embedding matrix and readable token strings, without instantiating the model.

    ``model``: an embedded name (``smollm2-135m``, the default), a local Hugging Face directory, a ``.gguf``
    file, or a hub id (downloads only config, tokenizer and the weight file holding the embeddings).
    ``refresh``: rebuild the cached matrix instead of memory-mapping it.

    Returns a ``Vocabulary`` whose ``embeddings`` (float32 ``"vocab d_model"``) is a read-only memory-map of
    the cache; ``excluded`` marks special tokens and rows beyond the tokenizer.  An unreadable model file or
    folder raises InputFileError naming the path."""
    with os_errors("load the model", InputFileError):
        vocab = _load_vocabulary(model, refresh)
    # what was asked for, beside what was read: analyzer.provenance says when the one stands in for the other
    return replace(vocab, requested=None if model is None else str(model))


def _load_vocabulary(model: str | os.PathLike | None, refresh: bool) -> Vocabulary:
    from ..models import resolve_model

    src = resolve_model(model)
    if src.kind == "gguf":
        plan = _gguf_plan(Path(src.path))
    elif src.kind == "hf_dir":
        plan = _hf_plan(src, _LocalFiles(Path(src.path)))
    elif src.kind == "hub":
        plan = _hf_plan(src, _HubFiles(src.path))
    else:  # pragma: no cover - resolve_model only returns the three kinds
        raise ModelNotFoundError(f"Unknown model source kind {src.kind!r} for {src.name!r}.")

    for p in plan.key_files:
        _check_file(p)
    key = file_key(*plan.key_files)
    entry = cache_dir() / "vocab" / key          # created when written, so failed builds leave nothing
    if not refresh:
        cached = _read_cache(entry, src, plan.source, key)
        if cached is not None:
            return cached
    built = plan.build()
    try:
        _write_cache(entry, built, plan.source)
    except OSError as e:  # a read-only or full cache must not stop the analysis
        warnings.warn(f"Could not cache the vocabulary of {src.name!r} in {entry}: {e}", stacklevel=2)
    cached = _read_cache(entry, src, plan.source, key)   # the same memory-map a warm load returns
    if cached is not None:
        return cached
    built.excluded.setflags(write=False)
    return _make_vocabulary(src, plan.source, key, built.embeddings, built.tokens, built.raw_tokens,
                            built.excluded, built.tied, built.architecture, built.embed_scale,
                            built.extra.get("quantization"))


def _make_vocabulary(src: ModelSource, source: Path, key: str, embeddings, tokens, raw_tokens, excluded, tied,
                     architecture, embed_scale: float = 1.0, quantization: str | None = None) -> Vocabulary:
    if float(embed_scale) != 1.0:   # scaled rows: caches derived from them (indexes, layouts) get their own key
        key = f"{key}-x{float(embed_scale):.6g}"
    return Vocabulary(name=src.embedded or src.name, source=str(source), embeddings=embeddings,
                      tokens=tuple(tokens), raw_tokens=tuple(raw_tokens), excluded=excluded, tied=bool(tied),
                      key=key, architecture=architecture, embed_scale=float(embed_scale),
                      quantization=quantization if isinstance(quantization, str) else None)


def _check_file(p: Path) -> None:
    if not p.exists():
        raise InputFileError(f"File not found: {str(p)!r}.")
    if not p.is_file():
        raise InputFileError(f"Expected a file, got the directory {str(p)!r}.")
    if p.stat().st_size == 0:
        raise InputFileError(f"The file {str(p)!r} is empty (0 bytes); re-download or re-save it.")


# ----------------------------------------------------------------------------------------------------------
# cache
# ----------------------------------------------------------------------------------------------------------

_MATRIX, _META = "embeddings.npy", "vocab.json"


def _write_cache(entry: Path, built: _Built, source: Path) -> None:
    emb = np.ascontiguousarray(built.embeddings, dtype=np.float32)
    with atomic_path(entry / _MATRIX) as tmp, open(tmp, "wb") as f:
        np.save(f, emb)
    meta = {
        "format": _CACHE_FORMAT,
        "shape": list(emb.shape),
        "source_name": source.name,
        "tied": bool(built.tied),
        "architecture": built.architecture,
        "scheme": built.scheme,
        "embed_scale": float(built.embed_scale),
        "excluded": np.flatnonzero(built.excluded).tolist(),
        "raw_tokens": list(built.raw_tokens),
        "tokens": list(built.tokens),
        **built.extra,
    }
    # Written last: its presence means the entry is complete.
    atomic_write_text(entry / _META, json.dumps(meta, ensure_ascii=False))


def _read_cache(entry: Path, src: ModelSource, source: Path, key: str) -> Vocabulary | None:
    """The cached vocabulary, or None when the entry is missing, from an older format, or damaged."""
    try:
        meta = json.loads((entry / _META).read_text(encoding="utf-8"))
        if meta.get("format") != _CACHE_FORMAT:
            return None
        emb = np.load(entry / _MATRIX, mmap_mode="r")
        n = int(meta["shape"][0])
        if list(emb.shape) != list(meta["shape"]) or emb.dtype != np.float32 or len(meta["tokens"]) != n \
                or len(meta["raw_tokens"]) != n:
            return None
        excluded = np.zeros(n, dtype=bool)
        excluded[np.asarray(meta["excluded"], dtype=np.int64)] = True
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    excluded.setflags(write=False)
    return _make_vocabulary(src, source, key, emb, meta["tokens"], meta["raw_tokens"], excluded, meta["tied"],
                            meta.get("architecture"), float(meta.get("embed_scale", 1.0)), meta.get("quantization"))


# ----------------------------------------------------------------------------------------------------------
# GGUF
# ----------------------------------------------------------------------------------------------------------

def _gguf_plan(path: Path) -> _Plan:
    return _Plan(key_files=[path], source=path, build=lambda: _build_gguf(path))


class _GGUFFormatError(Exception):
    """The lean header parser met something it does not handle; gguf.GGUFReader then decides."""


_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_WANTED = {"general.architecture", "general.alignment", "tokenizer.ggml.model", "tokenizer.ggml.tokens",
                "tokenizer.ggml.token_type"}


@dataclass
class _GGUFHeader:
    """The few metadata values the vocabulary needs, and the input-embedding tensor's raw data."""

    meta: dict[str, Any]
    tensor_names: set[str]
    model_meta: dict[str, tuple[int, int | None, Any]] | None = None   # key -> (type, array item type, value)
    embd_type: int | None = None
    embd_dims: tuple[int, ...] = ()
    embd_data: np.ndarray | None = None


def _read_gguf_lean(path: Path) -> _GGUFHeader:
    """Parse a GGUF header with ``struct`` over a memory-map, decoding only the keys in ``_GGUF_WANTED``.

    ``gguf.GGUFReader`` builds a numpy view for every one of the ~100k token and merge strings (seconds for
    a 49k vocabulary); this walks the same layout in ~0.1 s.  Anything unexpected raises ``_GGUFFormatError``
    and the caller falls back to ``GGUFReader``."""
    import mmap
    import struct

    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import quant_shape_to_byte_shape

    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    size = len(mm)
    if mm[:4] != b"GGUF":
        raise _GGUFFormatError("GGUF magic invalid")
    (version,) = struct.unpack_from("<I", mm, 4)
    bo = "<"
    if version & 0xFFFF == 0:
        bo, (version,) = ">", struct.unpack_from(">I", mm, 4)
    if version not in (2, 3):
        raise _GGUFFormatError(f"GGUF version {version}")
    n_tensors, n_kv = struct.unpack_from(bo + "QQ", mm, 8)
    off = 24
    u32, u64 = struct.Struct(bo + "I"), struct.Struct(bo + "Q")

    def string(o: int) -> tuple[bytes, int]:
        (n,) = u64.unpack_from(mm, o)
        if o + 8 + n > size:
            raise _GGUFFormatError("string beyond the end of the file")
        return mm[o + 8:o + 8 + n], o + 8 + n

    def value(o: int, t: int, keep: bool) -> tuple[Any, int]:
        if t in _GGUF_SCALARS:
            fmt = bo + _GGUF_SCALARS[t]
            return (struct.unpack_from(fmt, mm, o)[0] if keep else None), o + struct.calcsize(fmt)
        if t == _GGUF_STRING:
            b, o = string(o)
            return (b.decode("utf-8", errors="replace") if keep else None), o
        if t == _GGUF_ARRAY:
            (it,) = u32.unpack_from(mm, o)
            (n,) = u64.unpack_from(mm, o + 4)
            o += 12
            if it in _GGUF_SCALARS:
                dt = np.dtype(bo + _GGUF_SCALARS[it])
                if o + n * dt.itemsize > size:
                    raise _GGUFFormatError("array beyond the end of the file")
                arr = np.frombuffer(mm, dtype=dt, count=n, offset=o).tolist() if keep else None
                return arr, o + n * dt.itemsize
            if it == _GGUF_STRING:
                items = []
                for _ in range(n):
                    (k,) = u64.unpack_from(mm, o)
                    if keep:
                        items.append(mm[o + 8:o + 8 + k].decode("utf-8", errors="replace"))
                    o += 8 + k
                if o > size:
                    raise _GGUFFormatError("array beyond the end of the file")
                return (items if keep else None), o
            raise _GGUFFormatError(f"array of type {it}")
        raise _GGUFFormatError(f"value type {t}")

    meta: dict[str, Any] = {}
    model_meta: dict[str, tuple[int, int | None, Any]] = {}   # what transformers builds the config from
    for _ in range(n_kv):
        kb, off = string(off)
        (t,) = u32.unpack_from(mm, off)
        key = kb.decode("utf-8", errors="replace")
        item = u32.unpack_from(mm, off + 4)[0] if t == _GGUF_ARRAY else None
        keep_model = not key.startswith("tokenizer.")
        v, off = value(off + 4, t, key in _GGUF_WANTED or keep_model)
        if key in _GGUF_WANTED:
            meta[key] = v
        if keep_model:
            model_meta[key] = (t, item, v)
    names, embd = set(), None
    for _ in range(n_tensors):
        nb, off = string(off)
        (nd,) = u32.unpack_from(mm, off)
        dims = struct.unpack_from(bo + "Q" * nd, mm, off + 4)
        ttype, toff = struct.unpack_from(bo + "IQ", mm, off + 4 + 8 * nd)
        off += 4 + 8 * nd + 12
        name = nb.decode("utf-8", errors="replace")
        names.add(name)
        if name == "token_embd.weight":
            embd = (tuple(int(d) for d in dims), int(ttype), int(toff))
    header = _GGUFHeader(meta=meta, tensor_names=names, model_meta=model_meta)
    if embd is None:
        return header
    align = int(meta.get("general.alignment") or 32)
    data_start = off + (-off % align)
    dims, ttype, toff = embd
    qtype = GGMLQuantizationType(ttype)
    block, type_size = GGML_QUANT_SIZES[qtype]
    n_elems = int(np.prod(dims))
    n_bytes = n_elems * type_size // block
    start = data_start + toff
    if start + n_bytes > size:
        raise InputFileError(f"The GGUF file {str(path)!r} is truncated: 'token_embd.weight' ends at byte "
                             f"{start + n_bytes} but the file has {size} bytes.")
    np_dims = tuple(reversed(dims))
    plain = {GGMLQuantizationType.F32: np.float32, GGMLQuantizationType.F16: np.float16,
             GGMLQuantizationType.F64: np.float64}
    if qtype in plain:
        data = np.frombuffer(mm, dtype=np.dtype(plain[qtype]).newbyteorder(bo), count=n_elems,
                             offset=start).reshape(np_dims)
    else:
        data = np.frombuffer(mm, dtype=np.uint8, count=n_bytes, offset=start).reshape(
            quant_shape_to_byte_shape(np_dims, qtype))
    header.embd_type, header.embd_dims, header.embd_data = ttype, dims, data
    return header


def _read_gguf_reader(path: Path) -> _GGUFHeader:
    """The same, through ``gguf.GGUFReader`` (slower; the reference)."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path), "r")
    except Exception as e:  # gguf raises ValueError, struct.error, IndexError... on a damaged file
        raise InputFileError(f"The GGUF file {str(path)!r} is corrupt or not a GGUF file "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}).") from e
    meta = {}
    for key in _GGUF_WANTED:
        f = reader.get_field(key)
        if f is not None:
            meta[key] = f.contents()
    header = _GGUFHeader(meta=meta, tensor_names={t.name for t in reader.tensors})
    for t in reader.tensors:
        if t.name == "token_embd.weight":
            header.embd_type = int(t.tensor_type)
            header.embd_dims = tuple(int(d) for d in t.shape)
            header.embd_data = t.data
    return header


def _build_gguf(path: Path) -> _Built:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    try:
        header = _read_gguf_lean(path)
    except InputFileError:
        raise
    except Exception:  # noqa: BLE001 - whatever the lean parser does not handle: the reference reader decides
        header = _read_gguf_reader(path)
    if header.embd_data is None:
        raise InputFileError(f"The GGUF file {str(path)!r} has no 'token_embd.weight' tensor (the input "
                             f"embeddings); it holds {len(header.tensor_names)} other tensors.")
    qtype = GGMLQuantizationType(header.embd_type)
    try:
        emb = dequantize(header.embd_data, qtype)
    except (NotImplementedError, ValueError) as e:
        raise InputFileError(f"Cannot dequantize 'token_embd.weight' of type {qtype.name} in "
                             f"{str(path)!r}: {e}") from e
    d = int(header.embd_dims[0])
    emb = np.ascontiguousarray(np.asarray(emb, dtype=np.float32).reshape(-1, d))
    if np.may_share_memory(emb, header.embd_data):   # F32 comes back as a view of the file's memory-map
        emb = emb.copy()
    n = emb.shape[0]

    raw_list = header.meta.get("tokenizer.ggml.tokens")
    if not raw_list:
        raise InputFileError(f"The GGUF file {str(path)!r} has no token strings (tokenizer.ggml.tokens).")
    types = np.asarray(header.meta.get("tokenizer.ggml.token_type") or [1] * len(raw_list), dtype=np.int64)
    tok_model = header.meta.get("tokenizer.ggml.model")
    arch = header.meta.get("general.architecture")

    excluded = np.zeros(n, dtype=bool)
    m = min(n, len(raw_list), len(types))
    excluded[:m] = np.isin(types[:m], (_GGUF_UNKNOWN, _GGUF_CONTROL, _GGUF_UNUSED))
    raw: list[str | None] = list(raw_list[:n]) + [None] * max(0, n - len(raw_list))
    scheme = {"gpt2": "bytelevel", "llama": "sentencepiece", "t5": "sentencepiece",
              "bert": "wordpiece"}.get(str(tok_model)) or _guess_scheme(raw)
    raw_tokens, tokens = _finish_tokens(raw, excluded, scheme)
    scale, how = _gguf_scale(path, header, n)
    if scale != 1.0:
        emb *= np.float32(scale)
    return _Built(embeddings=emb, raw_tokens=raw_tokens, tokens=tokens, excluded=excluded,
                  tied="output.weight" not in header.tensor_names, architecture=str(arch) if arch else None,
                  scheme=scheme, embed_scale=scale,
                  extra={"quantization": qtype.name, "tokenizer_model": tok_model, "embed_scale_source": how})


def _gguf_scale(path: Path, header: _GGUFHeader, n_rows: int) -> tuple[float, str]:
    """The model's input-embedding scale (see ``analyzer.scale``) and where it came from."""
    from ..scale import gguf_embed_scale

    try:
        return gguf_embed_scale(path, header.model_meta, vocab_size=n_rows), "transformers config"
    except Exception as e:  # noqa: BLE001 - an architecture transformers cannot build: rows are taken as they are
        warnings.warn(f"Could not find the input-embedding scale of {str(path)!r} from its transformers config "
                      f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); assuming 1.0.",
                      stacklevel=3)
        return 1.0, f"assumed 1.0 ({type(e).__name__})"


def _finish_tokens(raw: list[str | None], excluded: np.ndarray, scheme: str) -> tuple[list[str], list[str]]:
    """Placeholders for rows without a token (excluded too), and the readable strings."""
    raw_tokens, tokens = [], []
    for i, r in enumerate(raw):
        if r is None:
            excluded[i] = True
            r = f"<unused:{i}>"
            raw_tokens.append(r)
            tokens.append(r)
        else:
            raw_tokens.append(r)
            tokens.append(readable_token(r, scheme))
    return raw_tokens, tokens


# ----------------------------------------------------------------------------------------------------------
# Hugging Face directories and hub ids
# ----------------------------------------------------------------------------------------------------------

class _LocalFiles:
    def __init__(self, root: Path):
        self.root = root
        self.label = str(root)

    def get(self, name: str, *, first: bool = False) -> Path | None:
        p = self.root / name
        return p if p.is_file() else None

    def ggufs(self) -> list[Path]:
        return sorted(self.root.glob("*.gguf"))


class _HubFiles:
    """Single files from the hub (or its local cache), one ``hf_hub_download`` each."""

    def __init__(self, repo: str):
        self.repo = repo
        self.label = f"hub:{repo}"
        self.offline = False

    def _unreachable(self, e: Exception) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"Cannot fetch {self.repo!r}: the Hugging Face hub is unreachable and the model is not in the local "
            f"hub cache ({type(e).__name__}). Pass a local model directory or a .gguf file instead.")

    def get(self, name: str, *, first: bool = False) -> Path | None:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                            RepositoryNotFoundError, RevisionNotFoundError)

        try:
            return Path(hf_hub_download(self.repo, name, local_files_only=self.offline))
        except LocalEntryNotFoundError as e:  # offline, or not cached while the hub cannot be reached
            if first:
                raise self._unreachable(e) from e
            self.offline = True
            return None
        except (RepositoryNotFoundError, RevisionNotFoundError) as e:
            raise ModelNotFoundError(f"No model {self.repo!r} on the Hugging Face hub (or it is gated/private). "
                                     f"Pass a local model directory or a .gguf file.") from e
        except EntryNotFoundError:
            return None
        except (HfHubHTTPError, OSError) as e:
            if first:
                raise self._unreachable(e) from e
            self.offline = True
            return None

    def ggufs(self) -> list[Path]:
        return []


def _hf_plan(src: ModelSource, files) -> _Plan:
    config = files.get("config.json", first=True)
    if config is None:
        raise ModelNotFoundError(f"{files.label!r} has no config.json; expected a Hugging Face model directory.")
    root = config.parent
    tokenizer_files = [p for p in (files.get(n) for n in _TOKENIZER_FILES) if p is not None]

    if (index := files.get(_SAFETENSORS_INDEX)) is not None or (index := files.get(_BIN_INDEX)) is not None:
        weight_map = _read_index(index)
        names = _embedding_names(config)
        key = _match_key(names, weight_map.keys(), index)
        shard = files.get(weight_map[key])
        if shard is None:
            raise InputFileError(f"The shard {weight_map[key]!r} that holds {key!r} (named in {str(index)!r}) "
                                 f"is missing from {files.label!r}.")
        fmt = "safetensors" if index.name == _SAFETENSORS_INDEX else "bin"
        weights, key_files = shard, [config, *tokenizer_files, index, shard]
        all_keys: list[str] | None = list(weight_map)
    elif (weights := files.get(_SAFETENSORS)) is not None:
        fmt, key_files, all_keys = "safetensors", [config, *tokenizer_files, weights], None
    elif (weights := files.get(_BIN)) is not None:
        fmt, key_files, all_keys = "bin", [config, *tokenizer_files, weights], None
    else:
        ggufs = files.ggufs()
        if len(ggufs) == 1:
            return _gguf_plan(ggufs[0])
        raise InputFileError(
            f"{files.label!r} has neither {_SAFETENSORS}, a sharded {_SAFETENSORS_INDEX}, {_BIN} nor a single "
            f".gguf file" + (f" (it has {len(ggufs)} .gguf files: name one)." if ggufs else "."))

    def build() -> _Built:
        return _build_hf(config, root, weights, fmt, tokenizer_files, all_keys)

    return _Plan(key_files=key_files, source=weights, build=build)


def _read_index(index: Path) -> dict[str, str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError("empty weight_map")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputFileError(f"The shard index {str(index)!r} is corrupt: expected JSON with a 'weight_map' "
                             f"({type(e).__name__}: {e}).") from e
    return weight_map


def _embedding_names(config: Path) -> dict:
    """From the architecture in ``config.json``: the parameter name(s) of the input embeddings, of the output
    embeddings, the base-model prefix, and the config's tie flag.  Memoised by the config's content so a warm
    load of a sharded checkpoint never imports transformers."""
    memo = entry_dir("vocab", "names") / f"{file_key(config)}-{_CACHE_FORMAT}.json"
    try:
        return json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    names = _embedding_names_uncached(config)
    try:
        atomic_write_text(memo, json.dumps(names))
    except OSError:
        pass
    return names


def _embedding_names_uncached(config: Path) -> dict:
    import torch
    import transformers
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(str(config.parent), trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raw = _read_json(config)
        if isinstance(raw, dict) and raw.get("architectures"):
            # An architecture transformers does not know (custom code, never executed): fall back to names.
            return {"input": [], "output": [], "prefix": "", "tie": bool(raw.get("tie_word_embeddings", False)),
                    "architecture": raw["architectures"][0], "fallback": True}
        raise InputFileError(f"The config {str(config)!r} cannot be read by transformers "
                             f"{transformers.__version__}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                             ) from e

    arch = (getattr(cfg, "architectures", None) or [None])[0]
    candidates = []
    if arch and isinstance(getattr(transformers, arch, None), type):
        candidates.append(getattr(transformers, arch))
    candidates += [transformers.AutoModelForCausalLM, transformers.AutoModelForSeq2SeqLM, transformers.AutoModel]
    model, errors = None, []
    for cls in candidates:
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = (cls.from_config(cfg, trust_remote_code=False) if hasattr(cls, "from_config")
                         and cls.__name__.startswith("Auto") else cls(cfg))
            break
        except Exception as e:  # noqa: BLE001 - an unsupported (class, config) pair: try the next class
            errors.append(f"{getattr(cls, '__name__', cls)}: {e}")
    if model is None:
        return {"input": [], "output": [], "prefix": "", "architecture": arch or cfg.model_type,
                "tie": _tie_flag(cfg), "fallback": True}
    try:
        emb = model.get_input_embeddings()
        out = model.get_output_embeddings()
    except (NotImplementedError, AttributeError):
        emb = out = None
    modules = list(model.named_modules(remove_duplicate=False))
    inputs = [f"{n}.weight" for n, m in modules if emb is not None and m is emb and n]
    outputs = [f"{n}.weight" for n, m in modules if out is not None and m is out and n and f"{n}.weight" not in inputs]
    if not inputs and emb is not None:  # an embedding whose parameter is not called "weight"
        inputs = [n for n, p in model.named_parameters(remove_duplicate=False) if p is getattr(emb, "weight", None)]
    from ..scale import input_embed_scale

    return {"input": inputs, "output": outputs, "prefix": getattr(model, "base_model_prefix", "") or "",
            "tie": _tie_flag(cfg), "architecture": arch or type(model).__name__, "fallback": not inputs,
            "embed_scale": input_embed_scale(emb) if emb is not None else 1.0}


def _tie_flag(cfg) -> bool:
    try:
        text = cfg.get_text_config()
    except Exception:  # noqa: BLE001
        text = cfg
    return bool(getattr(text, "tie_word_embeddings", getattr(cfg, "tie_word_embeddings", False)))


def _read_json(p: Path):
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) + 1:] if prefix and name.startswith(prefix + ".") else name


def _find_key(wanted: list[str], keys, prefix: str) -> str | None:
    """The checkpoint key for one of ``wanted`` (model parameter names), allowing for the base-model prefix
    being present on one side and not the other."""
    keys = list(keys)
    keyset = set(keys)
    for w in wanted:
        if w in keyset:
            return w
    stripped = {}
    for k in keys:
        stripped.setdefault(_strip(k, prefix), k)
    for w in wanted:
        k = stripped.get(_strip(w, prefix))
        if k is not None:
            return k
    return None


def _match_key(names: dict, keys, where: Path) -> str:
    keys = list(keys)
    key = _find_key(names["input"], keys, names["prefix"])
    if key is None and (names.get("fallback") or not names["input"]):
        for suffix in _KNOWN_EMBEDDING_SUFFIXES:
            hits = [k for k in keys if k == suffix or k.endswith("." + suffix)]
            if len(hits) == 1:
                key = hits[0]
                break
    if key is None:
        wanted = ", ".join(names["input"]) or "(none: the architecture has no input embeddings)"
        shown = ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")
        raise InputFileError(f"No input-embedding tensor found in {str(where)!r} for architecture "
                             f"{names.get('architecture')!r}: expected {wanted}; the file has {shown or 'no tensors'}.")
    return key


def _load_tensor(weights: Path, fmt: str, names: dict, all_keys: list[str] | None):
    """Read only the input-embedding tensor: ``(float32 array, key, all checkpoint keys)``."""
    import torch

    if fmt == "safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(weights), framework="pt") as f:
                keys = list(f.keys())
                key = _match_key(names, keys, weights)
                tensor = f.get_tensor(key)
        except (SafetensorError, OSError, RuntimeError) as e:
            raise InputFileError(f"The safetensors file {str(weights)!r} is corrupt or truncated: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    else:
        from ._tensor import torch_load_safe

        sd = torch_load_safe(weights, mmap=True, hint="pickles are not executed; re-save the checkpoint as "
                                                       "safetensors (save_pretrained(..., safe_serialization=True))")
        if not isinstance(sd, dict) or not all(isinstance(k, str) for k in sd):
            raise InputFileError(f"{str(weights)!r} does not hold a state dict (a mapping of names to tensors).")
        keys = list(sd)
        key = _match_key(names, keys, weights)
        tensor = sd[key]
        if not isinstance(tensor, torch.Tensor):
            raise InputFileError(f"{key!r} in {str(weights)!r} is a {type(tensor).__name__}, not a tensor.")
    if tensor.ndim != 2:
        raise InputFileError(f"The input embeddings {key!r} in {str(weights)!r} have shape {tuple(tensor.shape)}; "
                             f"expected 2 dimensions (vocab, d_model).")
    emb = tensor.detach().to(torch.float32).contiguous().numpy().copy()
    return emb, key, (all_keys if all_keys is not None else keys)


def _build_hf(config: Path, root: Path, weights: Path, fmt: str, tokenizer_files: list[Path],
              all_keys: list[str] | None) -> _Built:
    names = _embedding_names(config)
    emb, key, keys = _load_tensor(weights, fmt, names, all_keys)
    has_output = _find_key(names["output"], [k for k in keys if k != key], names["prefix"]) is not None
    tied = bool(names["tie"]) or (bool(names["output"]) and not has_output)
    raw, special, scheme = _hf_tokens(root, emb.shape[0], tokenizer_files)
    excluded = np.zeros(emb.shape[0], dtype=bool)
    excluded[[i for i in special if 0 <= i < emb.shape[0]]] = True
    raw_tokens, tokens = _finish_tokens(raw, excluded, scheme)
    scale = float(names.get("embed_scale", 1.0))
    if scale != 1.0:
        emb = np.asarray(emb, dtype=np.float32) * np.float32(scale)
    return _Built(embeddings=emb, raw_tokens=raw_tokens, tokens=tokens, excluded=excluded, tied=tied,
                  architecture=names.get("architecture"), scheme=scheme, embed_scale=scale,
                  extra={"tensor": key})


def _hf_tokens(root: Path, n_rows: int, tokenizer_files: list[Path]) -> tuple[list[str | None], set[int], str]:
    """Token strings by id (None for rows the tokenizer does not cover), special ids, and the scheme."""
    if not tokenizer_files:
        raise InputFileError(f"{str(root)!r} has no tokenizer files (tokenizer.json, tokenizer.model, vocab.json "
                             f"...); token strings are needed to read the vocabulary.")
    from transformers import AutoTokenizer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(str(root), trust_remote_code=False)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a broken tokenizer
        raise InputFileError(f"The tokenizer in {str(root)!r} cannot be loaded: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    raw: list[str | None] = [None] * n_rows
    for t, i in tok.get_vocab().items():
        if 0 <= i < n_rows:
            raw[i] = t
    special = set(int(i) for i in (tok.all_special_ids or []) if i is not None)
    special |= {int(i) for i, a in (getattr(tok, "added_tokens_decoder", None) or {}).items()
                if getattr(a, "special", False)}

    scheme = None
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        try:
            scheme = _scheme_from_tokenizer_json(json.loads(backend.to_str()))
        except (ValueError, AttributeError):
            scheme = None
    if scheme is None and (root / "tokenizer.json").is_file():
        spec = _read_json(root / "tokenizer.json")
        scheme = _scheme_from_tokenizer_json(spec) if isinstance(spec, dict) else None
    if scheme is None and any(p.suffix == ".model" for p in tokenizer_files):
        scheme = "sentencepiece"
    return raw, special, scheme or _guess_scheme(raw)

"""GGUF files (the embedded models): ``token_embd.weight`` only, dequantized with ``gguf.quants.dequantize``;
token strings and types from the GGUF metadata; tied when the file has no ``output.weight``.

The header is parsed by a lean ``struct`` reader over a memory-map (``_read_gguf_lean``), with
``gguf.GGUFReader`` as the reference and the fallback (``_read_gguf_reader``)."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import InputFileError
from ._tokens import _finish_tokens, _guess_scheme
from ._vocab_cache import _Built, _Plan

# GGUF token types (gguf.TokenType) that are excluded from neighbour results.
_GGUF_UNKNOWN, _GGUF_CONTROL, _GGUF_UNUSED = 2, 3, 5


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


@contextmanager
def one_parse_per_gguf():
    """Within this block, ``gguf.GGUFReader`` parses each file once and hands the same reader to every caller.

    transformers opens a GGUF three times to build one model (tokenizer, config, weights), and each open parses
    every metadata field, the ~262k token strings included (~15 s each for Gemma 3's vocabulary on this machine's
    cores).  The reader only memory-maps the file and is never written to by transformers, so sharing it is safe;
    the cache lives and dies with the block.  ``gguf.GGUFReader`` is the name transformers imports at call time."""
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def shared(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original

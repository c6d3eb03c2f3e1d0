"""The vocabulary loader: a model's input-embedding matrix and its token strings, without the model.

Only the input-embedding tensor is read: from a **GGUF** file (the embedded models; :mod:`._gguf`) or a
**Hugging Face directory** or hub id (:mod:`._hf`).  The float32 matrix is cached under
``<cache>/vocab/<content hash of the source files>/`` (:mod:`._vocab_cache`); the next load memory-maps it and
imports neither torch, transformers nor gguf.  Token strings are made readable by :mod:`._tokens`."""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

from ..cache import cache_dir, file_key
from ..exceptions import InputFileError, ModelNotFoundError, os_errors
from ..types import Vocabulary
from ._gguf import _gguf_plan, _read_gguf_lean, _read_gguf_reader
from ._hf import _HubFiles, _LocalFiles, _hf_plan
from ._tokens import readable_token
from ._vocab_cache import _make_vocabulary, _read_cache, _write_cache

# imported from here by analyzer.provenance and the tests
__all__ = ["load_vocabulary", "readable_token", "_read_gguf_lean", "_read_gguf_reader"]


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


def _check_file(p: Path) -> None:
    if not p.exists():
        raise InputFileError(f"File not found: {str(p)!r}.")
    if not p.is_file():
        raise InputFileError(f"Expected a file, got the directory {str(p)!r}.")
    if p.stat().st_size == 0:
        raise InputFileError(f"The file {str(p)!r} is empty (0 bytes); re-download or re-save it.")

"""The cache of a vocabulary: what a cold load builds, which files key it, and its on-disk entry.

The float32 matrix is cached as ``.npy`` (plus token strings, mask and metadata as JSON) under
``<cache>/vocab/<content hash of the source files>/``; the next load memory-maps it and imports neither torch,
transformers nor gguf.  ``_Built`` is what the GGUF and Hugging Face readers hand over, ``_Plan`` which files a
model's vocabulary is read from (their content is the cache key)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..cache import atomic_path, atomic_write_text
from ..types import ModelSource, Vocabulary

# Bump when the cached layout or the meaning of its contents changes: older entries are rebuilt.
# 2: rows are stored in the space the model sees (embed_scale x the checkpoint's rows; see analyzer.scale).
_CACHE_FORMAT = 2


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


def _make_vocabulary(src: ModelSource, source: Path, key: str, embeddings, tokens, raw_tokens, excluded, tied,
                     architecture, embed_scale: float = 1.0, quantization: str | None = None) -> Vocabulary:
    if float(embed_scale) != 1.0:   # scaled rows: caches derived from them (indexes, layouts) get their own key
        key = f"{key}-x{float(embed_scale):.6g}"
    return Vocabulary(name=src.embedded or src.name, source=str(source), embeddings=embeddings,
                      tokens=tuple(tokens), raw_tokens=tuple(raw_tokens), excluded=excluded, tied=bool(tied),
                      key=key, architecture=architecture, embed_scale=float(embed_scale),
                      quantization=quantization if isinstance(quantization, str) else None)


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

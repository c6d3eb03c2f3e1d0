"""The data objects that flow through the toolkit.  All are frozen dataclasses; arrays are float32 and
their shapes are written in the docstrings (``"vocab d_model"``, ``"n_virtual d_model"``).

Importing this module pulls numpy only."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

import numpy as np


def _release_pages(arr) -> None:
    """Drop a read-only memory-map's pages from this process's resident set (they stay in the page cache and
    come back on the next access): once a pass has its own copy, the mapped matrix need not count twice.  Only
    for a read-only array (a writable private map would lose its changes)."""
    import mmap

    if getattr(getattr(arr, "flags", None), "writeable", True):
        return
    m = getattr(arr, "_mmap", None)
    while m is None and getattr(arr, "base", None) is not None:
        arr = arr.base
        m = arr if isinstance(arr, mmap.mmap) else getattr(arr, "_mmap", None)
    if isinstance(m, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        try:
            m.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The frozen model's input-embedding matrix and its token strings.

    name:        the model name the user gave (``smollm2-135m``, a directory, a ``.gguf`` path).
    source:      the file the matrix was read from.
    embeddings:  float32 ``"vocab d_model"`` (often a read-only memory-map of the cache), in the space the model
                 sees: the checkpoint's rows times ``embed_scale``, as the embedding module outputs them.
    tokens:      readable token strings, one per row (spaces shown as ``␣``, newlines as ``↵``).
    raw_tokens:  the tokenizer's own strings (``Ġthe``, ``▁the``), one per row.
    excluded:    bool ``"vocab"``: special tokens and unused/padding rows (rows beyond the tokenizer).
    tied:        whether the model ties its input and output embeddings.
    key:         content hash of the source file(s); the cache key of everything derived from it.
    architecture: the model architecture (``llama``, ``LlamaForCausalLM``...) when known.
    embed_scale: the factor the model's token-embedding module applies to its weight rows (``sqrt(d)`` for the
                 Gemma family, 1.0 for most models); ``embeddings`` already includes it (see ``analyzer.scale``).
    requested:   the name ``load_vocabulary`` was given (an adapter's ``base_model_name_or_path``, ``--model``),
                 None for the default; :func:`analyzer.provenance.model_provenance` compares it with what was read.
    quantization: the storage type of the embedding rows when read from a GGUF (``Q8_0``...), else None.
    """

    name: str
    source: str
    embeddings: np.ndarray
    tokens: tuple[str, ...]
    raw_tokens: tuple[str, ...]
    excluded: np.ndarray
    tied: bool
    key: str
    architecture: str | None = None
    embed_scale: float = 1.0
    requested: str | None = None
    quantization: str | None = None

    @property
    def size(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def n_included(self) -> int:
        return int((~self.excluded).sum())

    def rows(self, ids) -> np.ndarray:
        """float32 copy of the rows ``ids`` (an int array of any shape; the result has ``ids.shape + (dim,)``).
        On a memory-mapped matrix the gather's pages are dropped from the resident set afterwards: the kernel
        reads ~64 KB around every row it faults in, so a few thousand scattered rows page in most of the matrix
        (~0.3 GB resident at 152k x 896) that no reading needs again."""
        e = self.embeddings
        out = np.asarray(e[np.asarray(ids, np.int64)], np.float32)
        _release_pages(e)
        return out

    @cached_property
    def norms(self) -> np.ndarray:
        """L2 norm of every row: read-only float32 ``"vocab"``, computed once per vocabulary and kept (every index
        and null of an analysis reads it).  Chunk by chunk, without a temporary the size of the matrix (~0.1 s
        for 152k x 1,536 once the rows are in memory)."""
        e = self.embeddings
        out = np.empty(e.shape[0], np.float32)
        for a in range(0, e.shape[0], 16384):
            x = np.asarray(e[a:a + 16384], np.float32)
            out[a:a + x.shape[0]] = np.sqrt(np.einsum("ij,ij->i", x, x))
        _release_pages(e)             # the pass paged the whole memory-map in; the readings need a few rows
        out.flags.writeable = False
        return out

    def __repr__(self) -> str:
        scale = f", embed_scale={self.embed_scale:.4g}" if self.embed_scale != 1.0 else ""
        return (f"Vocabulary(name={self.name!r}, size={self.size}, dim={self.dim}, tied={self.tied}, "
                f"excluded={int(self.excluded.sum())}{scale})")


@dataclass(frozen=True, eq=False)
class SoftPrompt:
    """One learned soft prompt.

    name:           display name (the adapter directory's name; ``<name>/encoder`` for seq2seq halves,
                    ``<name>/task<t>`` for one task of a multitask adapter).
    vectors:        float32 ``"n_virtual d_model"`` in the model's token-embedding space.
    source:         the path it was loaded from.
    kind:           ``PROMPT_TUNING``, ``P_TUNING``, ``MULTITASK_PROMPT_TUNING`` or ``TENSOR``.
    init:           ``TEXT``, ``LABELS``, ``VOCAB``, ``RANDOM``, ``SAMPLE_VOCAB`` ... when known.
    init_text:      the init text when the prompt was initialised from text.
    init_token_ids: the token ids the initialisation used, one per virtual token, when known.
    base_model:     ``base_model_name_or_path`` from the adapter config, when present.
    config:         the adapter config as read from disk (untrusted; never executed).
    task_index:     for one task of a multitask adapter, its task id (PEFT's ``task_ids``); else None.
    """

    name: str
    vectors: np.ndarray
    source: str
    kind: str
    init: str | None = None
    init_text: str | None = None
    init_token_ids: tuple[int, ...] | None = None
    base_model: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    task_index: int | None = None

    @property
    def num_virtual_tokens(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __repr__(self) -> str:
        return (f"SoftPrompt(name={self.name!r}, kind={self.kind}, num_virtual_tokens="
                f"{self.num_virtual_tokens}, dim={self.dim})")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are.  ``kind`` is ``gguf``, ``hf_dir`` or ``hub``.

    name:      the name the user gave.
    path:      the ``.gguf`` file, the local directory, or the hub id.
    embedded:  the registry name when this is an embedded model.
    """

    name: str
    kind: str
    path: str
    embedded: str | None = None


__all__ = ["Vocabulary", "SoftPrompt", "ModelSource"]

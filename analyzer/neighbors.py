"""Nearest vocabulary neighbours of virtual tokens, with FAISS.

``NeighborIndex`` follows scikit-learn: ``__init__`` stores parameters, ``fit(vocab)`` validates and builds
(learned state ends in ``_``), ``kneighbors(vectors, k)`` queries.  Cosine is an inner-product index over the
L2-normalised vocabulary; ``l2`` and ``dot`` exist for comparison.  Special tokens and unused rows are left
out of the index unless ``include_special=True``.  The built index is cached on disk beside the vocabulary
matrix (same content key), so it is built once per vocabulary.

``csls`` is the hubness-corrected similarity of Conneau et al. 2018 (cross-domain similarity local
scaling), ``2·cos(x, y) − r(y)`` with ``r(y)`` the mean cosine of token ``y`` to its ``csls_k`` nearest
other vocabulary tokens.  ``r`` comes from :func:`vocab_neighborhood` (every token's K nearest tokens,
computed once per vocabulary and cached on disk: exact for vocabularies up to ``EXACT_MAX_ROWS`` rows;
above that a bfloat16 (or, on CPUs with fast int8 products only, int8) pass with a float32 re-rank, whose
recall@K against exact search is measured on a sample; streamed, so its memory does not grow with V^2; on a
GPU when ``--device`` says so; the kernels are in :mod:`analyzer._knn`).  Inverted-file and graph indexes were measured for this all-pairs job and lose on these
embedding spaces: on Gemma 3's vocabulary an IVF search reached recall@10 0.935 only after scanning 54% of
all pairs, and FAISS HNSW (M=32) 0.80-0.91 at efSearch 64-512, while the bfloat16 pass reaches 0.99.
The CSLS index itself is an exact inner-product index over ``[ŷ, −r(y)]`` queried with ``[2x̂, 1]``, so
its scores *are* CSLS values.

Large query batches (``>= BRUTE_FORCE_MIN_QUERIES`` rows) against a flat index are answered by a chunked
torch matrix product + top-k over the same stored vectors: identical neighbours, several times faster than
FAISS's flat search on few, shared CPU cores."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np

from ._knn import (_CHUNK_BYTES, _GROUP, _LOW_PRECISION_MIN_SPEEDUP, _MAX_GROUPS, _drop_self, _group_maxima,
                   _int8_probe, _low_precision_probe, _rerank_groups, _rerank_selected, _self_knn_exact, _self_knn_rows,
                   _top_groups)
from ._device import resolve_device
from ._params import Interval, Options, check_param
from .exceptions import AnalyzerError, ShapeMismatchError
from .types import Vocabulary, _release_pages

#: the all-pairs kernels, also reachable from here (tests and notebooks import them from this module)
KERNELS = (_group_maxima, _rerank_groups, _top_groups, _rerank_selected)

METRICS = ("cosine", "l2", "dot", "csls")

#: vocabularies up to this many indexed rows get an exact all-pairs K-neighbour search; larger ones a
#: bfloat16 pass + float32 re-rank whose recall@K against exact is measured on a sample.
EXACT_MAX_ROWS = 100_000
#: the int8 pass (on CPUs whose bfloat16 products are not fast but whose int8 ones are: VNNI) is used from this
#: many indexed rows; below it the float32 pass takes a few seconds at most and needs no recall check
INT8_MIN_ROWS = 20_000
#: query batches at least this large go through a chunked torch matmul instead of FAISS's flat search.
BRUTE_FORCE_MIN_QUERIES = 64
_MEMO_MAX_QUERIES = 256      # answers to batches up to this size are kept (eight of them) by NeighborIndex


def _unit_rows_of(emb, rows: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """``normalize_rows(emb[rows])`` built in one float32 array, chunk by chunk (no second full-size copy)."""
    x = np.empty((rows.size, emb.shape[1]), np.float32)
    for a in range(0, rows.size, chunk):
        x[a:a + chunk] = normalize_rows(np.asarray(emb[rows[a:a + chunk]], dtype=np.float32))
    _release_pages(emb)
    return x


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
    csls_k : K of the CSLS radius ``r(y)`` (metric ``csls`` only).

    Learned attributes (after ``fit``): ``vocab_``, ``ids_`` (vocabulary row of each indexed item, int64),
    ``index_`` (the FAISS index), ``norms_`` (L2 norm of every vocabulary row), ``median_norm_`` (median
    norm over the indexed rows); for ``csls`` also ``neighborhood_`` (the :class:`VocabNeighborhood`) and
    ``r_`` (float32 ``"vocab"``, the CSLS radius of every row, NaN for rows not indexed).
    """

    def __init__(self, metric: str = "cosine", k: int = 10, include_special: bool = False, cache: bool = True,
                 csls_k: int = 10):
        self.metric = metric
        self.k = k
        self.include_special = include_special
        self.cache = cache
        self.csls_k = csls_k

    # -- validation ---------------------------------------------------------------------------------
    def _check_k(self, k, n: int) -> int:
        return check_param("NeighborIndex", "k", k, Interval(Integral, 1, n))

    def _check_params(self) -> None:
        check_param("NeighborIndex", "metric", self.metric, Options(*METRICS))
        if self.metric == "csls":
            check_param("NeighborIndex", "csls_k", self.csls_k, Interval(Integral, 1, None))

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
        self.norms_ = vocab.norms
        self.median_norm_ = float(np.median(self.norms_[ids]))
        if self.metric == "csls":
            csls_k = check_param("NeighborIndex", "csls_k", self.csls_k, Interval(Integral, 1, ids.size - 1))
            self.neighborhood_ = vocab_neighborhood(vocab, csls_k, include_special=self.include_special,
                                                    cache=self.cache)
            self.r_ = self.neighborhood_.r
        for attr in ("_xb_", "_xb_sq_", "_answers", "_r_indexed_"):
            self.__dict__.pop(attr, None)
        self.index_ = self._load_or_build(emb, ids)
        return self

    def _cache_path(self) -> Path:
        from .cache import entry_dir

        scope = "all" if self.include_special else "filtered"
        name = f"csls{int(self.csls_k)}" if self.metric == "csls" else self.metric
        return entry_dir("vocab", self.vocab_.key) / f"index-{name}-{scope}.faiss"

    def _load_or_build(self, emb: np.ndarray, ids: np.ndarray):
        import faiss

        path = self._cache_path() if self.cache else None
        if path is not None and path.is_file():
            try:
                index = faiss.read_index(str(path))
                if index.ntotal == ids.size and index.d == emb.shape[1] + (self.metric == "csls"):
                    return index
            except RuntimeError:
                pass  # a damaged cache entry is rebuilt below
        dim = emb.shape[1] + (self.metric == "csls")
        index = faiss.IndexFlatL2(dim) if self.metric == "l2" else faiss.IndexFlatIP(dim)
        for a in range(0, ids.size, 16384):  # chunk by chunk: the index's copy is the only full one
            index.add(self._index_rows(emb, ids[a:a + 16384]))
            _release_pages(emb)              # nor do the mapped rows already copied stay resident
        if path is not None:
            from .cache import atomic_path

            with atomic_path(path) as tmp:
                faiss.write_index(index, str(tmp))
        return index

    def _index_rows(self, emb: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The indexed vectors of vocabulary rows ``ids``: float32, normalised for cosine/csls, with the
        ``-r(y)`` column for csls."""
        rows = np.asarray(emb[ids], dtype=np.float32)
        if self.metric in ("cosine", "csls"):
            rows = normalize_rows(rows)
        if self.metric == "csls":
            rows = np.hstack([rows, -self.r_[ids][:, None]])
        return np.ascontiguousarray(rows, dtype=np.float32)

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise AnalyzerError("This NeighborIndex is not fitted yet; call fit(vocabulary) first.")

    def kneighbors(self, vectors: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(scores, token_ids)``, each ``"n k"``, best first.

        Scores are cosine similarities (cosine), inner products (dot) or Euclidean distances (l2, ascending).
        Token ids are vocabulary row ids.  The last few answers of small batches are kept: an analysis asks for a
        prompt's neighbours more than once (its report rows, then its baselines), and each search of a large
        vocabulary reads the whole matrix (~0.9 s at 152k x 1,536)."""
        self._check_fitted()
        k = self._check_k(self.k if k is None else k, int(self.ids_.size))
        q = check_vectors(vectors, self.vocab_.dim, where=f" of {self.vocab_.name}")
        memo_key = None
        if q.shape[0] <= _MEMO_MAX_QUERIES:
            import hashlib

            memo_key = (int(k), q.shape, hashlib.sha1(q.tobytes()).hexdigest())
            memo = self.__dict__.setdefault("_answers", {})
            if memo_key in memo:
                scores, ids = memo[memo_key]
                return scores.copy(), ids.copy()
        scores, ids = self._search(q, k)
        if memo_key is not None:
            try:                            # oldest out first; the dashboard's threads may share this index
                while len(memo) >= 8:
                    memo.pop(next(iter(memo)), None)
            except (StopIteration, RuntimeError):
                pass
            memo[memo_key] = (scores.copy(), ids.copy())
        return scores, ids

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.__dict__.get("_r_indexed_") is not None:        # a csls_view: CSLS over the cosine rows
            scores, pos = self._brute_search(normalize_rows(q), k, minus=self._r_indexed_)
            return scores, self.ids_[pos]
        if self.metric in ("cosine", "csls"):
            q = normalize_rows(q)
        if self.metric == "csls":
            q = np.ascontiguousarray(np.hstack([2.0 * q, np.ones((q.shape[0], 1), np.float32)]), dtype=np.float32)
        if q.shape[0] >= BRUTE_FORCE_MIN_QUERIES and self._is_flat():
            scores, pos = self._brute_search(q, k)
        else:
            scores, pos = self.index_.search(q, k)
        if self.metric == "l2":
            scores = np.sqrt(np.maximum(scores, 0.0))
        return scores.astype(np.float32), self.ids_[pos]

    @property
    def has_unit_rows(self) -> bool:
        """Whether :meth:`unit_rows` can hand out the indexed rows as unit vectors (a flat cosine or CSLS index)."""
        self._check_fitted()
        return self.metric in ("cosine", "csls") and self._is_flat()

    def unit_rows(self):
        """The indexed rows as the flat index stores them, without a copy: a read-only-by-contract torch tensor
        ``"indexed d"`` over the FAISS storage (unit vectors for cosine; for a fitted ``csls`` index, its first
        ``d`` columns)."""
        if not self.has_unit_rows:
            raise AnalyzerError(f"unit_rows needs a flat cosine or CSLS index; this one is {self.metric!r}.")
        xb = self._storage()
        return xb[:, :self.vocab_.dim] if xb.shape[1] != self.vocab_.dim else xb

    def _storage(self):
        """The flat index's own storage as a torch tensor ``"indexed d(+1)"`` (no copy), made once."""
        import torch

        if getattr(self, "_xb_", None) is None:
            import faiss

            ix = self.index_
            xb = faiss.rev_swig_ptr(ix.get_xb(), ix.ntotal * ix.d).reshape(ix.ntotal, ix.d)
            self._xb_ = torch.from_numpy(xb)
            self._xb_sq_ = (self._xb_ * self._xb_).sum(1) if self.metric == "l2" else None
        return self._xb_

    def csls_view(self, csls_k: int = 10) -> "NeighborIndex":
        """A fitted ``csls`` index over this fitted cosine index's own rows: the neighbours of
        ``NeighborIndex(metric="csls", csls_k=csls_k).fit(vocab)`` (up to float32 rounding: ``2 q·x − r(y)`` in
        two steps instead of one inner product) without a second copy of the normalised matrix (0.9 GB at
        152k x 1,536).  Every search is an exact chunked matrix product (no FAISS call)."""
        self._check_fitted()
        if self.metric != "cosine":
            raise AnalyzerError(f"csls_view needs a cosine index (its rows are the unit vectors CSLS reads); this "
                                f"one is {self.metric!r}. Fit NeighborIndex(metric='csls') instead.")
        import torch

        k = check_param("NeighborIndex", "csls_k", csls_k, Interval(Integral, 1, self.ids_.size - 1))
        view = NeighborIndex(metric="csls", k=self.k, include_special=self.include_special, cache=self.cache,
                             csls_k=k)
        view.vocab_, view.ids_, view.norms_, view.median_norm_ = self.vocab_, self.ids_, self.norms_, self.median_norm_
        view.neighborhood_ = vocab_neighborhood(self.vocab_, k, include_special=self.include_special, cache=self.cache)
        view.r_ = view.neighborhood_.r
        view.index_ = self.index_
        view._r_indexed_ = torch.from_numpy(np.ascontiguousarray(view.r_[view.ids_], dtype=np.float32))
        return view

    # -- fast exact path for large batches ----------------------------------------------------------
    def _is_flat(self) -> bool:
        import faiss

        return isinstance(self.index_, faiss.IndexFlat)

    def _brute_search(self, q: np.ndarray, k: int, minus=None) -> tuple[np.ndarray, np.ndarray]:
        """The flat index's answer (inner product, or squared L2 for ``l2``) by chunked torch matmul; with
        ``minus`` (float32 ``"indexed"``), ``2 q·x − minus`` instead of the inner product (CSLS on cosine rows)."""
        import torch

        xb = self._storage()     # a view of the flat index's own storage (no second copy of the matrix)
        chunk = max(1, _CHUNK_BYTES // (4 * xb.shape[0]))
        out_s = np.empty((q.shape[0], k), np.float32)
        out_i = np.empty((q.shape[0], k), np.int64)
        with torch.inference_mode():
            for a in range(0, q.shape[0], chunk):
                qt = torch.from_numpy(q[a:a + chunk])
                s = qt @ xb.T
                if minus is not None:
                    s.mul_(2.0).sub_(minus[None, :])          # in place: no second chunk of scores
                if self.metric == "l2":
                    s = (qt * qt).sum(1, keepdim=True) + self._xb_sq_[None, :] - 2.0 * s
                    v, i = torch.topk(s, k, dim=1, largest=False, sorted=True)
                else:
                    v, i = torch.topk(s, k, dim=1, largest=True, sorted=True)
                out_s[a:a + chunk] = v.numpy()
                out_i[a:a + chunk] = i.numpy()
        return out_s, out_i

    def __repr__(self) -> str:
        extra = f", csls_k={self.csls_k}" if self.metric == "csls" else ""
        return (f"NeighborIndex(metric={self.metric!r}, k={self.k}, include_special={self.include_special}{extra})")


# ---------------------------------------------------------------------------------------------------
# Every token's K nearest other tokens: the CSLS radius r(y), the vocabulary's own k-occurrence (hubness)
# and the k-th-neighbour similarity that mutual-nearest-neighbour tests need.
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class VocabNeighborhood:
    """Each indexed vocabulary token's ``K`` nearest *other* indexed tokens by cosine.

    ids:          int64 ``"vocab K"``, best first (-1 for rows not indexed).
    sims:         float32 ``"vocab K"`` cosine similarities, descending (NaN for rows not indexed).
    r:            float32 ``"vocab"``: mean of ``sims`` per row, the CSLS radius ``r(y)`` (NaN when not indexed).
    k_occurrence: int64 ``"vocab"``: how many indexed tokens have this token among their K nearest
                  (the vocabulary's own hubness; 0 for rows not indexed).
    indexed:      bool ``"vocab"``: rows that took part.
    exact:        whether the neighbours are exact (float32 throughout).
    recall:       for an approximate search, mean recall@K against exact search on ``recall_sample`` rows.
    method:       how they were found: ``"exact"`` or the approximate search with its parameters.
    seconds:      time it took to compute (not to load from cache).
    """

    K: int
    ids: np.ndarray
    sims: np.ndarray
    r: np.ndarray
    k_occurrence: np.ndarray
    indexed: np.ndarray
    exact: bool
    recall: float | None
    recall_sample: int
    method: str
    seconds: float

    def kth_similarity(self, k: int) -> np.ndarray:
        """float32 ``"vocab"``: each token's cosine to its k-th nearest other token (1 <= k <= K)."""
        k = check_param("VocabNeighborhood.kth_similarity", "k", k, Interval(Integral, 1, self.K))
        return self.sims[:, k - 1]

    def info(self) -> dict:
        return {"K": self.K, "exact": self.exact, "recall": self.recall, "recall_sample": self.recall_sample,
                "method": self.method, "seconds": round(self.seconds, 3)}


def vocab_neighborhood(vocab: Vocabulary, K: int = 10, *, include_special: bool = False, cache: bool = True,
                       exact: bool | None = None, recall_target: float = 0.95, recall_sample: int = 1000,
                       seed: int = 0, device: str | None = None) -> VocabNeighborhood:
    """Every indexed token's ``K`` nearest other tokens (cosine), cached on disk per vocabulary.

    ``exact=None`` chooses the exact float32 search up to ``EXACT_MAX_ROWS`` indexed rows and the approximate
    one above it.  The approximate search finds each token's best groups of ``_GROUP`` tokens by a bfloat16
    pass over the Gram matrix and re-ranks their members in float32, widening the number of groups until
    recall@K against exact search on ``recall_sample`` fixed-seed rows reaches ``recall_target`` (the
    reached recall is recorded).  On a CPU without fast bfloat16 products the float32 pass is used, and the
    result is exact, unless its int8 products are fast (VNNI, AMX-INT8; from ``INT8_MIN_ROWS`` rows): then the
    first pass multiplies int8 rows quantised with one scale per row.  ``device`` (``auto``/``cpu``/``cuda``, default: the process's, :mod:`analyzer._device`)
    runs the pass on a GPU, always with bfloat16 products there.

    Memory: the unit-normalised float32 copy of the indexed rows (``V d 4`` bytes) and every row's best ``P``
    groups (``V P 10`` bytes, ``P <= 256``) beside the working sets of :func:`analyzer._knn._top_groups` (256 MiB
    budget) and :func:`analyzer._knn._rerank_selected` (128 MiB); nothing grows with ``V^2``."""
    K = check_param("vocab_neighborhood", "K", K, Interval(Integral, 1, None))
    excluded = np.asarray(vocab.excluded, dtype=bool)
    indexed = np.ones(vocab.size, bool) if include_special else ~excluded
    ids_all = np.where(indexed)[0]
    if K >= ids_all.size:
        raise AnalyzerError(f"The 'K' parameter of vocab_neighborhood must be an int smaller than the {ids_all.size} "
                            f"indexed tokens of {vocab.name}. Got {K} instead.")
    if exact is None:
        exact = ids_all.size <= EXACT_MAX_ROWS
    scope = "all" if include_special else "filtered"
    path = None
    if cache:
        from .cache import entry_dir

        path = entry_dir("vocab", vocab.key) / f"neighborhood-K{K}-{scope}-{'exact' if exact else 'approx'}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    meta = json.loads(str(z["meta"]))
                    if z["ids"].shape == (vocab.size, K):
                        return VocabNeighborhood(K=K, ids=z["ids"], sims=z["sims"], r=z["r"],
                                                 k_occurrence=z["k_occurrence"], indexed=z["indexed"],
                                                 exact=bool(meta["exact"]), recall=meta["recall"],
                                                 recall_sample=int(meta["recall_sample"]), method=meta["method"],
                                                 seconds=float(meta["seconds"]))
            except (OSError, ValueError, KeyError):
                pass  # rebuilt below
    t0 = time.perf_counter()
    x = _unit_rows_of(vocab.embeddings, ids_all)
    n = x.shape[0]
    local = np.arange(n)
    recall = None
    n_check = 0
    device = resolve_device(device)
    if exact:
        sims, pos = _self_knn_exact(x, K, device=device)
        method = "exact"
    else:
        import torch

        low, speed = (torch.bfloat16, 0.0) if device == "cuda" else _low_precision_probe()
        bf16_speed = speed
        if low is None and n >= INT8_MIN_ROWS:
            low8, speed8 = _int8_probe(int(x.shape[1]))
            if low8 is not None:
                low, speed = low8, speed8
        rng = np.random.default_rng(seed)
        n_check = min(recall_sample, n)
        check = np.sort(rng.choice(n, size=n_check, replace=False))
        ref_s, ref_i = _self_knn_rows(x, K, check, device=device)
        _, ref_i = _drop_self(ref_s, ref_i, check, K)

        def recall_of(s_, i_):
            got = _drop_self(s_, i_, check, K)[1]
            return float(np.mean([np.intersect1d(a, b).size / K for a, b in zip(got, ref_i)]))

        xt = torch.from_numpy(x).to(device)
        with torch.inference_mode():
            # float32 maxima need no margin (exact); bfloat16 ones start with 50% more groups than K+1 and
            # double until the check rows, re-ranked from their own (small) matrix of group maxima, reach the
            # recall target; then every row's best P groups are found by the streamed pass
            n_groups = -(-n // _GROUP)
            P = K + 1 if low is None else (K + 1) + max(5, (K + 1) // 2)
            if low is not None:
                Gc = _group_maxima(xt, low, rows=check)
                while P < min(n_groups, _MAX_GROUPS):
                    sel = torch.topk(Gc, P, dim=1).indices
                    if recall_of(*_rerank_selected(xt, sel, check, K + 1)) >= recall_target:
                        break
                    P = min(2 * P, n_groups, _MAX_GROUPS)  # at the cap, the recall reached is what is recorded
                del Gc
            sel = _top_groups(xt, low or torch.float32, P)
            sims, pos = _rerank_selected(xt, sel, local, K + 1)
            del sel, xt
        if low is None:
            exact, recall, n_check = True, None, 0
            method = (f"exact (bfloat16 matrix products are only {speed:.1f}x faster than float32 on this CPU, "
                      f"below {_LOW_PRECISION_MIN_SPEEDUP}x, so the float32 pass was used)")
        else:
            recall = recall_of(sims[check], pos[check])
            kind = "int8" if low == torch.int8 else "bfloat16"
            if device == "cuda":
                where = "on the GPU"
            elif kind == "int8":
                where = (f"int8 products {speed:.1f}x faster than float32 on this CPU, bfloat16 ones "
                         f"{bf16_speed:.1f}x; one scale per row")
            else:
                where = f"bfloat16 products {speed:.1f}x faster than float32 on this CPU"
            method = f"{kind} group maxima ({where}) + float32 re-rank of the best {P} groups of {_GROUP} tokens"
    del x
    sims, pos = _drop_self(sims, pos, local, K)
    full_ids = np.full((vocab.size, K), -1, np.int64)
    full_sims = np.full((vocab.size, K), np.nan, np.float32)
    full_ids[ids_all] = np.where(pos >= 0, ids_all[np.maximum(pos, 0)], -1)
    full_sims[ids_all] = np.where(pos >= 0, sims, np.nan)
    r = np.full(vocab.size, np.nan, np.float32)
    r[ids_all] = np.nanmean(full_sims[ids_all], axis=1)
    valid = full_ids[full_ids >= 0]
    k_occ = np.bincount(valid, minlength=vocab.size).astype(np.int64)
    seconds = time.perf_counter() - t0
    out = VocabNeighborhood(K=K, ids=full_ids, sims=full_sims, r=r, k_occurrence=k_occ, indexed=indexed,
                            exact=bool(exact), recall=recall, recall_sample=n_check, method=method, seconds=seconds)
    if path is not None:
        from .cache import atomic_path

        meta = json.dumps({"exact": out.exact, "recall": recall, "recall_sample": n_check, "method": method,
                           "seconds": seconds})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, ids=full_ids, sims=full_sims, r=r, k_occurrence=k_occ, indexed=indexed,
                         meta=np.array(meta))
    return out

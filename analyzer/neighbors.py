"""Nearest vocabulary neighbours of virtual tokens, with FAISS.

``NeighborIndex`` follows scikit-learn: ``__init__`` stores parameters, ``fit(vocab)`` validates and builds
(learned state ends in ``_``), ``kneighbors(vectors, k)`` queries.  Cosine is an inner-product index over the
L2-normalised vocabulary; ``l2`` and ``dot`` exist for comparison.  Special tokens and unused rows are left
out of the index unless ``include_special=True``.  The built index is cached on disk beside the vocabulary
matrix (same content key), so it is built once per vocabulary.

``csls`` is the hubness-corrected similarity of Conneau et al. 2018 (cross-domain similarity local
scaling), ``2·cos(x, y) − r(y)`` with ``r(y)`` the mean cosine of token ``y`` to its ``csls_k`` nearest
other vocabulary tokens.  ``r`` comes from :func:`vocab_neighborhood` (every token's K nearest tokens,
computed once per vocabulary and cached on disk: exact for vocabularies up to ``EXACT_MAX_ROWS`` rows,
an approximate clustered search with a measured recall check above that).  The CSLS index itself is an exact
inner-product index over ``[ŷ, −r(y)]`` queried with ``[2x̂, 1]``, so its scores *are* CSLS values.

Large query batches (``>= BRUTE_FORCE_MIN_QUERIES`` rows) against a flat index are answered by a chunked
torch matrix product + top-k over the same stored vectors: identical neighbours, several times faster than
FAISS's flat search on few, shared CPU cores."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .exceptions import AnalyzerError, ShapeMismatchError
from .types import Vocabulary

METRICS = ("cosine", "l2", "dot", "csls")

#: vocabularies up to this many indexed rows get an exact all-pairs K-neighbour search; larger ones an
#: approximate clustered search whose recall@K against exact is measured on a sample.
EXACT_MAX_ROWS = 100_000
#: query batches at least this large go through a chunked torch matmul instead of FAISS's flat search.
BRUTE_FORCE_MIN_QUERIES = 64
_CHUNK_BYTES = 1 << 27  # 128 MiB of scores per matmul chunk


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
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= n:
            raise AnalyzerError(f"The 'k' parameter of NeighborIndex must be an int in [1, {n}]. Got {k!r} instead.")
        return int(k)

    def _check_params(self) -> None:
        if self.metric not in METRICS:
            raise AnalyzerError(f"The 'metric' parameter of NeighborIndex must be one of {list(METRICS)}. "
                                f"Got {self.metric!r} instead.")
        if self.metric == "csls" and (isinstance(self.csls_k, bool) or not isinstance(self.csls_k, (int, np.integer))
                                      or int(self.csls_k) < 1):
            raise AnalyzerError(f"The 'csls_k' parameter of NeighborIndex must be a positive int. "
                                f"Got {self.csls_k!r} instead.")

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
        if self.metric == "csls":
            if int(self.csls_k) >= ids.size:
                raise AnalyzerError(f"The 'csls_k' parameter of NeighborIndex must be an int in [1, {ids.size - 1}]. "
                                    f"Got {self.csls_k!r} instead.")
            self.neighborhood_ = vocab_neighborhood(vocab, int(self.csls_k), include_special=self.include_special,
                                                    cache=self.cache)
            self.r_ = self.neighborhood_.r
        for attr in ("_xb_", "_xb_sq_"):
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
        x = np.ascontiguousarray(emb[ids], dtype=np.float32)
        if self.metric in ("cosine", "csls"):
            x = normalize_rows(x)
        if self.metric == "csls":
            x = np.ascontiguousarray(np.hstack([x, -self.r_[ids][:, None]]), dtype=np.float32)
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

    # -- fast exact path for large batches ----------------------------------------------------------
    def _is_flat(self) -> bool:
        import faiss

        return isinstance(self.index_, faiss.IndexFlat)

    def _brute_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The flat index's answer (inner product, or squared L2 for ``l2``) by chunked torch matmul."""
        import torch

        if getattr(self, "_xb_", None) is None:
            xb = self.index_.reconstruct_n(0, self.index_.ntotal)
            self._xb_ = torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32))
            self._xb_sq_ = (self._xb_ * self._xb_).sum(1) if self.metric == "l2" else None
        xb = self._xb_
        chunk = max(1, _CHUNK_BYTES // (4 * xb.shape[0]))
        out_s = np.empty((q.shape[0], k), np.float32)
        out_i = np.empty((q.shape[0], k), np.int64)
        with torch.inference_mode():
            for a in range(0, q.shape[0], chunk):
                qt = torch.from_numpy(q[a:a + chunk])
                s = qt @ xb.T
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
    exact:        whether the search was exhaustive.
    recall:       for an approximate search, mean recall@K against exact search on ``recall_sample`` rows.
    method:       ``"exact"`` or ``"clustered(clusters=..., probe=...)"``.
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
        if not 1 <= k <= self.K:
            raise AnalyzerError(f"k must be in [1, {self.K}] for this vocabulary neighbourhood; got {k}.")
        return self.sims[:, k - 1]

    def info(self) -> dict:
        return {"K": self.K, "exact": self.exact, "recall": self.recall, "recall_sample": self.recall_sample,
                "method": self.method, "seconds": round(self.seconds, 3)}


def _self_knn_exact(x, K: int, rows: np.ndarray | None = None, *, block: int = 2048):
    """Top-(K+1) inner products of ``x[rows]`` against all of ``x`` (torch).  Returns numpy ``(sims, ids)``.

    For all rows (``rows=None``) the Gram matrix is symmetric, so only blocks on and above the diagonal are
    multiplied and each block updates the running top lists of both its row and its column block."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    n = x.shape[0]
    kk = min(K + 1, n)
    with torch.inference_mode():
        if rows is not None:
            chunk = max(1, _CHUNK_BYTES // (4 * n))
            sims = np.empty((rows.size, kk), np.float32)
            ids = np.empty((rows.size, kk), np.int64)
            for a in range(0, rows.size, chunk):
                v, i = torch.topk(xt[torch.from_numpy(rows[a:a + chunk])] @ xt.T, kk, dim=1)
                sims[a:a + chunk] = v.numpy()
                ids[a:a + chunk] = i.numpy()
            return sims, ids
        best_v = torch.full((n, kk), -torch.inf)
        best_i = torch.full((n, kk), -1, dtype=torch.long)

        def merge(a: int, v, i) -> None:
            sl = slice(a, a + v.shape[0])
            cv = torch.cat([best_v[sl], v], dim=1)
            ci = torch.cat([best_i[sl], i], dim=1)
            top_v, pos = torch.topk(cv, kk, dim=1)
            best_v[sl] = top_v
            best_i[sl] = torch.gather(ci, 1, pos)

        for a in range(0, n, block):
            xa = xt[a:a + block]
            for b in range(a, n, block):
                s = xa @ xt[b:b + block].T
                v, i = torch.topk(s, min(kk, s.shape[1]), dim=1)
                merge(a, v, i + b)
                if b != a:
                    v, i = torch.topk(s.T.contiguous(), min(kk, s.shape[0]), dim=1)
                    merge(b, v, i + a)
        return best_v.numpy(), best_i.numpy()


def _spherical_kmeans(x: np.ndarray, n_clusters: int, *, seed: int, iters: int = 8, sample: int = 65536):
    """Unit-norm centroids (torch matmuls) trained on a fixed-seed sample of ``x``; returns ``"C d"``."""
    import torch

    rng = np.random.default_rng(seed)
    train = x[np.sort(rng.choice(x.shape[0], size=min(sample, x.shape[0]), replace=False))]
    cent = train[rng.choice(train.shape[0], size=n_clusters, replace=False)].copy()
    tt = torch.from_numpy(train)
    with torch.inference_mode():
        for _ in range(iters):
            assign = torch.argmax(tt @ torch.from_numpy(cent).T, dim=1).numpy()
            sums = np.zeros_like(cent)
            np.add.at(sums, assign, train)
            empty = np.bincount(assign, minlength=n_clusters) == 0
            sums[empty] = train[rng.choice(train.shape[0], size=int(empty.sum()), replace=False)]
            cent = normalize_rows(sums)
    return cent


class _ClusteredSearch:
    """Approximate all-pairs search of unit rows ``x`` (an inverted file answered with dense matmuls).

    Rows are assigned to spherical k-means clusters; each row *probes* the ``probe`` clusters whose
    centroids are nearest to it.  A whole cluster of rows is then searched at once against the union of its
    rows' probe lists, so every row sees at least its own probe set (per-row IVF recall is a lower bound)."""

    def __init__(self, x: np.ndarray, *, n_clusters: int, max_probe: int, seed: int):
        import torch

        self.x = x
        self.xt = torch.from_numpy(x)
        cent = _spherical_kmeans(x, n_clusters, seed=seed)
        ct = torch.from_numpy(cent)
        n = x.shape[0]
        self.max_probe = min(max_probe, n_clusters)
        self.near = np.empty((n, self.max_probe), np.int64)
        chunk = max(1, _CHUNK_BYTES // (4 * n_clusters))
        with torch.inference_mode():
            for a in range(0, n, chunk):
                _, i = torch.topk(self.xt[a:a + chunk] @ ct.T, self.max_probe, dim=1)
                self.near[a:a + chunk] = i.numpy()
        assign = self.near[:, 0]
        order = np.argsort(assign, kind="stable")
        bounds = np.searchsorted(assign[order], np.arange(n_clusters + 1))
        self.members = [order[bounds[c]:bounds[c + 1]] for c in range(n_clusters)]

    def _top(self, rows: np.ndarray, cand: np.ndarray, K: int, sims, ids) -> None:
        import torch

        kk = min(K + 1, cand.size)
        xc = self.xt[torch.from_numpy(cand)]
        step = max(1, _CHUNK_BYTES // (4 * max(1, cand.size)))
        for a in range(0, rows.size, step):
            r = rows[a:a + step]
            v, i = torch.topk(self.xt[torch.from_numpy(r)] @ xc.T, kk, dim=1)
            sims[r, :kk] = v.numpy()
            ids[r, :kk] = cand[i.numpy()]

    def search_rows(self, rows: np.ndarray, K: int, probe: int):
        """Per-row probing (each row alone against its own probe set) for a few rows."""
        import torch

        sims = np.full((rows.size, K + 1), -np.inf, np.float32)
        ids = np.full((rows.size, K + 1), -1, np.int64)
        with torch.inference_mode():
            for j, r in enumerate(rows):
                cand = np.concatenate([self.members[c] for c in self.near[r, :probe]])
                kk = min(K + 1, cand.size)
                v, i = torch.topk(self.xt[int(r)] @ self.xt[torch.from_numpy(cand)].T, kk)
                sims[j, :kk] = v.numpy()
                ids[j, :kk] = cand[i.numpy()]
        return sims, ids

    def cost(self, probe: int) -> float:
        """Share of the exhaustive all-pairs work that ``search_all(probe)`` would do."""
        n = self.x.shape[0]
        sizes = np.array([m.size for m in self.members])
        work = sum(rows.size * sizes[np.unique(self.near[rows, :probe])].sum() for rows in self.members if rows.size)
        return float(work) / float(n) ** 2

    def search_all(self, K: int, probe: int):
        import torch

        n = self.x.shape[0]
        sims = np.full((n, K + 1), -np.inf, np.float32)
        ids = np.full((n, K + 1), -1, np.int64)
        with torch.inference_mode():
            for rows in self.members:
                if rows.size == 0:
                    continue
                clusters = np.unique(self.near[rows, :probe])
                cand = np.concatenate([self.members[c] for c in clusters])
                self._top(rows, cand, K, sims, ids)
        return sims, ids


def _drop_self(sims: np.ndarray, ids: np.ndarray, rows: np.ndarray, K: int):
    """From top-(K+1) lists, drop each row's own entry (or the last entry when it is absent)."""
    mask = ids == rows[:, None]
    none = ~mask.any(axis=1)
    mask[none, -1] = True
    # a row may only drop one entry
    first = np.argmax(mask, axis=1)
    keep = np.ones_like(mask)
    keep[np.arange(mask.shape[0]), first] = False
    return sims[keep].reshape(-1, K), ids[keep].reshape(-1, K)


def vocab_neighborhood(vocab: Vocabulary, K: int = 10, *, include_special: bool = False, cache: bool = True,
                       exact: bool | None = None, recall_target: float = 0.95, recall_sample: int = 1000,
                       seed: int = 0) -> VocabNeighborhood:
    """Every indexed token's ``K`` nearest other tokens (cosine), cached on disk per vocabulary.

    ``exact=None`` chooses exhaustive search up to ``EXACT_MAX_ROWS`` indexed rows and the approximate
    clustered search above it; the approximate search widens its probe until recall@K against exact search
    on ``recall_sample`` fixed-seed rows reaches ``recall_target`` (the reached recall is recorded)."""
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
        raise AnalyzerError(f"K must be a positive int; got {K!r}.")
    K = int(K)
    excluded = np.asarray(vocab.excluded, dtype=bool)
    indexed = np.ones(vocab.size, bool) if include_special else ~excluded
    ids_all = np.where(indexed)[0]
    if K >= ids_all.size:
        raise AnalyzerError(f"K must be smaller than the {ids_all.size} indexed tokens of {vocab.name}; got {K}.")
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
    x = normalize_rows(np.asarray(vocab.embeddings, dtype=np.float32)[ids_all])
    n = x.shape[0]
    local = np.arange(n)
    recall = None
    n_check = 0
    if exact:
        sims, pos = _self_knn_exact(x, K)
        method = "exact"
    else:
        rng = np.random.default_rng(seed)
        n_check = min(recall_sample, n)
        check = np.sort(rng.choice(n, size=n_check, replace=False))
        ref_s, ref_i = _self_knn_exact(x, K, check)
        _, ref_i = _drop_self(ref_s, ref_i, check, K)
        n_clusters = int(max(16, min(4096, round(2 * np.sqrt(n)))))
        search = _ClusteredSearch(x, n_clusters=n_clusters, max_probe=256, seed=seed)

        def recall_of(got_i):
            return float(np.mean([np.intersect1d(a, b).size / K for a, b in zip(got_i, ref_i)]))

        # calibrate the probe on the check rows alone (cheap), then search everything once
        probe = 4
        while probe < search.max_probe:
            s_, i_ = search.search_rows(check, K, probe)
            if recall_of(_drop_self(s_, i_, check, K)[1]) >= recall_target:
                break
            probe *= 2
        probe = min(probe, search.max_probe)
        share = search.cost(probe)
        if share > 0.5:  # the clusters barely narrow the search here: exhaustive search is as cheap and exact
            sims, pos = _self_knn_exact(x, K)
            exact, recall, n_check = True, None, 0
            method = (f"exact (a clustered search with clusters={n_clusters} needed probe={probe} for recall "
                      f"{recall_target}, {share:.0%} of the exhaustive work)")
        else:
            sims, pos = search.search_all(K, probe)
            recall = recall_of(_drop_self(sims[check], pos[check], check, K)[1])
            method = f"clustered(clusters={n_clusters}, probe={probe}, work={share:.0%} of exhaustive)"
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

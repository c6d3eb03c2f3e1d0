"""The measures of what a soft prompt's vocabulary neighbours say, pure functions over arrays, a
:class:`~analyzer.types.Vocabulary` and a fitted :class:`~analyzer.neighbors.NeighborIndex`: tightness (model and
text space), k-occurrence and hubness, mutual neighbours, nearest token, norms, drift from the initialisation,
redundancy between positions and their set statistics over pseudo-prompts, and cluster metrics across prompts.
None of them makes a claim: :func:`analyzer.metrics.analyze_prompt` puts each beside its nulls through
:mod:`analyzer.stats`.

Importing this module pulls numpy only (scipy, scikit-learn and torch load inside the functions)."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ._json import _f
from ._params import Options, check_param
from .baselines import QuerySet
from .exceptions import AnalyzerError, ShapeMismatchError
from .neighbors import NeighborIndex, VocabNeighborhood, check_vectors, normalize_rows
from .stats import ALPHA, compare_to_null
from .stats._pseudo import _STREAM_BOOT, _STREAM_PERM, _rng
from .types import Vocabulary


# ---------------------------------------------------------------------------------------------------
# 1. Tightness
# ---------------------------------------------------------------------------------------------------

def pairwise_tightness(sets: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine within each set of vectors.

    sets: float ``"q k d"``; rows with NaN are left out (a set with fewer than 2 usable rows gives NaN).
    Returns float64 ``"q"``."""
    x = np.asarray(sets, dtype=np.float32)
    if x.ndim != 3:
        raise AnalyzerError(f"Expected sets of shape (q, k, d); got shape {x.shape}.")
    ok = np.isfinite(x).all(axis=2)
    x = np.where(ok[..., None], x, 0.0)
    n = np.linalg.norm(x, axis=2, keepdims=True)
    x = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
    ok &= n[..., 0] > 0
    s = x.sum(axis=1)                                      # q d
    total = (s * s).sum(axis=1) - (x * x).sum(axis=(1, 2))  # sum over i != j of cos
    m = ok.sum(axis=1).astype(np.float64)
    pairs = m * (m - 1)
    return np.divide(total.astype(np.float64), pairs, out=np.full(x.shape[0], np.nan), where=pairs > 0)


def tightness(neighbor_ids: np.ndarray, space: np.ndarray | Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Mean pairwise cosine among each query's neighbours, in the space ``space``.

    neighbor_ids: int ``"q k"`` vocabulary row ids.
    space: an array ``"vocab d"`` (the model's embedding matrix) or a function mapping unique ids ``"u"``
           to vectors ``"u d"`` (e.g. ``TextEmbedder.token_vectors`` bound to a vocabulary; NaN rows skipped).
    Returns float64 ``"q"``."""
    ids = np.asarray(neighbor_ids, dtype=np.int64)
    if ids.ndim != 2:
        raise AnalyzerError(f"Expected neighbour ids of shape (q, k); got shape {ids.shape}.")
    uniq, inv = np.unique(ids, return_inverse=True)
    vecs = np.asarray(space(uniq) if callable(space) else np.asarray(space)[uniq], dtype=np.float32)
    inv = inv.reshape(ids.shape)
    # in blocks of queries: the "q k d" sets of a 10,000-query null pool are 0.6 GB at d = 1,536, and
    # pairwise_tightness makes three of them
    step = max(1, (64 << 20) // (4 * ids.shape[1] * vecs.shape[1] + 1))
    return np.concatenate([pairwise_tightness(vecs[inv[a:a + step]]) for a in range(0, ids.shape[0], step)]) \
        if ids.shape[0] else pairwise_tightness(vecs[inv])


def text_space(vocab: Vocabulary, embedder) -> Callable[[np.ndarray], np.ndarray]:
    """``ids -> vectors`` in the external text space (``embedder.token_vectors(vocab, ids)``)."""
    return lambda ids: embedder.token_vectors(vocab, ids)


# ---------------------------------------------------------------------------------------------------
# 3. Hubness, CSLS, mutual nearest neighbours
# ---------------------------------------------------------------------------------------------------

def k_occurrence(neighbor_ids: np.ndarray, size: int) -> np.ndarray:
    """How many times each vocabulary row occurs in the neighbour lists: int64 ``"size"``."""
    return np.bincount(np.asarray(neighbor_ids, np.int64).ravel(), minlength=size).astype(np.int64)


def k_occurrence_skew(neighbor_ids: np.ndarray, n_tokens: int) -> float:
    """Skewness (``scipy.stats.skew``, biased) of the k-occurrence over ``n_tokens`` candidate tokens (the
    indexed vocabulary): large when a few hub tokens take many neighbour slots."""
    _, counts = np.unique(np.asarray(neighbor_ids, np.int64).ravel(), return_counts=True)
    return _skew_from_counts(counts, n_tokens)


def _skew_from_counts(counts: np.ndarray, n_tokens: int) -> float:
    """Biased skewness of a length-``n_tokens`` vector whose non-zero entries are ``counts`` (zeros elsewhere);
    equals ``scipy.stats.skew`` of the full vector."""
    c = np.asarray(counts, dtype=np.float64)
    N = float(n_tokens)
    mu = c.sum() / N
    m2 = (c ** 2).sum() / N - mu ** 2
    if m2 <= 1e-12 * max(1.0, mu * mu):
        return float("nan")
    m3 = (c ** 3).sum() / N - 3 * mu * (c ** 2).sum() / N + 2 * mu ** 3
    return float(m3 / m2 ** 1.5)


def mutual_neighbors(qs: QuerySet, vocab: Vocabulary, neighborhood: VocabNeighborhood, k: int | None = None,
                     space: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """bool ``"q k"``: neighbour ``y`` of query ``x`` is a *mutual* nearest neighbour when ``x`` would also be
    among ``y``'s ``k`` nearest (cosine) if it joined the vocabulary, i.e. ``cos(x, y) >=`` the cosine of
    ``y`` to its k-th nearest other token.  Needs a :class:`VocabNeighborhood` with ``K >= k``.  ``space``: where
    the neighbours' vectors are read (ids to rows, e.g. an index's unit rows; default the matrix)."""
    k = qs.k if k is None else int(k)
    if k > neighborhood.K:
        raise AnalyzerError(f"Mutual neighbours at k={k} need a vocabulary neighbourhood with K >= {k}; "
                            f"got K={neighborhood.K}.")
    ids = qs.ids[:, :k]
    cos = _cosines(qs.vectors, vocab, ids, space)
    kth = neighborhood.kth_similarity(k)[ids]
    return np.nan_to_num(cos, nan=-np.inf) >= np.nan_to_num(kth, nan=np.inf) - 1e-6


def _cosines(vectors: np.ndarray, vocab: Vocabulary, ids: np.ndarray, space=None) -> np.ndarray:
    """cos(vectors[i], vocab row ids[i, j]): float32 ``"q k"``."""
    q = normalize_rows(vectors)
    rows = space(ids.ravel()) if callable(space) else vocab.rows(ids.ravel()) if space is None else \
        np.asarray(space, np.float32)[ids.ravel()]
    e = normalize_rows(rows).reshape(*ids.shape, -1)
    return np.einsum("qd,qkd->qk", q, e)


# ---------------------------------------------------------------------------------------------------
# 4. Geometry
# ---------------------------------------------------------------------------------------------------

def vocab_norms(vocab: Vocabulary, include_special: bool = False, norms: np.ndarray | None = None) -> np.ndarray:
    """Sorted L2 norms of the (non-excluded) vocabulary rows: float64.  ``norms``: all row norms, if known."""
    if norms is None:
        norms = vocab.norms
    norms = np.asarray(norms, np.float64)
    return np.sort(norms if include_special else norms[~np.asarray(vocab.excluded, bool)])


def norm_percentile(vectors: np.ndarray, sorted_norms: np.ndarray) -> np.ndarray:
    """Percentile (0-100) of each vector's norm within the sorted vocabulary norms: float64 ``"n"``."""
    n = np.linalg.norm(np.asarray(vectors, np.float32), axis=1)
    lo = np.searchsorted(sorted_norms, n, side="left")
    hi = np.searchsorted(sorted_norms, n, side="right")
    return 100.0 * (lo + hi) / (2.0 * sorted_norms.size)


def _readonly_tensor(a: np.ndarray):
    """A torch view of a (possibly read-only, memory-mapped) array that is only ever read."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def nearest_token(vectors: np.ndarray, vocab: Vocabulary, *, include_special: bool = False,
                  norms: np.ndarray | None = None, index=None) -> dict[str, np.ndarray]:
    """For each vector, the nearest vocabulary token by cosine and by Euclidean distance, exhaustively.

    norms: the vocabulary row norms when already known (``NeighborIndex.norms_``).
    index: a fitted cosine or CSLS :class:`~analyzer.neighbors.NeighborIndex` with the same ``include_special``:
           its unit rows are read instead of the vocabulary matrix (the same numbers up to float32 rounding, and
           the matrix is not paged in: ~0.9 GB less resident memory at 152k x 1,536), using
           ``|q − e|² = |q|² + |e|² − 2|e| (q·ê)``.
    Returns ``cosine`` (float64 ``"n"``, best cosine), ``cosine_id``, ``distance`` (smallest L2 distance),
    ``distance_id``."""
    import torch

    q = np.ascontiguousarray(vectors, dtype=np.float32)
    unit = index is not None and index.has_unit_rows and index.include_special == include_special
    if unit:
        rows = index.unit_rows()                                     # "indexed d", the index's own storage
        ids = torch.from_numpy(np.asarray(index.ids_, np.int64))
        en = _readonly_tensor(np.asarray(index.norms_, np.float32))[ids]
        skip = None
    else:
        rows = _readonly_tensor(np.ascontiguousarray(np.asarray(vocab.embeddings), dtype=np.float32))
        ids = None
        en = torch.linalg.vector_norm(rows, dim=1) if norms is None else \
            _readonly_tensor(np.asarray(norms, np.float32))
        skip = None if include_special else torch.from_numpy(np.asarray(vocab.excluded, bool))
    out = {n: np.empty(q.shape[0]) for n in ("cosine", "distance")}
    out.update({n: np.empty(q.shape[0], np.int64) for n in ("cosine_id", "distance_id")})
    chunk = max(1, (1 << 25) // (4 * rows.shape[0]))    # 32 MiB per "chunk vocab" matrix; five are alive at once
    with torch.inference_mode():
        for a in range(0, q.shape[0], chunk):
            qt = torch.from_numpy(q[a:a + chunk])
            qn = torch.linalg.vector_norm(qt, dim=1)
            if unit:
                cos = (qt @ rows.T) / torch.clamp(qn[:, None], min=1e-12)
                dot = cos * qn[:, None] * en[None, :]
            else:
                dot = qt @ rows.T
                cos = dot / torch.clamp(qn[:, None] * en[None, :], min=1e-12)
            d2 = qn[:, None] ** 2 + en[None, :] ** 2 - 2 * dot
            if skip is not None:
                cos[:, skip] = -torch.inf
                d2[:, skip] = torch.inf
            c, ci = cos.max(dim=1)
            d, di = d2.min(dim=1)
            if ids is not None:
                ci, di = ids[ci], ids[di]
            out["cosine"][a:a + chunk] = c.double().numpy()
            out["cosine_id"][a:a + chunk] = ci.numpy()
            out["distance"][a:a + chunk] = np.sqrt(np.maximum(d.double().numpy(), 0.0))
            out["distance_id"][a:a + chunk] = di.numpy()
    return out


def drift(vectors: np.ndarray, init_vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Per position: ``cosine`` to the init vector, ``l2`` distance, ``relative_l2`` (``l2 / ||init||``)."""
    v = np.asarray(vectors, np.float64)
    i = np.asarray(init_vectors, np.float64)
    if v.shape != i.shape:
        raise ShapeMismatchError(f"The prompt has shape {v.shape} but its initialisation has shape {i.shape}.")
    l2 = np.linalg.norm(v - i, axis=1)
    inorm = np.linalg.norm(i, axis=1)
    cos = (normalize_rows(v) * normalize_rows(i)).sum(axis=1).astype(np.float64)
    return {"cosine": cos, "l2": l2, "relative_l2": np.divide(l2, inorm, out=np.full_like(l2, np.nan),
                                                                 where=inorm > 0)}


def token_ranks(index: NeighborIndex, vectors: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of ``token_ids[i]`` among all indexed tokens for query ``vectors[i]`` under the index's
    metric; 0 when the token is not indexed (special/unused).  int64 ``"n"``.  Exhaustive; meant for a
    prompt's few rows."""
    q = check_vectors(vectors, index.vocab_.dim)
    token_ids = np.asarray(token_ids, np.int64).ravel()
    scores = _full_scores(index, q)
    pos = np.searchsorted(index.ids_, token_ids)
    pos = np.clip(pos, 0, index.ids_.size - 1)
    indexed = index.ids_[pos] == token_ids
    own = scores[np.arange(q.shape[0]), pos]
    better = (scores < own[:, None]) if index.metric == "l2" else (scores > own[:, None])
    ranks = better.sum(axis=1) + 1
    return np.where(indexed, ranks, 0).astype(np.int64)


def _full_scores(index: NeighborIndex, q: np.ndarray) -> np.ndarray:
    """``"n indexed"`` scores of ``q`` against every indexed row under the index's metric (cosine and CSLS from the
    index's own unit rows: no copy of the matrix)."""
    if index.metric in ("cosine", "csls"):
        s = normalize_rows(q) @ index.unit_rows().numpy().T
        if index.metric == "csls":
            s = 2.0 * s - index.r_[index.ids_][None, :]
        return s
    emb = np.asarray(index.vocab_.embeddings, np.float32)[index.ids_]
    if index.metric == "dot":
        return q @ emb.T
    return np.sqrt(np.maximum((q ** 2).sum(1)[:, None] + (emb ** 2).sum(1)[None, :] - 2.0 * q @ emb.T, 0.0))


def redundancy(neighbor_ids: np.ndarray) -> dict:
    """How much the positions repeat each other's readings.

    Returns ``unique_neighbor_ratio`` (distinct tokens over all ``n·k`` neighbour slots), ``unique_top1_ratio``
    (distinct top-1 tokens over ``n``), ``positions_sharing_top1`` (positions whose top-1 another position
    also has) and ``shared_top1`` (token id → positions, for top-1s shared by two or more positions)."""
    ids = np.asarray(neighbor_ids, np.int64)
    top1 = ids[:, 0]
    u, inv, counts = np.unique(top1, return_inverse=True, return_counts=True)
    shared = {int(t): np.where(top1 == t)[0].tolist() for t, c in zip(u, counts) if c > 1}
    return {"unique_neighbor_ratio": float(np.unique(ids).size / ids.size),
            "unique_top1_ratio": float(u.size / top1.size),
            "positions_sharing_top1": int((counts[inv] > 1).sum()),
            "shared_top1": shared}


def _run_counts(sorted_rows: np.ndarray) -> np.ndarray:
    """int64 ``"B L"``: the lengths of the runs of equal values in each sorted row (zero-padded at the end)."""
    B, L = sorted_rows.shape
    new = np.ones((B, L), bool)
    new[:, 1:] = sorted_rows[:, 1:] != sorted_rows[:, :-1]
    run = np.cumsum(new, axis=1) - 1 + (np.arange(B) * L)[:, None]
    return np.bincount(run.ravel(), minlength=B * L).reshape(B, L)


def _set_stats(pseudo_ids, n_tokens: int) -> dict[str, np.ndarray]:
    """Set-level statistics of each pseudo-prompt's ``"n k"`` neighbour lists (``pseudo_ids``: ``"B n k"``),
    vectorised over pseudo-prompts."""
    ids = np.asarray(pseudo_ids, np.int64)
    B, n, k = ids.shape
    c = _run_counts(np.sort(ids.reshape(B, n * k), axis=1)).astype(np.float64)
    N = float(n_tokens)
    s1, s2, s3 = c.sum(axis=1), (c ** 2).sum(axis=1), (c ** 3).sum(axis=1)
    mu = s1 / N
    m2 = s2 / N - mu ** 2
    m3 = s3 / N - 3 * mu * s2 / N + 2 * mu ** 3
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = np.where(m2 <= 1e-12 * np.maximum(1.0, mu * mu), np.nan, m3 / np.maximum(m2, 1e-300) ** 1.5)
    c1 = _run_counts(np.sort(ids[:, :, 0], axis=1))
    return {"unique_neighbor_ratio": (c > 0).sum(axis=1) / (n * k),
            "unique_top1_ratio": (c1 > 0).sum(axis=1) / n,
            "positions_sharing_top1": np.where(c1 > 1, c1, 0).sum(axis=1).astype(np.float64),
            "k_occurrence_skew": skew}


def _pseudo_prompt_stats(pool_ids: np.ndarray, n: int, n_boot: int, seed: int, n_tokens: int) -> dict[str, np.ndarray]:
    """Set-level statistics of ``n_boot`` pseudo-prompts of ``n`` queries drawn (without replacement within a
    pseudo-prompt) from a pool's neighbour lists."""
    rng = _rng(seed, _STREAM_BOOT + 100)
    m = pool_ids.shape[0]
    return _set_stats(np.stack([pool_ids[rng.choice(m, size=n, replace=m < n)] for _ in range(n_boot)]), n_tokens)


# ---------------------------------------------------------------------------------------------------
# Across prompts
# ---------------------------------------------------------------------------------------------------

def cluster_metrics(vectors: Sequence[np.ndarray] | Mapping[str, np.ndarray], labels: Sequence[str] | None = None, *,
                    metric: str = "cosine", n_perm: int = 200, seed: int = 0, alpha: float = ALPHA) -> dict:
    """Do virtual tokens group by prompt (or by task)?  scikit-learn cluster metrics with permutation nulls.

    vectors: one ``"n_i d"`` matrix per prompt (a list, or a name → matrix mapping).
    labels:  one group label per prompt (e.g. its task); default: each prompt is its own group.
    metric:  ``cosine`` (rows L2-normalised, cosine distance) or ``euclidean``.
    Returns ``silhouette`` (higher = better separated), ``davies_bouldin`` (lower = better) and
    ``calinski_harabasz`` (higher = better), each with a :class:`NullComparison` against the same score with
    the group labels shuffled over the virtual tokens (``n_perm`` fixed-seed permutations), plus per-group
    mean silhouettes."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_samples, silhouette_score
    from sklearn.metrics.pairwise import pairwise_distances

    names = list(vectors.keys()) if isinstance(vectors, Mapping) else [f"prompt{i}" for i in range(len(vectors))]
    mats = list(vectors.values()) if isinstance(vectors, Mapping) else list(vectors)
    if labels is None:
        labels = names
    labels = [str(x) for x in labels]
    if len(labels) != len(mats):
        raise AnalyzerError(f"Expected one label per prompt ({len(mats)}); got {len(labels)} labels.")
    check_param("cluster_metrics", "metric", metric, Options("cosine", "euclidean"))
    dims = {np.asarray(m).shape[1] for m in mats}
    if len(dims) > 1:
        raise ShapeMismatchError(f"The prompts have different dims {sorted(dims)}; they must share one model.")
    X = np.vstack([np.asarray(m, np.float32) for m in mats])
    y = np.concatenate([[lab] * np.asarray(m).shape[0] for lab, m in zip(labels, mats)])
    groups = np.unique(y)
    if not 2 <= groups.size <= X.shape[0] - 1:
        raise AnalyzerError(f"Cluster metrics need at least 2 groups and more virtual tokens than groups; got "
                            f"{groups.size} groups over {X.shape[0]} virtual tokens.")
    Xm = normalize_rows(X) if metric == "cosine" else X
    D = pairwise_distances(Xm, metric=metric)
    np.fill_diagonal(D, 0.0)

    def scores(lab):
        return (silhouette_score(D, lab, metric="precomputed"), davies_bouldin_score(Xm, lab),
                calinski_harabasz_score(Xm, lab))

    obs = scores(y)
    rng = _rng(seed, _STREAM_PERM)
    perm = np.array([scores(rng.permutation(y)) for _ in range(n_perm)])
    sil_samples = silhouette_samples(D, y, metric="precomputed")
    out = {"metric": metric, "n_points": int(X.shape[0]), "n_groups": int(groups.size), "n_perm": int(n_perm),
           "per_group_silhouette": {str(g): _f(sil_samples[y == g].mean()) for g in groups}}
    for j, (name, alt) in enumerate((("silhouette", "greater"), ("davies_bouldin", "less"),
                                     ("calinski_harabasz", "greater"))):
        c = compare_to_null(obs[j], perm[:, j], alternative=alt, alpha=alpha, null_name="permutation",
                            what=name.replace("_", "-"))
        d = c.to_dict()
        d["verdict"] = d["verdict"].replace("under permutation", "under shuffled group labels")
        out[name] = d
    return out

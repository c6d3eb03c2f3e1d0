"""Measures of what a soft prompt's vocabulary neighbours say, each beside its chance level.

Every score is reported with its null reference (:class:`NullComparison`): the same score computed for

* ``random_vectors`` — isotropic Gaussian vectors rescaled to the prompt's per-row norms (Lester et al. 2021
  §7 compare trained prompts with random vectors);
* ``vocab_tokens``  — randomly chosen (non-excluded) vocabulary tokens used as queries (what a real token's
  neighbourhood looks like; such a query is its own top-1 neighbour);
* ``init``          — the prompt's own initialisation, ``vocab.embeddings[init_token_ids]``, when the adapter
  records it (a paired comparison, position by position); omitted with a reason otherwise.

Per-token scores (tightness, nearest-token similarity, label-word hits ...) are computed for each virtual
token and for a *pool* of ``n_null`` null queries.  The prompt-level value is the mean over the ``n``
positions; its null distribution is the mean over ``n`` queries drawn from the pool (``n_boot`` fixed-seed
pseudo-prompts).  Set-level scores (k-occurrence skew, unique-neighbour ratio, shared top-1s) are computed on
whole pseudo-prompts the same way.  The ``init`` null is paired: the distribution of the mean per-position
difference under random sign flips.  p-values are empirical with +1 smoothing, ``(1 + #null >= value) /
(1 + n_null)``; a reading with ``p >= alpha`` is reported as "not distinguishable from chance".

All functions are pure over arrays, a :class:`~analyzer.types.Vocabulary` and a fitted
:class:`~analyzer.neighbors.NeighborIndex`; every random draw comes from a fixed seed, so the same inputs
give the same numbers.  :func:`analyze_prompt` runs everything for one prompt and returns a JSON-ready dict;
:func:`cluster_metrics` compares several prompts.

Importing this module pulls numpy only (scipy, scikit-learn and torch load inside the functions)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .exceptions import AnalyzerError, ShapeMismatchError
from .neighbors import NeighborIndex, VocabNeighborhood, check_vectors, normalize_rows, vocab_neighborhood
from .types import SoftPrompt, Vocabulary

ALPHA = 0.05

from .stats import NULLS  # noqa: E402  the nulls and the sentence a reader sees for each

# independent random streams, one per purpose (np.random.default_rng([seed, stream]))
_STREAM_GAUSS, _STREAM_VOCAB, _STREAM_BOOT, _STREAM_PERM = 11, 12, 13, 15


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


from ._json import _f  # noqa: E402  a JSON-safe float: None for NaN/inf


def _fl(a) -> list:
    return [_f(x) for x in np.asarray(a, dtype=np.float64).ravel()]


# ---------------------------------------------------------------------------------------------------
# Significance
# ---------------------------------------------------------------------------------------------------

# one statistics layer: the comparison of a cross-prompt score (cluster metrics) lives there too
from .stats import NullComparison, compare_to_null, empirical_p  # noqa: E402
from .stats._format import _g as _fmt  # noqa: E402  a number for a sentence: 3 significant digits or "n/a"


def bootstrap_means(pool: np.ndarray, n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``n`` values drawn with replacement from ``pool`` (finite values only), ``n_boot`` times:
    the null distribution of a mean over ``n`` positions.  float64 ``"n_boot"`` (empty if the pool is)."""
    pool = np.asarray(pool, dtype=np.float64).ravel()
    pool = pool[np.isfinite(pool)]
    if pool.size == 0 or n < 1:
        return np.zeros(0)
    idx = _rng(seed, _STREAM_BOOT).integers(0, pool.size, size=(n_boot, n))
    return pool[idx].mean(axis=1)


def sign_flip_null(diffs: np.ndarray, n_perm: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``diffs`` under random sign flips (the paired null), one flip per position:
    :func:`analyzer.stats.sign_flip_null` without groups."""
    from .stats import sign_flip_null as flip

    return flip(diffs, None, n_perm, seed)


def _measure_space(what: str) -> tuple[str, str]:
    """``"tightness (model space)"`` -> ``("tightness", "model")``; ``"k-occurrence skew"`` -> (..., ``"-"``)."""
    if what.endswith(" space)") and " (" in what:
        m, sp = what[:-len(" space)")].rsplit(" (", 1)
        return m, sp
    return what, "-"


def per_token_test(values: np.ndarray, pools: Mapping[str, np.ndarray], *, init_values: np.ndarray | None = None,
                   alternative: str = "two-sided", n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA,
                   what: str = "the score", omitted: Mapping[str, str] | None = None, matched=None,
                   table=None, groups: np.ndarray | None = None, matched_claim: bool = True) -> dict:
    """A per-token score against each null; every comparison is one row of ``table``
    (:class:`analyzer.stats.TestTable`), whose adjusted ``q``/``verdict`` are written back into this dict.

    values:      ``"n"`` the score of each virtual token.
    pools:       reference null name -> ``"m"`` the score of each null query (i.i.d. pseudo-prompts).
    matched:     ``(MatchedNull, row_values)`` -- the claim-basis null, ``row_values`` one score per pool row.
    init_values: ``"n"`` the score of each position's initialisation (paired sign-flip test), or None.
    groups:      each position's group of repeated positions (sign flips and matched draws are per group).
    matched_claim: False makes the matched row a described reference instead of a claim.
    Returns a JSON-ready dict: ``value`` (mean over positions), ``per_position``, ``null`` (name -> the
    comparison, or ``{"omitted": reason}``), ``per_position_p`` and ``per_position_q`` (each position against
    each null; BH within the measure; shown, never claimed)."""
    from .stats import make_test, per_position_q

    measure, space = _measure_space(what)
    values = np.asarray(values, dtype=np.float64).ravel()
    n = int(np.isfinite(values).sum())
    value = float(np.nanmean(values)) if n else float("nan")
    out: dict[str, Any] = {"value": _f(value), "per_position": _fl(values), "null": {}, "per_position_p": {},
                           "per_position_q": {}, "n_significant_positions": {}}

    def record(name, test, extra=None):
        d = {"value": _f(test.value), "null_mean": _f(test.null_mean), "null_std": _f(test.null_sd),
             "z": _f(test.effect), "p": _f(test.p), "n_null": test.n_null, "null": name,
             "alternative": test.direction, "significant": False, "verdict": "", **(extra or {})}
        if test.p_other is not None:
            d["p_other"] = test.p_other
        out["null"][name] = d
        if table is not None:
            table.add(test, d)
        return d

    def positions(name, samples):
        pp = [empirical_p(v, samples[i] if samples.ndim == 2 else samples, alternative)
              for i, v in enumerate(values)]
        out["per_position_p"][name] = _fl(pp)
        out["per_position_q"][name] = per_position_q(pp)
        out["n_significant_positions"][name] = int(sum(q is not None and q < alpha
                                                       for q in out["per_position_q"][name]))

    if matched is not None:
        mn, row_values = matched
        record("matched", make_test(measure, space, "matched", value, mn.means(row_values), direction=alternative,
                                    null_groups=mn.draw_c, claim=matched_claim),
               {"n_pool": int(mn.sets.size)})
        positions("matched", mn.position_samples(row_values))
    for name, pool in pools.items():
        boot = bootstrap_means(pool, max(n, 1), n_boot, seed)
        record(name, make_test(measure, space, name, value, boot, direction=alternative),
               {"n_pool": int(np.isfinite(np.asarray(pool, dtype=np.float64)).sum())})
        positions(name, np.asarray(pool, np.float64))
    if init_values is not None:
        from .stats import sign_flip_null as flip

        init_values = np.asarray(init_values, dtype=np.float64).ravel()
        d = values - init_values
        flips = flip(d, groups, n_boot, seed)
        ok = np.isfinite(d)
        mean_d = float(d[ok].mean()) if ok.any() else float("nan")
        init_mean = float(np.nanmean(init_values)) if np.isfinite(init_values).any() else float("nan")
        t = make_test(measure, space, "init", value, flips, direction=alternative, center=init_mean,
                      statistic=mean_d)
        record("init", t, {"difference": _f(mean_d), "init_per_position": _fl(init_values)})
    for name, reason in (omitted or {}).items():
        out["null"].setdefault(name, {"omitted": reason})
    return out


def set_test(value: float, null_values: Mapping[str, np.ndarray], *, init_value: float | None = None,
             alternative: str = "two-sided", alpha: float = ALPHA, what: str = "the score",
             omitted: Mapping[str, str] | None = None, table=None,
             null_groups: Mapping[str, np.ndarray] | None = None) -> dict:
    """A whole-prompt score against null distributions of the same score on pseudo-prompts, each one row of
    ``table``; ``null_groups``: null name -> one label per sample where that null is composite
    (:func:`analyzer.stats.make_test`).

    Every row here is a described reference, the matched one too: these statistics measure how the positions
    relate to *each other* (shared neighbours, hubs), and meaningless prompts whose positions are correlated
    (near-copies of a few tokens, directions along the vocabulary's principal axes) reach any value of them,
    which no position-by-position matched null holds fixed (benchmarks/bench_calibration.py measured 40-70% of
    such prompts "significant")."""
    from .stats import make_test

    measure, space = _measure_space(what)
    out: dict[str, Any] = {"value": _f(value), "null": {}}
    for name, null in sorted(null_values.items(), key=lambda kv: kv[0] != "matched"):
        t = make_test(measure, space, name, value, null, direction=alternative,
                      null_groups=(null_groups or {}).get(name), claim=False)
        d = {"value": _f(t.value), "null_mean": _f(t.null_mean), "null_std": _f(t.null_sd), "z": _f(t.effect),
             "p": _f(t.p), "n_null": t.n_null, "null": name, "alternative": alternative, "significant": False,
             "verdict": f"{what} {_fmt(t.value)} vs {_fmt(t.null_mean)} ({name}): described, not tested."}
        out["null"][name] = d
        if table is not None:
            table.add(t, d)
    if init_value is not None:
        out["null"]["init"] = {"value": _f(value), "init_value": _f(init_value),
                               "difference": _f(value - init_value) if init_value is not None else None,
                               "verdict": f"{what} {_fmt(value)} vs {_fmt(init_value)} at initialisation "
                                          f"(one prompt-level number each: described, not tested)."}
    for name, reason in (omitted or {}).items():
        out["null"].setdefault(name, {"omitted": reason})
    return out


# ---------------------------------------------------------------------------------------------------
# Queries and their neighbours
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class QuerySet:
    """A batch of query vectors and their k nearest vocabulary tokens under one index.

    name:      ``prompt``, ``random_vectors``, ``vocab_tokens`` or ``init``.
    vectors:   float32 ``"q d"``.
    scores:    float32 ``"q k"`` the index's scores (cosine, csls, dot, or L2 distance), best first.
    ids:       int64 ``"q k"`` vocabulary row ids, best first.
    token_ids: int64 ``"q"`` when the queries are vocabulary rows (``vocab_tokens``, ``init``), else None.
    """

    name: str
    vectors: np.ndarray
    scores: np.ndarray
    ids: np.ndarray
    token_ids: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])

    def take(self, rows: np.ndarray) -> "QuerySet":
        return QuerySet(self.name, self.vectors[rows], self.scores[rows], self.ids[rows],
                        None if self.token_ids is None else self.token_ids[rows])


def query(index: NeighborIndex, vectors: np.ndarray, k: int, name: str = "prompt",
          token_ids: np.ndarray | None = None) -> QuerySet:
    """Neighbours of ``vectors`` under ``index`` as a :class:`QuerySet`."""
    v = check_vectors(vectors, index.vocab_.dim, what=f"{name} vectors", where=f" of {index.vocab_.name}")
    scores, ids = index.kneighbors(v, k)
    return QuerySet(name, v, scores, ids, None if token_ids is None else np.asarray(token_ids, np.int64))


def random_vectors_like(vectors: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Null (a): ``n`` isotropic Gaussian directions, row ``j`` rescaled to the norm of prompt row
    ``j mod len(vectors)``.  float32 ``"n d"``."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    g = _rng(seed, _STREAM_GAUSS).standard_normal((n, v.shape[1])).astype(np.float32)
    return normalize_rows(g) * np.resize(norms, n)[:, None].astype(np.float32)


def random_vocab_ids(vocab: Vocabulary, n: int, seed: int = 0, *, include_special: bool = False) -> np.ndarray:
    """Null (b): ``n`` distinct random vocabulary rows (non-excluded unless ``include_special``); fewer when
    the vocabulary is smaller.  int64, sorted by draw order."""
    pool = np.arange(vocab.size) if include_special else np.where(~np.asarray(vocab.excluded, bool))[0]
    return _rng(seed, _STREAM_VOCAB).choice(pool, size=min(n, pool.size), replace=False).astype(np.int64)


def init_token_ids(prompt: SoftPrompt, vocab: Vocabulary) -> tuple[np.ndarray | None, str | None]:
    """Null (c): the prompt's initialisation token ids, one per virtual token, or ``(None, reason)``."""
    ids = prompt.init_token_ids
    if ids is None:
        how = f"init={prompt.init}" if prompt.init else "its initialisation is unknown"
        return None, f"the adapter does not record its initialisation token ids ({how})"
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if ids.size != prompt.num_virtual_tokens:
        return None, (f"the adapter records {ids.size} init token ids for {prompt.num_virtual_tokens} virtual "
                      f"tokens")
    bad = ids[(ids < 0) | (ids >= vocab.size)]
    if bad.size:
        return None, f"init token ids {bad[:5].tolist()} are outside the vocabulary of {vocab.name} ({vocab.size})"
    return ids, None


@dataclass(frozen=True, eq=False)
class Baselines:
    """The prompt's queries and the null queries, each with its neighbours under one index.

    prompt:  the virtual tokens.
    nulls:   ``random_vectors`` and ``vocab_tokens`` pools (``n_null`` queries each) and ``init`` (one per
             position) when known.
    omitted: null name → why it is missing.
    """

    prompt: QuerySet
    nulls: dict[str, QuerySet]
    omitted: dict[str, str]
    k: int
    n_null: int
    seed: int
    matched: Any = None            # analyzer.nulls.MatchedNull: the claim-basis null
    groups: np.ndarray | None = None  # each position's group of repeated positions

    @property
    def pools(self) -> dict[str, QuerySet]:
        """The unpaired nulls (random vectors, vocabulary tokens)."""
        return {n: q for n, q in self.nulls.items() if n != "init"}

    @property
    def init(self) -> QuerySet | None:
        return self.nulls.get("init")

    def info(self) -> dict:
        from .nulls import CONSTRUCTIONS, FEATURES

        out = {"k": self.k, "n_null": self.n_null, "seed": self.seed}
        if self.matched is not None:
            mn = self.matched
            out["matched"] = {"description": NULLS["matched"], "n_pseudo_prompts": mn.n_boot,
                              "draws_per_position_and_construction": int(mn.sets.shape[2]),
                              "constructions": list(CONSTRUCTIONS), "constructions_used": mn.constructions_used,
                              "features": list(FEATURES),
                              "pool_size": mn.pool.size,
                              "n_position_groups": int(mn.groups.max()) + 1}
        for name in NULLS:
            if name == "matched":
                continue
            if name in self.nulls:
                out[name] = {"description": NULLS[name], "n": self.nulls[name].size}
            elif name in self.omitted:
                out[name] = {"description": NULLS[name], "omitted": self.omitted[name]}
        return out


def _query_without_self(index: NeighborIndex, token_ids: np.ndarray, k: int, name: str) -> QuerySet:
    """Neighbours of vocabulary rows used as queries, each row's own token removed from its list (a token is
    trivially its own nearest neighbour; a soft prompt is not a token)."""
    vecs = np.asarray(index.vocab_.embeddings, np.float32)[token_ids]
    q = query(index, vecs, min(k + 1, int(index.ids_.size)), name, token_ids)
    keep = np.ones(q.ids.shape, bool)
    own = q.ids == token_ids[:, None]
    first = np.where(own.any(axis=1), np.argmax(own, axis=1), q.ids.shape[1] - 1)
    keep[np.arange(q.ids.shape[0]), first] = False
    if q.ids.shape[1] == k:           # k was the whole index: nothing to drop
        keep[:] = True
    kk = keep.sum(axis=1).min()
    return QuerySet(name, q.vectors, q.scores[keep].reshape(-1, kk)[:, :k], q.ids[keep].reshape(-1, kk)[:, :k],
                    q.token_ids)


def _reference_queries(index: NeighborIndex, vocab: Vocabulary, vectors: np.ndarray, k: int, n_null: int,
                       seed: int) -> dict[str, QuerySet]:
    """The two reference pools' neighbours.  Under a scale-invariant metric (cosine, CSLS) they do not depend on
    the prompt: the random directions and the random tokens are fixed by ``seed``, and only the rescaling to the
    prompt's norms changes, which the search never sees (it searches the unit directions).  They are memoised on
    the fitted index, so the second prompt of a report (or of a calibration run) does not search them again."""
    gauss = random_vectors_like(vectors, n_null, seed)
    if index.metric not in ("cosine", "csls"):
        rv = query(index, gauss, k, "random_vectors")
        vt = _query_without_self(index, random_vocab_ids(vocab, n_null, seed, include_special=index.include_special),
                                 k, "vocab_tokens")
        return {"random_vectors": rv, "vocab_tokens": vt}
    key = (index.vocab_.key, index.metric, getattr(index, "csls_k", None), bool(index.include_special), int(k),
           int(n_null), int(seed))
    memo = index.__dict__.setdefault("_reference_memo", {})
    if key not in memo:
        unit = random_vectors_like(np.ones((1, vectors.shape[1]), np.float32), n_null, seed)
        rv = query(index, unit, k, "random_vectors")
        vt = _query_without_self(index, random_vocab_ids(vocab, n_null, seed, include_special=index.include_special),
                                 k, "vocab_tokens")
        for a in (rv.scores, rv.ids, vt.vectors, vt.scores, vt.ids, vt.token_ids):
            a.flags.writeable = False     # shared by every prompt read with this index
        memo.clear()                      # one entry: the current settings
        memo[key] = (rv.scores, rv.ids, vt)
    scores, ids, vt = memo[key]
    return {"random_vectors": QuerySet("random_vectors", gauss, scores, ids, None), "vocab_tokens": vt}


def build_baselines(vectors: np.ndarray, vocab: Vocabulary, index: NeighborIndex, *, k: int = 10,
                    n_null: int = 500, seed: int = 0, init_ids: np.ndarray | None = None,
                    init_reason: str | None = None, n_boot: int = 1000, matched: bool = True) -> Baselines:
    """Neighbours of the prompt's ``vectors`` and of the nulls under ``index`` (fitted on ``vocab``): the
    ``matched`` pseudo-prompts (:mod:`analyzer.nulls`), the two reference pools and the initialisation."""
    from .stats import position_groups

    _check_index(index, vocab)
    if isinstance(n_null, bool) or not isinstance(n_null, (int, np.integer)) or n_null < 2:
        raise AnalyzerError(f"n_null must be an int >= 2; got {n_null!r}.")
    prompt = query(index, vectors, k, "prompt")
    groups = position_groups(prompt.vectors, ids=prompt.ids)
    mn = None
    if matched:
        from .nulls import match, reference_pool

        mn = match(reference_pool(vocab, index, k), prompt.scores, prompt.ids, groups, prompt.vectors, vocab,
                   n_boot=n_boot, seed=seed)
    nulls = _reference_queries(index, vocab, prompt.vectors, k, n_null, seed)
    omitted = {}
    if init_ids is not None:
        init_ids = np.asarray(init_ids, np.int64).ravel()
        if init_ids.size != prompt.size:
            raise ShapeMismatchError(f"Expected one init token id per virtual token ({prompt.size}); "
                                     f"got {init_ids.size}.")
        nulls["init"] = query(index, np.asarray(vocab.embeddings, np.float32)[init_ids], k, "init", init_ids)
    else:
        omitted["init"] = init_reason or "no initialisation token ids were given"
    return Baselines(prompt, nulls, omitted, int(k), int(n_null), int(seed), mn, groups)


def _check_index(index: NeighborIndex, vocab: Vocabulary) -> None:
    if not hasattr(index, "index_"):
        raise AnalyzerError("The NeighborIndex is not fitted yet; call fit(vocabulary) first.")
    if index.vocab_ is not vocab and index.vocab_.key != vocab.key:
        raise AnalyzerError(f"The NeighborIndex was fitted on {index.vocab_.name} (key {index.vocab_.key[:12]}), "
                            f"not on {vocab.name} (key {vocab.key[:12]}).")


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
    return pairwise_tightness(vecs[inv.reshape(ids.shape)])


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


def mutual_neighbors(qs: QuerySet, vocab: Vocabulary, neighborhood: VocabNeighborhood, k: int | None = None
                     ) -> np.ndarray:
    """bool ``"q k"``: neighbour ``y`` of query ``x`` is a *mutual* nearest neighbour when ``x`` would also be
    among ``y``'s ``k`` nearest (cosine) if it joined the vocabulary, i.e. ``cos(x, y) >=`` the cosine of
    ``y`` to its k-th nearest other token.  Needs a :class:`VocabNeighborhood` with ``K >= k``."""
    k = qs.k if k is None else int(k)
    if k > neighborhood.K:
        raise AnalyzerError(f"Mutual neighbours at k={k} need a vocabulary neighbourhood with K >= {k}; "
                            f"got K={neighborhood.K}.")
    ids = qs.ids[:, :k]
    cos = _cosines(qs.vectors, vocab, ids)
    kth = neighborhood.kth_similarity(k)[ids]
    return np.nan_to_num(cos, nan=-np.inf) >= np.nan_to_num(kth, nan=np.inf) - 1e-6


def _cosines(vectors: np.ndarray, vocab: Vocabulary, ids: np.ndarray) -> np.ndarray:
    """cos(vectors[i], vocab row ids[i, j]): float32 ``"q k"``."""
    q = normalize_rows(vectors)
    e = normalize_rows(np.asarray(vocab.embeddings, np.float32)[ids.ravel()]).reshape(*ids.shape, -1)
    return np.einsum("qd,qkd->qk", q, e)


# ---------------------------------------------------------------------------------------------------
# 4. Geometry
# ---------------------------------------------------------------------------------------------------

def vocab_norms(vocab: Vocabulary, include_special: bool = False, norms: np.ndarray | None = None) -> np.ndarray:
    """Sorted L2 norms of the (non-excluded) vocabulary rows: float64.  ``norms``: all row norms, if known."""
    if norms is None:
        norms = np.linalg.norm(np.asarray(vocab.embeddings, np.float32), axis=1)
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
                  norms: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """For each vector, the nearest vocabulary token by cosine and by Euclidean distance, exhaustively.

    norms: the vocabulary row norms when already known (``NeighborIndex.norms_``).
    Returns ``cosine`` (float64 ``"n"``, best cosine), ``cosine_id``, ``distance`` (smallest L2 distance),
    ``distance_id``."""
    import torch

    q = np.ascontiguousarray(vectors, dtype=np.float32)
    e = _readonly_tensor(np.ascontiguousarray(np.asarray(vocab.embeddings), dtype=np.float32))
    en = torch.linalg.vector_norm(e, dim=1) if norms is None else torch.from_numpy(np.asarray(norms, np.float32))
    skip = None if include_special else torch.from_numpy(np.asarray(vocab.excluded, bool))
    out = {n: np.empty(q.shape[0]) for n in ("cosine", "distance")}
    out.update({n: np.empty(q.shape[0], np.int64) for n in ("cosine_id", "distance_id")})
    chunk = max(1, (1 << 27) // (4 * vocab.size))
    with torch.inference_mode():
        for a in range(0, q.shape[0], chunk):
            qt = torch.from_numpy(q[a:a + chunk])
            qn = torch.linalg.vector_norm(qt, dim=1)
            dot = qt @ e.T
            cos = dot / torch.clamp(qn[:, None] * en[None, :], min=1e-12)
            d2 = qn[:, None] ** 2 + en[None, :] ** 2 - 2 * dot
            if skip is not None:
                cos[:, skip] = -torch.inf
                d2[:, skip] = torch.inf
            c, ci = cos.max(dim=1)
            d, di = d2.min(dim=1)
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
    emb = np.asarray(index.vocab_.embeddings, np.float32)[index.ids_]
    scores = _full_scores(index, q, emb)
    pos = np.searchsorted(index.ids_, token_ids)
    pos = np.clip(pos, 0, index.ids_.size - 1)
    indexed = index.ids_[pos] == token_ids
    own = scores[np.arange(q.shape[0]), pos]
    better = (scores < own[:, None]) if index.metric == "l2" else (scores > own[:, None])
    ranks = better.sum(axis=1) + 1
    return np.where(indexed, ranks, 0).astype(np.int64)


def _full_scores(index: NeighborIndex, q: np.ndarray, emb: np.ndarray) -> np.ndarray:
    if index.metric in ("cosine", "csls"):
        s = normalize_rows(q) @ normalize_rows(emb).T
        if index.metric == "csls":
            s = 2.0 * s - index.r_[index.ids_][None, :]
        return s
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
    if metric not in ("cosine", "euclidean"):
        raise AnalyzerError(f"metric must be 'cosine' or 'euclidean'; got {metric!r}.")
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


# ---------------------------------------------------------------------------------------------------
# Everything for one prompt
# ---------------------------------------------------------------------------------------------------

def _label_ids(label_token_ids) -> tuple[np.ndarray, dict[str, list[int]]]:
    if label_token_ids is None:
        return np.zeros(0, np.int64), {}
    if isinstance(label_token_ids, Mapping):
        groups = {str(k): [int(i) for i in np.atleast_1d(v)] for k, v in label_token_ids.items()}
    else:
        groups = {str(int(i)): [int(i)] for i in np.atleast_1d(np.asarray(label_token_ids, np.int64))}
    ids = np.unique(np.concatenate([np.asarray(v, np.int64) for v in groups.values()])) if groups else np.zeros(0, np.int64)
    return ids, groups


def _matched_values(mn, score_of) -> tuple | None:
    """``(MatchedNull, one score per pool row)`` for a per-query score ``score_of(ids "q k") -> "q"``, computed
    only for the pool rows the prompt's matched null uses (NaN elsewhere)."""
    if mn is None:
        return None
    used = np.unique(mn.sets)
    vals = np.full(mn.pool.size, np.nan)
    vals[used] = score_of(mn.pool.ids[used])
    return mn, vals


def prepare_prompt(prompt: SoftPrompt | np.ndarray, vocab: Vocabulary, index: NeighborIndex | None, k: int,
                   init_ids: Sequence[int] | None = None):
    """Shared input handling of the per-prompt analyses: ``(name, vectors, init_ids, init_reason, index)``.

    Validates the vectors against the vocabulary, fits a cosine index when none is given, checks ``k``, and
    takes the init token ids from ``init_ids`` or the prompt's adapter (with the reason when unknown)."""
    if isinstance(prompt, SoftPrompt):
        name, vectors = prompt.name, prompt.vectors
        if init_ids is None:
            iids, reason = init_token_ids(prompt, vocab)
        else:
            iids, reason = np.asarray(init_ids, np.int64), None
    else:
        name, vectors = "prompt", np.asarray(prompt)
        iids = None if init_ids is None else np.asarray(init_ids, np.int64)
        reason = None if init_ids is not None else "no initialisation token ids were given"
    vectors = check_vectors(vectors, vocab.dim, what="soft prompt vectors", where=f" of {vocab.name}")
    if index is None:
        index = NeighborIndex(metric="cosine", k=k).fit(vocab)
    _check_index(index, vocab)
    n_tok = int(index.ids_.size)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_tok:
        raise AnalyzerError(f"k must be an int in [1, {n_tok}]; got {k!r}.")
    return name, vectors, iids, reason, index


def analyze_prompt(prompt: SoftPrompt | np.ndarray, vocab: Vocabulary, index: NeighborIndex | None = None, *,
                   k: int = 10, n_null: int = 500, n_boot: int = 1000, seed: int = 0,
                   init_ids: Sequence[int] | None = None, label_token_ids=None, text_embedder=None,
                   n_null_sub: int = 200, neighborhood: VocabNeighborhood | None | bool = None,
                   csls: bool | NeighborIndex = True, alpha: float = ALPHA, n_hubs: int = 10, table=None,
                   baselines: Baselines | None = None) -> dict:
    """Tightness (model and text space), null baselines, hubness (CSLS, mutual NN) and geometry of one prompt.

    prompt:          a :class:`SoftPrompt` (its ``init_token_ids`` give the init null) or a ``"n d"`` array.
    index:           a fitted :class:`NeighborIndex` on ``vocab`` (default: cosine, built/cached here); its
                     metric defines "neighbours" throughout (``csls`` gives hubness-corrected readings).
    k:               neighbours per query.
    n_null:          queries in each null pool (random vectors, vocabulary tokens).
    n_boot:          pseudo-prompts drawn from each pool for prompt-level p-values (p resolution 1/(n_boot+1)).
    init_ids:        overrides ``prompt.init_token_ids``.
    label_token_ids: token ids of the task's label words: a list, or label → ids.
    text_embedder:   a :class:`~analyzer.embedder.TextEmbedder` (default: MiniLM, loaded lazily); ``False`` skips
                     the text space.
    n_null_sub:      how many queries of each pool get the costlier readings: text space (each new token costs
                     MiniLM time once), nearest-token distance and CSLS under random queries.
    neighborhood:    the vocabulary's own K-neighbourhood (for mutual neighbours and vocabulary hubness);
                     default: computed/cached with K = max(k, 10); ``False`` skips both.
    csls:            also read the prompt with CSLS side by side (``True``, or a fitted csls index); ``False`` skips.
    table:           an :class:`analyzer.stats.TestTable` to add this prompt's rows to (the caller adjusts it
                     with the prompt's other tests); default: a table of its own, adjusted here.
    baselines:       :func:`build_baselines` output for this prompt, index and k (shared with relatedness).
    Returns a JSON-ready dict with ``tests`` (the table of tests: :class:`analyzer.stats.Test` rows),
    ``tightness``, ``null``, ``hubness``, ``geometry``, ``redundancy``, ``persistence``, ``summary`` (the rows'
    verdicts) and ``timings``."""
    from .stats import TestTable
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def tick(name, t0):
        timings[name] = round(time.perf_counter() - t0, 4)
        return time.perf_counter()

    t = time.perf_counter()
    name, vectors, iids, reason, index = prepare_prompt(prompt, vocab, index, k, init_ids)
    n_tok = int(index.ids_.size)
    if neighborhood is None:
        neighborhood = vocab_neighborhood(vocab, max(k, 10), include_special=index.include_special)
    elif neighborhood is False:
        neighborhood = None
    t = tick("neighborhood", t)

    B = baselines if baselines is not None else build_baselines(
        vectors, vocab, index, k=k, n_null=n_null, seed=seed, init_ids=iids, init_reason=reason, n_boot=n_boot)
    t = tick("neighbours", t)
    P = B.prompt
    init = B.init
    n = P.size
    own_table = table is None
    table = TestTable() if own_table else table
    mn = B.matched
    common = dict(n_boot=n_boot, seed=seed, alpha=alpha, omitted=B.omitted, table=table, groups=B.groups)

    # ---- 1. tightness ---------------------------------------------------------------------------
    emb = np.asarray(vocab.embeddings, np.float32)
    tight = {"k": k, "space_model": vocab.name}
    tv = {s: tightness(q.ids, emb) for s, q in {"prompt": P, **B.nulls}.items()}
    # against matched queries tightness is described, not claimed (against the initialisation it is claimed):
    # at the same matching features, meaningless queries along the vocabulary's principal directions or with
    # heavy-tailed coordinates have looser or tighter neighbours than the pool's constructions (measured: 8-14%
    # of such prompts "significant", benchmarks/bench_calibration.py) -- tightness also depends on which region
    # of the vocabulary a query points at, which no feature of the match holds fixed.
    tight["model"] = per_token_test(tv["prompt"], {s: tv[s] for s in B.pools}, init_values=tv.get("init"),
                                    matched=_matched_values(mn, lambda ids: tightness(ids, emb)),
                                    matched_claim=False, what="tightness (model space)", **common)
    t = tick("tightness_model", t)
    if text_embedder is not False:
        if text_embedder is None:
            from .embedder import TextEmbedder

            text_embedder = TextEmbedder()
        space = text_space(vocab, text_embedder)
        sub = {s: q.take(np.arange(min(n_null_sub, q.size))) for s, q in B.pools.items()}
        xv = {s: tightness(q.ids, space) for s, q in {"prompt": P, **sub}.items()}
        if init is not None:
            xv["init"] = tightness(init.ids, space)
        mt = _matched_values(mn, lambda ids: tightness(ids, space))
        tight["text"] = per_token_test(xv["prompt"], {s: xv[s] for s in sub}, init_values=xv.get("init"),
                                       matched=mt, matched_claim=False, what="tightness (text space)", **common)
        tight["text"]["embedder"] = getattr(text_embedder, "name", type(text_embedder).__name__)
        tight["text"]["n_unreadable_neighbors"] = int(np.isnan(space(P.ids.ravel())[:, 0]).sum())
        t = tick("tightness_text", t)
    else:
        tight["text"] = {"omitted": "the text space was switched off (text_embedder=False)"}

    # ---- 3. hubness -----------------------------------------------------------------------------
    hub: dict[str, Any] = {"k": k, "metric": index.metric, "n_indexed_tokens": n_tok}
    pseudo = {s: _pseudo_prompt_stats(q.ids, n, n_boot, seed, n_tok) for s, q in B.pools.items()}
    if mn is not None:
        pseudo = {"matched": _set_stats(mn.pseudo_ids(), n_tok), **pseudo}
    composite = {"matched": mn.draw_c} if mn is not None else None
    skew_p = k_occurrence_skew(P.ids, n_tok)
    hub["k_occurrence_skew"] = set_test(skew_p, {s: v["k_occurrence_skew"] for s, v in pseudo.items()},
                                        init_value=k_occurrence_skew(init.ids, n_tok) if init is not None else None,
                                        alpha=alpha, what="k-occurrence skew", omitted=B.omitted, table=table,
                                        null_groups=composite)
    hub["random_query_skew"] = {s: _f(k_occurrence_skew(q.ids, n_tok)) for s, q in B.pools.items()}
    if neighborhood is not None:
        hub["vocabulary_skew"] = _f(_skew_from_counts(neighborhood.k_occurrence[neighborhood.indexed], n_tok))
        hub["vocabulary_neighborhood"] = neighborhood.info()
    occ = k_occurrence(P.ids, vocab.size)
    rates = {s: k_occurrence(q.ids, vocab.size) / q.size for s, q in B.pools.items()}
    top = np.argsort(-occ, kind="stable")[:n_hubs]
    hub["top_hubs"] = [{"token_id": int(y), "token": vocab.tokens[y], "count": int(occ[y]),
                        "positions": np.where((P.ids == y).any(axis=1))[0].tolist(),
                        "expected_count": {s: _f(n * r[y]) for s, r in rates.items()},
                        **({"vocab_k_occurrence": int(neighborhood.k_occurrence[y])} if neighborhood is not None
                           else {})}
                       for y in top if occ[y] > 1]
    if neighborhood is not None and k <= neighborhood.K:
        mv = {s: mutual_neighbors(q, vocab, neighborhood, k).mean(axis=1) for s, q in {"prompt": P, **B.nulls}.items()}
        hub["mutual"] = per_token_test(mv["prompt"], {s: mv[s] for s in B.pools}, init_values=mv.get("init"),
                                       what="mutual-neighbour share", **common)
        hub["mutual"]["per_position_ids"] = [P.ids[i][mutual_neighbors(P, vocab, neighborhood, k)[i]].tolist()
                                             for i in range(n)]
    else:
        hub["mutual"] = {"omitted": "no vocabulary neighbourhood with K >= k"}
    t = tick("hubness", t)
    if csls is not False and index.metric != "csls" and neighborhood is not None:
        cidx = csls if isinstance(csls, NeighborIndex) else \
            NeighborIndex(metric="csls", k=k, include_special=index.include_special,
                          csls_k=neighborhood.K).fit(vocab)
        _, cids = cidx.kneighbors(P.vectors, k)
        overlap = [np.intersect1d(a, b).size / k for a, b in zip(P.ids, cids)]
        rnd = B.pools["random_vectors"].vectors[:n_null_sub]
        _, rc = cidx.kneighbors(rnd, k)
        cos_rnd = B.pools["random_vectors"].ids[:n_null_sub]
        hub["csls"] = {"csls_k": int(cidx.csls_k), "per_position_ids": cids.tolist(),
                       "overlap_with_" + index.metric: _fl(overlap), "mean_overlap": _f(np.mean(overlap)),
                       "k_occurrence_skew": _f(k_occurrence_skew(cids, n_tok)),
                       "random_query_skew": {index.metric: _f(k_occurrence_skew(cos_rnd, n_tok)),
                                             "csls": _f(k_occurrence_skew(rc, n_tok)), "n_queries": int(rc.shape[0])}}
        if neighborhood is not None:
            hubs = neighborhood.k_occurrence >= np.quantile(neighborhood.k_occurrence[neighborhood.indexed], 0.99)
            hub["csls"]["hub_share"] = {index.metric: _f(hubs[P.ids].mean()), "csls": _f(hubs[cids].mean())}
        t = tick("csls", t)
    elif index.metric == "csls":
        hub["csls"] = {"note": "the index itself uses CSLS; every reading above is hubness-corrected"}

    # ---- 4. geometry ------------------------------------------------------------------------------
    geo: dict[str, Any] = {}
    norms_sorted = vocab_norms(vocab, index.include_special, index.norms_)
    pct = norm_percentile(P.vectors, norms_sorted)
    geo["norm"] = {"per_position": _fl(np.linalg.norm(P.vectors, axis=1)), "percentile_in_vocab": _fl(pct),
                   "vocab_percentiles": {str(q): _f(np.percentile(norms_sorted, q)) for q in (1, 5, 25, 50, 75, 95, 99)},
                   "mean_percentile": _f(pct.mean())}
    near = {s: nearest_token(v, vocab, include_special=index.include_special, norms=index.norms_)
            for s, v in (("prompt", P.vectors), ("random_vectors", B.pools["random_vectors"].vectors[:n_null_sub]))}
    for key, what in (("cosine", "nearest-token cosine"), ("distance", "nearest-token distance")):
        # a matching feature of the matched null: described against the reference only, never claimed
        geo[f"nearest_{key}"] = per_token_test(near["prompt"][key], {"random_vectors": near["random_vectors"][key]},
                                               what=what, n_boot=n_boot, seed=seed, alpha=alpha, table=table)
        geo[f"nearest_{key}"]["token_ids"] = near["prompt"][f"{key}_id"].tolist()
    if neighborhood is not None:
        geo["nearest_cosine"]["vocab_nearest_other_token"] = {
            str(q): _f(np.nanpercentile(neighborhood.sims[neighborhood.indexed, 0], q)) for q in (5, 50, 95)}
    if init is not None:
        dr = drift(P.vectors, init.vectors)
        geo["drift"] = {key: {"per_position": _fl(v), "mean": _f(np.nanmean(v))} for key, v in dr.items()}
    else:
        geo["drift"] = {"omitted": B.omitted["init"]}
    t = tick("geometry", t)

    # ---- persistence ------------------------------------------------------------------------------
    pers: dict[str, Any] = {"k": k, "chance_per_token": _f(k / n_tok)}
    if init is not None:
        own = (P.ids == init.token_ids[:, None]).any(axis=1)
        anyinit = np.isin(P.ids, init.token_ids).any(axis=1)
        ranks = token_ranks(index, P.vectors, init.token_ids)
        pers["init"] = {"rate": _f(own.mean()), "per_position": own.tolist(), "rank": ranks.tolist(),
                        "any_init_token_rate": _f(anyinit.mean()),
                        "init_tokens": [vocab.tokens[i] for i in init.token_ids]}
    else:
        pers["init"] = {"omitted": B.omitted["init"]}
    lab_ids, lab_groups = _label_ids(label_token_ids)
    if lab_ids.size:
        lv = {s: np.isin(q.ids, lab_ids).any(axis=1).astype(np.float64) for s, q in {"prompt": P, **B.nulls}.items()}
        # against the matched null the rate is described, not claimed: a label word among a position's k
        # neighbours is a rare event, and the matched null estimates its chance from the 16 matched candidates of
        # each position -- too few to see a rate of a few in a thousand, so one hit in 20 positions got p=0.002.
        # Dimension-permuted trained prompts did that in 3/50 (benchmarks/bench_calibration.py).  Claimed against
        # the initialisation (how many label words the prompt kept) only.
        pers["labels"] = per_token_test(
            lv["prompt"], {s: lv[s] for s in B.pools}, init_values=lv.get("init"), what="label-word rate",
            matched=(mn, np.isin(mn.pool.ids, lab_ids).any(axis=1).astype(np.float64)) if mn is not None else None,
            matched_claim=False, **common)
        pers["labels"]["label_token_ids"] = {g: v for g, v in lab_groups.items()}
        lab_set = set(lab_ids.tolist())
        pers["labels"]["per_position_hits"] = [[int(y) for y in row if int(y) in lab_set] for row in P.ids]
    else:
        pers["labels"] = {"omitted": "no label words were given"}

    # ---- redundancy -------------------------------------------------------------------------------
    red = redundancy(P.ids)
    red_init = redundancy(init.ids) if init is not None else None
    redund: dict[str, Any] = {"shared_top1": {vocab.tokens[t_]: pos for t_, pos in red["shared_top1"].items()}}
    for key, alt in (("unique_neighbor_ratio", "two-sided"), ("unique_top1_ratio", "two-sided"),
                     ("positions_sharing_top1", "two-sided")):
        redund[key] = set_test(red[key], {s: v[key] for s, v in pseudo.items()},
                               init_value=red_init[key] if red_init else None, alternative=alt, alpha=alpha,
                               what=key.replace("_", " "), omitted=B.omitted,
                               table=table if key == "unique_neighbor_ratio" else None, null_groups=composite)
    t = tick("persistence_redundancy", t)
    timings["total"] = round(time.perf_counter() - t_start, 4)

    out = {"prompt": name, "vocabulary": vocab.name, "k": k, "metric": index.metric, "alpha": alpha,
           "n_virtual_tokens": n, "null": B.info() | {"n_boot": n_boot},
           "tightness": tight, "hubness": hub, "geometry": geo, "persistence": pers, "redundancy": redund,
           "timings": timings}
    if own_table:
        table.adjust(alpha)
        out["tests"] = table.to_list()
        out["summary"] = summarize(out)
    return out


def summarize(result: Mapping) -> list[str]:
    """The verdict sentences of a result's table of tests (``result["tests"]``): claims first, then the
    labelled references."""
    rows = result.get("tests") or []
    return [r["verdict"] for r in rows if r.get("claim")] + [r["verdict"] for r in rows if not r.get("claim")]


__all__ = ["ALPHA", "NULLS", "NullComparison", "empirical_p", "compare_to_null", "bootstrap_means", "sign_flip_null",
           "per_token_test", "set_test", "QuerySet", "query", "random_vectors_like", "random_vocab_ids",
           "init_token_ids", "Baselines", "build_baselines", "pairwise_tightness", "tightness", "text_space",
           "k_occurrence", "k_occurrence_skew", "mutual_neighbors", "vocab_norms", "norm_percentile", "nearest_token",
           "drift", "token_ranks", "redundancy", "cluster_metrics", "prepare_prompt", "analyze_prompt", "summarize"]

"""The ``matched`` null: pseudo-prompts that share with a prompt what mechanically moves its neighbour measures.

**What moves the measures.**  How tight, how hub-like and how task-related a query's vocabulary neighbours are
is driven first by *where* the query sits: how close it is to the nearest tokens (its top-k neighbour scores:
distance to the vocabulary cloud and the local density there) and how frequent its nearest token is (common
words neighbour common words).  A null that does not share these properties reports geometry as meaning: an
isotropic Gaussian direction lies far from the anisotropic cloud the vocabulary lives in, so almost anything
near that cloud "beats" it.

**The reference pool.**  Once per vocabulary, index and ``k`` (cached on disk), a pool of meaningless queries of
several constructions is made -- vocabulary-shaped Gaussian noise (the vocabulary's own mean and covariance, also
narrowed toward the mean), isotropic directions at vocabulary norms, sparse directions (2-128 non-zero
Laplace coordinates) at vocabulary norms, random vocabulary tokens, averages of two or three random tokens,
random tokens plus isotropic or vocabulary-shaped noise at random levels, tokens shrunk toward the vocabulary
mean, random tokens with their coordinates permuted, noise with the vocabulary's per-coordinate means and
spreads but independent coordinates, and the mean plus random combinations of a few of the vocabulary's principal
directions -- and each query's neighbours and *matching features*
are stored: its top-1 and top-2 scores, its mean and k-th score, the log frequency rank (token id) of its
nearest token, the mean log rank of its k neighbours (their frequency profile), and the share of its centred
vector along the vocabulary's top 50 principal directions (where it points relative to the cloud's shape), and
the neighbours' own density (their mean cosine to their 10 nearest tokens: how crowded the region is).

**Matching, position by position.**  For each virtual token, the ``m`` pool queries of each construction whose
features are nearest to its own (standardised Euclidean distance) are its matched null draws.  A pseudo-prompt
takes **one construction for all its positions** (a meaningless prompt is made by one process, so the null
includes the variation between processes, not only within one) and one matched draw per position; positions
that repeat the same vector (a tiled TEXT init) repeat the same draw, so a prompt never gets a narrower null for
repeating itself.  Every construction that reaches the prompt's features makes the same number of
pseudo-prompts, and a claim must hold against each of them: the null is composite, its p the largest of the
per-construction p-values (:func:`analyzer.stats.make_test`), since any of these processes could have made a
meaningless prompt that sits where this one sits.  Every draw comes from a fixed seed."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .types import Vocabulary

POOL_VERSION = 5
CONSTRUCTIONS = ("vocabulary-shaped noise", "isotropic directions", "random tokens", "two-token averages",
                 "three-token averages", "token + isotropic noise", "token + vocabulary-shaped noise",
                 "tokens shrunk toward the vocabulary mean", "vocabulary-shaped noise, narrowed",
                 "tokens with permuted coordinates", "sparse directions",
                 "vocabulary-shaped noise, independent coordinates", "principal directions")
FEATURES = ("top-1 score", "top-2 score", "mean top-k score", "k-th score", "log rank of the nearest token",
            "mean log rank of the k neighbours", "share along the vocabulary's principal directions",
            "the neighbours' own density")
_FEATURE_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 0.3, 0.3, 1.0, 1.0])
DENSITY_K = 10         # a neighbour's density: its mean cosine to its DENSITY_K nearest tokens (CSLS's r(y))
N_PRINCIPAL = 50       # the principal subspace of the last feature
_MOMENTS: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_POOLS: dict[tuple, "ReferencePool"] = {}
_DENSITY: dict[str, np.ndarray] = {}


def vocab_moments(vocab: Vocabulary, n_sample: int = 4096, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(mean "d", centred sample "s d")`` of the vocabulary's non-excluded rows: ``mean + w @ sample /
    sqrt(s - 1)`` with ``w ~ N(0, I_s)`` is a Gaussian with the vocabulary's mean and (sample) covariance."""
    key = f"{vocab.key}-{n_sample}-{seed}"
    if key not in _MOMENTS:
        ok = np.flatnonzero(~np.asarray(vocab.excluded, bool))
        rng = np.random.default_rng([seed, 33])
        rows = np.sort(rng.choice(ok, size=min(n_sample, ok.size), replace=False))
        x = vocab.rows(rows).astype(np.float64)
        mu = x.mean(axis=0)
        _MOMENTS[key] = (mu, (x - mu).astype(np.float32))
    return _MOMENTS[key]


def vocab_shaped_noise(vocab: Vocabulary, n: int, seed: int = 0) -> np.ndarray:
    """float32 ``"n d"``: Gaussian vectors with the vocabulary's mean and covariance."""
    mu, z = vocab_moments(vocab)
    w = np.random.default_rng([seed, 32]).standard_normal((n, z.shape[0])).astype(np.float32)
    return (mu[None, :] + (w @ z) / np.sqrt(max(z.shape[0] - 1, 1))).astype(np.float32)


def meaningless_queries(vocab: Vocabulary, construction: str, n: int, seed: int = 0) -> np.ndarray:
    """float32 ``"n d"``: ``n`` queries of one of :data:`CONSTRUCTIONS` (they carry no task information)."""
    from .neighbors import normalize_rows

    rng = np.random.default_rng([seed, 34, CONSTRUCTIONS.index(construction)])
    d = vocab.dim
    ok = np.flatnonzero(~np.asarray(vocab.excluded, bool))
    norms = vocab.norms[ok]

    def tokens():
        return vocab.rows(rng.choice(ok, size=n)).astype(np.float64)

    def iso():
        return normalize_rows(rng.standard_normal((n, d)))

    if construction == "vocabulary-shaped noise":
        x = vocab_shaped_noise(vocab, n, int(rng.integers(2**31)))
    elif construction == "isotropic directions":
        x = iso() * rng.choice(norms, size=n)[:, None]
    elif construction == "random tokens":
        x = tokens()
    elif construction in ("two-token averages", "three-token averages"):
        j = 2 if construction.startswith("two") else 3
        x = sum(tokens() for _ in range(j)) / j
    elif construction == "tokens shrunk toward the vocabulary mean":
        mu = vocab_moments(vocab)[0]
        x = mu + rng.uniform(0.05, 1.0, size=(n, 1)) * (tokens() - mu)
    elif construction == "vocabulary-shaped noise, narrowed":
        mu = vocab_moments(vocab)[0]
        x = mu + rng.uniform(0.05, 1.0, size=(n, 1)) * (vocab_shaped_noise(vocab, n, int(rng.integers(2**31))) - mu)
    elif construction == "vocabulary-shaped noise, independent coordinates":
        mu, z = vocab_moments(vocab)
        sd = z.std(axis=0).astype(np.float64)
        x = mu + sd * rng.standard_normal((n, d))
    elif construction == "principal directions":
        # the mean plus a random combination of 1-8 of the vocabulary's top-200 principal directions, at the
        # distance of a random token from the mean
        mu, top = principal_basis(vocab, 200)                                          # "200 d"
        dist = np.linalg.norm(tokens() - mu, axis=1)
        x = np.empty((n, d))
        for r in range(n):
            j = rng.choice(top.shape[0], size=int(rng.integers(1, 9)), replace=False)
            u = rng.standard_normal(j.size) @ top[j]
            x[r] = mu + dist[r] * u / np.linalg.norm(u)
    elif construction == "tokens with permuted coordinates":
        t = tokens()
        x = np.take_along_axis(t, np.argsort(rng.random(t.shape), axis=1), axis=1)
    elif construction == "sparse directions":
        x = np.zeros((n, d))
        nnz = np.minimum(np.exp(rng.uniform(np.log(2), np.log(128), size=n)).astype(int), d)
        for r in range(n):
            x[r, rng.choice(d, size=nnz[r], replace=False)] = rng.laplace(size=nnz[r])
        x *= (rng.choice(norms, size=n) / np.maximum(np.linalg.norm(x, axis=1), 1e-12))[:, None]
    else:
        t = tokens()
        u = iso() if "isotropic" in construction else \
            normalize_rows(vocab_shaped_noise(vocab, n, int(rng.integers(2**31))))
        x = t + rng.uniform(0.1, 1.5, size=(n, 1)) * np.linalg.norm(t, axis=1, keepdims=True) * u
    return np.asarray(x, np.float32)


def principal_basis(vocab: Vocabulary, n: int = N_PRINCIPAL) -> tuple[np.ndarray, np.ndarray]:
    """``(mean "d", basis "n d")``: the vocabulary's mean and its top ``n`` principal directions (from the
    :func:`vocab_moments` sample; one SVD per vocabulary, memoised)."""
    key = f"{vocab.key}-principal"
    if key not in _MOMENTS:
        _MOMENTS[key] = _cached_principal(vocab)
    mu, vt = _MOMENTS[key]
    return mu, vt[:n]


_PRINCIPAL_KEPT = 200      # the most directions any caller asks for (the "along the cloud" construction)


def _cached_principal(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """The mean and top principal directions of the :func:`vocab_moments` sample, from the vocabulary's cache
    entry when there (the SVD costs ~2 s at 1,536 dimensions, and every analysis of a prompt needs it)."""
    from .cache import atomic_path, entry_dir, read_npz

    path = entry_dir("vocab", vocab.key) / f"principal-v1-{_PRINCIPAL_KEPT}.npz"
    z = read_npz(path)
    if z is not None and z.get("mean", np.empty(0)).shape == (vocab.dim,) and z.get("basis") is not None:
        return z["mean"], z["basis"]
    mu, sample = vocab_moments(vocab)
    vt = np.linalg.svd(sample.astype(np.float64), full_matrices=False)[2][:_PRINCIPAL_KEPT]
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, mean=mu, basis=vt)
    except OSError:
        pass                                # a read-only cache: computed again next time
    return mu, vt


def token_density(vocab: Vocabulary) -> np.ndarray:
    """float ``"vocab"``: each token's mean cosine to its :data:`DENSITY_K` nearest tokens (NaN for tokens not
    indexed; the vocabulary neighbourhood is cached on disk and shared with CSLS)."""
    if vocab.key not in _DENSITY:
        from .neighbors import vocab_neighborhood

        _DENSITY[vocab.key] = np.asarray(vocab_neighborhood(vocab, DENSITY_K).r, np.float64)
    return _DENSITY[vocab.key]


def features(scores: np.ndarray, ids: np.ndarray, vectors: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """float64 ``"q F"`` matching features of queries ``vectors`` from their top-k ``scores`` and ``ids`` (see
    :data:`FEATURES`).  The last one is where the query points relative to the cloud's shape: the share of the
    centred query's squared length along the vocabulary's top principal directions (a meaningless query along
    them has looser neighbours than one spread like the vocabulary, at the same scores), then how dense the
    vocabulary is around the neighbours themselves (the mean of their :func:`token_density`)."""
    s = np.asarray(scores, np.float64)
    s2 = s[:, 1] if s.shape[1] > 1 else s[:, 0]
    lr = np.log1p(np.asarray(ids))
    mu, basis = principal_basis(vocab)
    c = np.asarray(vectors, np.float64) - mu
    along = ((c @ basis.T) ** 2).sum(axis=1) / np.maximum((c ** 2).sum(axis=1), 1e-300)
    dens = token_density(vocab)[np.asarray(ids, np.int64)]
    with np.errstate(invalid="ignore"):
        dens = np.nan_to_num(np.nanmean(dens, axis=1), nan=float(np.nanmean(token_density(vocab))))
    return np.stack([s[:, 0], s2, s.mean(axis=1), s[:, -1], lr[:, 0], lr.mean(axis=1), along, dens], axis=1)


@dataclass(frozen=True, eq=False)
class ReferencePool:
    """Meaningless queries with their neighbours under one index.

    ids:          int64 ``"N k"`` neighbour ids, best first; ``scores``: float32 ``"N k"``.
    construction: int ``"N"``: index into :data:`CONSTRUCTIONS`.
    features:     float64 ``"N F"`` (:func:`features`); ``scale``: their standard deviations."""

    ids: np.ndarray
    scores: np.ndarray
    construction: np.ndarray
    features: np.ndarray
    scale: np.ndarray
    k: int

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])


def reference_pool(vocab: Vocabulary, index, k: int, *, per_construction: int = 2000, seed: int = 0,
                   cache: bool = True) -> ReferencePool:
    """The reference pool of ``vocab`` under ``index`` (its metric defines the neighbours), memoised and cached
    on disk per vocabulary, metric, ``k`` and size (~10 s to build for SmolLM2)."""
    key = (vocab.key, index.metric, bool(index.include_special), int(getattr(index, "csls_k", 0) or 0), int(k),
           int(per_construction), int(seed))
    if key in _POOLS:
        return _POOLS[key]
    path = None
    if cache:
        from .cache import entry_dir, read_npz, text_key

        path = entry_dir("vocab", vocab.key) / f"null-pool-v{POOL_VERSION}-{text_key(json.dumps(key[1:]))}.npz"
        z = read_npz(path)
        fields = ("ids", "scores", "construction", "features", "scale")
        if z is not None and all(f in z for f in fields) and \
                z["ids"].shape == (len(CONSTRUCTIONS) * per_construction, k):
            _POOLS[key] = ReferencePool(*(z[f] for f in fields), int(k))
            return _POOLS[key]
    ids, scores, lab, f = [], [], [], []
    for c, name in enumerate(CONSTRUCTIONS):
        q = meaningless_queries(vocab, name, per_construction, seed)
        s, i = index.kneighbors(q, k)
        ids.append(i.astype(np.int64))
        scores.append(s.astype(np.float32))
        lab.append(np.full(per_construction, c, np.int64))
        f.append(features(s, i, q, vocab))
    ids, scores, lab, f = np.concatenate(ids), np.concatenate(scores), np.concatenate(lab), np.concatenate(f)
    scale = np.maximum(f.std(axis=0), 1e-9)
    pool = ReferencePool(ids, scores, lab, f, scale, int(k))
    if path is not None:
        from .cache import atomic_path

        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, ids=ids, scores=scores, construction=lab, features=f, scale=scale)
        except OSError:
            pass
    _POOLS[key] = pool
    return pool


@dataclass(frozen=True, eq=False)
class MatchedNull:
    """The matched pseudo-prompts of one prompt.

    pool:   the :class:`ReferencePool`.
    sets:   int64 ``"C n m"``: pool rows matched to each position, per construction.
    groups: int64 ``"n"``: each position's group of repeated positions.
    draw_c: int64 ``"B"``: each pseudo-prompt's construction (``n_boot`` pseudo-prompts for every construction
            that reaches the prompt); ``draw_j``: int64 ``"B G"`` its draw per group.
    reach:  float ``"C"``: how close each construction's draws come to the prompt (worst position)."""

    pool: ReferencePool
    sets: np.ndarray
    groups: np.ndarray
    draw_c: np.ndarray
    draw_j: np.ndarray
    reach: np.ndarray | None = None

    @property
    def constructions_used(self) -> list[str]:
        return [CONSTRUCTIONS[c] for c in sorted(set(self.draw_c.tolist()))]

    @property
    def n_boot(self) -> int:
        return int(self.draw_c.size)

    def rows(self) -> np.ndarray:
        """int64 ``"B n"``: the pool row behind each position of each pseudo-prompt."""
        # every member of a group takes the group's first position's matched set, so near-copies (not only
        # exact repeats) share one null query
        _, first = np.unique(self.groups, return_index=True)
        lead = first[self.groups]
        return self.sets[self.draw_c[:, None], lead[None, :], self.draw_j[:, self.groups]]

    def means(self, row_values: np.ndarray) -> np.ndarray:
        """float64 ``"B"``: the mean over positions of a per-query score (``row_values``: one per pool row)."""
        v = np.asarray(row_values, np.float64)[self.rows()]
        with np.errstate(invalid="ignore"):
            return np.nanmean(v, axis=1)

    def pseudo_ids(self) -> np.ndarray:
        """int64 ``"B n k"``: the neighbour lists of each pseudo-prompt."""
        return self.pool.ids[self.rows()]

    def position_samples(self, row_values: np.ndarray) -> np.ndarray:
        """float64 ``"n C*m"``: each position's matched null values (for per-position p-values)."""
        v = np.asarray(row_values, np.float64)[self.sets]          # C n m
        return np.moveaxis(v, 1, 0).reshape(v.shape[1], -1)


#: a construction serves as a prompt's null only where its matched draws are this close in feature space (mean
#: standardised distance of a position's draws; the pool-wide spread of each feature is 1)
CALIPER = 0.25
_REACH_FACTOR = 1.5    # ... or nearly as close as the closest construction (when none is within the caliper)


def match(pool: ReferencePool, scores: np.ndarray, ids: np.ndarray, groups: np.ndarray, vectors: np.ndarray,
          vocab: Vocabulary, *, m: int = 16, n_boot: int = 1000, seed: int = 0,
          caliper: float = CALIPER) -> MatchedNull:
    """The :class:`MatchedNull` of a prompt whose queries have top-k ``scores``/``ids`` (under the pool's
    index) and ``vectors``, with ``groups`` of repeated positions.  Only constructions that reach the prompt's features at
    typical position (median over positions of the draws' mean distance within ``caliper``, or within 1.5x the
    closest construction's) make its pseudo-prompts: a construction that cannot sit where the prompt sits is no
    match for it."""
    f = features(scores, ids, vectors, vocab)
    d = ((((pool.features[None, :, :] - f[:, None, :]) / pool.scale) ** 2) * _FEATURE_WEIGHTS).sum(axis=2)  # n N
    sets, reach = [], []
    for c in range(len(CONSTRUCTIONS)):
        cols = np.flatnonzero(pool.construction == c)
        mm = min(m, cols.size)
        part = np.argpartition(d[:, cols], mm - 1, axis=1)[:, :mm]
        sets.append(cols[part])
        reach.append(float(np.median(np.sqrt(np.take_along_axis(d[:, cols], part, axis=1)).mean(axis=1))))
    sets = np.stack(sets).astype(np.int64)                   # C n m
    reach = np.asarray(reach)
    usable = np.flatnonzero(reach <= max(caliper, _REACH_FACTOR * reach.min()))
    groups = np.asarray(groups, np.int64)
    rng = np.random.default_rng([int(seed), 35])
    draw_c = np.repeat(usable, n_boot)
    draw_j = rng.integers(0, sets.shape[2], size=(draw_c.size, int(groups.max()) + 1))
    return MatchedNull(pool, sets, groups, draw_c, draw_j, reach)


__all__ = ["CONSTRUCTIONS", "FEATURES", "vocab_moments", "vocab_shaped_noise", "meaningless_queries", "features",
           "principal_basis", "ReferencePool", "reference_pool", "MatchedNull", "match"]

"""Null construction for the per-prompt measures: the prompt's queries and the null queries, each with its
vocabulary neighbours under one index (:func:`build_baselines`).

* ``matched`` -- the claim-basis pseudo-prompts of :mod:`analyzer.nulls`;
* ``random_vectors`` -- isotropic Gaussian directions rescaled to the prompt's norms (:func:`random_vectors_like`);
* ``vocab_tokens`` -- random vocabulary tokens as queries, each without itself among its neighbours
  (:func:`random_vocab_ids`);
* ``init`` -- the prompt's own initialisation tokens when the adapter records them (:func:`init_token_ids`).

:func:`prepare_prompt` is the shared input handling of the per-prompt analyses (validation, the index, the init
ids); it runs once per prompt and its :class:`PreparedPrompt` is handed on.  Every draw comes from a fixed seed.

Importing this module pulls numpy only."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, NamedTuple, Sequence

import numpy as np

from ._params import Interval, check_param
from .exceptions import AnalyzerError, ShapeMismatchError
from .neighbors import NeighborIndex, check_vectors, normalize_rows
from .stats import NULLS, position_groups
from .stats._pseudo import _STREAM_GAUSS, _STREAM_VOCAB, _rng
from .types import SoftPrompt, Vocabulary


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
    vecs = index.vocab_.rows(token_ids)
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
        memo.clear()                      # one entry: the current settings
        memo[key] = _reference_neighbours(index, vocab, vectors.shape[1], k, n_null, seed, key)
    scores, ids, vt = memo[key]
    return {"random_vectors": QuerySet("random_vectors", gauss, scores, ids, None), "vocab_tokens": vt}


def _reference_neighbours(index: NeighborIndex, vocab: Vocabulary, dim: int, k: int, n_null: int, seed: int,
                          key: tuple) -> tuple[np.ndarray, np.ndarray, QuerySet]:
    """The neighbours of the unit random directions and of the random tokens, read from the vocabulary's cache
    entry when there (searching the 2 x ``n_null`` queries costs ~5 s on a 152k x 1,536 vocabulary; an analysis
    that meets them again reads them back).  Read-only arrays: shared by every prompt read with this index."""
    import json

    from .cache import atomic_path, entry_dir, read_npz, text_key

    token_ids = random_vocab_ids(vocab, n_null, seed, include_special=index.include_special)
    path = entry_dir("vocab", vocab.key) / f"reference-neighbours-v1-{text_key(json.dumps(key[1:]))}.npz" \
        if index.cache else None
    z = read_npz(path) if path is not None else None
    shapes = {"rv_scores": (n_null, k), "rv_ids": (n_null, k), "vt_scores": (n_null, k), "vt_ids": (n_null, k)}
    if z is not None and all(z.get(f) is not None and z[f].shape == sh for f, sh in shapes.items()) and \
            np.array_equal(z.get("vt_token_ids"), token_ids):
        rs, ri = z["rv_scores"], z["rv_ids"]
        vt = QuerySet("vocab_tokens", vocab.rows(token_ids), z["vt_scores"],
                      z["vt_ids"], token_ids)
    else:
        unit = random_vectors_like(np.ones((1, dim), np.float32), n_null, seed)
        rv = query(index, unit, k, "random_vectors")
        rs, ri = rv.scores, rv.ids
        vt = _query_without_self(index, token_ids, k, "vocab_tokens")
        if path is not None:
            try:
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    np.savez(fh, rv_scores=rs, rv_ids=ri, vt_scores=vt.scores, vt_ids=vt.ids,
                             vt_token_ids=vt.token_ids)
            except OSError:
                pass                        # a read-only cache: searched again next time
    for a in (rs, ri, vt.vectors, vt.scores, vt.ids, vt.token_ids):
        a.flags.writeable = False
    return rs, ri, vt


def build_baselines(vectors: np.ndarray, vocab: Vocabulary, index: NeighborIndex, *, k: int = 10,
                    n_null: int = 500, seed: int = 0, init_ids: np.ndarray | None = None,
                    init_reason: str | None = None, n_boot: int = 1000, matched: bool = True) -> Baselines:
    """Neighbours of the prompt's ``vectors`` and of the nulls under ``index`` (fitted on ``vocab``): the
    ``matched`` pseudo-prompts (:mod:`analyzer.nulls`), the two reference pools and the initialisation."""
    _check_index(index, vocab)
    n_null = check_param("build_baselines", "n_null", n_null, Interval(Integral, 2, None))
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
        nulls["init"] = query(index, vocab.rows(init_ids), k, "init", init_ids)
    else:
        omitted["init"] = init_reason or "no initialisation token ids were given"
    return Baselines(prompt, nulls, omitted, int(k), int(n_null), int(seed), mn, groups)


def _check_index(index: NeighborIndex, vocab: Vocabulary) -> None:
    if not hasattr(index, "index_"):
        raise AnalyzerError("The NeighborIndex is not fitted yet; call fit(vocabulary) first.")
    if index.vocab_ is not vocab and index.vocab_.key != vocab.key:
        raise AnalyzerError(f"The NeighborIndex was fitted on {index.vocab_.name} (key {index.vocab_.key[:12]}), "
                            f"not on {vocab.name} (key {vocab.key[:12]}).")


def _matched_values(mn, score_of) -> tuple | None:
    """``(MatchedNull, one score per pool row)`` for a per-query score ``score_of(ids "q k") -> "q"``, computed
    only for the pool rows the prompt's matched null uses (NaN elsewhere)."""
    if mn is None:
        return None
    used = np.unique(mn.sets)
    vals = np.full(mn.pool.size, np.nan)
    vals[used] = score_of(mn.pool.ids[used])
    return mn, vals


class PreparedPrompt(NamedTuple):
    """A prompt checked and ready for the per-prompt analyses (:func:`prepare_prompt`); a tuple, so it unpacks as
    ``name, vectors, init_ids, init_reason, index``.

    name:        the prompt's display name (``"prompt"`` for a bare array).
    vectors:     float32 ``"n d"``, checked against the vocabulary.
    init_ids:    int64 ``"n"`` initialisation token ids, or None.
    init_reason: why they are unknown (None when known).
    index:       the fitted :class:`NeighborIndex` (the given one, or a cosine index fitted here)."""

    name: str
    vectors: np.ndarray
    init_ids: np.ndarray | None
    init_reason: str | None
    index: NeighborIndex


def prepare_prompt(prompt: SoftPrompt | np.ndarray, vocab: Vocabulary, index: NeighborIndex | None, k: int,
                   init_ids: Sequence[int] | None = None) -> PreparedPrompt:
    """Shared input handling of the per-prompt analyses, done once per prompt: a :class:`PreparedPrompt`
    ``(name, vectors, init_ids, init_reason, index)`` that :func:`~analyzer.analysis.analyze` hands to
    :func:`~analyzer.metrics.analyze_prompt` and :func:`~analyzer.relatedness.task_relatedness` (``prepared=``).

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
    k = check_param("prepare_prompt", "k", k, Interval(Integral, 1, n_tok))
    return PreparedPrompt(name, vectors, iids, reason, index)

"""The task set and its scores in each space: the task's words (labels, description, keywords) with their
vocabulary rows, every token's score ``s(y)`` against the nearest task-set member (model space: CSLS or cosine
over the input embeddings, cached on disk; text space: MiniLM vectors, cached), the threshold that calibrates
"related" on the vocabulary, and one space's report (shares through :func:`analyzer.stats.per_token_test`,
per-position details, top related tokens).  See :mod:`analyzer.relatedness` for the definitions.

Importing this module pulls numpy only."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ._json import _f
from .baselines import _matched_values
from .keywords import _mine, word_index, words
from .neighbors import normalize_rows
from .stats import per_token_test
from .types import Vocabulary

def _task_set(task, vocab: Vocabulary, description: str, keywords: list[dict]) -> list[dict]:
    """The task's words: ``{"word", "kind", "ids"}``, one per distinct word (first kind wins: label,
    description, keyword)."""
    index = word_index(vocab)
    items: list[dict] = []
    seen: set[str] = set()

    def add(word: str, kind: str, ids) -> None:
        if word in seen:
            return
        seen.add(word)
        items.append({"word": word, "kind": kind, "ids": tuple(int(i) for i in ids)})

    for lab, w in zip(task.labels, task.label_words):
        lw = str(w).strip().lower()
        ids = index.get(lw)
        if ids is None:  # several words, or no whole token: its content words stand in for the model space
            ids = tuple(i for x in words(lw) for i in index.get(x, ()))
        add(lw, "label", ids)
    for w in dict.fromkeys(words(description)):
        if w in index:
            add(w, "description", index[w])
    for kw in keywords:
        add(kw["word"], "keyword" if kw.get("source") == "task" else "class keyword", kw["token_ids"])
    return items


def _max_sim(x: np.ndarray, t: np.ndarray, chunk: int = 32768) -> tuple[np.ndarray, np.ndarray]:
    """Max cosine of each row of ``x`` to the rows of ``t`` (both raw) and its argmax; NaN/-1 for NaN rows."""
    tn = normalize_rows(np.nan_to_num(np.asarray(t, np.float32)))
    m = np.full(x.shape[0], np.nan, np.float64)
    arg = np.full(x.shape[0], -1, np.int64)
    for a in range(0, x.shape[0], chunk):
        xa = np.asarray(x[a:a + chunk], np.float32)
        ok = np.isfinite(xa).all(axis=1)
        s = normalize_rows(np.where(ok[:, None], xa, 0.0)) @ tn.T
        j = np.argmax(s, axis=1)
        m[a:a + chunk] = np.where(ok, s[np.arange(s.shape[0]), j], np.nan)
        arg[a:a + chunk] = np.where(ok, j, -1)
    return m, arg


def _model_scores(emb: np.ndarray, norms: np.ndarray, t_ids: np.ndarray, r: np.ndarray | None = None,
                  chunk: int = 32768) -> tuple[np.ndarray, np.ndarray]:
    """For every vocabulary row y: ``max_t cos(y, t)`` over the rows ``t_ids`` — or, given the CSLS radii ``r``,
    ``max_t [2·cos(y, t) − r(t)] − r(y)`` — and the position of the best ``t`` in ``t_ids``.  float64/int64
    ``"vocab"``; NaN/-1 where the score is undefined (zero rows, rows without a radius)."""
    t = np.asarray(emb[t_ids], np.float32)
    tn = normalize_rows(t)
    bias = None if r is None else np.nan_to_num(np.asarray(r, np.float32)[t_ids], nan=np.inf)
    n = int(emb.shape[0])
    s = np.full(n, np.nan, np.float64)
    arg = np.full(n, -1, np.int64)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        nr = np.asarray(norms[a:b], np.float32)
        c = (np.asarray(emb[a:b], np.float32) @ tn.T) / np.maximum(nr, 1e-12)[:, None]
        if bias is not None:
            c = 2.0 * c - bias[None, :]
        j = np.argmax(c, axis=1)
        best = c[np.arange(b - a), j].astype(np.float64)
        if r is not None:
            best = best - np.asarray(r[a:b], np.float64)
        ok = (nr > 0) & np.isfinite(best)
        s[a:b] = np.where(ok, best, np.nan)
        arg[a:b] = np.where(ok, j, -1)
    return s, arg


def _cached_scores(vocab: Vocabulary, t_rows: np.ndarray, params, compute, cache: bool):
    """:func:`_model_scores` for a task set, cached on disk per vocabulary (a few hundred kB)."""
    path = None
    if cache:
        from .cache import entry_dir, text_key

        key = text_key("scores", t_rows.tolist(), list(params))
        path = entry_dir("relatedness", vocab.key) / f"scores-{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                if z["s"].shape == (vocab.size,):
                    return np.asarray(z["s"], np.float64), np.asarray(z["arg"], np.int64)
        except (OSError, ValueError, KeyError):
            pass
    s, arg = compute()
    if path is not None:
        from .cache import atomic_path

        try:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, s=s, arg=arg.astype(np.int32))
        except OSError:
            pass
    return s, arg


def _embed_cached(embedder, texts: list[str]) -> np.ndarray:
    """MiniLM vectors of the task set's texts, cached on disk when the embedder has a ``model_key``."""
    if not texts:
        return np.zeros((0, 1), np.float32)
    key_fn = getattr(embedder, "model_key", None)
    path = None
    if callable(key_fn):
        from .cache import entry_dir, text_key

        path = entry_dir("relatedness", f"text-{key_fn()}") / f"{text_key(texts)}.npy"
        try:
            x = np.load(path, allow_pickle=False)
            if x.shape[0] == len(texts):
                return x.astype(np.float32)
        except (OSError, ValueError):
            pass
    x = np.asarray(embedder.embed(texts), np.float32)
    if path is not None:
        from .cache import atomic_path

        try:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, x)
        except OSError:
            pass
    return x


def _share(related: np.ndarray) -> np.ndarray:
    """Row means of a float ``"q k"`` array with NaN for unreadable neighbours (NaN when a row has none)."""
    ok = np.isfinite(related)
    cnt = ok.sum(axis=1)
    tot = np.where(ok, related, 0.0).sum(axis=1)
    return np.divide(tot, cnt, out=np.full(related.shape[0], np.nan), where=cnt > 0)


def _space_report(*, what: str, P_ids: np.ndarray, rel_of, score_of, match_of, pools: Mapping[str, np.ndarray],
                  init_ids: np.ndarray | None, vocab: Vocabulary, common: Mapping, n_top: int,
                  null_p_names: Sequence[str], matched=None) -> dict:
    """Shares, tests, per-position details and top related tokens of one space.

    rel_of(ids "q k") -> float "q k" (1 related, 0 not, NaN unreadable); score_of(ids) -> s(y);
    match_of(ids) -> index into the task set of each token's most similar item; matched: the MatchedNull."""
    rel_p = rel_of(P_ids)
    vals = _share(rel_p)
    pool_vals = {name: _share(rel_of(ids)) for name, ids in pools.items()}
    init_vals = _share(rel_of(init_ids)) if init_ids is not None else None
    # the share against matched queries is described, not claimed: the features the null is matched on (distance,
    # density, frequency) do not fix *which* region of the vocabulary a query points at, and a meaningless query
    # in a region of common English words has more task-related neighbours than one among code tokens (measured:
    # heavy-tailed noise, benchmarks/bench_calibration.py).  The claim about the task is its specificity.
    share = per_token_test(vals, pool_vals, init_values=init_vals, what=what, matched_claim=False,
                           matched=_matched_values(matched, lambda ids: _share(rel_of(ids))), **common)
    sc, mt = score_of(P_ids), match_of(P_ids)
    per_token = []
    counts: dict[int, list[int]] = {}
    for i in range(P_ids.shape[0]):
        rel = []
        for j, y in enumerate(P_ids[i]):
            if rel_p[i, j] == 1.0:
                rel.append({"token": vocab.tokens[y], "token_id": int(y), "score": _f(sc[i, j]),
                            "match": match_of.describe(mt[i, j])})
                counts.setdefault(int(y), []).append(i)
        per_token.append({"position": i, "share": _f(vals[i]), "n_related": len(rel),
                          "n_readable": int(np.isfinite(rel_p[i]).sum()), "related": rel,
                          "p": {name: share["per_position_p"][name][i] for name in null_p_names
                                if name in share["per_position_p"]}})
    flat_ids, flat_sc, flat_mt = P_ids.ravel(), sc.ravel(), mt.ravel()
    first = {int(y): j for j, y in reversed(list(enumerate(flat_ids)))}
    top = sorted(counts, key=lambda y: (-len(counts[y]), -(flat_sc[first[y]] if np.isfinite(flat_sc[first[y]])
                                                          else -np.inf), y))[:n_top]
    top_related = [{"token": vocab.tokens[y], "token_id": int(y), "score": _f(flat_sc[first[y]]),
                    "count": len(counts[y]), "positions": sorted(set(counts[y])),
                    "match": match_of.describe(flat_mt[first[y]])} for y in top]
    return {"share": share, "per_token": per_token, "top_related": top_related}


class _Matcher:
    """``ids -> index of the task-set item`` with a ``describe`` for reports."""

    def __init__(self, fn, items: list[dict]):
        self.fn, self.items = fn, items

    def __call__(self, ids):
        return self.fn(ids)

    def describe(self, j) -> dict | None:
        j = int(j)
        if j < 0:
            return None
        it = self.items[j]
        return {"word": it["word"], "kind": it["kind"]}


def _model_related(task, vocab: Vocabulary, index, *, background, n_keywords: int, n_class_keywords: int,
                   description: str, quantile: float, model_score: str, csls_k: int, cache: bool) -> dict | None:
    """The model-space reading of "related to ``task``" over the whole vocabulary: ``related`` (float
    ``"vocab"``: 1 related, 0 not, NaN unscored), the threshold, the scores and the task set; None when no task
    word is a whole token.  Shared by the task's own report and the specificity profile across tasks."""
    kws, kw_meta = _mine(task, vocab, background=background, n=n_keywords, n_per_class=n_class_keywords,
                         cache=cache)
    items = _task_set(task, vocab, description, kws)
    rows = [(j, y) for j, it in enumerate(items) for y in it["ids"]]
    task_ids = np.unique(np.array([y for _, y in rows], np.int64))
    is_task = np.zeros(vocab.size, bool)
    is_task[task_ids] = True
    out = {"keywords": kws, "keyword_mining": kw_meta, "items": items, "rows": rows, "task_ids": task_ids,
           "is_task": is_task}
    if not rows:
        return out
    emb = np.asarray(vocab.embeddings)
    row_item = np.array([j for j, _ in rows], np.int64)
    r, ck = None, None
    if model_score == "csls":
        if index.metric == "csls":
            r, ck = index.r_, int(index.csls_k)
        else:
            from .neighbors import vocab_neighborhood

            ck = int(csls_k)
            r = vocab_neighborhood(vocab, ck, include_special=index.include_special, cache=cache).r
    t_rows = np.array([y for _, y in rows], np.int64)
    s_all, arg = _cached_scores(vocab, t_rows, (model_score, ck if r is not None else None, index.include_special),
                                lambda: _model_scores(emb, index.norms_, t_rows, r), cache)
    m_all = np.where(arg >= 0, row_item[np.maximum(arg, 0)], -1)
    calib = np.asarray(index.ids_, np.int64)
    calib = calib[~is_task[calib] & np.isfinite(s_all[calib])]
    tau = float(np.quantile(s_all[calib], quantile))
    related = np.where(np.isfinite(s_all), (s_all >= tau).astype(np.float64), np.nan)
    related[is_task] = 1.0
    out.update({"related": related, "tau": tau, "s_all": s_all, "m_all": m_all, "calib": calib, "r": r, "ck": ck})
    return out

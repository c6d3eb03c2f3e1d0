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

This module runs everything for one prompt (:func:`analyze_prompt`, a JSON-ready dict) from three rooms: the null
construction (:mod:`analyzer.baselines`), the measures (:mod:`analyzer.measures`, pure over arrays, a
:class:`~analyzer.types.Vocabulary` and a fitted :class:`~analyzer.neighbors.NeighborIndex`) and the tests
(:func:`analyzer.stats.per_token_test`, :func:`analyzer.stats.set_test`); their names stay importable from here.
Every random draw comes from a fixed seed, so the same inputs give the same numbers.  :func:`cluster_metrics`
compares several prompts.

Importing this module pulls numpy only (scipy, scikit-learn and torch load inside the functions)."""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np

from ._json import _f, _fl
from .baselines import (Baselines, PreparedPrompt, QuerySet, build_baselines, init_token_ids, prepare_prompt,
                        query, random_vectors_like, random_vocab_ids, _matched_values)
from .measures import (_pseudo_prompt_stats, _set_stats, _skew_from_counts, cluster_metrics, drift, k_occurrence,
                       k_occurrence_skew, mutual_neighbors, nearest_token, norm_percentile, pairwise_tightness,
                       redundancy, text_space, tightness, token_ranks, vocab_norms)
from .neighbors import NeighborIndex, VocabNeighborhood, vocab_neighborhood
from .stats import (ALPHA, NULLS, NullComparison, bootstrap_means, compare_to_null, empirical_p, per_token_test,
                    set_test)
from .stats import sign_flip_null as _grouped_sign_flip
from .types import SoftPrompt, Vocabulary


def sign_flip_null(diffs: np.ndarray, n_perm: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``diffs`` under random sign flips (the paired null), one flip per position:
    :func:`analyzer.stats.sign_flip_null` without groups."""
    return _grouped_sign_flip(diffs, None, n_perm, seed)


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


def _cosine_space(index: NeighborIndex, vocab: Vocabulary):
    """What tightness reads neighbours' vectors from: a cosine or CSLS index's own unit rows when every id asked
    for is indexed (neighbours always are), so that gathering thousands of scattered rows does not page the
    vocabulary's memory-map in (the kernel reads around each row: ~0.8 GB resident at 152k x 1,536); else the
    matrix's rows through :meth:`Vocabulary.rows` (which drops those pages again).  Tightness is a mean cosine, the
    same from unit rows up to float32 rounding."""
    if not index.has_unit_rows:
        return vocab.rows
    rows, ids = index.unit_rows(), np.asarray(index.ids_, np.int64)

    def vectors(wanted: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(ids, wanted), 0, ids.size - 1)
        if not np.array_equal(ids[pos], wanted):
            return vocab.rows(wanted)
        return rows[pos].numpy()

    return vectors


def analyze_prompt(prompt: SoftPrompt | np.ndarray, vocab: Vocabulary, index: NeighborIndex | None = None, *,
                   k: int = 10, n_null: int = 500, n_boot: int = 1000, seed: int = 0,
                   init_ids: Sequence[int] | None = None, label_token_ids=None, text_embedder=None,
                   n_null_sub: int = 200, neighborhood: VocabNeighborhood | None | bool = None,
                   csls: bool | NeighborIndex = True, alpha: float = ALPHA, n_hubs: int = 10, table=None,
                   baselines: Baselines | None = None, prepared: PreparedPrompt | None = None) -> dict:
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
                     with the prompt's other tests; its rows hold q and the verdicts, which the typed results
                     show in the comparisons); default: a table of its own, adjusted here, whose q and verdicts
                     the returned comparisons show (:func:`analyzer.result_groups.with_rows`).
    baselines:       :func:`build_baselines` output for this prompt, index and k (shared with relatedness).
    prepared:        :func:`prepare_prompt` output for this prompt, vocabulary, index, k and init ids (the caller
                     prepared it once for all its readings); default: prepared here.
    Returns a JSON-ready dict with ``tests`` (the table of tests: :class:`analyzer.stats.Test` rows),
    ``tightness``, ``null``, ``hubness``, ``geometry``, ``redundancy``, ``persistence``, ``summary`` (the rows'
    verdicts) and ``timings``."""
    from .result_groups import with_rows
    from .stats import TestTable
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def tick(name, t0):
        timings[name] = round(time.perf_counter() - t0, 4)
        return time.perf_counter()

    t = time.perf_counter()
    name, vectors, iids, reason, index = prepared if prepared is not None else \
        prepare_prompt(prompt, vocab, index, k, init_ids)
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
    emb = rows_of = _cosine_space(index, vocab)    # the neighbours' vectors, for cosines among them
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
        mv = {s: mutual_neighbors(q, vocab, neighborhood, k, space=rows_of).mean(axis=1)
              for s, q in {"prompt": P, **B.nulls}.items()}
        hub["mutual"] = per_token_test(mv["prompt"], {s: mv[s] for s in B.pools}, init_values=mv.get("init"),
                                       what="mutual-neighbour share", **common)
        mine = mutual_neighbors(P, vocab, neighborhood, k, space=rows_of)
        hub["mutual"]["per_position_ids"] = [P.ids[i][mine[i]].tolist()
                                             for i in range(n)]
    else:
        hub["mutual"] = {"omitted": "no vocabulary neighbourhood with K >= k"}
    t = tick("hubness", t)
    if csls is not False and index.metric != "csls" and neighborhood is not None:
        if isinstance(csls, NeighborIndex):
            cidx = csls
        elif index.metric == "cosine":          # over the cosine index's own rows: no second copy of the matrix
            cidx = index.csls_view(neighborhood.K)
        else:
            cidx = NeighborIndex(metric="csls", k=k, include_special=index.include_special,
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
    near = {s: nearest_token(v, vocab, include_special=index.include_special, norms=index.norms_, index=index)
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
    if own_table:       # the rows are the one home of q and the verdicts: the comparisons show them from there
        table.adjust(alpha)
        for key in ("tightness", "hubness", "geometry", "persistence", "redundancy"):
            out[key] = with_rows(key, out[key], table.rows)
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
           "drift", "token_ranks", "redundancy", "cluster_metrics", "PreparedPrompt",
           "prepare_prompt", "analyze_prompt", "summarize"]

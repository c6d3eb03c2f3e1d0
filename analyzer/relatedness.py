"""Task-relatedness of a soft prompt's vocabulary neighbours, each share beside its chance level.

**The task set.**  A task is described by words: its label words (the verbalizer, ``positive``/``negative``),
the content words of a description (default: the task's hand-written instruction), and keywords mined from
the task's training texts (:func:`mine_keywords`):

* *task keywords* — the task's train texts against a background (default: the train texts of the other
  built-in tasks), ranked by the z-score of the log-odds ratio with an informative Dirichlet prior (Monroe,
  Colaresi & Quinn 2008, "Fightin' Words", eq. 16-22); the prior is the pooled counts of both corpora times
  ``prior_scale``;
* *class keywords* — each class's train texts against the task's other classes, the same way (these carry
  the label semantics, ``dull``/``boring`` against ``entertaining``/``powerful``).

**Words, not model tokens.**  Texts are split into lowercase words (runs of letters, at least 2 long;
apostrophes split ``can't`` into ``can``/``t``), English function words are dropped, and each word is mapped
to the vocabulary rows whose readable string *is* that word, in any case, with or without the leading-space
mark (``␣film``, ``film``, ``␣Film``, ``Film`` ...).  No tokenizer or model is loaded: the vocabulary's readable
strings suffice, and a keyword must be a whole vocabulary token anyway to be found among a prompt's
neighbours.  Words that are no single token (a rare word the tokenizer splits) are not mined as keywords; a
label word of that kind still joins the text-space task set (MiniLM reads any string) and is listed as unmapped for
the model space.

**"Related", calibrated so that it is not trivially true.**  In each space, every token ``y`` gets a score
``s(y)``, its similarity to the nearest member ``t`` of the task set.  A neighbour is *task-related* when it is
one of the task set's own tokens, or when ``s(y)`` reaches the threshold ``tau`` = the ``quantile`` (0.95) of
``s`` over vocabulary tokens outside the task set — so by construction only ~5% of vocabulary tokens qualify
by similarity.  (Neighbour lists are no uniform sample of the vocabulary, so the nulls' shares differ from 5%:
that is what the nulls are for.)

* model space (the model's input embeddings): by default the score is hubness-corrected, ``max_t CSLS(y, t)``
  with ``CSLS(y, t) = 2·cos(y, t) − r(y) − r(t)`` and ``r`` each token's mean cosine to its 10 nearest
  vocabulary tokens (Conneau et al. 2018; :func:`~analyzer.neighbors.vocab_neighborhood`, cached).  Plain
  cosine (``model_score="cosine"``) lets dense regions of the vocabulary — under-trained rows, word-start
  fragments — count as "related" to everything: on SmolLM2 a third of random tokens' neighbours passed
  the 95% cosine threshold for the sentiment task, against ~14% with CSLS.  The threshold is calibrated
  exactly over every indexed vocabulary token;
* text space (all-MiniLM-L6-v2 on the readable strings): ``s`` against the MiniLM vectors of the task-set
  words and of the description sentence, calibrated on the ``vocab_tokens`` null pool (``n_null`` uniformly
  drawn vocabulary tokens), since embedding all 49k tokens costs minutes.  A neighbour with no readable text
  is left out of its position's share.

The neighbours are always the model's (from ``index``); the two spaces judge the same neighbour lists.

**Significance.**  Each virtual token's share of related neighbours is compared with the same share for the
three nulls of :mod:`analyzer.metrics` (:func:`~analyzer.metrics.build_baselines`): random vectors with the
prompt's norms, random vocabulary tokens, and the prompt's initialisation (paired), with
:func:`~analyzer.metrics.per_token_test`.  All draws come from fixed seeds.

Mined keywords are cached on disk (``cache/relatedness/<vocab key>/keywords-<key>.json``, keyed by the task's
texts, the background's files, the vocabulary and the parameters), and so are the vocabulary's model-space
scores against a task set (``scores-<key>.npz``) and the MiniLM vectors of the task words
(``cache/relatedness/text-<model key>/``).

The reading lives in three rooms: the words and keyword mining (:mod:`analyzer.keywords`), the task set and its
scores in each space (:mod:`analyzer.task_scores`), and here the specificity across tasks and the orchestration
(:func:`task_relatedness`, :func:`summarize`); the names of the first two stay importable from here.

Importing this module pulls numpy only."""

from __future__ import annotations

import time
from collections import Counter
from numbers import Integral, Real
from typing import Any, Mapping, Sequence

import numpy as np

from . import keywords as _keywords
from ._json import _f
from ._params import Interval, Options, check_params
from .baselines import Baselines, PreparedPrompt, _matched_values, build_baselines, prepare_prompt
from .exceptions import AnalyzerError, ShapeMismatchError
from .keywords import (STOPWORDS, _tok, count_words, log_odds_dirichlet, mine_keywords, word_index, word_token_ids,
                       words)
from .neighbors import NeighborIndex
from .stats import ALPHA, per_token_test
from .task_scores import _embed_cached, _Matcher, _max_sim, _model_related, _share, _space_report
from .types import SoftPrompt, Vocabulary

#: kept importable from here (tests read ``analyzer.relatedness._mine``); it lives in :mod:`analyzer.keywords`
_mine = _keywords._mine

# ---------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------

def _specificity(task, P, B, vocab: Vocabulary, index, related_all: np.ndarray, common: Mapping, opts: Mapping,
                 alpha: float) -> dict:
    """Is the prompt more related to ``task`` than to the other known tasks?  Per position, the task-related
    share for ``task`` minus the mean share for the other known tasks (the built-in ones and any given as
    ``background_tasks``); the prompt-level mean is tested against the same statistic of the matched
    pseudo-prompts.  Also the profile: the prompt's share for every known task."""
    from .tasks import BUILTIN_TASKS, get_task

    others, seen = [], {task.name}
    given = [t for t in (opts.get("background") or []) if t is not None]
    for t in given + list(BUILTIN_TASKS):          # a built-in task whose data is missing raises: skipped
        try:
            t = get_task(t)
        except AnalyzerError:
            continue
        if t.name not in seen:
            seen.add(t.name)
            others.append(t)
    rel = {}
    for other in others:
        o_opts = dict(opts, description=other.instruction or "")
        mr = _model_related(other, vocab, index, **o_opts)
        if "related" in mr:
            rel[other.name] = mr["related"]
    profile = {task.name: _f(np.nanmean(_share(related_all[P.ids])))}
    profile.update({name: _f(np.nanmean(_share(r[P.ids]))) for name, r in rel.items()})
    out: dict[str, Any] = {"profile": profile, "other_tasks": sorted(rel)}
    if not rel:
        out["omitted"] = "no other known task to compare with"
        return out

    def contrast(ids):
        own = _share(related_all[ids])
        return own - np.nanmean(np.stack([_share(r[ids]) for r in rel.values()]), axis=0)

    vals = contrast(P.ids)
    # one-sided: the claim is "more related to T than to the other tasks" (a specificity beyond chance the other way
    # is described in the row's verdict, not claimed -- it is not the question, and the lower tail of the matched
    # null is the less reliable one: heavy-tailed noise and sparse vectors reached it in 3/50 and 1/50 prompts,
    # benchmarks/bench_calibration.py)
    test = per_token_test(vals, {}, matched=_matched_values(B.matched, contrast), what="task specificity (model space)",
                          alternative="greater", **common)
    out.update({k: v for k, v in test.items() if k != "n_significant_positions"})
    out["definition"] = ("each virtual token's task-related share for this task minus its mean share for the "
                         f"other known tasks ({', '.join(sorted(rel))})")
    return out


def task_relatedness(prompt: SoftPrompt | np.ndarray, vocab: Vocabulary, index: NeighborIndex | None = None,
                     task=None, *, k: int = 10, description: str | None = None, n_keywords: int = 50,
                     n_class_keywords: int = 10, text_embedder=None, seed: int = 0, n_null: int = 500,
                     n_boot: int = 1000, n_null_sub: int = 200, background_tasks=None, quantile: float = 0.95,
                     alpha: float = ALPHA, n_top: int = 15, model_score: str = "csls", csls_k: int = 10,
                     init_ids: Sequence[int] | None = None, baselines: Baselines | None = None,
                     cache: bool = True, table=None, prepared: PreparedPrompt | None = None) -> dict:
    """How task-related are the vocabulary neighbours of each virtual token, against chance, in both spaces.

    prompt:           a :class:`SoftPrompt` (its ``init_token_ids`` give the init null) or a ``"n d"`` array.
    index:            a fitted :class:`NeighborIndex` on ``vocab`` (default: cosine); it defines the neighbours.
    task:             a :class:`~analyzer.tasks.Task` or a task name/path.
    k:                neighbours per virtual token.
    description:      a text describing the task (its content words join the task set; in the text space also
                      the sentence as a whole); default: the task's instruction; ``""`` for none.
    n_keywords:       task keywords mined against ``background_tasks`` (default: the other built-in tasks).
    n_class_keywords: class keywords per class (each class against the task's other classes).
    text_embedder:    a :class:`~analyzer.embedder.TextEmbedder` (default: MiniLM, loaded lazily); ``False``
                      skips the text space.
    seed, n_null, n_boot: the null machinery of :func:`~analyzer.metrics.build_baselines` and
                      :func:`~analyzer.metrics.per_token_test`.
    n_null_sub:       null queries per pool read in the text space (each new token costs MiniLM time once).
    quantile:         the similarity threshold of "related" is this quantile of the vocabulary's own scores.
    model_score:      ``"csls"`` (default: cosine corrected for hubness with the vocabulary's own
                      ``csls_k``-neighbourhood, computed/cached by ``vocab_neighborhood``) or ``"cosine"``.
    init_ids:         overrides ``prompt.init_token_ids``.
    baselines:        precomputed :func:`~analyzer.metrics.build_baselines` output for this prompt, index and k
                      (shared with :func:`~analyzer.metrics.analyze_prompt` callers to avoid recomputing).
    table:            an :class:`analyzer.stats.TestTable` to add the rows to (the caller adjusts it with the
                      prompt's other tests; its rows hold q and the verdicts); default: a table of its own,
                      adjusted here (``tests`` in the result), whose q and verdicts the returned comparisons
                      show (:func:`analyzer.result_groups.with_rows`).
    prepared:         :func:`~analyzer.baselines.prepare_prompt` output for this prompt, vocabulary, index, k and
                      init ids (the caller prepared it once for all its readings); default: prepared here.
    Returns a JSON-ready dict: ``task``, ``label_words``, ``description``, ``keywords``, ``keyword_mining``,
    ``task_set``, ``null``, ``model_space`` and ``text_space`` (each ``definition``, ``threshold``,
    ``share`` — :func:`~analyzer.metrics.per_token_test` output whose ``null`` holds NullComparison dicts —
    ``per_token`` and ``top_related``), ``summary`` (plain sentences) and ``timings``."""
    from .tasks import get_task

    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def tick(name, t0):
        timings[name] = round(time.perf_counter() - t0, 4)
        return time.perf_counter()

    if task is None:
        raise AnalyzerError("task_relatedness needs a task (a Task, a built-in task name or a task file); got None.")
    task = get_task(task)
    quantile, model_score, n_null_sub = check_params(
        "task_relatedness", {"quantile": quantile, "model_score": model_score, "n_null_sub": n_null_sub},
        {"quantile": [Interval(Real, 0.5, 1, closed="left")], "model_score": [Options("csls", "cosine")],
         "n_null_sub": [Interval(Integral, 2, None)]}).values()
    t = time.perf_counter()
    name, vectors, iids, reason, index = prepared if prepared is not None else \
        prepare_prompt(prompt, vocab, index, k, init_ids)
    if baselines is None:
        B = build_baselines(vectors, vocab, index, k=k, n_null=n_null, seed=seed, init_ids=iids, init_reason=reason,
                            n_boot=n_boot)
    else:
        B = baselines
        if B.k != k or B.prompt.size != vectors.shape[0] or not np.allclose(B.prompt.vectors, vectors):
            raise ShapeMismatchError(f"The baselines were built for another prompt or k (k={B.k}, "
                                     f"{B.prompt.size} virtual tokens); expected k={k} and "
                                     f"{vectors.shape[0]} virtual tokens of this prompt.")
    t = tick("neighbours", t)
    P = B.prompt
    n = P.size
    from .stats import TestTable

    own_table = table is None
    table = TestTable() if own_table else table
    common = dict(n_boot=n_boot, seed=seed, alpha=alpha, omitted=B.omitted, table=table, groups=B.groups)

    # ---- the task set --------------------------------------------------------------------------------
    if description is None:
        description, desc_source = task.instruction or "", "the task's instruction"
    else:
        desc_source = "given"
    description = str(description).strip()
    opts = dict(background=background_tasks, n_keywords=n_keywords, n_class_keywords=n_class_keywords,
                description=description, quantile=quantile, model_score=model_score, csls_k=csls_k, cache=cache)
    mr = _model_related(task, vocab, index, **opts)
    kws, kw_meta, items, rows = mr["keywords"], dict(mr["keyword_mining"]), mr["items"], mr["rows"]
    task_ids, is_task = mr["task_ids"], mr["is_task"]
    timings["keywords_cached"] = bool(kw_meta.pop("cached", False))  # run facts stay out of the results
    kw_meta.pop("seconds", None)
    index_words = word_index(vocab)
    t = tick("keywords", t)

    out: dict[str, Any] = {
        "prompt": name, "task": task.name, "vocabulary": vocab.name, "k": k, "metric": index.metric, "alpha": alpha,
        "n_virtual_tokens": n,
        "label_words": [{"label": lab, "word": w, **(_tok(vocab, index_words.get(w.strip().lower(), ()))),
                         **({} if w.strip().lower() in index_words else
                            {"note": f"{w!r} is not a whole token of {vocab.name}; the model space uses its "
                                     f"content words' tokens if any, the text space the word itself"})}
                        for lab, w in zip(task.labels, task.label_words)],
        "description": {"text": description, "source": desc_source if description else "none",
                        "words": [{"word": it["word"], **_tok(vocab, it["ids"])} for it in items
                                  if it["kind"] == "description"]},
        "keywords": kws, "keyword_mining": kw_meta,
        "task_set": {"n_words": len(items), "n_token_ids": int(task_ids.size),
                     "kinds": dict(Counter(it["kind"] for it in items)),
                     "unmapped": [it["word"] for it in items if not it["ids"]]},
        "null": B.info() | {"n_boot": n_boot},
    }
    pools_model = {s: q.ids for s, q in B.pools.items()}
    init_q = B.init
    nulls_p = [s for s in B.pools]

    # ---- model space ----------------------------------------------------------------------------------
    if rows:
        related_all, s_all, m_all, tau, r, ck = (mr[x] for x in ("related", "s_all", "m_all", "tau", "r", "ck"))
        calib = mr["calib"]
        mm = _Matcher(lambda ids: m_all[ids], items)
        rep = _space_report(what="task-related share (model space)", P_ids=P.ids,
                            rel_of=lambda ids: related_all[ids], score_of=lambda ids: s_all[ids], match_of=mm,
                            pools=pools_model, init_ids=None if init_q is None else init_q.ids, vocab=vocab,
                            common=common, n_top=n_top, null_p_names=nulls_p, matched=B.matched)
        score_txt = (f"CSLS(y, t) = 2·cos(y, t) − r(y) − r(t) (r: mean cosine to the {ck} nearest vocabulary "
                     f"tokens, a hubness correction)" if r is not None else "cos(y, t)")
        out["model_space"] = {
            "space": f"input embeddings of {vocab.name}",
            "score": score_txt,
            "definition": (f"a neighbour y is task-related when it is a task-set token or max over task-set tokens t "
                           f"of {score_txt} is >= {tau:.3f}, the {quantile:.0%} quantile of that score over "
                           f"{calib.size} vocabulary tokens outside the task set"),
            "threshold": _f(tau), "quantile": quantile, "n_calibration": int(calib.size),
            "vocab_related_rate": _f(np.nanmean(related_all[np.asarray(index.ids_)])), **rep}
        out["specificity"] = _specificity(task, P, B, vocab, index, related_all, common, opts, alpha)
    else:
        out["model_space"] = {"omitted": f"no task word is a whole token of {vocab.name}"}
        out["specificity"] = {"omitted": out["model_space"]["omitted"]}
    t = tick("model_space", t)

    # ---- text space -----------------------------------------------------------------------------------
    if text_embedder is False:
        out["text_space"] = {"omitted": "the text space was switched off (text_embedder=False)"}
    else:
        if text_embedder is None:
            from .embedder import TextEmbedder

            text_embedder = TextEmbedder()
        texts = [it["word"] for it in items]
        t_items = list(items)
        if description:
            texts.append(description)
            t_items.append({"word": description, "kind": "description sentence", "ids": ()})
        T = _embed_cached(text_embedder, texts)
        sub = {s: q.ids[:min(n_null_sub, q.size)] for s, q in B.pools.items()}
        calib_ids = B.pools["vocab_tokens"].token_ids
        calib_ids = calib_ids[~is_task[calib_ids]]
        matched_ids = B.matched.pool.ids[np.unique(B.matched.sets)] if B.matched is not None else np.zeros(0, int)
        need = np.unique(np.concatenate([P.ids.ravel(), calib_ids, *[v.ravel() for v in sub.values()],
                                         matched_ids.ravel(),
                                         *([init_q.ids.ravel()] if init_q is not None else [])]))
        V = np.asarray(text_embedder.token_vectors(vocab, need), np.float32)
        s_need, a_need = _max_sim(V, T)

        def lookup(ids, arr):  # need is sorted and holds every id asked for
            return arr[np.searchsorted(need, np.asarray(ids, np.int64))]

        cs = lookup(calib_ids, s_need)
        cs = cs[np.isfinite(cs)]
        tau_t = float(np.quantile(cs, quantile)) if cs.size else float("nan")

        def rel_text(ids):
            s = lookup(ids, s_need)
            r = np.where(np.isfinite(s), (s >= tau_t).astype(np.float64), np.nan)
            return np.where(is_task[np.asarray(ids, np.int64)], 1.0, r)

        mt = _Matcher(lambda ids: lookup(ids, a_need), t_items)
        rep = _space_report(what="task-related share (text space)", P_ids=P.ids, rel_of=rel_text,
                            score_of=lambda ids: lookup(ids, s_need), match_of=mt, pools=sub,
                            init_ids=None if init_q is None else init_q.ids, vocab=vocab, common=common,
                            n_top=n_top, null_p_names=nulls_p, matched=B.matched)
        ename = getattr(text_embedder, "name", type(text_embedder).__name__)
        out["text_space"] = {
            "space": f"{ename} embeddings of the tokens' readable strings",
            "embedder": ename,
            "definition": (f"a neighbour is task-related when it is a task-set token or the cosine of its text to "
                           f"the nearest task word{' or the description' if description else ''} is >= "
                           f"{tau_t:.3f}, the {quantile:.0%} quantile of that score over {cs.size} random "
                           f"vocabulary tokens (the vocab_tokens null pool); neighbours without readable text "
                           f"are left out"),
            "threshold": _f(tau_t), "quantile": quantile, "n_calibration": int(cs.size),
            "n_null_queries": {s: int(v.shape[0]) for s, v in sub.items()},
            "n_unreadable_neighbors": int((~np.isfinite(lookup(P.ids, s_need))).sum()), **rep}
        t = tick("text_space", t)

    timings["total"] = round(time.perf_counter() - t_start, 4)
    out["timings"] = timings
    if own_table:       # the rows are the one home of q and the verdicts: the comparisons show them from there
        from .result_groups import with_rows

        table.adjust(alpha)
        out = with_rows("relatedness", out, table.rows)
        out["tests"] = table.to_list()
    out["summary"] = summarize(out)
    return out


def summarize(result: Mapping, tests=None) -> list[str]:
    """Plain sentences of a :func:`task_relatedness` result: the task set, then per space the share, its
    most related tokens and each null's verdict.  The verdicts are those of the prompt's table of tests
    ``tests`` (``stats.Test`` rows or their dicts; default: ``result["tests"]``, the table of a
    :func:`task_relatedness` call that kept its own), the one home of q and the verdicts; without rows, none."""
    rows = _rows_by_null(result.get("tests") if tests is None else tests)
    lines = []
    kinds = result.get("task_set", {}).get("kinds", {})
    kw = [k["word"] for k in result.get("keywords", []) if k.get("source") == "task"][:8]
    ck = [k["word"] for k in result.get("keywords", []) if str(k.get("source", "")).startswith("class:")][:8]
    words_ = ", ".join(f"{v} {k} word{'s' if v != 1 else ''}" for k, v in kinds.items())
    lines.append(f"Task {result.get('task')!r} is described by {words_ or 'no words'}"
                 + (f"; top keywords: {', '.join(kw)}" if kw else "")
                 + (f"; top class keywords: {', '.join(ck)}" if ck else "") + ".")
    for key, label in (("model_space", "Model space"), ("text_space", "Text space")):
        sec = result.get(key, {})
        if not isinstance(sec, Mapping) or "share" not in sec:
            if isinstance(sec, Mapping) and sec.get("omitted"):
                lines.append(f"{label}: omitted ({sec['omitted']}).")
            continue
        v = sec["share"].get("value")
        top = ", ".join(f"{t['token']}×{t['count']}" for t in sec.get("top_related", [])[:6])
        lines.append(f"{label}: {v:.2f} of each virtual token's {result.get('k')} nearest tokens are task-related "
                     f"on average (threshold {sec.get('threshold', float('nan')):.3f} = the "
                     f"{sec.get('quantile', 0):.0%} quantile over the vocabulary)"
                     + (f"; most related: {top}" if top else "; none is related") + "."
                     if v is not None else f"{label}: no readable neighbours.")
        space = key.split("_")[0]
        for name in ("matched", "init", "random_vectors", "vocab_tokens"):
            t = rows.get(("task-related share", space, name))
            if isinstance(sec["share"].get("null", {}).get(name), Mapping) and t is not None and t.verdict:
                lines.append(t.verdict)
        if key == "model_space":
            lines += _specificity_lines(result, rows)
    return lines


def _rows_by_null(tests) -> dict:
    """``(measure, space, null)`` -> the ``stats.Test`` row, from rows or their dicts."""
    from .stats import Test

    rows = [t if isinstance(t, Test) else Test.from_dict(t) for t in tests or ()]
    return {(t.measure, t.space, t.null): t for t in rows}


def _higher(t) -> bool:
    return t is not None and bool(t.significant) and t.value is not None and t.null_mean is not None \
        and t.value > t.null_mean


def _specificity_lines(result: Mapping, rows: Mapping) -> list[str]:
    """The relatedness profile across tasks, the specificity verdict, and whether "related to T" is claimed:
    only when the prompt is more related to T than to the other known tasks, beyond matched null queries (the
    task-related share alone is described: it also measures which region of the vocabulary a query points at).
    ``rows``: the prompt's table of tests by ``(measure, space, null)``."""
    spec = result.get("specificity") or {}
    prof = spec.get("profile") or {}
    lines = []
    if prof:
        lines.append("Relatedness profile (model space; share of neighbours related to each known task): "
                     + ", ".join(f"{t} {v:.2f}" for t, v in prof.items() if v is not None) + ".")
    c = (spec.get("null") or {}).get("matched")
    t = rows.get(("task specificity", "model", "matched"))
    if isinstance(c, Mapping) and t is not None and t.verdict:
        lines.append(t.verdict)
    if c is not None:
        task = result.get("task")
        lines.append(f"Related to task {task!r}: yes -- more related to it than to the other known tasks, beyond "
                     f"matched null queries." if _higher(t) else
                     f"Related to task {task!r}: not claimed (that needs a specificity higher than chance).")
    return lines


__all__ = ["STOPWORDS", "words", "word_index", "word_token_ids", "count_words", "log_odds_dirichlet", "mine_keywords",
           "task_relatedness", "summarize"]

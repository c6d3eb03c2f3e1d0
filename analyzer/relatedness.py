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

Importing this module pulls numpy only."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .exceptions import AnalyzerError, ModelNotFoundError, ShapeMismatchError
from .metrics import ALPHA, Baselines, _matched_values, build_baselines, per_token_test, prepare_prompt
from .neighbors import NeighborIndex, normalize_rows
from .types import SoftPrompt, Vocabulary

#: bump when the mining or its output changes (part of the cache key)
_KEYWORDS_VERSION = 2  # 2: interrogatives are no longer stop words

_WORD = re.compile(r"[^\W\d_]+")
_MARK = "␣"

#: English function words (and SMS/HTML debris) that never count as task words.  The interrogatives (what, who,
#: where, when, which, why, how, whom, whose) are kept out of this list on purpose: for a question-type task
#: they *are* the task words, and the log-odds against the other tasks' texts keeps them out of tasks they do
#: not distinguish.
STOPWORDS = frozenset("""
a about above after again against all almost also although always am among an and another any anyone
anything are aren around as at be became because been before being below between both but by can cannot
could couldn did didn do does doesn doing don done down during each either else enough etc even ever every
few for from further get gets got had hadn has hasn have haven having he her here hers herself him himself his
however if in into is isn it its itself just ll me might mine more most much must mustn my myself neither
no nor not now of off often on once one only or other others otherwise our ours ourselves out over own per
rather re same shan she should shouldn since so some such than that the their theirs them themselves then
there these they this those though through thus to too under until up upon us ve very via was wasn we well
were weren whether while will with within without
won would wouldn yet you your yours yourself yourselves
gt lt amp quot nbsp http https www com
""".split())


# ---------------------------------------------------------------------------------------------------
# Words and vocabulary tokens
# ---------------------------------------------------------------------------------------------------

def words(text: str, *, stopwords: bool = True) -> list[str]:
    """Lowercase words of ``text`` (runs of letters, length >= 2), function words dropped unless
    ``stopwords=False``."""
    out = [w for w in _WORD.findall(str(text).lower()) if len(w) >= 2]
    return [w for w in out if w not in STOPWORDS] if stopwords else out


_WORD_INDEX: dict[str, dict[str, tuple[int, ...]]] = {}


def word_index(vocab: Vocabulary) -> dict[str, tuple[int, ...]]:
    """Lowercase word -> the (non-excluded) vocabulary rows whose readable string is that word, in any case,
    with or without one leading ``␣``.  The preferred row comes first: ``␣word``, ``word``, then the others
    in row order.  Memoised per vocabulary key."""
    memo = _WORD_INDEX.get(vocab.key)
    if memo is not None:
        return memo
    excluded = np.asarray(vocab.excluded, bool)
    groups: dict[str, list[tuple[int, int]]] = {}
    for i, tok in enumerate(vocab.tokens):
        if excluded[i]:
            continue
        spaced = tok.startswith(_MARK)
        s = tok[1:] if spaced else tok
        if len(s) < 2 or not s.isalpha():
            continue
        w = s.lower()
        rank = 0 if (spaced and s == w) else 1 if s == w else 2
        groups.setdefault(w, []).append((rank, i))
    out = {w: tuple(i for _, i in sorted(v)) for w, v in groups.items()}
    _WORD_INDEX[vocab.key] = out
    return out


def word_token_ids(vocab: Vocabulary, word: str) -> tuple[int, ...]:
    """The vocabulary rows of one word (see :func:`word_index`), preferred form first; empty when the word is
    no whole token."""
    return word_index(vocab).get(str(word).strip().lower(), ())


def _tok(vocab: Vocabulary, ids: Sequence[int]) -> dict:
    ids = [int(i) for i in ids]
    return {"token": vocab.tokens[ids[0]] if ids else None, "token_id": ids[0] if ids else None, "token_ids": ids}


# ---------------------------------------------------------------------------------------------------
# Keyword mining: log-odds ratio with an informative Dirichlet prior (Monroe et al. 2008)
# ---------------------------------------------------------------------------------------------------

def count_words(texts: Iterable[str]) -> Counter:
    """Word counts of ``texts`` (see :func:`words`)."""
    c: Counter = Counter()
    for t in texts:
        c.update(words(t))
    return c


def log_odds_dirichlet(target: Mapping[str, int], background: Mapping[str, int], *,
                       prior_scale: float = 1.0) -> dict[str, tuple[float, float]]:
    """Word -> ``(delta, z)``: the log-odds ratio of each word in ``target`` against ``background`` with an
    informative Dirichlet prior, and its z-score (Monroe, Colaresi & Quinn 2008, eq. 16-22).

    The prior is ``alpha_w = prior_scale * (y_target_w + y_background_w)``, ``alpha_0 = sum_w alpha_w``:
    ``delta_w = log((y_t + a_w) / (n_t + a_0 - y_t - a_w)) - log((y_b + a_w) / (n_b + a_0 - y_b - a_w))``,
    ``var(delta_w) ~ 1/(y_t + a_w) + 1/(y_b + a_w)``.  Positive z: over-represented in ``target``."""
    if not (isinstance(prior_scale, (int, float)) and prior_scale > 0 and math.isfinite(prior_scale)):
        raise AnalyzerError(f"prior_scale must be a positive number; got {prior_scale!r}.")
    vocab = sorted(set(target) | set(background))
    if not vocab:
        return {}
    yt = np.array([target.get(w, 0) for w in vocab], np.float64)
    yb = np.array([background.get(w, 0) for w in vocab], np.float64)
    nt, nb = yt.sum(), yb.sum()
    a = prior_scale * (yt + yb)
    a0 = a.sum()
    delta = np.log((yt + a) / (nt + a0 - yt - a)) - np.log((yb + a) / (nb + a0 - yb - a))
    z = delta / np.sqrt(1.0 / (yt + a) + 1.0 / (yb + a))
    return {w: (float(d), float(s)) for w, d, s in zip(vocab, delta, z)}


def _texts_key(task) -> str:
    """Content hash of a task's train split (texts and labels)."""
    joined = "\x1e".join(f"{ex.label}\x1f{ex.text}" for ex in task.train)
    return hashlib.blake2b(joined.encode("utf-8", "replace"), digest_size=16).hexdigest()


def _background_plan(task, background) -> tuple[list[tuple[str, Any, Any]], dict[str, str]]:
    """``[(name, identity, loader)]`` of the background corpora and ``{name: why skipped}``.  Built-in tasks
    are identified by their data file's content key, so a warm cache never loads them."""
    from .cache import file_key
    from .models import data_path
    from .tasks import BUILTIN_TASKS, Task, get_task

    own = None if getattr(task, "file", None) else task.name.lower()   # a user file is never the built-in task
    if background is None:
        background = [n for n in BUILTIN_TASKS if n != own]
    elif isinstance(background, (str, Task)):
        background = [background]
    plan, skipped = [], {}
    for b in background:
        if isinstance(b, Task):
            if b is task:
                skipped[b.name] = "is the task itself"
                continue
            plan.append((b.name, ("task", b.name, _texts_key(b)), (lambda t=b: t)))
            continue
        name = str(b).strip()
        if name.lower() == own and name.lower() in BUILTIN_TASKS:
            skipped[name] = "is the task itself"
            continue
        if name.lower() in BUILTIN_TASKS:
            try:
                path = data_path(BUILTIN_TASKS[name.lower()].data)
            except ModelNotFoundError as e:
                skipped[name] = str(e)
                continue
            plan.append((name.lower(), ("builtin", name.lower(), file_key(path)),
                         (lambda n=name.lower(): get_task(n))))
        else:
            t = get_task(name)  # a user file: TaskError names the problem
            plan.append((t.name, ("task", t.name, _texts_key(t)), (lambda t=t: t)))
    return plan, skipped


def _rank(scores: Mapping[str, tuple[float, float]], target: Counter, other: Counter, index: Mapping[str, tuple],
          n: int, min_count: int, source: str) -> list[dict]:
    cand = [(w, d, z) for w, (d, z) in scores.items() if z > 0 and target.get(w, 0) >= min_count and w in index]
    cand.sort(key=lambda x: (-x[2], x[0]))
    return [{"word": w, **_tokref(index[w]), "log_odds": round(d, 6), "z": round(z, 6), "count": int(target[w]),
             "background_count": int(other.get(w, 0)), "source": source} for w, d, z in cand[:n]]


def _tokref(ids: tuple[int, ...]) -> dict:
    return {"token_id": int(ids[0]), "token_ids": [int(i) for i in ids]}


def _mine(task, vocab: Vocabulary, *, background=None, n: int = 50, n_per_class: int = 10, min_count: int = 3,
          prior_scale: float = 1.0, cache: bool = True) -> tuple[list[dict], dict]:
    """:func:`mine_keywords` plus a description of how they were mined (background, sizes, cache)."""
    from .tasks import get_task

    task = get_task(task)
    for name, val in (("n", n), ("n_per_class", n_per_class), ("min_count", min_count)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 0:
            raise AnalyzerError(f"The {name!r} parameter of mine_keywords must be an int >= 0. Got {val!r} instead.")
    plan, skipped = _background_plan(task, background)
    params = {"n": int(n), "n_per_class": int(n_per_class), "min_count": int(min_count),
              "prior_scale": float(prior_scale)}
    meta: dict[str, Any] = {
        "method": "log-odds ratio with an informative Dirichlet prior (Monroe et al. 2008), ranked by z",
        "unit": "lowercase words mapped to whole vocabulary tokens (any case, with or without the leading space)",
        "background": [p[0] for p in plan], "background_skipped": skipped, **params}
    path = None
    if cache:
        from .cache import entry_dir, text_key

        key = text_key("keywords", _KEYWORDS_VERSION, task.name, list(task.labels), _texts_key(task),
                       [p[1] for p in plan], vocab.key, params)
        path = entry_dir("relatedness", vocab.key) / f"keywords-{key}.json"
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            stored["meta"]["cached"] = True
            return stored["keywords"], stored["meta"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing or damaged: mined below
    t0 = time.perf_counter()
    index = word_index(vocab)
    own = count_words(ex.text for ex in task.train)
    kws: list[dict] = []
    if plan and n > 0:
        bg: Counter = Counter()
        sizes = {}
        for name, _, load in plan:
            btask = load()
            sizes[name] = len(btask.train)
            bg.update(count_words(ex.text for ex in btask.train))
        meta["n_background_texts"] = sizes
        kws += _rank(log_odds_dirichlet(own, bg, prior_scale=prior_scale), own, bg, index, n, min_count, "task")
    elif n > 0:
        meta["task_keywords_omitted"] = "no background corpus: task keywords need texts to contrast with"
    if n_per_class > 0:
        per_class = [Counter() for _ in task.labels]
        for ex in task.train:
            per_class[ex.label].update(words(ex.text))
        for c, lab in enumerate(task.labels):
            rest = Counter()
            for j, cnt in enumerate(per_class):
                if j != c:
                    rest.update(cnt)
            kws += _rank(log_odds_dirichlet(per_class[c], rest, prior_scale=prior_scale), per_class[c], rest,
                         index, n_per_class, min_count, f"class:{lab}")
    for kw in kws:
        kw["token"] = vocab.tokens[kw["token_id"]]
    kws = [{"word": k["word"], "token": k["token"], **{x: k[x] for x in k if x not in ("word", "token")}}
           for k in kws]
    meta.update(n_task_texts=len(task.train), seconds=round(time.perf_counter() - t0, 3), cached=False)
    if path is not None:
        from .cache import atomic_write_text

        try:
            atomic_write_text(path, json.dumps({"keywords": kws, "meta": meta}))
        except OSError:
            pass  # a read-only cache only costs time
    return kws, meta


def mine_keywords(task, vocab: Vocabulary, *, background=None, n: int = 50, n_per_class: int = 10,
                  min_count: int = 3, prior_scale: float = 1.0, cache: bool = True) -> list[dict]:
    """Keywords of ``task`` as vocabulary tokens, most distinctive first.

    task:        a :class:`~analyzer.tasks.Task` or a task name/path (``get_task``).
    background:  None (the other built-in tasks' train texts), task names/paths or Task objects; ``[]`` skips
                 the task-level keywords.
    n:           task keywords (the task's train texts against the background).
    n_per_class: class keywords per class (each class's train texts against the task's other classes).
    min_count:   a word must occur at least this often in the texts it is a keyword of.
    prior_scale: strength of the informative Dirichlet prior (pooled counts times this).
    Returns dicts ``{"word", "token", "token_id", "token_ids", "log_odds", "z", "count", "background_count",
    "source"}`` — task keywords first (``source="task"``), then each class's (``"class:<label>"``).  Only words
    that are whole vocabulary tokens qualify (see the module docstring)."""
    return _mine(task, vocab, background=background, n=n, n_per_class=n_per_class, min_count=min_count,
                 prior_scale=prior_scale, cache=cache)[0]


# ---------------------------------------------------------------------------------------------------
# The task set and its scores in each space
# ---------------------------------------------------------------------------------------------------

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


def _f(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


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
                     cache: bool = True, table=None) -> dict:
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
                      prompt's other tests); default: a table of its own, adjusted here (``tests`` in the result).
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
    if not (isinstance(quantile, (int, float)) and 0.5 <= quantile < 1.0):
        raise AnalyzerError(f"quantile must be a number in [0.5, 1); got {quantile!r}.")
    if model_score not in ("csls", "cosine"):
        raise AnalyzerError(f"model_score must be 'csls' or 'cosine'; got {model_score!r}.")
    if isinstance(n_null_sub, bool) or not isinstance(n_null_sub, (int, np.integer)) or n_null_sub < 2:
        raise AnalyzerError(f"n_null_sub must be an int >= 2; got {n_null_sub!r}.")
    t = time.perf_counter()
    name, vectors, iids, reason, index = prepare_prompt(prompt, vocab, index, k, init_ids)
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
    if own_table:
        table.adjust(alpha)
        out["tests"] = table.to_list()
    out["summary"] = summarize(out)
    return out


def summarize(result: Mapping) -> list[str]:
    """Plain sentences of a :func:`task_relatedness` result: the task set, then per space the share, its
    most related tokens and each null's verdict."""
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
        for name in ("matched", "init", "random_vectors", "vocab_tokens"):
            c = sec["share"].get("null", {}).get(name)
            if isinstance(c, Mapping) and c.get("verdict"):
                lines.append(c["verdict"])
        if key == "model_space":
            lines += _specificity_lines(result)
    return lines


def _higher(c) -> bool:
    return isinstance(c, Mapping) and bool(c.get("significant")) and c.get("value") is not None \
        and c.get("null_mean") is not None and c["value"] > c["null_mean"]


def _specificity_lines(result: Mapping) -> list[str]:
    """The relatedness profile across tasks, the specificity verdict, and whether "related to T" is claimed:
    only when the prompt is more related to T than to the other known tasks, beyond matched null queries (the
    task-related share alone is described: it also measures which region of the vocabulary a query points at)."""
    spec = result.get("specificity") or {}
    prof = spec.get("profile") or {}
    lines = []
    if prof:
        lines.append("Relatedness profile (model space; share of neighbours related to each known task): "
                     + ", ".join(f"{t} {v:.2f}" for t, v in prof.items() if v is not None) + ".")
    c = (spec.get("null") or {}).get("matched")
    if isinstance(c, Mapping) and c.get("verdict"):
        lines.append(c["verdict"])
    if c is not None:
        task = result.get("task")
        lines.append(f"Related to task {task!r}: yes -- more related to it than to the other known tasks, beyond "
                     f"matched null queries." if _higher(c) else
                     f"Related to task {task!r}: not claimed (that needs a specificity higher than chance).")
    return lines


__all__ = ["STOPWORDS", "words", "word_index", "word_token_ids", "count_words", "log_odds_dirichlet", "mine_keywords",
           "task_relatedness", "summarize"]

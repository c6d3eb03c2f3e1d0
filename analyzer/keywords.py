"""The words of a task: texts split into lowercase content words (English function words dropped), each word
mapped to the vocabulary rows whose readable string *is* that word (with or without the leading-space mark, in
any case), and keywords mined from the task's training texts by the log-odds ratio with an informative Dirichlet
prior (Monroe, Colaresi & Quinn 2008) -- task keywords against a background of other tasks, class keywords each
class against the task's other classes.  No tokenizer or model is loaded.  Mined keywords are cached on disk
(``cache/relatedness/<vocab key>/keywords-<key>.json``).  See :mod:`analyzer.relatedness` for how they are used.

Importing this module pulls numpy only."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from numbers import Integral, Real
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ._params import Interval, check_param, check_params
from .exceptions import ModelNotFoundError
from .types import Vocabulary


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


#: the strength of the informative Dirichlet prior: a finite number > 0
_PRIOR_SCALE = Interval(Real, 0, None, closed="neither")


def log_odds_dirichlet(target: Mapping[str, int], background: Mapping[str, int], *,
                       prior_scale: float = 1.0) -> dict[str, tuple[float, float]]:
    """Word -> ``(delta, z)``: the log-odds ratio of each word in ``target`` against ``background`` with an
    informative Dirichlet prior, and its z-score (Monroe, Colaresi & Quinn 2008, eq. 16-22).

    The prior is ``alpha_w = prior_scale * (y_target_w + y_background_w)``, ``alpha_0 = sum_w alpha_w``:
    ``delta_w = log((y_t + a_w) / (n_t + a_0 - y_t - a_w)) - log((y_b + a_w) / (n_b + a_0 - y_b - a_w))``,
    ``var(delta_w) ~ 1/(y_t + a_w) + 1/(y_b + a_w)``.  Positive z: over-represented in ``target``."""
    prior_scale = check_param("log_odds_dirichlet", "prior_scale", prior_scale, _PRIOR_SCALE)
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
    count = [Interval(Integral, 0, None)]
    check_params("mine_keywords", {"n": n, "n_per_class": n_per_class, "min_count": min_count,
                                   "prior_scale": prior_scale},
                 {"n": count, "n_per_class": count, "min_count": count,
                  "prior_scale": [_PRIOR_SCALE]})
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

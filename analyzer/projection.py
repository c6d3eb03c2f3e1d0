"""UMAP layouts of a vocabulary, fitted once per model and cached; prompts placed with ``transform``.

A layout is fitted on a fixed random sample of the vocabulary (``n_sample`` rows, default 4,000, special and
unused rows left out) with cosine distance, and stored in the user cache beside the vocabulary (same content
key) as a plain ``.npz`` (no pickle): the sample's row ids, its 2-D/3-D coordinates and UMAP's curve parameters
``a``/``b``.  New points -- virtual tokens, their neighbours, snapshots of a training run -- are placed with
UMAP's out-of-sample ``transform``: their exact cosine k-nearest neighbours among the sample, UMAP's fuzzy
membership weights, the weighted mean of those neighbours' coordinates, then a short optimisation against the
fixed layout when ``refine=True`` (umap-learn's own functions, the steps of ``UMAP.transform``).  So the
background never moves when prompts are added, and a cached layout is reused by every process and session.

``refine`` is off by default, measured on SmolLM2 (500 held-out tokens): without the stochastic refinement a
placed point lies closer to the map positions of its 5 nearest sample tokens (mean 2-D distance 1.11 vs 1.42;
random pairs: 2.80), and placement is deterministic -- the same vector always lands on the same spot, so a
virtual token that equals a vocabulary embedding sits exactly on that token (a vector identical to a sample
token takes that token's fitted position).

Speed on 2 CPU cores (SmolLM2, 49,152 × 576): the exact kNN graph of the sample is one matrix product (~0.5 s);
the UMAP optimisation ~3-5 s; numba compiles umap's kernels once per installation (their on-disk caching is
switched on here), ~10-15 s the very first time.  Transforming a few hundred points takes ~0.1 s.

    layout = UmapLayout(n_components=2).fit(vocab)          # cached: instant the second time
    xy = layout.transform(prompt.vectors)                   # "n_virtual 2"

Importing this module pulls numpy only; umap (and numba) load inside ``fit``/``transform``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Sequence

import numpy as np

from ._params import SEED, Boolean, Interval, Options, check_params
from .exceptions import AnalyzerError
from .types import SoftPrompt, Vocabulary

_CACHE_FORMAT = 1
_INSTALL = "pip install umap-learn>=0.5.12"


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def _import_umap():
    """umap-learn's building blocks, with numba's on-disk caching switched on for its kernels (umap leaves
    most of them uncached, which costs ~10 s of JIT compilation in every new process)."""
    try:
        import umap  # noqa: F401
        import umap.layouts as layouts
        import umap.umap_ as umap_
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise AnalyzerError(f"UMAP layouts need umap-learn ({e}); install it with: {_INSTALL}") from None
    _enable_numba_cache()
    return umap_, layouts


_CACHING_ON = False


def _enable_numba_cache() -> None:
    global _CACHING_ON
    if _CACHING_ON:
        return
    _CACHING_ON = True
    try:
        from numba.core.registry import CPUDispatcher
        import umap.layouts
        import umap.spectral
        import umap.umap_
        import umap.utils
    except ImportError:  # pragma: no cover
        return
    for mod in (umap.umap_, umap.layouts, umap.spectral, umap.utils):
        for obj in list(vars(mod).values()):
            if isinstance(obj, CPUDispatcher) and getattr(obj.py_func, "__module__", None) == mod.__name__ \
                    and getattr(obj, "_cache", None) is not None and type(obj._cache).__name__ == "NullCache":
                try:
                    obj.enable_caching()
                except Exception:  # noqa: BLE001 — no writable cache location: compile in memory as before
                    pass


def _exact_knn(queries: np.ndarray, base: np.ndarray, k: int, *, exclude_self: bool = False,
               block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN of unit ``queries`` among unit ``base``: ``(ids "n k" int32, distances "n k" float32)``,
    nearest first.  With ``exclude_self`` row i of queries is row i of base and comes first at distance 0
    (UMAP's convention for its own kNN graph)."""
    n = queries.shape[0]
    ids = np.empty((n, k), dtype=np.int32)
    dists = np.empty((n, k), dtype=np.float32)
    for s in range(0, n, block):
        sims = queries[s:s + block] @ base.T
        if exclude_self:
            rows = np.arange(sims.shape[0])
            sims[rows, s + rows] = np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        ids[s:s + block] = np.take_along_axis(part, order, axis=1)
        d = 1.0 - np.take_along_axis(ps, order, axis=1)
        if exclude_self:
            d[:, 0] = 0.0
        dists[s:s + block] = np.clip(d, 0.0, 2.0)
    return ids, dists


def _smooth_knn_sigmas(dists: np.ndarray, k: float, n_iter: int = 64, tol: float = 1e-5) -> np.ndarray:
    """umap's ``smooth_knn_dist`` with ``local_connectivity=0`` (rho = 0), vectorised: per row, the bandwidth
    sigma with ``sum_j exp(-d_j / sigma) = log2(k)`` over the neighbours after the first (as umap sums them),
    by the same bisection; floored at 1e-3 × the mean distance."""
    d = dists[:, 1:].astype(np.float64)
    n = d.shape[0]
    target = np.log2(k)
    lo, hi, mid = np.zeros(n), np.full(n, np.inf), np.ones(n)
    done = np.zeros(n, dtype=bool)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for _ in range(n_iter):
            psum = np.where(d > 0, np.exp(-d / mid[:, None]), 1.0).sum(axis=1)
            done |= np.abs(psum - target) < tol
            if done.all():
                break
            greater = (psum > target) & ~done
            smaller = (psum <= target) & ~done
            hi = np.where(greater, mid, hi)
            lo = np.where(smaller, mid, lo)
            mid = np.where(greater, (lo + hi) / 2.0,
                           np.where(smaller, np.where(np.isinf(hi), mid * 2.0, (lo + hi) / 2.0), mid))
    floor = 1e-3 * float(np.mean(dists)) if dists.size else 0.0
    return np.maximum(mid, floor)


class UmapLayout:
    """A 2-D or 3-D UMAP map of a vocabulary sample, into which any vectors can be placed.

    Parameters
    ----------
    n_components : 2 or 3.
    n_sample : vocabulary rows the layout is fitted on (a fixed random sample of the non-special rows;
        all of them when the vocabulary is smaller).
    n_neighbors, min_dist : UMAP's parameters.
    n_epochs : optimisation epochs of the fit (a refined ``transform`` uses a third of them, as UMAP does).
    random_state : the seed of the sample and of UMAP (a fixed seed makes the map reproducible).
    refine : ``transform`` also runs UMAP's stochastic refinement against the fixed layout (default off; see
        the module docstring).
    cache : read/write the fitted layout in the user cache.

    Learned attributes (after ``fit``): ``vocab_``, ``sample_ids_`` (vocabulary rows of the sample, int64
    ``"n_sample"``), ``embedding_`` (float32 ``"n_sample n_components"``), ``a_``, ``b_`` (UMAP's curve),
    ``from_cache_`` (whether it was read from the cache), ``fit_seconds_``.
    """

    def __init__(self, n_components: int = 2, n_sample: int = 4000, n_neighbors: int = 15, min_dist: float = 0.1,
                 n_epochs: int = 200, random_state: int = 0, refine: bool = False, cache: bool = True):
        self.n_components = n_components
        self.n_sample = n_sample
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.refine = refine
        self.cache = cache

    # -- validation ---------------------------------------------------------------------------------
    _parameter_constraints = {
        "n_components": [Options(2, 3)], "n_sample": [Interval(Integral, 3, None)],
        "n_neighbors": [Interval(Integral, 2, None)], "min_dist": [Interval(Real, 0, 1)],
        "n_epochs": [Interval(Integral, 1, None)], "random_state": [SEED], "refine": [Boolean()],
        "cache": [Boolean()]}

    def _check_params(self) -> None:
        check_params("UmapLayout", {name: getattr(self, name) for name in self._parameter_constraints},
                     self._parameter_constraints)

    def _params(self) -> dict:
        return {"n_components": int(self.n_components), "n_sample": int(self.n_sample),
                "n_neighbors": int(self.n_neighbors), "min_dist": float(self.min_dist),
                "n_epochs": int(self.n_epochs), "random_state": int(self.random_state), "format": _CACHE_FORMAT}

    # -- fit ----------------------------------------------------------------------------------------
    def fit(self, vocab: Vocabulary) -> "UmapLayout":
        """Fit the layout on a sample of ``vocab`` (or read it from the cache).  Returns ``self``."""
        import time

        self._check_params()
        if not isinstance(vocab, Vocabulary):
            raise AnalyzerError(f"UmapLayout.fit expects a Vocabulary (from load_vocabulary); "
                                f"got {type(vocab).__name__}.")
        t0 = time.perf_counter()
        self.vocab_ = vocab
        included = np.flatnonzero(~np.asarray(vocab.excluded, dtype=bool)).astype(np.int64)
        if included.size < self.n_components + 2:
            raise AnalyzerError(f"The vocabulary of {vocab.name} has {included.size} usable rows; a UMAP layout "
                                f"needs at least {self.n_components + 2}.")
        path = self._cache_path() if self.cache else None
        if path is not None and self._read_cache(path, included):
            self.from_cache_ = True
        else:
            rng = np.random.default_rng(self.random_state)
            n = min(int(self.n_sample), int(included.size))
            self.sample_ids_ = np.sort(rng.choice(included, size=n, replace=False)) if n < included.size else included
            self._fit_sample()
            self.from_cache_ = False
            if path is not None:
                self._write_cache(path)
        self._sample_unit_ = _normalize(vocab.rows(self.sample_ids_))
        self._pos_ = {int(t): i for i, t in enumerate(self.sample_ids_)}
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _k(self, n: int) -> int:
        return max(2, min(int(self.n_neighbors), n - 1))

    def _fit_sample(self) -> None:
        umap_, _ = _import_umap()
        import umap

        x = _normalize(self.vocab_.rows(self.sample_ids_))
        k = self._k(x.shape[0])
        knn_ids, knn_d = _exact_knn(x, x, k, exclude_self=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reducer = umap.UMAP(n_components=int(self.n_components), n_neighbors=k, min_dist=float(self.min_dist),
                                n_epochs=int(self.n_epochs), metric="cosine", random_state=int(self.random_state),
                                precomputed_knn=(knn_ids, knn_d), force_approximation_algorithm=True,
                                init="spectral" if x.shape[0] > self.n_components + 1 else "random",
                                transform_mode="embedding")
            emb = reducer.fit_transform(x)
        self.embedding_ = np.ascontiguousarray(emb, dtype=np.float32)
        self.a_, self.b_ = float(reducer._a), float(reducer._b)

    # -- cache --------------------------------------------------------------------------------------
    def _cache_path(self) -> Path:
        from .cache import entry_dir, text_key

        return entry_dir("vocab", self.vocab_.key) / f"umap-{text_key(self._params())}.npz"

    def _read_cache(self, path: Path, included: np.ndarray) -> bool:
        if not path.is_file():
            return False
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, emb = z["sample_ids"].astype(np.int64), z["embedding"].astype(np.float32)
                a, b = float(z["a"]), float(z["b"])
        except (OSError, KeyError, ValueError):
            return False  # a damaged entry is fitted again
        ok = (emb.ndim == 2 and emb.shape == (ids.size, self.n_components) and ids.size >= 3
              and np.isin(ids, included).all() and np.isfinite(emb).all())
        if ok:
            self.sample_ids_, self.embedding_, self.a_, self.b_ = ids, emb, a, b
        return bool(ok)

    def _write_cache(self, path: Path) -> None:
        from .cache import atomic_path

        try:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, sample_ids=self.sample_ids_, embedding=self.embedding_, a=np.float64(self.a_),
                             b=np.float64(self.b_))
        except OSError:  # a read-only cache only costs the next process a refit
            pass

    # -- transform ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "embedding_"):
            raise AnalyzerError("This UmapLayout is not fitted yet; call fit(vocabulary) first.")

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Place ``vectors`` (``"n d_model"``, any norm) in the fitted map: float32 ``"n n_components"``."""
        from .neighbors import check_vectors

        self._check_fitted()
        q = check_vectors(vectors, self.vocab_.dim, what="vectors to place on the map",
                          where=f" of {self.vocab_.name}")
        if q.shape[0] == 0:
            return np.zeros((0, self.n_components), dtype=np.float32)
        n_train = self.embedding_.shape[0]
        k = self._k(n_train + 1)
        ids, dists = _exact_knn(_normalize(q), self._sample_unit_, k)
        # UMAP.transform's graph (local_connectivity 1 → adjusted 0, so rho = 0) and its initialisation: the
        # membership-weighted mean of the neighbours' places.  numpy only (no umap/numba import on this path).
        sigmas = _smooth_knn_sigmas(dists, float(k))
        vals = np.where((dists <= 0.0) | (sigmas[:, None] == 0.0), 1.0,
                        np.exp(-dists / np.where(sigmas == 0.0, 1.0, sigmas)[:, None]))
        w = vals / vals.sum(axis=1, keepdims=True)
        emb = np.einsum("nk,nkc->nc", w, self.embedding_[ids].astype(np.float64))
        if self.refine:
            emb = self._refine(emb, ids, vals)
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        same = dists[:, 0] < 1e-6            # the vector of a sample token: its fitted place
        emb[same] = self.embedding_[ids[same, 0]]
        return emb

    def _refine(self, emb: np.ndarray, ids: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """UMAP.transform's stochastic refinement against the fixed layout (umap-learn's optimiser)."""
        umap_, layouts = _import_umap()
        import scipy.sparse

        n, n_train = emb.shape[0], self.embedding_.shape[0]
        rows = np.repeat(np.arange(n), ids.shape[1])
        graph = scipy.sparse.coo_matrix((vals.ravel().astype(np.float32), (rows, ids.ravel())), shape=(n, n_train))
        n_epochs = max(1, int(self.n_epochs) // 3)
        graph.data[graph.data < (graph.data.max() / float(n_epochs))] = 0.0
        graph.eliminate_zeros()
        eps = umap_.make_epochs_per_sample(graph.data, n_epochs)
        rng_state = np.random.RandomState(self.random_state).randint(
            np.iinfo(np.int32).min + 1, np.iinfo(np.int32).max - 1, 3).astype(np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return layouts.optimize_layout_euclidean(
                np.ascontiguousarray(emb, dtype=np.float32), self.embedding_.copy(), graph.row, graph.col,
                n_epochs, n_train, eps, self.a_, self.b_, rng_state, 1.0, 1.0 / 4.0, 5.0, False)

    def token_coords(self, token_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Coordinates of vocabulary rows: their fitted place when in the sample, else placed by ``transform``."""
        self._check_fitted()
        ids = np.asarray(token_ids, dtype=np.int64).ravel()
        out = np.zeros((ids.size, self.n_components), dtype=np.float32)
        if ids.size == 0:
            return out
        if ids.min() < 0 or ids.max() >= self.vocab_.size:
            raise AnalyzerError(f"Token ids must be in [0, {self.vocab_.size}); got {int(ids.min())}..{int(ids.max())}.")
        pos = np.array([self._pos_.get(int(t), -1) for t in ids])
        known = pos >= 0
        out[known] = self.embedding_[pos[known]]
        if (~known).any():
            out[~known] = self.transform(self.vocab_.rows(ids[~known]))
        return out

    def __repr__(self) -> str:
        return (f"UmapLayout(n_components={self.n_components}, n_sample={self.n_sample}, "
                f"n_neighbors={self.n_neighbors}, min_dist={self.min_dist}, n_epochs={self.n_epochs})")


# ---------------------------------------------------------------------------------------------- prompt maps
@dataclass(frozen=True)
class ProjectedPrompt:
    """One prompt on the map.

    name:            the prompt's name.
    coords:          float32 ``"n_virtual n_components"`` -- where each virtual token lands.
    neighbor_ids:    int64 ``"n_virtual k"`` -- its nearest vocabulary rows (best first, by ``metric``).
    neighbor_scores: float32 ``"n_virtual k"``.
    neighbor_coords: float32 ``"n_virtual k n_components"``.
    norms:           float32 ``"n_virtual"`` -- L2 norm of each virtual token.
    neighbor_cosines: float32 ``"n_virtual k"`` -- the true cosine of each virtual token to each neighbour
                     (whatever score ranked them; 2-D distances on the map are only a picture of these).
    """

    name: str
    coords: np.ndarray
    neighbor_ids: np.ndarray
    neighbor_scores: np.ndarray
    neighbor_coords: np.ndarray
    norms: np.ndarray
    neighbor_cosines: np.ndarray | None = None


@dataclass(frozen=True)
class PromptMap:
    """Everything the map figure draws: the background sample, the prompts and (optional) highlighted tokens.

    background_ids: int64 ``"n_sample"``; background_coords: float32 ``"n_sample n_components"``;
    highlight_ids / highlight_coords: tokens the user searched for; metric: how neighbours were scored."""

    background_ids: np.ndarray
    background_coords: np.ndarray
    prompts: tuple[ProjectedPrompt, ...]
    metric: str
    highlight_ids: np.ndarray
    highlight_coords: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.background_coords.shape[1])


def project_prompts(layout: UmapLayout, prompts: Sequence[SoftPrompt] | SoftPrompt, index, *, k: int = 5,
                    highlight: Sequence[int] | None = None) -> PromptMap:
    """Place every virtual token of ``prompts`` and its ``k`` nearest neighbours (from the fitted
    ``NeighborIndex`` ``index``) on the fitted ``layout``; ``highlight`` token ids are placed too."""
    layout._check_fitted()
    if isinstance(prompts, SoftPrompt):
        prompts = [prompts]
    vocab = layout.vocab_
    out = []
    for p in prompts:
        from .loaders import check_compatible

        check_compatible(p, vocab)
        scores, ids = index.kneighbors(p.vectors, k)
        coords = layout.transform(p.vectors)
        nb = layout.token_coords(ids.ravel()).reshape(ids.shape[0], ids.shape[1], -1)
        cos = np.einsum("nd,nkd->nk", _normalize(p.vectors), _normalize(
            vocab.rows(ids.ravel())).reshape(ids.shape[0], ids.shape[1], -1))
        out.append(ProjectedPrompt(name=p.name, coords=coords, neighbor_ids=ids.astype(np.int64),
                                   neighbor_scores=np.asarray(scores, dtype=np.float32), neighbor_coords=nb,
                                   norms=np.linalg.norm(p.vectors, axis=1).astype(np.float32),
                                   neighbor_cosines=cos.astype(np.float32)))
    hl = np.asarray(list(highlight or []), dtype=np.int64)
    return PromptMap(background_ids=layout.sample_ids_, background_coords=layout.embedding_, prompts=tuple(out),
                     metric=str(getattr(index, "metric", "cosine")), highlight_ids=hl,
                     highlight_coords=layout.token_coords(hl))


def project_trajectory(layout: UmapLayout, snapshots: dict[int, np.ndarray]) -> tuple[list[int], np.ndarray]:
    """Place every snapshot of a training run (``{step: "n_virtual d_model"}``, e.g. from
    ``analyzer.training.read_snapshots``): ``(steps, float32 "n_steps n_virtual n_components")``, all snapshots
    transformed in one call."""
    if not snapshots:
        raise AnalyzerError("No snapshots to place: expected {step: matrix} with at least one step.")
    steps = sorted(int(s) for s in snapshots)
    mats = [np.asarray(snapshots[s], dtype=np.float32) for s in steps]
    shapes = {m.shape for m in mats}
    if len(shapes) != 1:
        raise AnalyzerError(f"Snapshots have different shapes {sorted(shapes)}; expected one (n_virtual, d_model).")
    n = mats[0].shape[0]
    coords = layout.transform(np.concatenate(mats, axis=0))
    return steps, coords.reshape(len(steps), n, -1)


def search_tokens(vocab: Vocabulary, query: str, *, limit: int = 20) -> list[int]:
    """Row ids of tokens matching ``query`` (exact first, then case-insensitive, then substring; spaces may be
    typed as spaces or ``␣``), special/unused rows left out, at most ``limit``."""
    q = (query or "").strip("\n")
    if not q.strip():
        return []
    variants = {q, q.replace(" ", "␣"), "␣" + q.lstrip()}
    excluded = np.asarray(vocab.excluded, dtype=bool)
    exact, ci, sub = [], [], []
    ql = {v.lower() for v in variants}
    for i, t in enumerate(vocab.tokens):
        if excluded[i]:
            continue
        if t in variants:
            exact.append(i)
        elif t.lower() in ql:
            ci.append(i)
        elif len(sub) < limit and any(v.lower() in t.lower() for v in variants if len(v.strip("␣")) >= 2):
            sub.append(i)
    return (exact + ci + sub)[:limit]


__all__ = ["UmapLayout", "ProjectedPrompt", "PromptMap", "project_prompts", "project_trajectory", "search_tokens",
           "precompile"]


def precompile() -> float:
    """Compile (and cache on disk) umap's numba kernels once, e.g. at install time, so that the first layout fit
    of a fresh installation does not pay ~10-15 s of JIT compilation.  Returns the seconds it took."""
    import time

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 8)).astype(np.float32)
    tokens = tuple(f"t{i}" for i in range(300))
    vocab = Vocabulary(name="precompile", source="memory", embeddings=emb, tokens=tokens, raw_tokens=tokens,
                       excluded=np.zeros(300, dtype=bool), tied=True, key="precompile")
    for n_components in (2, 3):
        lay = UmapLayout(n_components=n_components, n_sample=300, n_epochs=5, refine=True, cache=False).fit(vocab)
        lay.transform(emb[:5] + 0.1)
    return time.perf_counter() - t0

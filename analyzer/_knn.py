"""The all-pairs top-K kernels behind :func:`analyzer.neighbors.vocab_neighborhood` (torch; CPU or CUDA).

Every row of a unit-normalised matrix against every other: the exact search (a float32 pass over the Gram
matrix that keeps, for every row, its ``P`` groups of ``_GROUP`` consecutive rows with the largest maxima,
then a float32 re-rank of those groups' members) and the approximate one (the same pass in bfloat16 or int8,
with more groups re-ranked), the probes that say whether this CPU multiplies bfloat16 or int8 fast enough for
the approximate pass to pay, and the reference top-K of a few rows that its recall is measured against.

Memory: the pass is streamed (:func:`_top_groups`) -- it never holds the ``n x n/64`` matrix of group maxima
(3.4 GB for Gemma 3's 262k vocabulary before), only every row's running best ``P`` groups (``n P 10`` bytes at
most) and a working set of tiles that fits ``_WORK_BYTES`` (256 MiB) whatever ``n``; the re-rank works in
chunks of ``_CHUNK_BYTES`` (128 MiB).  Peak extra memory beyond the float32 matrix: ``n P 10 + 256 MiB +
128 MiB`` bytes (+ ``n d`` bytes of int8 rows for the int8 pass).  Pure functions over arrays; torch is
imported inside them."""

from __future__ import annotations

import functools
import time

import numpy as np


_CHUNK_BYTES = 1 << 27  # 128 MiB of scores per matmul chunk


def _self_knn_rows(x: np.ndarray, K: int, rows: np.ndarray, *, device: str = "cpu"):
    """Exact top-(K+1) inner products of ``x[rows]`` against all of ``x`` (float32, torch): numpy ``(sims, ids)``."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    n = x.shape[0]
    kk = min(K + 1, n)
    chunk = max(1, _CHUNK_BYTES // (4 * n))
    sims = np.empty((rows.size, kk), np.float32)
    ids = np.empty((rows.size, kk), np.int64)
    with torch.inference_mode():
        for a in range(0, rows.size, chunk):
            v, i = torch.topk(xt[torch.from_numpy(rows[a:a + chunk]).to(xt.device)] @ xt.T, kk, dim=1)
            sims[a:a + chunk] = v.cpu().numpy()
            ids[a:a + chunk] = i.cpu().numpy()
    return sims, ids


#: rows per side of one Gram-matrix tile (at most), and columns per group whose maximum is kept.
_TILE = 2048
_GROUP = 64
#: the most groups re-ranked per token by the approximate search (16,384 candidates)
_MAX_GROUPS = 256
#: working-set budget of the streamed all-pairs pass (tiles, one stripe of group maxima, merge buffers); the
#: tile side shrinks below ``_TILE`` when one stripe of a very large vocabulary would not fit
_WORK_BYTES = 256 << 20


class _Operand:
    """``xt``'s rows in the precision of a pass: float tiles converted on the fly (``to(dtype)``), or, for
    ``torch.int8``, rows quantised once with one scale per row (``q_i = round(127 x_i / max|x_i|)``, ``n d``
    bytes) whose int32 products are scaled back to float32 per tile (``_int_mm``: VNNI / AMX on x86 CPUs)."""

    def __init__(self, xt, dtype, chunk: int = 16384):
        import torch

        self.xt, self.dtype, self.int8 = xt, dtype, dtype == torch.int8
        if self.int8:
            n = xt.shape[0]
            self.q = torch.empty(xt.shape, dtype=torch.int8, device=xt.device)
            self.inv = torch.empty(n, dtype=torch.float32, device=xt.device)
            for a in range(0, n, chunk):  # no full-size float temporary
                r = xt[a:a + chunk]
                m = r.abs().amax(1).clamp_min(1e-30)
                self.q[a:a + chunk] = torch.round(r * (127.0 / m)[:, None]).to(torch.int8)
                self.inv[a:a + chunk] = m / 127.0

    @property
    def score_dtype(self):
        import torch

        return torch.float32 if self.int8 else self.dtype

    def block(self, rows):
        """The operand of rows ``rows`` (a slice or an index tensor)."""
        return (self.q[rows], self.inv[rows]) if self.int8 else self.xt[rows].to(self.dtype)

    def scores(self, A, B):
        """``A @ B.T`` in this precision (float32 for int8, scaled back)."""
        import torch

        if self.int8:
            return torch._int_mm(A[0], B[0].T).float().mul_(A[1][:, None]).mul_(B[1][None, :])
        return A @ B.T


def _group_maxima(xt, dtype, *, tile: int = _TILE, group: int = _GROUP, rows=None):
    """``G[i, g] = max over the g-th run of ``group`` consecutive rows j of <x_i, x_j>``, computed in ``dtype``.

    The whole matrix, ``len(rows) x ceil(n / group)`` (all rows when ``rows`` is None): for the few rows the
    approximate search checks its recall on, and for small inputs.  The all-pairs pass never materialises it
    for every row; it streams it (:func:`_top_groups`).  Without ``rows`` only tiles on and above the diagonal
    are multiplied (the Gram matrix is symmetric); each gives the group maxima of its rows over its columns and
    of its columns over its rows."""
    import torch

    n = xt.shape[0]
    ng = -(-n // group)
    op = _Operand(xt, dtype)
    if rows is not None:
        q = op.block(torch.as_tensor(rows, device=xt.device))
        m = len(rows)
        G = torch.empty((m, ng), dtype=op.score_dtype, device=xt.device)
        for a0 in range(0, m, tile):
            qa = (q[0][a0:a0 + tile], q[1][a0:a0 + tile]) if op.int8 else q[a0:a0 + tile]
            for b0 in range(0, n, tile):
                G[a0:a0 + tile, b0 // group:-(-min(b0 + tile, n) // group)] = _tile_row_maxima(
                    op.scores(qa, op.block(slice(b0, b0 + tile))), group)
        return G
    G = torch.empty((n, ng), dtype=op.score_dtype, device=xt.device)
    for a0 in range(0, n, tile):
        a1 = min(a0 + tile, n)
        xa = op.block(slice(a0, a1))
        for b0 in range(a0, n, tile):
            b1 = min(b0 + tile, n)
            S = op.scores(xa, op.block(slice(b0, b1)))
            G[a0:a1, b0 // group:-(-b1 // group)] = _tile_row_maxima(S, group)
            if b0 != a0:  # a is then a full tile, a whole number of groups
                G[b0:b1, a0 // group:a1 // group] = S.view(-1, group, b1 - b0).amax(1).T
    return G


def _tile_row_maxima(S, group: int):
    """Maxima of each row of a score tile over runs of ``group`` columns (a short last run padded with -inf,
    so that it never wins by its padding)."""
    import torch.nn.functional as F

    w = S.shape[1]
    Sp = F.pad(S, (0, -w % group), value=-float("inf")) if w % group else S
    return Sp.view(S.shape[0], -1, group).amax(-1)


def _stream_tile(n: int, P: int, group: int, budget: int, score_bytes: int) -> int:
    """The largest tile side (a multiple of ``group``, at most ``_TILE``) whose working set fits ``budget``:
    a score tile and its padded copy (``2 T^2 s``), one stripe of group maxima (``T ceil(n/group) s``) and a
    merge buffer (``T (P + T/group) 12``), ``s`` bytes per score."""
    t = _TILE
    while t > group and (2 * t * t * score_bytes + t * -(-n // group) * score_bytes
                         + t * (P + t // group) * 12) > budget:
        t //= 2
    return max(t, group)


def _top_groups(xt, dtype, P: int, *, tile: int | None = None, group: int = _GROUP, budget: int = _WORK_BYTES):
    """For every row, the ids (int64 ``"n P"``) of the ``P`` groups of ``group`` consecutive rows with the
    largest maxima of ``<x_i, x_j>`` computed in ``dtype``: ``topk(_group_maxima(xt, dtype), P)`` without the
    ``n x n/group`` matrix.

    Streamed over the tiles on and above the diagonal of the Gram matrix, row stripe by row stripe.  A stripe's
    own maxima over the columns at and right of the diagonal go to one stripe buffer, merged with the running
    top-``P`` of those rows when the stripe ends (their groups left of the diagonal came in earlier, as the
    column side of earlier stripes' tiles); each tile's column side (the rows below it, over this stripe's
    groups) is merged into those rows' running top-``P`` at once.

    Memory bound (beyond ``xt``): the running top-``P`` of every row, ``n P (s + 8)`` bytes, plus a working set
    that does not grow with ``n^2``: ``2 T^2 s + T ceil(n/group) s + T (P + T/group) 12`` bytes with ``T`` the
    tile side chosen so that this fits ``budget`` (256 MiB by default; ``s`` = 2 bytes for bfloat16 scores, 4
    for float32), plus two ``T x d`` tiles converted to ``dtype``.  For Gemma 3's vocabulary (262,144 rows) in
    bfloat16 with P = 16: 12.6 MB of running top-P and ~33 MB of working set, where the whole matrix of group
    maxima took 2.1 GB (4.3 GB in float32)."""
    import torch

    n = xt.shape[0]
    ng = -(-n // group)
    P = min(P, ng)
    op = _Operand(xt, dtype)
    sdt = op.score_dtype
    s = torch.tensor([], dtype=sdt).element_size() * (2 if op.int8 else 1)  # int8: the int32 product too
    T = tile or _stream_tile(n, P, group, budget, s)
    dev = xt.device
    run_v = torch.full((n, P), -float("inf"), dtype=sdt, device=dev)
    run_i = torch.zeros((n, P), dtype=torch.int64, device=dev)
    stripe = torch.empty((T, ng), dtype=sdt, device=dev)
    for a0 in range(0, n, T):
        a1 = min(a0 + T, n)
        ta = a1 - a0
        xa = op.block(slice(a0, a1))
        g0 = a0 // group
        for b0 in range(a0, n, T):
            b1 = min(b0 + T, n)
            S = op.scores(xa, xa if b0 == a0 else op.block(slice(b0, b1)))
            stripe[:ta, b0 // group:-(-b1 // group)] = _tile_row_maxima(S, group)
            if b0 != a0:  # the rows b0:b1 over this stripe's groups (a full tile: whole groups)
                col = S.view(ta // group, group, b1 - b0).amax(1).T
                ids = torch.arange(g0, g0 + ta // group, device=dev).expand(b1 - b0, -1)
                v, j = torch.topk(torch.cat([run_v[b0:b1], col], 1), P, dim=1)
                run_i[b0:b1] = torch.gather(torch.cat([run_i[b0:b1], ids], 1), 1, j)
                run_v[b0:b1] = v
        right = stripe[:ta, g0:]
        v, j = torch.topk(torch.cat([run_v[a0:a1], right], 1), P, dim=1)
        own = torch.arange(g0, ng, device=dev).expand(ta, -1)
        run_i[a0:a1] = torch.gather(torch.cat([run_i[a0:a1], own], 1), 1, j)
        run_v[a0:a1] = v
    del run_v, stripe, op
    return run_i


def _rerank_groups(xt, G, rows: np.ndarray, K1: int, P: int, *, group: int = _GROUP, chunk: int | None = None):
    """Top-``K1`` of each of ``rows`` among all members of its ``P`` groups with the largest maxima in ``G``
    (``"n n_groups"``, from :func:`_group_maxima`), scored exactly in float32 (see :func:`_rerank_selected`)."""
    import torch

    P = min(P, G.shape[1])
    sel = torch.topk(G[torch.as_tensor(rows, device=G.device)], P, dim=1).indices
    return _rerank_selected(xt, sel, rows, K1, group=group, chunk=chunk)


def _rerank_selected(xt, sel, rows: np.ndarray, K1: int, *, group: int = _GROUP, chunk: int | None = None):
    """Top-``K1`` of each of ``rows`` among all members of its groups ``sel`` (int64 ``"len(rows) P"``),
    scored exactly in float32: numpy ``(sims, ids)``.  The top-``K1`` of a row lie in its top-``K1`` groups by
    *exact* maximum, so ``P >= K1`` groups chosen on float32 maxima is exact; on low-precision maxima the
    extra groups absorb rounding.  Working set: ``_CHUNK_BYTES`` (128 MiB) of candidate scores and query rows."""
    import torch

    n = xt.shape[0]
    ng = -(-n // group)
    P = sel.shape[1]
    # rows whose candidate scores and own vectors fit in 128 MiB
    chunk = chunk or max(1, _CHUNK_BYTES // (4 * (P * group + xt.shape[1])))
    sims = np.empty((rows.size, K1), np.float32)
    ids = np.empty((rows.size, K1), np.int64)
    dev = xt.device
    for c0 in range(0, rows.size, chunk):
        r = torch.from_numpy(rows[c0:c0 + chunk]).to(dev)
        m = r.shape[0]
        s = sel[c0:c0 + chunk].to(dev)
        order = torch.argsort(s.reshape(-1), stable=True)  # (row, slot) pairs grouped by group
        counts = torch.bincount(s.reshape(-1), minlength=ng).tolist()
        xr = xt[r]
        out = torch.full((m * P, group), -float("inf"), device=dev)
        start = 0
        for g, cnt in enumerate(counts):
            if cnt:
                pos = order[start:start + cnt]
                start += cnt
                g0, g1 = g * group, min(g * group + group, n)
                out[pos, :g1 - g0] = xr[pos // P] @ xt[g0:g1].T
        v, i = torch.topk(out.view(m, P * group), K1, dim=1)
        sims[c0:c0 + m] = v.cpu().numpy()
        ids[c0:c0 + m] = (s.gather(1, i // group) * group + i % group).cpu().numpy()
    return sims, ids


# bfloat16 runs the first pass only when its matrix products are at least this much faster than float32 (AMX,
# AVX512-BF16); else the exact float32 pass costs at most ~1.5x more and needs no recall check.
_LOW_PRECISION_MIN_SPEEDUP = 1.5


def _best_of_3(f) -> float:
    """The shortest of three timed calls of ``f`` (after one untimed warm-up call)."""
    f()
    out = []
    for _ in range(3):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return min(out)


@functools.lru_cache(maxsize=1)
def _low_precision_probe() -> tuple[object, float]:
    """``(torch.bfloat16 or None, speed-up)``: how many times faster this CPU multiplies bfloat16 matrices than
    float32 ones (best of 3 on a 1024 x 640 x 4096 product, ~20 ms), and the dtype that choice gives (see
    ``_LOW_PRECISION_MIN_SPEEDUP``).  Measured once per process: the choice follows the machine (AMX on Intel,
    AVX512-BF16 on AMD EPYC, neither on older CPUs), never a list of CPU names."""
    import torch

    a = torch.randn(1024, 640)
    b = torch.randn(640, 4096)
    ab, bb = a.bfloat16(), b.bfloat16()

    with torch.inference_mode():
        speedup = _best_of_3(lambda: a @ b) / max(_best_of_3(lambda: ab @ bb), 1e-9)
    return (torch.bfloat16 if speedup >= _LOW_PRECISION_MIN_SPEEDUP else None), float(speedup)


@functools.lru_cache(maxsize=8)
def _int8_probe(d: int = 1024) -> tuple[object, float]:
    """``(torch.int8 or None, speed-up)``: how many times faster this CPU computes one tile of the pass in int8
    (``torch._int_mm`` with int32 accumulation -- AVX512-VNNI, AMX-INT8 -- then the float32 scaling) than in
    float32, best of 3 on a 2048 x ``d`` by ``d`` x 2048 product (the gain grows with the width ``d``); int8 is
    chosen at ``_LOW_PRECISION_MIN_SPEEDUP`` or more.  Measured once per width and process."""
    import torch

    a = torch.randn(2048, d)
    b = torch.randn(2048, d)
    op = _Operand(torch.cat([a, b]), torch.int8)
    A, B = op.block(slice(0, 2048)), op.block(slice(2048, 4096))
    try:
        op.scores(A, B)
    except (RuntimeError, AttributeError, NotImplementedError):
        return None, 0.0

    with torch.inference_mode():
        speedup = _best_of_3(lambda: a @ b.T) / max(_best_of_3(lambda: op.scores(A, B)), 1e-9)
    return (torch.int8 if speedup >= _LOW_PRECISION_MIN_SPEEDUP else None), float(speedup)


def _self_knn_exact(x: np.ndarray, K: int, *, device: str = "cpu"):
    """Exact top-(K+1) inner products of every row of ``x`` against all rows (itself included): ``(sims, ids)``.

    The streamed float32 group-maxima pass (:func:`_top_groups`) followed by a re-rank of each row's ``K + 1``
    best groups, which hold its true top ``K + 1``."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    with torch.inference_mode():
        sel = _top_groups(xt, torch.float32, K + 1)
        return _rerank_selected(xt, sel, np.arange(x.shape[0]), min(K + 1, x.shape[0]))


def _drop_self(sims: np.ndarray, ids: np.ndarray, rows: np.ndarray, K: int):
    """From top-(K+1) lists, drop each row's own entry (or the last entry when it is absent)."""
    mask = ids == rows[:, None]
    none = ~mask.any(axis=1)
    mask[none, -1] = True
    # a row may only drop one entry
    first = np.argmax(mask, axis=1)
    keep = np.ones_like(mask)
    keep[np.arange(mask.shape[0]), first] = False
    return sims[keep].reshape(-1, K), ids[keep].reshape(-1, K)

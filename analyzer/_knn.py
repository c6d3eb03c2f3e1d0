"""The all-pairs top-K kernels behind :func:`analyzer.neighbors.vocab_neighborhood` (torch, CPU).

Every row of a unit-normalised matrix against every other: the exact search (a float32 pass over the Gram
matrix that keeps the maximum of each group of ``_GROUP`` consecutive rows, then a float32 re-rank of each
row's best groups) and the approximate one (the same pass in bfloat16, with more groups re-ranked), the
probe that says whether this CPU multiplies bfloat16 fast enough for the approximate pass to pay, and the
reference top-K of a few rows that the approximate search's recall is measured against.  Pure functions over
arrays; torch is imported inside them."""

from __future__ import annotations

import functools
import time

import numpy as np


_CHUNK_BYTES = 1 << 27  # 128 MiB of scores per matmul chunk


def _self_knn_rows(x: np.ndarray, K: int, rows: np.ndarray):
    """Exact top-(K+1) inner products of ``x[rows]`` against all of ``x`` (float32, torch): numpy ``(sims, ids)``."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    n = x.shape[0]
    kk = min(K + 1, n)
    chunk = max(1, _CHUNK_BYTES // (4 * n))
    sims = np.empty((rows.size, kk), np.float32)
    ids = np.empty((rows.size, kk), np.int64)
    with torch.inference_mode():
        for a in range(0, rows.size, chunk):
            v, i = torch.topk(xt[torch.from_numpy(rows[a:a + chunk])] @ xt.T, kk, dim=1)
            sims[a:a + chunk] = v.numpy()
            ids[a:a + chunk] = i.numpy()
    return sims, ids


#: rows per side of one Gram-matrix tile, and columns per group whose maximum is kept (see ``_group_maxima``).
_TILE = 2048
_GROUP = 64
#: the most groups re-ranked per token by the approximate search (16,384 candidates)
_MAX_GROUPS = 256


def _group_maxima(xt, dtype, *, tile: int = _TILE, group: int = _GROUP):
    """``G[i, g] = max over the g-th run of ``group`` consecutive rows j of <x_i, x_j>``, computed in ``dtype``.

    The Gram matrix is symmetric, so only tiles on and above the diagonal are multiplied; each tile gives the
    group maxima of its rows over its columns and of its columns over its rows.  Tiles of 2048 keep the
    scores in cache, and a max over 64 columns is several times cheaper than a top-k over them."""
    import torch
    import torch.nn.functional as F

    n = xt.shape[0]
    xl = xt.to(dtype)
    G = torch.empty((n, -(-n // group)), dtype=dtype)
    for a0 in range(0, n, tile):
        a1 = min(a0 + tile, n)
        xa = xl[a0:a1]
        for b0 in range(a0, n, tile):
            b1 = min(b0 + tile, n)
            S = xa @ xl[b0:b1].T
            w = b1 - b0
            # the last group may be short: pad it with -inf so that it never wins by its padding
            Sp = F.pad(S, (0, -w % group), value=-float("inf")) if w % group else S
            G[a0:a1, b0 // group:b0 // group + Sp.shape[1] // group] = Sp.view(a1 - a0, -1, group).amax(-1)
            if b0 != a0:  # a is then a full tile, a whole number of groups
                G[b0:b1, a0 // group:a1 // group] = S.view(-1, group, w).amax(1).T
    return G


def _rerank_groups(xt, G, rows: np.ndarray, K1: int, P: int, *, group: int = _GROUP, chunk: int | None = None):
    """Top-``K1`` of each of ``rows`` among all members of its ``P`` groups with the largest maxima, scored
    exactly in float32.  The top-``K1`` of a row lie in its top-``K1`` groups by *exact* maximum, so
    ``P >= K1`` on float32 maxima is exact; on low-precision maxima the extra groups absorb rounding."""
    import torch

    n = xt.shape[0]
    P = min(P, G.shape[1])
    chunk = chunk or max(1, _CHUNK_BYTES // (4 * P * group))  # rows whose candidate scores fit in 128 MiB
    sims = np.empty((rows.size, K1), np.float32)
    ids = np.empty((rows.size, K1), np.int64)
    for c0 in range(0, rows.size, chunk):
        r = torch.from_numpy(rows[c0:c0 + chunk])
        m = r.shape[0]
        sel = torch.topk(G[r], P, dim=1).indices  # "m P"
        order = torch.argsort(sel.reshape(-1), stable=True)  # (row, slot) pairs grouped by group
        counts = torch.bincount(sel.reshape(-1), minlength=G.shape[1]).tolist()
        xr = xt[r]
        out = torch.full((m * P, group), -float("inf"))
        start = 0
        for g, cnt in enumerate(counts):
            if cnt:
                pos = order[start:start + cnt]
                start += cnt
                g0, g1 = g * group, min(g * group + group, n)
                out[pos, :g1 - g0] = xr[pos // P] @ xt[g0:g1].T
        v, i = torch.topk(out.view(m, P * group), K1, dim=1)
        sims[c0:c0 + m] = v.numpy()
        ids[c0:c0 + m] = (sel.gather(1, i // group) * group + i % group).numpy()
    return sims, ids


# bfloat16 runs the first pass only when its matrix products are at least this much faster than float32 (AMX,
# AVX512-BF16); else the exact float32 pass costs at most ~1.5x more and needs no recall check.
_LOW_PRECISION_MIN_SPEEDUP = 1.5


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

    def best(f):
        f()
        out = []
        for _ in range(3):
            t = time.perf_counter()
            f()
            out.append(time.perf_counter() - t)
        return min(out)

    with torch.inference_mode():
        speedup = best(lambda: a @ b) / max(best(lambda: ab @ bb), 1e-9)
    return (torch.bfloat16 if speedup >= _LOW_PRECISION_MIN_SPEEDUP else None), float(speedup)


def _self_knn_exact(x: np.ndarray, K: int):
    """Exact top-(K+1) inner products of every row of ``x`` against all rows (itself included): ``(sims, ids)``.

    The float32 group-maxima pass followed by a re-rank of each row's ``K + 1`` best groups, which hold its true
    top ``K + 1``."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.inference_mode():
        return _rerank_groups(xt, _group_maxima(xt, torch.float32), np.arange(x.shape[0]), min(K + 1, x.shape[0]),
                              K + 1)


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

"""Comparisons of numerical results that were computed in different orders (another batch size, another BLAS
kernel, another CPU).  Such results agree to rounding, not bit for bit: float32 matrix products differ in the
last bits between OpenBLAS kernels (``OPENBLAS_CORETYPE``), MKL and batch sizes, so a test compares them with a
tolerance and lets near-tied neighbours swap places.  Bit-equality is asserted only for the same computation
repeated (same inputs, same batch)."""

from __future__ import annotations

import numpy as np

# float32 products of unit vectors in d <= 1024: each dot product carries ~d * 2**-24 ≈ 6e-5 relative error in
# the worst case, ~1e-6 in practice (observed up to 2e-6 between OpenBLAS kernels); 1e-5 leaves room for both.
SCORE_TOL = 1e-5


def assert_same_neighbors(ids_a, scores_a, ids_b, scores_b, tol: float = SCORE_TOL) -> None:
    """Two top-k lists (rows of ids with their scores, best first) agree: the scores to ``tol``, and the ids
    wherever the scores are not tied to within ``tol`` (a near-tie may come out in either order, and a token
    tied with the k-th may be in one list and not the other)."""
    ids_a, ids_b = np.asarray(ids_a), np.asarray(ids_b)
    scores_a, scores_b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    assert ids_a.shape == ids_b.shape, f"shapes differ: {ids_a.shape} vs {ids_b.shape}"
    np.testing.assert_allclose(scores_a, scores_b, atol=tol, rtol=0)
    for r in range(ids_a.shape[0]):
        for ia, sa, ib, sb in ((ids_a[r], scores_a[r], ids_b[r], scores_b[r]),
                               (ids_b[r], scores_b[r], ids_a[r], scores_a[r])):
            for j in np.flatnonzero(ia != ib):
                where = np.flatnonzero(ib == ia[j])
                other = sb[where[0]] if where.size else sb[-1]   # absent: it must tie with the last one kept
                assert abs(sa[j] - other) <= 2 * tol, (
                    f"row {r}, rank {j}: id {ia[j]} (score {sa[j]:.7f}) is "
                    + (f"at rank {where[0]} with score {other:.7f}" if where.size else
                       f"missing from the other list, whose last score is {other:.7f}")
                    + f"; only near-ties (within {2 * tol:g}) may swap")

"""JSON-safe numbers: the one float helper every JSON result goes through (NaN and inf become None).

Importing this module pulls numpy only."""

from __future__ import annotations

import math

import numpy as np


def _f(x) -> float | None:
    """A JSON-safe float: None for NaN/inf."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _fl(a) -> list:
    """A JSON-safe list of floats (``_f`` of every element of ``a``, flattened)."""
    return [_f(x) for x in np.asarray(a, dtype=np.float64).ravel()]

"""Prompt-to-prompt similarity for Compare (streamlit-free): the cosine of the prompts' mean vectors and the
mean cosine over all pairs of their virtual tokens."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def prompt_similarity(vectors: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """For prompts given as ``"n_i d"`` matrices: ``mean_vector`` (cosine of the mean vectors, ``"p p"``) and
    ``token_pairs`` (mean cosine over every pair of virtual tokens, one from each prompt; on the diagonal, over
    the distinct pairs of one prompt, 1.0 for a one-token prompt).  Raises ValueError on differing widths."""
    mats = [np.asarray(v, dtype=np.float64) for v in vectors]
    dims = {m.shape[1] for m in mats}
    if len(dims) > 1:
        raise ValueError(f"Prompts of different widths {sorted(dims)} cannot be compared.")
    means = _unit(np.stack([m.mean(axis=0) for m in mats])) if mats else np.zeros((0, 0))
    units = [_unit(m) for m in mats]
    n = len(mats)
    pairs = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            c = units[a] @ units[b].T
            if a == b:
                k = c.shape[0]
                pairs[a, a] = 1.0 if k < 2 else float((c.sum() - np.trace(c)) / (k * (k - 1)))
            else:
                pairs[a, b] = pairs[b, a] = float(c.mean())
    return {"mean_vector": means @ means.T, "token_pairs": pairs}


__all__ = ["prompt_similarity"]

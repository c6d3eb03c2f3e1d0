"""The vocabulary map and the prompts on it as one table that Apple's Embedding Atlas opens (an optional viewer:
``pip install embedding-atlas``, then ``embedding-atlas FILE.parquet --x x --y y --text token``).

One row per placed vocabulary token (``kind`` "vocabulary": its string, id, map coordinates and cluster name) and
one per virtual token (``kind`` "virtual token": ``prompt·vN``, the prompt, the position, its norm in ×median and its
nearest tokens), so Atlas's search, density, histograms and linked table read the same map as the dashboard.

Importing this module pulls numpy only; pandas is imported inside the functions."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

#: how to open an exported file (the viewer is not a dependency of this toolkit)
ATLAS_COMMAND = "pip install embedding-atlas && embedding-atlas {file} --x x --y y --text token"
KINDS = ("vocabulary", "virtual token")


def atlas_table(vocab_map, pmap=None, names: Sequence[str] | None = None, *, median_norm: float | None = None):
    """A ``pandas.DataFrame`` of the fitted :class:`~analyzer.vocab_map.VocabularyMap` ``vocab_map`` (its 2-D
    coordinates and cluster names; special and other unplaced rows left out) and, given a
    :class:`~analyzer.projection.PromptMap` ``pmap`` on the same layout, its virtual tokens (``names``: display
    names per prompt, default the prompts' own).  Columns: token, id, x, y, kind, cluster, prompt, position,
    norm_x_median (virtual tokens; the raw L2 norm when ``median_norm`` is not given), neighbours."""
    import pandas as pd

    vocab = vocab_map.layout_.vocab_
    coords = np.asarray(vocab_map.coords_, dtype=np.float32)
    placed = np.flatnonzero(np.isfinite(coords[:, 0]) & (np.asarray(vocab_map.cluster_) >= 0))
    labels = np.asarray(vocab_map.labels_, dtype=object)
    parts = [pd.DataFrame({
        "token": [vocab.tokens[i] for i in placed], "id": placed.astype(np.int64),
        "x": coords[placed, 0], "y": coords[placed, 1], "kind": KINDS[0],
        "cluster": labels[np.asarray(vocab_map.cluster_)[placed]].astype(str), "prompt": "",
        "position": np.full(placed.size, -1, dtype=np.int64), "norm_x_median": np.nan, "neighbours": ""})]
    if pmap is not None:
        names = list(names) if names is not None else [p.name for p in pmap.prompts]
        scale = median_norm if median_norm and median_norm > 0 else 1.0
        for name, p in zip(names, pmap.prompts):
            n = p.coords.shape[0]
            parts.append(pd.DataFrame({
                "token": [f"{name}·v{i}" for i in range(n)], "id": np.full(n, -1, dtype=np.int64),
                "x": p.coords[:, 0].astype(np.float32), "y": p.coords[:, 1].astype(np.float32), "kind": KINDS[1],
                "cluster": "", "prompt": name, "position": np.arange(n, dtype=np.int64),
                "norm_x_median": np.asarray(p.norms, dtype=np.float64) / scale,
                "neighbours": [", ".join(vocab.tokens[int(t)] for t in row) for row in p.neighbor_ids]}))
    return pd.concat(parts, ignore_index=True)


def atlas_parquet(vocab_map, pmap=None, names: Sequence[str] | None = None, *, median_norm: float | None = None) -> bytes:
    """:func:`atlas_table` as the bytes of a Parquet file (what ``embedding-atlas FILE.parquet`` reads)."""
    buf = io.BytesIO()
    atlas_table(vocab_map, pmap, names, median_norm=median_norm).to_parquet(buf, index=False)
    return buf.getvalue()


__all__ = ["atlas_table", "atlas_parquet", "ATLAS_COMMAND", "KINDS"]

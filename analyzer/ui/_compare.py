"""Compare's logic (streamlit-free): prompt-to-prompt similarity (the cosine of the prompts' mean vectors and the
mean cosine over all pairs of their virtual tokens), and which prompts the per-task swap can use and whether a
stored ``swap.json`` already holds their swap."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

#: the file ``scripts/prompt_swap.py`` writes beside the sample prompts
SWAP_FILE = "swap.json"
#: the stored swaps Compare looks for in a prompt's folder (``swap.json``, ``swap-multitask.json``...)
SWAP_GLOB = "swap*.json"
#: what writes each shipped swap file
SWAP_WRITERS = {SWAP_FILE: "make sample-swap", "swap-multitask.json": "make sample-multitask"}


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


def swap_columns(named: Sequence[tuple[str, object]]) -> tuple[dict[str, object], list[str]]:
    """``({name: SoftPrompt}, [names without a known task])`` of ``(display name, prompt)`` pairs: the prompts
    the swap can use are those that record the task they were trained for (``analyzer.report.prompt_task``)."""
    from ..report import prompt_task

    known, unknown = {}, []
    for name, p in named:
        (known.__setitem__(name, p) if prompt_task(p) else unknown.append(name))
    return known, unknown


def stored_swap(prompts: dict[str, object], folders: Sequence[str | os.PathLike], model: str | None = None):
    """``(SwapResult, path)`` of the first ``swap*.json`` in ``folders`` whose columns are exactly ``prompts``
    (matched by content hash, :func:`analyzer.swap.prompt_hash`) and, when given, computed on ``model``; else
    None.  An unreadable file is skipped."""
    from ..swap import prompt_hash

    hashes = [prompt_hash(p) for p in prompts.values()]
    for folder in dict.fromkeys(str(Path(f)) for f in folders):
        for path in sorted(Path(folder).glob(SWAP_GLOB)) if Path(folder).is_dir() else ():
            found = _matching_swap(path, hashes, model)
            if found is not None:
                return found, path
    return None


def _matching_swap(path: Path, hashes, model):
    from ..exceptions import AnalyzerError
    from ..swap import SwapResult

    if path.is_file():
        try:
            res = SwapResult.read(path)
        except AnalyzerError:
            return None
        if res.covers(hashes) and (model is None or res.model == model):
            return res
    return None


def swap_folders(paths: Sequence[str]) -> list[str]:
    """Where a stored swap of prompts at ``paths`` may be: each adapter directory's parent folder (a loose
    tensor file's own folder)."""
    return list(dict.fromkeys(str(Path(p).parent) for p in paths))


__all__ = ["prompt_similarity", "swap_columns", "stored_swap", "swap_folders", "SWAP_FILE"]

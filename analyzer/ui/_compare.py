"""Compare's logic (streamlit-free): prompt-to-prompt similarity (:func:`analyzer.decode.similarity.prompt_similarity`:
the cosine of the prompts' mean vectors, the mean cosine over all pairs of their virtual tokens, the token-wise max
inner product), and which prompts the per-task swap can use and whether a stored ``swap.json`` already holds their
swap."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..decode.similarity import prompt_similarity

#: the file ``scripts/prompt_swap.py`` writes beside the sample prompts
SWAP_FILE = "swap.json"
#: the stored swaps Compare looks for in a prompt's folder (``swap.json``, ``swap-multitask.json``...)
SWAP_GLOB = "swap*.json"
#: what writes each shipped swap file
SWAP_WRITERS = {SWAP_FILE: "make sample-swap", "swap-multitask.json": "make sample-multitask"}


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


#: permutations and bootstrap draws of the dashboard's similarity-against-transfer test (the CLI's `compare` uses 2,000)
TRANSFER_DRAWS = 1000


@dataclass(frozen=True)
class TransferReading:
    """What the Compare section shows of a swap: the prompts' names and own tasks, the relative transfer ``"p p"``
    (:func:`analyzer.decode.similarity.relative_transfer`) and, from four prompts on, each vector similarity's
    Spearman rho with it (:func:`analyzer.decode.similarity.similarity_vs_transfer` rows)."""

    names: tuple[str, ...]
    own_tasks: tuple[str, ...]
    relative: np.ndarray
    correlations: tuple[dict, ...]


_TRANSFER_CACHE: dict[str, TransferReading] = {}


def transfer_reading(swap, vectors: Mapping[str, np.ndarray]) -> TransferReading:
    """The transfer reading of a :class:`analyzer.swap.SwapResult` whose prompt columns are named as in ``vectors``
    (``{name: "n d" matrix}``); computed once per swap and prompts (the permutation test takes seconds)."""
    from ..decode.similarity import relative_transfer, similarity_vs_transfer

    names = tuple(p.name for p in swap.prompts)
    key = swap.to_json(indent=None) + "|" + "|".join(f"{n}:{hash(np.asarray(vectors[n]).tobytes())}" for n in names)
    if key not in _TRANSFER_CACHE:
        acc = swap.accuracy_matrix()[:, 1:].T                       # "prompt task" (column 0 is zero-shot)
        own = tuple(p.task for p in swap.prompts)
        rel = relative_transfer(acc, list(swap.tasks), own)
        rows: tuple = ()
        if len(names) >= 4:
            sims = prompt_similarity([np.asarray(vectors[n]) for n in names])
            rows = tuple(similarity_vs_transfer(sims, rel, n_perm=TRANSFER_DRAWS, n_boot=TRANSFER_DRAWS))
        _TRANSFER_CACHE.clear()                                      # one at a time: the selection of the page
        _TRANSFER_CACHE[key] = TransferReading(names, own, rel, rows)
    return _TRANSFER_CACHE[key]


__all__ = ["prompt_similarity", "swap_columns", "stored_swap", "swap_folders", "SWAP_FILE", "transfer_reading",
           "TransferReading"]

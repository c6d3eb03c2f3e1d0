"""Compare's logic (streamlit-free): prompt-to-prompt similarity (:func:`analyzer.decode.similarity.prompt_similarity`:
the cosine of the prompts' mean vectors, the mean cosine over all pairs of their virtual tokens, the token-wise max
inner product), and which prompts the per-task swap can use and whether a stored ``swap.json`` already holds their
swap."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

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


__all__ = ["prompt_similarity", "swap_columns", "stored_swap", "swap_folders", "SWAP_FILE"]

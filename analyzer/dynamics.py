"""The training-dynamics reading of a run's snapshots: per position, the step at which its init token leaves its
top-k vocabulary neighbours, and how tightness and task relatedness of the neighbours change over training.

This is a *description* of one run's path, not a claim: it reports values per snapshot and makes no test (the
claims about a prompt -- is its tightness or relatedness more than chance -- are made on the final prompt by
``analyzer.analysis.analyze`` through ``analyzer.stats``).  The measures are the analysis's own: neighbours from
a fitted :class:`~analyzer.neighbors.NeighborIndex`, tightness = :func:`analyzer.metrics.tightness` (mean pairwise
cosine of a position's k neighbours in the model's embedding space), relatedness = the share of a position's k
neighbours that the model-space reading of ``analyzer.relatedness`` calls related to the task.

    from analyzer.dynamics import training_dynamics
    dyn = training_dynamics("sample_prompts/sentiment-labels", index, task="sentiment", k=5)
    dyn.leave_step        # per position: first snapshot step without the init token in the top-k (None: never)"""

from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ._json import _f
from ._params import Interval, check_param
from .exceptions import AnalyzerError

#: a step-0 vector this close (cosine) to a vocabulary row *is* that token (PEFT's TEXT / SAMPLE_VOCAB init)
SAME_TOKEN_COS = 0.9999


@dataclass(frozen=True, eq=False)
class TrainingDynamics:
    """What :func:`training_dynamics` returns.

    steps:          snapshot steps, ascending (``"s"``).
    k:              neighbours per position.
    init_token_ids: per position, the init token (``None`` where the init was not a vocabulary token).
    init_source:    where the init tokens came from: ``"adapter"`` (recorded by our trainer), ``"step 0"`` (the
                    step-0 vector equals a token's row), ``"given"``, or ``None``.
    init_rank:      int ``"s n"``: rank of the init token among all indexed tokens (1 = nearest; 0 = no init token).
    in_top_k:       bool ``"s n"``: ``1 <= init_rank <= k``.
    leave_step:     per position, the first snapshot step at which the init token is not in the top-k (``None``:
                    it never left, or there is no init token); ``returned``: it was back in the top-k at a later
                    snapshot.
    tightness:      float ``"s n"`` per position and snapshot; ``relatedness``: float ``"s n"`` or None (no task).
    drift:          float ``"s"``: mean L2 distance of the positions from step 0."""

    steps: tuple[int, ...]
    k: int
    init_token_ids: tuple[int | None, ...]
    init_source: str | None
    init_rank: np.ndarray
    in_top_k: np.ndarray
    leave_step: tuple[int | None, ...]
    returned: tuple[bool, ...]
    tightness: np.ndarray
    relatedness: np.ndarray | None
    drift: np.ndarray
    task: str | None = None

    @property
    def num_virtual_tokens(self) -> int:
        return self.in_top_k.shape[1]

    def share_in_top_k(self) -> np.ndarray:
        """Per snapshot, the share of positions with an init token whose init token is in the top-k (NaN: none)."""
        has = np.array([t is not None for t in self.init_token_ids])
        if not has.any():
            return np.full(len(self.steps), np.nan)
        return self.in_top_k[:, has].mean(axis=1)

    def summary(self) -> dict:
        """Plain numbers for a table, JSON or the README: first/last values and the leave steps."""
        has = [i for i, t in enumerate(self.init_token_ids) if t is not None]
        left = [self.leave_step[i] for i in has if self.leave_step[i] is not None]
        share = self.share_in_top_k()
        out = {"steps": [self.steps[0], self.steps[-1]], "n_snapshots": len(self.steps), "k": self.k,
               "positions_with_init_token": len(has), "positions_left": len(left),
               "positions_returned": int(sum(self.returned[i] for i in has)),
               "median_leave_step": float(np.median(left)) if left else None,
               "share_init_in_top_k": [_f(share[0]), _f(share[-1])],
               "tightness": [_f(np.nanmean(self.tightness[0])), _f(np.nanmean(self.tightness[-1]))],
               "drift_final": _f(self.drift[-1])}
        if self.relatedness is not None:
            out["relatedness"] = [_f(np.nanmean(self.relatedness[0])), _f(np.nanmean(self.relatedness[-1]))]
        return out


def _init_from_step0(step0: np.ndarray, vocab) -> list[int | None]:
    emb = np.asarray(vocab.embeddings, np.float32)
    en = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    q = step0 / np.maximum(np.linalg.norm(step0, axis=1, keepdims=True), 1e-12)
    sims = q @ en.T
    best = sims.argmax(axis=1)
    return [int(b) if sims[i, b] >= SAME_TOKEN_COS else None for i, b in enumerate(best)]


def _related_of(task, index, vocab):
    """``"vocab"`` float (1 related, 0 not, NaN unscored) under the analysis's model-space defaults, or None."""
    from .relatedness import _model_related
    from .tasks import get_task

    t = get_task(task) if isinstance(task, str) else task
    mr = _model_related(t, vocab, index, background=None, n_keywords=50, n_class_keywords=10,
                        description=t.instruction or "", quantile=0.95, model_score="csls", csls_k=10, cache=True)
    return (mr or {}).get("related"), t.name


def training_dynamics(run: str | os.PathLike | Mapping[int, np.ndarray], index, *, task=None, k: int = 5,
                      init_token_ids: Sequence[int | None] | None = None) -> TrainingDynamics:
    """The training-dynamics reading of a run.

    run:            a run directory with ``snapshots.safetensors`` (our trainer's, or one written by
                    ``analyzer.training.recorder`` from a run trained elsewhere), or ``{step: "n d"}``.
    index:          a fitted :class:`~analyzer.neighbors.NeighborIndex` on the vocabulary the prompt lives in.
    task:           a task name or :class:`~analyzer.tasks.Task` for the relatedness curve; default: the run's
                    ``training_meta.json`` task (a built-in one, or its task file found again by content);
                    ``False``: none.
    k:              neighbours per position.
    init_token_ids: overrides the init tokens (default: the adapter's record, else read off step 0)."""
    from .metrics import tightness, token_ranks

    if not hasattr(index, "vocab_"):
        raise AnalyzerError("training_dynamics needs a fitted NeighborIndex (call .fit(vocab) first).")
    vocab = index.vocab_
    k = check_param("training_dynamics", "k", k, Interval(Integral, 1, 1000))
    source = None
    if isinstance(run, Mapping):
        snaps = {int(s): np.asarray(v, np.float32) for s, v in sorted(run.items())}
        directory = None
    else:
        from .training.files import read_snapshots

        directory = Path(run)
        snaps = read_snapshots(directory)
    if not snaps:
        raise AnalyzerError("No snapshots: expected {step: matrix} with at least one step.")
    steps = tuple(sorted(snaps))
    X = np.stack([snaps[s] for s in steps])            # s n d
    if X.ndim != 3 or X.shape[2] != vocab.dim:
        raise AnalyzerError(f"The snapshots have shape {X.shape[1:]} (n_virtual, d) but the vocabulary of "
                            f"{vocab.name} has dim {vocab.dim}.")
    s_n, n = X.shape[:2]
    if init_token_ids is not None:
        init = [None if t is None else int(t) for t in init_token_ids]
        source = "given"
    else:
        init = None
        if directory is not None and (directory / "adapter_model.safetensors").is_file():
            try:
                from .loaders import load_prompt

                ids = load_prompt(directory).init_token_ids
                if ids is not None and len(ids) == n:
                    init, source = [int(t) for t in ids], "adapter"
            except Exception:  # noqa: BLE001 -- an unreadable adapter: read the init off step 0 instead
                init = None
        if init is None and steps[0] == 0:
            init = _init_from_step0(X[0], vocab)
            source = "step 0" if any(t is not None for t in init) else None
        init = init or [None] * n
    if len(init) != n:
        raise AnalyzerError(f"init_token_ids has {len(init)} entries for {n} virtual tokens.")
    has = np.array([t is not None for t in init])
    ranks = np.zeros((s_n, n), np.int64)
    tight = np.zeros((s_n, n))
    nbr = []
    for si in range(s_n):
        _, ids = index.kneighbors(X[si], k)
        nbr.append(ids)
        tight[si] = tightness(ids, vocab.embeddings)
        if has.any():
            ranks[si, has] = token_ranks(index, X[si][has], np.array([t for t in init if t is not None]))
    in_top = (ranks >= 1) & (ranks <= k)
    leave, back = [], []
    for i in range(n):
        out_at = np.flatnonzero(has[i] & ~in_top[:, i]) if has[i] else np.array([], int)
        if out_at.size:
            leave.append(int(steps[out_at[0]]))
            back.append(bool(in_top[out_at[0]:, i].any()))
        else:
            leave.append(None)
            back.append(False)
    rel, task_name = None, None
    if task is None and directory is not None:
        from .task_record import run_task

        task = run_task(directory)      # a built-in task, or the recorded task file found again by content
    if task not in (None, False):
        related, task_name = _related_of(task, index, vocab)
        if related is not None:
            rel = np.stack([np.nanmean(np.where(np.isfinite(related[ids]), related[ids], np.nan), axis=1)
                            for ids in nbr])
    drift = np.linalg.norm(X - X[0][None], axis=2).mean(axis=1)
    return TrainingDynamics(steps=steps, k=int(k), init_token_ids=tuple(init), init_source=source, init_rank=ranks,
                            in_top_k=in_top, leave_step=tuple(leave), returned=tuple(back), tightness=tight,
                            relatedness=rel, drift=drift, task=task_name)


__all__ = ["training_dynamics", "TrainingDynamics"]

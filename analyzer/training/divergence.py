"""Training that diverges says so.

After every optimizer step the trainer asks :func:`divergence` whether the run has left the space a prompt can
mean anything in: a loss that is NaN or infinite, a prompt with a non-finite entry, or a prompt row longer than
``EXPLODE_FACTOR`` times the vocabulary's longest embedding (in the space the model reads, Gemma's sqrt(d) scale
included).  The check comes before anything of that step is written (log row, snapshot, checkpoint, adapter), so
the run stops with :func:`diverged_error`'s one line and its folder keeps the last good checkpoint and adapter."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..exceptions import TrainingError

#: a prompt row this many times longer than the vocabulary's longest embedding has exploded (token embeddings
#: of one model differ in norm by a factor of ~4, SmolLM2's 1.8 to 7.5; a prompt that is meant to be read
#: against them never gets near 1000x)
EXPLODE_FACTOR = 1e3


def norm_limit(embeddings: torch.Tensor, embed_scale: float = 1.0) -> float:
    """``EXPLODE_FACTOR`` times the longest row of the vocabulary ``"vocab d"`` as the model reads it."""
    with torch.no_grad():
        longest = float(torch.linalg.vector_norm(embeddings.detach(), dim=-1, dtype=torch.float32).max())
    return EXPLODE_FACTOR * longest * float(embed_scale)


def divergence(loss: float, prompt: torch.Tensor, limit: float) -> str | None:
    """Why the run has diverged -- the loss, a non-finite prompt, a prompt row over ``limit`` -- or None.
    ``prompt``: ``"... n d"`` (a multitask run passes every task's prompt)."""
    if not math.isfinite(loss):
        return f"the loss became {loss}"
    with torch.no_grad():
        p = prompt.detach()
        if not bool(torch.isfinite(p).all()):
            return "the prompt has non-finite entries"
        longest = float(torch.linalg.vector_norm(p, dim=-1, dtype=torch.float32).max())
    if longest > limit:
        return (f"a prompt row reached norm {longest:.3g}, over {EXPLODE_FACTOR:g}x the vocabulary's longest "
                f"embedding ({limit / EXPLODE_FACTOR:.3g})")
    return None


def diverged_error(reason: str, step: int, lr: float, out: Path, kept_step: int | None, *,
                   resumable: bool = True) -> TrainingError:
    """The one line a diverged run stops with: where, why, what its folder keeps and what to do."""
    if kept_step is None:
        kept = (f"nothing was saved before it; start again with a lower --lr (and --overwrite, {out} holds the "
                f"run's log)")
    elif resumable:
        kept = (f"the last good checkpoint (step {kept_step}) and its adapter are kept in {out}; continue from it "
                f"with --resume and a lower --lr, or start again with --overwrite")
    else:
        kept = (f"the last good adapter (step {kept_step}) is kept in {out}; start again with a lower --lr and "
                f"--overwrite")
    return TrainingError(f"Training diverged at step {step} (--lr {lr:g}): {reason}; {kept}.")


def record_divergence(out: Path, step: int, reason: str, lr: float) -> None:
    """Add ``"diverged": {"step", "reason", "lr"}`` to the run record the last good checkpoint wrote (the adapter
    and checkpoint stay as they are), so the dashboard lists the run as diverged rather than resumable as it is.
    Nothing when no record was written yet; a resumed run that succeeds writes its record anew, without it."""
    from .run_meta import RunMeta

    meta = RunMeta.load(out)
    if not meta.is_empty():
        meta.diverged = {"step": int(step), "reason": reason, "lr": float(lr)}
        meta.save(out)


__all__ = ["divergence", "diverged_error", "record_divergence", "norm_limit", "EXPLODE_FACTOR"]

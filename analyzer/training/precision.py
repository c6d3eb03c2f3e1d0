"""The compute dtype of a training run: bfloat16 autocast for the frozen model where the hardware multiplies
bfloat16 natively, float32 otherwise.

Only the frozen model's matrix products run in bfloat16 (``torch.autocast``); the prompt, its gradient and the
AdamW state stay float32, and the loss is computed from float32 logits.  ``dtype="auto"`` decides by measuring:
on a CPU, the same fast probe the neighbour search uses (``analyzer.neighbors._low_precision_probe``: bfloat16
vs float32 matrix products, once per process) -- AMX on Intel and AVX512-BF16 on AMD EPYC pass it, older CPUs
do not; on CUDA, ``torch.cuda.is_bf16_supported()``.  What was chosen, and why, goes into
``training_meta.json`` (``precision``)."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

from .config import DTYPES


@dataclass(frozen=True)
class Precision:
    """``requested``: the config's ``dtype``; ``dtype``: what the run uses (``float32`` | ``bfloat16``);
    ``probe_speedup``: the measured bfloat16/float32 matrix-product speed-up on this CPU (None when not probed);
    ``reason``: one line saying why."""

    requested: str
    dtype: str
    device: str
    probe_speedup: float | None
    reason: str

    @property
    def autocast(self) -> bool:
        return self.dtype == "bfloat16"

    def to_dict(self) -> dict:
        return asdict(self)


def choose_precision(requested: str, device) -> Precision:
    """The run's compute dtype on ``device`` (a ``torch.device``) for a ``dtype`` setting in ``DTYPES``."""
    import torch

    kind = getattr(device, "type", str(device))
    speed = None
    if kind == "cpu" and requested != "float32":
        from ..neighbors import _low_precision_probe

        low, speed = _low_precision_probe()
        native = low is not None
        why = (f"this CPU multiplies bfloat16 matrices {speed:.1f}x faster than float32"
               if native else f"bfloat16 products are only {speed:.1f}x float32 on this CPU (no AMX/AVX512-BF16)")
    elif kind == "cuda" and requested != "float32":
        native = bool(torch.cuda.is_bf16_supported())
        why = "the GPU supports bfloat16" if native else "the GPU does not support bfloat16"
    else:
        native, why = False, "float32 requested" if requested == "float32" else f"no bfloat16 autocast on {kind}"
    if requested == "float32":
        return Precision(requested, "float32", kind, speed, "float32 requested")
    if requested == "bfloat16":
        return Precision(requested, "bfloat16", kind, speed, f"bfloat16 requested ({why})")
    return Precision(requested, "bfloat16" if native else "float32", kind, speed, f"auto: {why}")


def autocast(precision: Precision):
    """The context the frozen model's forward runs in: bfloat16 autocast, or nothing."""
    if not precision.autocast:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(precision.device, dtype=torch.bfloat16)


__all__ = ["DTYPES", "Precision", "choose_precision", "autocast"]

"""A stand-in accelerator for the GPU path's tests on a machine without one.  The model sits on torch's ``meta``
device (tensors with shapes, dtypes and a device, no data), and a CPU tensor of one or more dimensions meeting a
meta tensor in any operation raises "Expected all tensors to be on the same device", as on a GPU (checked here for
every operation, since some meta kernels do not check).  No number is computed: reading one back (``.cpu()``,
``.to("cpu")``, ``.item()``, ``.tolist()``, ``.numpy()``, ``bool()``) gives a placeholder of the tensor's shape
(:func:`_fill`), so a reading runs to its end and what it reports is meaningless.  What such a test proves is that
a reading's tensors meet on the model's device, wherever that is.

    with on_fake_device(monkeypatch) as dev:   # resolve_device() answers "meta" for cuda/auto inside
        model, tok = load_frozen_model(path)     # ...so the model loads onto the stand-in
        ...                                      # run a reading; dev.reads counts the values read back

Used only by tests: CUDA cannot run here (no GPU), and a device mismatch is the failure a CPU run cannot show."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

_NP = {torch.bool: np.bool_, torch.int64: np.int64, torch.int32: np.int32, torch.float64: np.float64}
_SCALAR = {torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__int__, torch.Tensor.__float__,
           torch.Tensor.__index__}
#: what may take tensors of both devices on a GPU too: moves, copies, and indexing with CPU indices
_MOVES = {torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.cuda, torch.Tensor.copy_, torch.Tensor.__getitem__,
          torch.Tensor.__setitem__, torch.Tensor.device.__get__, torch.Tensor.dim, torch.Tensor.size,
          torch._has_compatible_shallow_copy_type, torch.Tensor.set_}


def _fill(dtype) -> float:
    """The value read back: 1 for floating tensors (a prompt read back must have a norm), 0 for integers (a token
    id that exists) and True for booleans (a generation's "every sequence is done", so its loop ends)."""
    return 1.0 if dtype.is_floating_point else True if dtype == torch.bool else 0


def _meta(t) -> bool:
    return isinstance(t, torch.Tensor) and t.device.type == "meta"


def _to_cpu(args, kwargs) -> bool:
    """Whether a ``Tensor.to`` call moves to the CPU."""
    for a in list(args[1:]) + [kwargs.get("device")]:
        if isinstance(a, (str, torch.device)) and torch.device(a).type == "cpu":
            return True
    return False


class FakeDevice(TorchFunctionMode):
    """Reads of meta tensors give placeholders (see :func:`_fill`); every other operation runs as it is, after the
    device check of the module's text."""

    def __init__(self):
        super().__init__()
        self.reads = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        t = args[0] if args else None
        if _meta(t):
            if func is torch.Tensor.cpu or (func is torch.Tensor.to and _to_cpu(args, kwargs)):
                self.reads += 1
                dtype = next((a for a in list(args[1:]) + [kwargs.get("dtype")] if isinstance(a, torch.dtype)),
                             t.dtype)
                return torch.full(t.shape, _fill(dtype), dtype=dtype)
            if func is torch.Tensor.numpy or func is torch.Tensor.tolist:
                self.reads += 1
                z = np.full(tuple(t.shape), _fill(t.dtype), _NP.get(t.dtype, np.float32))
                return z if func is torch.Tensor.numpy else z.tolist()
            if func in _SCALAR:
                self.reads += 1
                return func(torch.full((), _fill(t.dtype), dtype=t.dtype))   # a comparison's result: True
        if func not in _MOVES:
            tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            if any(a.device.type == "meta" for a in tensors) and any(a.device.type == "cpu" and a.dim() > 0
                                                                      for a in tensors):
                raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                                   f"meta and cpu! ({getattr(func, '__name__', func)})")
        return func(*args, **kwargs)


@contextmanager
def on_fake_device(monkeypatch):
    """Within the block, a GPU is "there": ``resolve_device`` answers ``meta`` for ``auto`` and ``cuda`` (so the
    code that moves a model to the chosen device moves it to ``meta``), and reads of meta tensors give placeholders
    (:func:`_fill`)."""
    import analyzer._device as device

    def fake_resolve(d=None):
        d = device.default_device() if d is None else d
        return "cpu" if str(d).strip().lower() == "cpu" else "meta"

    monkeypatch.setattr(device, "resolve_device", fake_resolve)
    # the all-pairs neighbour pass keeps the CPU: meta has no kernel for some of its operations (bincount), and its
    # CUDA path has tests of its own (they skip without a GPU)
    import analyzer.neighbors as neighbors

    monkeypatch.setattr(neighbors, "resolve_device", lambda d=None: "cpu")
    mode = FakeDevice()
    with mode:
        yield mode

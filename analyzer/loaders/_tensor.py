"""Raw soft-prompt tensors: ``.safetensors``, ``.npy``, ``.npz``, ``.pt``/``.pth``/``.bin`` of shape (n, d).

Also the low-level readers the PEFT loader shares: a safetensors reader that keeps bf16/fp16 exact, a
``torch.load(weights_only=True)`` that turns every failure into one clear line (a pickle is never executed),
and the float32 / row checks every prompt goes through (``check_rows``: finite values, a usable norm).

Heavy imports (torch, safetensors) happen inside the functions."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..exceptions import InputFileError
from ..types import SoftPrompt

#: suffix → format; ``.bin`` is a torch pickle (as in ``pytorch_model.bin`` / ``adapter_model.bin``).
TENSOR_SUFFIXES = {".safetensors": "safetensors", ".npy": "npy", ".npz": "npz",
                   ".pt": "torch", ".pth": "torch", ".bin": "torch"}

#: the name PEFT gives the prompt matrix; a raw file holding several tensors may use it to say which one.
PROMPT_KEY = "prompt_embeddings"

_PICKLE_HINT = ("pickles are never executed here; save the tensor with safetensors instead "
                "(safetensors.torch.save_file({'prompt_embeddings': t}, 'prompt.safetensors'))")


def _line(e: BaseException) -> str:
    """An exception's first line (library messages may span several; ours must be one)."""
    text = str(e).strip()
    return text.splitlines()[0].rstrip(".") if text else type(e).__name__


# ----------------------------------------------------------------------------------------------- checks
def check_nonempty_file(path: Path, *, expected: str = "a saved tensor") -> None:
    """Raise InputFileError for a path that is not a readable, non-empty regular file."""
    if not path.is_file():
        raise InputFileError(f"Expected a file but '{path}' is not a regular file.")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputFileError(f"Cannot read '{path}': {e.strerror or e}.") from e
    if size == 0:
        raise InputFileError(f"File '{path}' is empty (0 bytes); expected {expected}.")


def to_float32(value: Any, *, what: str) -> np.ndarray:
    """A torch tensor or numpy array of floating dtype → float32 C-contiguous numpy (a copy, never a view
    of a memory-mapped file).  Integer, bool or complex data is refused: a soft prompt is real-valued."""
    if isinstance(value, np.ndarray):
        arr = value
        if arr.dtype == object:
            raise InputFileError(f"{what} holds Python objects, not numbers; {_PICKLE_HINT}.")
        if not np.issubdtype(arr.dtype, np.floating):
            raise InputFileError(f"{what} has dtype {arr.dtype}; a soft prompt must be floating point "
                                 "(did you save token ids instead of embeddings?).")
        return np.array(arr, dtype=np.float32, order="C", copy=True)
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach()
        if not (t.is_floating_point()):
            raise InputFileError(f"{what} has dtype {str(t.dtype).replace('torch.', '')}; a soft prompt must be "
                                 "floating point (did you save token ids instead of embeddings?).")
        arr = t.to(device="cpu", dtype=torch.float32).contiguous().numpy()
        return np.array(arr, dtype=np.float32, order="C", copy=True)
    raise InputFileError(f"{what} is a {type(value).__name__}, not a tensor or array.")


def check_matrix(arr: np.ndarray, *, what: str) -> np.ndarray:
    """The array must be (n, d) with n, d ≥ 1."""
    if arr.ndim != 2:
        raise InputFileError(f"{what} has shape {tuple(arr.shape)} ({arr.ndim}-D); a soft prompt is a 2-D "
                             "(num_virtual_tokens, dim) matrix.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputFileError(f"{what} has shape {tuple(arr.shape)}; a soft prompt needs at least one row "
                             "and one column.")
    return arr


#: every row of a soft prompt needs a squared L2 norm that is a normal float32 number: below this norm the
#: row is zero to float32 arithmetic (its cosine to any token is undefined), above the next one its squared
#: norm overflows (cosines and distances come out as 0, NaN or inf).  Norms are computed in float64.
MIN_ROW_NORM = float(np.sqrt(np.float64(np.finfo(np.float32).tiny)))   # ≈ 1.1e-19
MAX_ROW_NORM = float(np.sqrt(np.float64(np.finfo(np.float32).max)))    # ≈ 1.8e19


def _rows(rows: list[int], n: int) -> str:
    """``rows 0, 2 (of 5)``, ``row 3``, ``rows 0, 1 (all 2)``: which rows, for a one-line message."""
    shown = ", ".join(str(r) for r in rows[:12]) + (f" and {len(rows) - 12} more" if len(rows) > 12 else "")
    every = f" (all {n})" if len(rows) == n and n > 1 else f" (of {n})"
    return f"row{'s' if len(rows) > 1 else ''} {shown}{every}"


def check_rows(vectors: np.ndarray, *, name: str, source: str) -> None:
    """The one rule for the rows of a soft prompt, applied to every prompt that is loaded (and again to an
    in-memory prompt by ``check_compatible``): a prompt with any row that holds NaN/Inf, whose norm is zero or
    too small for float32 (``< MIN_ROW_NORM``: cosine undefined) or whose squared norm overflows float32
    (``> MAX_ROW_NORM``) is refused with one InputFileError line naming those rows and why.  No row is
    silently dropped: a statistic over the other rows would describe a different prompt."""
    v = np.asarray(vectors)
    n = int(v.shape[0])
    bad_mask = ~np.isfinite(v)
    if bad_mask.any():
        rows = np.flatnonzero(bad_mask.any(axis=1)).tolist()
        kinds = [k for k, present in (("NaN", np.isnan(v).any()), ("Inf", np.isinf(v).any())) if present]
        shown = ", ".join(str(r) for r in rows[:12]) + (f" and {len(rows) - 12} more" if len(rows) > 12 else "")
        raise InputFileError(f"Soft prompt '{name}' ({source}) has {'/'.join(kinds)} values in row"
                             f"{'s' if len(rows) > 1 else ''} {shown} of {n}; "
                             "the training probably diverged, so there is nothing meaningful to analyse.")
    norms = np.linalg.norm(v.astype(np.float64), axis=1)
    zero = np.flatnonzero(norms == 0).tolist()
    tiny = np.flatnonzero((norms > 0) & (norms < MIN_ROW_NORM)).tolist()
    huge = np.flatnonzero(norms > MAX_ROW_NORM).tolist()
    if not (zero or tiny or huge):
        return
    why = []
    if zero:
        why.append(f"{_rows(zero, n)} {'are' if len(zero) > 1 else 'is'} all zeros (cosine undefined)")
    if tiny:
        why.append(f"{_rows(tiny, n)} {'have norms' if len(tiny) > 1 else 'has norm'} {norms[tiny[0]]:.2g}"
                   f"{'…' if len(tiny) > 1 else ''}, below {MIN_ROW_NORM:.1e} (zero in float32: cosine undefined)")
    if huge:
        why.append(f"{_rows(huge, n)} {'have norms' if len(huge) > 1 else 'has norm'} {norms[huge[0]]:.2g}"
                   f"{'…' if len(huge) > 1 else ''}, above {MAX_ROW_NORM:.1e} (its square overflows float32)")
    raise InputFileError(f"Soft prompt '{name}' ({source}, {n} row{'s' if n > 1 else ''} of dim {v.shape[1]}) "
                         f"cannot be used: {'; '.join(why)}; every row needs a norm between "
                         f"{MIN_ROW_NORM:.1e} and {MAX_ROW_NORM:.1e} (an all-zero or diverged prompt has no "
                         "reading), so pass the trained prompt or rescale it.")


# ----------------------------------------------------------------------------------------------- readers
def read_safetensors(path: Path, *, choose: Any = None, metadata: dict | None = None) -> dict[str, Any]:
    """Tensors of a safetensors file as torch tensors (torch keeps bf16/fp16 exactly).  With ``choose``
    (a function from ``{name: shape}`` to one name) only that tensor is read, so a large file passed by
    mistake is not loaded whole.  A ``metadata`` dict is filled with the file's string metadata."""
    check_nonempty_file(path)
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            if metadata is not None:
                metadata.update(f.metadata() or {})
            keys = list(f.keys())
            if choose is not None:
                keys = [choose({k: tuple(f.get_slice(k).get_shape()) for k in keys})]
            return {k: f.get_tensor(k) for k in keys}
    except SafetensorError as e:
        raise InputFileError(f"'{path}' is not a valid safetensors file (corrupt or truncated?): {_line(e)}.") from None
    except OSError as e:
        raise InputFileError(f"Cannot read '{path}': {e.strerror or e}.") from None


def torch_load_safe(path: Path, *, mmap: bool = False, hint: str = _PICKLE_HINT) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU.  A file that needs arbitrary unpickling is refused
    without being executed; a corrupt file gets one clear line (ending with ``hint``).  ``mmap=True``
    memory-maps a zip-format file (only the tensors that are used are read), falling back to a plain load
    for the legacy format."""
    check_nonempty_file(path)
    import pickle

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4 ..." is noise here
            if mmap:
                try:
                    return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError as e:
                    if "mmap" not in str(e).lower() and "zip" not in str(e).lower():
                        raise
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" in str(e).lower():
            if not _looks_like_torch_file(path):  # random bytes read as pickle opcodes fail the same way
                raise InputFileError(f"'{path}' is not a valid PyTorch file: it is corrupt or a pickle of "
                                     f"something other than tensors; {hint}.") from None
            detail = _weights_only_detail(str(e))
            raise InputFileError(f"Refused to load '{path}': it contains Python objects beyond plain tensors"
                                 f"{detail}, which torch.load(weights_only=True) rejects; {hint}.") from None
        raise InputFileError(f"'{path}' is not a valid PyTorch file (corrupt or not a torch.save file).") from None
    except OSError as e:
        raise InputFileError(f"Cannot read '{path}': {e.strerror or e}.") from e
    except Exception:  # noqa: BLE001 — torch raises RuntimeError/KeyError/EOFError... for corrupt files
        raise InputFileError(f"'{path}' is not a valid PyTorch file (corrupt, truncated or not a "
                             "torch.save file).") from None


def _looks_like_torch_file(path: Path) -> bool:
    """A torch.save zip archive (``PK\\x03\\x04``) or a protocol ≥ 2 pickle (``\\x80``), as torch writes."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _weights_only_detail(msg: str) -> str:
    """Pull the offending global (e.g. ``posix.system``) out of torch's long message, when it names one."""
    import re

    m = re.search(r"\bGLOBAL\s+([\w.]+)", msg)
    return f" (it references {m.group(1)})" if m else ""


def _read_npy(path: Path) -> np.ndarray:
    check_nonempty_file(path)
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise InputFileError(f"'{path}' is not a valid .npy file (no NumPy header; corrupt or another format).")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise InputFileError(f"Refused to load '{path}': it holds a pickled object array; "
                                 f"{_PICKLE_HINT}.") from None
        raise InputFileError(f"'{path}' is not a valid .npy file (corrupt or truncated): {_line(e)}.") \
            from None
    except (OSError, EOFError) as e:
        raise InputFileError(f"'{path}' is not a valid .npy file (corrupt or truncated): {_line(e)}.") \
            from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    check_nonempty_file(path)
    import zipfile

    if not zipfile.is_zipfile(path):
        raise InputFileError(f"'{path}' is not a valid .npz file (not a zip archive; corrupt or another format).")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise InputFileError(f"Refused to load '{path}': it holds a pickled object array; "
                                 f"{_PICKLE_HINT}.") from None
        raise InputFileError(f"'{path}' is not a valid .npz file (corrupt or truncated): {_line(e)}.") \
            from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise InputFileError(f"'{path}' is not a valid .npz file (corrupt or truncated): {_line(e)}.") \
            from None


# ----------------------------------------------------------------------------------------------- choose
def _shape_of(v: Any) -> tuple[int, ...] | None:
    if isinstance(v, tuple):
        return v
    shape = getattr(v, "shape", None)
    return tuple(int(x) for x in shape) if shape is not None else None


def pick_prompt_key(tensors: Mapping[str, Any], *, path: Path) -> str:
    """From a file holding several named tensors (``{name: tensor or shape}``) pick the prompt: the one named
    ``prompt_embeddings``, else the only tensor, else the only 2-D one.  Anything else is ambiguous."""
    named = {k: _shape_of(v) for k, v in tensors.items() if _shape_of(v) is not None}
    if not named:
        raise InputFileError(f"'{path}' holds no tensors.")
    if PROMPT_KEY in named:
        return PROMPT_KEY
    if len(named) == 1:
        return next(iter(named))
    two_d = [k for k, shape in named.items() if len(shape) == 2]
    if len(two_d) == 1:
        return two_d[0]
    listing = ", ".join(f"{k} {list(shape)}" for k, shape in list(named.items())[:8])
    more = f" and {len(named) - 8} more" if len(named) > 8 else ""
    raise InputFileError(f"'{path}' holds {len(named)} tensors ({listing}{more}) and none is named "
                         f"'{PROMPT_KEY}'; expected exactly one 2-D tensor or one named '{PROMPT_KEY}'.")


def load_tensor_file(path: Path, *, name: str | None = None) -> SoftPrompt:
    """A raw (n, d) tensor file → SoftPrompt of kind ``TENSOR``."""
    fmt = TENSOR_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(f"Unsupported prompt file '{path}': expected a PEFT adapter directory or one of "
                             f"{', '.join(sorted(TENSOR_SUFFIXES))}.")
    if fmt == "safetensors":
        ((key, value),) = read_safetensors(path, choose=lambda shapes: pick_prompt_key(shapes, path=path)).items()
        what = f"Tensor '{key}' in '{path}'"
    elif fmt == "npy":
        value, what = _read_npy(path), f"Array in '{path}'"
    elif fmt == "npz":
        arrays = _read_npz(path)
        key = pick_prompt_key(arrays, path=path)
        value, what = arrays[key], f"Array '{key}' in '{path}'"
    else:
        obj = torch_load_safe(path)
        if isinstance(obj, Mapping):
            key = pick_prompt_key(obj, path=path)
            value, what = obj[key], f"Tensor '{key}' in '{path}'"
        else:
            value, what = obj, f"Object in '{path}'"
    vectors = check_matrix(to_float32(value, what=what), what=what)
    source = os.path.abspath(path)
    display = name if name is not None else path.stem
    check_rows(vectors, name=display, source=source)
    return SoftPrompt(name=display, vectors=vectors, source=source, kind="TENSOR")


__all__ = ["TENSOR_SUFFIXES", "PROMPT_KEY", "check_nonempty_file", "to_float32", "check_matrix", "check_rows",
           "MIN_ROW_NORM", "MAX_ROW_NORM",
           "read_safetensors", "torch_load_safe", "pick_prompt_key", "load_tensor_file"]

"""The one check of a public entry point's parameters, in the manner of scikit-learn's ``_parameter_constraints``:
each parameter gets a list of constraints, and a value that meets none of them raises AnalyzerError with one
message shape, ``The 'k' parameter of NeighborIndex must be an int in [1, 49152]. Got 0 instead.``

    check_params("importance", {"limit": limit}, {"limit": [Interval(Integral, 2, None), None]})
    k = check_param("logit_lens", "k", k, Interval(Integral, 1, None))

A bool is never taken for a number (``True`` is not ``k=1``), numpy integers and floats are, and a number
interval admits only finite values.  Importing this module pulls the standard library only."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Mapping

from .exceptions import AnalyzerError

#: the largest seed every generator takes (numpy, torch, Python's random): seeds are ints in [0, SEED_MAX]
SEED_MAX = 2**32 - 1

_BRACKETS = {"both": "[]", "left": "[)", "right": "(]", "neither": "()"}


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or type(v).__name__ in ("bool", "bool_") and type(v).__module__ == "numpy"


def _kind(v: Any) -> Any:
    """What a value is, for comparing options: a numpy int is an int, a bool is not."""
    return "bool" if _is_bool(v) else "int" if isinstance(v, Integral) else "str" if isinstance(v, str) else type(v)


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


class Interval:
    """An int (``type=Integral``) or a finite number (``type=Real``) between ``left`` and ``right`` (None: no
    bound); ``closed`` says which ends belong to it: ``"both"`` (default), ``"left"``, ``"right"``, ``"neither"``."""

    def __init__(self, type: type, left: float | None, right: float | None, *, closed: str = "both"):
        if type not in (Integral, Real) or closed not in _BRACKETS:
            raise ValueError(f"Interval takes Integral or Real and closed in {list(_BRACKETS)}; got {type!r}, "
                             f"{closed!r}.")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def is_satisfied_by(self, v: Any) -> bool:
        if _is_bool(v) or not isinstance(v, self.type) or (self.type is Real and not math.isfinite(v)):
            return False
        lo, hi = _BRACKETS[self.closed]
        if self.left is not None and (v < self.left if lo == "[" else v <= self.left):
            return False
        return self.right is None or (v <= self.right if hi == "]" else v < self.right)

    def convert(self, v: Any) -> Any:
        return int(v) if self.type is Integral else float(v)

    def _range(self) -> str:
        lo, hi = _BRACKETS[self.closed]
        if self.left is not None and self.right is not None:
            return f" in {lo}{_num(self.left)}, {_num(self.right)}{hi}"
        if self.left is not None:
            return f" {'>=' if lo == '[' else '>'} {_num(self.left)}"
        if self.right is not None:
            return f" {'<=' if hi == ']' else '<'} {_num(self.right)}"
        return ""

    def describe(self, plural: bool = False) -> str:
        noun = ("ints" if plural else "an int") if self.type is Integral else \
            ("finite numbers" if plural else "a finite number")
        return noun + self._range()


#: a seed: an int in ``[0, SEED_MAX]``
SEED = Interval(Integral, 0, SEED_MAX)


class Options:
    """One of a fixed set of values (kept in the order given, for the message)."""

    def __init__(self, *values: Any):
        self.values = tuple(values)

    def is_satisfied_by(self, v: Any) -> bool:
        return any(_kind(v) == _kind(o) and v == o for o in self.values)

    def convert(self, v: Any) -> Any:
        return v

    def describe(self, plural: bool = False) -> str:
        listed = ", ".join(map(repr, self.values))
        return f"values among {listed}" if plural else f"one of {listed}"


class Boolean:
    """``True`` or ``False`` (a numpy bool too)."""

    def is_satisfied_by(self, v: Any) -> bool:
        return _is_bool(v)

    def convert(self, v: Any) -> bool:
        return bool(v)

    def describe(self, plural: bool = False) -> str:
        return "bools" if plural else "a bool"


class Text:
    """A str with something other than white space in it."""

    def is_satisfied_by(self, v: Any) -> bool:
        return isinstance(v, str) and bool(v.strip())

    def convert(self, v: Any) -> str:
        return v

    def describe(self, plural: bool = False) -> str:
        return "non-empty strs" if plural else "a non-empty str"


class ListOf:
    """A list (tuple, array: any sized iterable but a str or a mapping) of at least ``min_len`` items that each
    meet ``item``; converted to a list of converted items."""

    def __init__(self, item: Any, *, min_len: int = 0):
        self.item, self.min_len = item, min_len

    def is_satisfied_by(self, v: Any) -> bool:
        if isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__") or not hasattr(v, "__iter__"):
            return False
        return len(v) >= self.min_len and all(self.item.is_satisfied_by(x) for x in v)

    def convert(self, v: Any) -> list:
        return [self.item.convert(x) for x in v]

    def describe(self, plural: bool = False) -> str:
        size = "a non-empty list of" if self.min_len == 1 else \
            f"a list of at least {self.min_len}" if self.min_len > 1 else "a list of"
        return f"{size} {self.item.describe(plural=True)}"


def _describe(constraints: list) -> str:
    parts = [c.describe() for c in constraints if c is not None] + ["None"] * (None in constraints)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _shown(v: Any) -> str:
    if type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0:
        v = v.item()                      # 3, not np.int64(3)
    return repr(v)


def check_param(owner: str, name: str, value: Any, *constraints: Any,
                error: type[AnalyzerError] = AnalyzerError) -> Any:
    """``value`` when it meets one of ``constraints`` (an Interval, Options, Boolean, Text, ListOf, or None for
    None allowed), converted to a plain Python value (a numpy int to int, a list's items likewise); else
    ``error`` (an AnalyzerError subclass, e.g. TrainingError) saying
    ``The '<name>' parameter of <owner> must be <description>. Got <value> instead.``"""
    for c in constraints:
        if c is None:
            if value is None:
                return None
        elif c.is_satisfied_by(value):
            return c.convert(value)
    raise error(f"The {name!r} parameter of {owner} must be {_describe(list(constraints))}. "
                f"Got {_shown(value)} instead.")


def check_params(owner: str, values: Mapping[str, Any], constraints: Mapping[str, list], *,
                 error: type[AnalyzerError] = AnalyzerError) -> dict[str, Any]:
    """:func:`check_param` for every parameter of ``values`` named in ``constraints`` (a list of constraints
    each, like scikit-learn's ``_parameter_constraints``): a dict of the converted values, in ``values``' order."""
    return {name: check_param(owner, name, v, *constraints[name], error=error) if name in constraints else v
            for name, v in values.items()}


__all__ = ["SEED", "SEED_MAX", "Boolean", "Interval", "ListOf", "Options", "Text", "check_param", "check_params"]

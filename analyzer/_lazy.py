"""PEP 562 lazy attributes for a package ``__init__``: names are imported from their module on first use, so
importing the package stays cheap (no torch, faiss or streamlit for ``--help``)."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_getattr(package: str, namespace: dict, table: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``table[name]`` (absolute or relative to ``package``) on first use
    and stores the value in ``namespace`` (the package's ``globals()``) so later lookups are plain."""

    def __getattr__(name: str):
        mod = table.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(mod, package), name)
        namespace[name] = value
        return value

    return __getattr__

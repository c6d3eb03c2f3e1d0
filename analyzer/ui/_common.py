"""Shared bits of the sections: the user's selection and the error box."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterator

import streamlit as st

from ..exceptions import AnalyzerError, os_error_message

log = logging.getLogger("analyzer.ui")


@dataclass(frozen=True)
class Selection:
    """What the sidebar chose.  ``sources``: ``((path, stamp), ...)`` of the selected prompts (the cache key of
    everything derived from them); ``labels``: their display labels, same order."""

    model: str
    labels: tuple[str, ...]
    sources: tuple[tuple[str, tuple], ...]
    k: int
    metric: str
    task: str | None

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.sources)


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Run a section: an ``AnalyzerError`` becomes an ``st.error`` box with its one-line message; anything else
    becomes a short box too (type and first line; the traceback goes to the server log, never to the page)."""
    try:
        yield
    except AnalyzerError as e:
        st.error(str(e), icon=":material/warning:")
    except OSError as e:    # an unreadable or unwritable path, a full disk: the user's to fix, as on the CLI
        st.error(os_error_message(e), icon=":material/warning:")
    except Exception as e:  # noqa: BLE001 — st.stop()/st.rerun() are BaseExceptions and pass through
        log.exception("dashboard section %s failed", what)
        first = str(e).splitlines()[0] if str(e) else ""
        st.error(f"Something went wrong in {what}: {type(e).__name__}: {first}", icon=":material/error:")


def module_available(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def not_available(what: str, module: str) -> None:
    st.info(f"{what}: not available yet (arrives with `{module}`).", icon=":material/info:")


def named_prompts(sel: Selection) -> list[tuple[str, str, tuple, object]]:
    """``(display name, path, stamp, prompt)`` of every selected prompt, in sidebar order; the display name is
    the sidebar's label (``label/name`` for a source holding several prompts), the same everywhere."""
    from . import _explore, resources

    per_source = [(label, path, stamp, resources.prompts(path))
                  for label, (path, stamp) in zip(sel.labels, sel.sources)]
    names = _explore.display_names([s[0] for s in per_source], [len(s[3]) for s in per_source],
                                   [[p.name for p in s[3]] for s in per_source])
    flat = [(path, stamp, p) for _, path, stamp, ps in per_source for p in ps]
    return [(n, *f) for n, f in zip(names, flat)]


def prompts_of(sel: Selection) -> list:
    from . import resources

    return [p for path in sel.paths for p in resources.prompts(path)]


def model_note(sel: Selection) -> str | None:
    """The one line under the title on which model's vocabulary is read and, when it stands in for the model the
    selected prompts' adapters name, for which one and how (:mod:`analyzer.provenance`); None when the prompts
    cannot be read (the section says why)."""
    from ..provenance import model_provenance

    try:
        return model_provenance(sel.model, prompts_of(sel))["sentence"]
    except (AnalyzerError, OSError):
        return None


def wait_for(fut, what: str, detail=None, *, quiet: bool = False) -> bool:
    """True when the background ``fut`` is done; otherwise an info box (``quiet``: a caption) and a poller that
    reruns the page once it is (every second, only while something is pending), and False.  ``detail``: an
    optional callable giving the job's latest progress line, shown under the box and refreshed by the poller."""
    if fut.done():
        return True
    if quiet:
        st.caption(f"{what} in the background…")
    else:
        st.info(f"{what} in the background…", icon=":material/hourglass_top:")
    st.fragment(run_every=1.0)(_rerun_when_done)(fut, detail)
    return False


def _rerun_when_done(fut, detail=None) -> None:
    if fut.done():
        st.rerun(scope="app")
    line = detail() if detail is not None else None
    if line:
        st.caption(f"Now: {line}")

"""What a prompt's table of tests says, in words (streamlit-free): the one- or two-sentence verdict at the top of
Explore, and which rows each metric tab shows (its own measures; claims apart from the labelled references).

Every word comes from the rows themselves (``stats.Test``: ``claim``, ``significant``, ``q``, ``direction``,
``p_other``): a measure is called higher or lower than chance only when its row is a claim that survives the
Benjamini-Hochberg correction; nothing is computed here but counts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .._format import label
from ..stats import ALPHA, Test, format_p

#: the measures each metric tab of Explore shows (the ``measure`` of a row, any space); every measure of a
#: prompt's table of tests belongs to exactly one tab (tests/test_verdict.py checks them against
#: ``analyzer.result_groups.ROWS``)
TAB_MEASURES: dict[str, tuple[str, ...]] = {
    "Tightness": ("tightness", "k-occurrence skew", "mutual-neighbour share", "unique neighbor ratio"),
    "Relatedness": ("task-related share", "task specificity", "label-word rate"),
    "Geometry": ("nearest-token cosine", "nearest-token distance"),
}

#: the measure groups of a :class:`~analyzer.results.PromptAnalysis` a verdict may name as not computed
SECTIONS = {"tightness": "tightness", "null": "the null baselines", "hubness": "hubness",
            "geometry": "geometry", "persistence": "init persistence", "redundancy": "redundancy",
            "relatedness": "task-relatedness", "faithfulness": "faithfulness"}


def _row(r) -> Test:
    return Test.from_dict(r) if isinstance(r, Mapping) else r


def _tested(t: Test) -> bool:
    return bool(t.claim) and t.p is not None and math.isfinite(t.p)


def _than(t: Test) -> str:
    return "than at initialisation" if t.null == "init" else "than chance"


def _words(t: Test) -> str:
    """``tightness (model space) is lower than at initialisation (0.371 vs 0.647, q=0.008)`` for a significant
    claim: the direction is the side of the null's mean the value lies on, as in the row's own verdict."""
    higher = (t.value if t.value is not None else 0) > (t.null_mean if t.null_mean is not None else 0)
    return (f"{label(t)} is {'higher' if higher else 'lower'} {_than(t)} "
            f"({_num(t.value)} vs {_num(t.null_mean)}, {format_p(t.q, None, 'q')})")


def _num(x) -> str:
    from ..stats._format import _g

    return _g(x)


def _other_way(t: Test) -> bool:
    """A one-sided claim that is not significant but lies beyond chance the untested way (described, not claimed)."""
    from ..stats._rows import beyond_chance_other_way

    return beyond_chance_other_way(t) and t.direction in ("greater", "less")


def _join(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class Verdict:
    """A prompt's verdict: ``sentences`` (one or two, the claims that hold and the rest), ``not_computed`` (the
    sections of the analysis that were skipped, with their reasons) and the counts behind the words."""

    name: str
    sentences: tuple[str, ...]
    not_computed: tuple[tuple[str, str], ...]
    n_claims: int
    n_significant: int

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def note(self) -> str:
        """``Not computed in this reading: task-relatedness: no task was given.`` or ``""``."""
        if not self.not_computed:
            return ""
        return "Not computed in this reading: " + "; ".join(
            f"{what}: {why}" if why else what for what, why in self.not_computed) + "."


def prompt_verdict(name: str, tests: Iterable, skipped: Mapping[str, str] | None = None) -> Verdict:
    """The verdict of the prompt ``name`` from its table of tests (``stats.Test`` rows or their dicts) and its
    skipped sections (``{group: reason}``, e.g. from :func:`skipped_sections`).

    Significant claims are named with their direction, values and q; the claims that do not hold are named as not
    distinguishable (or, for a one-sided row beyond chance the untested way, as described, not claimed); when no
    claim survives the FDR correction the verdict says so plainly.  Reference rows are never named."""
    rows = [_row(r) for r in tests]
    claims = [t for t in rows if _tested(t)]
    sig = [t for t in claims if t.significant]
    other_way = [t for t in claims if _other_way(t)]
    plain = [t for t in claims if not t.significant and not _other_way(t)]
    not_computed = tuple((SECTIONS.get(k, k), str(v or "").rstrip(".")) for k, v in (skipped or {}).items())
    correction = f"the false-discovery correction (Benjamini-Hochberg, q < {ALPHA:g})"
    if not claims:
        first = (f"{name}: no claim was tested — its table of tests holds only labelled reference rows, so this "
                 "reading says nothing about chance.")
        return Verdict(name, (first,), not_computed, 0, 0)
    if not sig:
        names = _join([label(t) for t in claims])
        first = f"{name}: nothing is more than chance — " + (
            f"its one claim, {names}, does not survive {correction}." if len(claims) == 1 else
            f"none of its {len(claims)} claims ({names}) survives {correction}.")
        second = _rest_sentence([], other_way)
        return Verdict(name, (first,) + ((second,) if second else ()), not_computed, len(claims), 0)
    held = f"{len(sig)} of its {len(claims)} claims" if len(claims) > 1 else "its one claim"
    first = (f"{name}: {held} hold{'s' if len(sig) == 1 else ''} after {correction} — "
             + "; ".join(_words(t) for t in sig) + ".")
    second = _rest_sentence(plain, other_way)
    return Verdict(name, (first,) + ((second,) if second else ()), not_computed, len(claims), len(sig))


def _rest_sentence(plain: Sequence[Test], other_way: Sequence[Test]) -> str:
    parts = []
    for against, group in (("chance", [t for t in plain if t.null != "init"]),
                           ("the initialisation", [t for t in plain if t.null == "init"])):
        names = list(dict.fromkeys(label(t) for t in group))
        if names:
            parts.append(f"{_join(names)} {'is' if len(names) == 1 else 'are'} not distinguishable from {against}")
    for t in other_way:
        way = "lower" if t.direction == "greater" else "higher"
        parts.append(f"{label(t)} lies {way} {_than(t)}, the other way from its one-sided test (described, not "
                     "a claim)")
    if not parts:
        return ""
    s = "; ".join(parts)
    return s[0].upper() + s[1:] + "."


def skipped_sections(analysis, omit: Sequence[str] = ()) -> dict[str, str]:
    """``{group: reason}`` of the measure groups of a :class:`~analyzer.results.PromptAnalysis` that were skipped
    (a :class:`~analyzer.results.Skipped`), in :data:`SECTIONS` order, leaving out those in ``omit``."""
    from ..results import Skipped

    return {k: getattr(analysis, k).reason for k in SECTIONS
            if k not in omit and isinstance(getattr(analysis, k, None), Skipped)}


def tab_rows(tests: Iterable, tab: str) -> tuple[list[Test], list[Test]]:
    """``(claims, references)``: the rows of ``tests`` whose measure belongs to the metric tab ``tab`` (see
    :data:`TAB_MEASURES`), the claims (a null a claim may rest on) apart from the labelled reference rows
    (random vectors, vocabulary tokens, a matched null that only describes), each in table order."""
    mine = set(TAB_MEASURES[tab])
    rows = [t for t in map(_row, tests) if t.measure in mine]
    return [t for t in rows if t.claim], [t for t in rows if not t.claim]


__all__ = ["TAB_MEASURES", "SECTIONS", "Verdict", "prompt_verdict", "skipped_sections", "tab_rows"]

"""Plain display helpers shared by the renderers (:mod:`analyzer.render`) and the dashboard: numbers, and the
compact view of a prompt's table of tests (``stats.Test`` rows, or their ``to_dict()``).  No I/O, no imports
beyond the statistics layer."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .stats import ALPHA, Test, format_p

NULL_SHORT = {"matched": "matched", "init": "init", "random_vectors": "random (ref.)",
              "vocab_tokens": "tokens (ref.)"}


def num(x, digits: int = 3) -> str:
    """A value for display: ``—`` when unknown (None), floats with ``digits`` decimals."""
    return "—" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _row(row: Test | Mapping[str, Any]) -> Test:
    return Test.from_dict(row) if isinstance(row, Mapping) else row


def short_verdict(row: Test | Mapping[str, Any]) -> str:
    """``higher than chance`` / ``lower than chance`` / ``not distinguishable`` / ``reference``."""
    row = _row(row)
    if not row.claim:
        return "reference"
    if row.p is None:
        return "not testable"
    if not row.significant:
        po = row.p_other
        if po is not None and po < ALPHA:     # a one-sided row beyond chance the other way: said, not claimed
            other = "lower" if row.direction == "greater" else "higher"
            return f"{other} than chance (described, the untested direction)"
        return "not distinguishable"
    higher = (row.value or 0) > (row.null_mean or 0)
    return ("higher" if higher else "lower") + (" than at init" if row.null == "init" else " than chance")


def label(row: Test | Mapping[str, Any]) -> str:
    row = _row(row)
    return row.measure if row.space in (None, "", "-") else f"{row.measure} ({row.space} space)"


def compact_rows(tests: Iterable[Test | Mapping[str, Any]], *, claims_only: bool = False) -> list[dict[str, str]]:
    """The table of tests as display rows ``measure | value | null | q | verdict`` (claims first, then the
    labelled references with their p-value): what the dashboard, the Markdown and the HTML show."""
    tests = [_row(r) for r in tests]
    ordered = [r for r in tests if r.claim] + ([] if claims_only else [r for r in tests if not r.claim])
    out = []
    for r in ordered:
        stat = format_p(r.q, None, "q") if r.claim else format_p(r.p, r.n_null, "p", r.direction or "two-sided")
        out.append({"measure": label(r), "value": num(r.value),
                    "null": f"{NULL_SHORT.get(r.null, r.null)} {num(r.null_mean)}", "q": stat,
                    "verdict": short_verdict(r)})
    return out


def cluster_rows(clusters) -> list[dict[str, str]]:
    """The cluster metrics across prompts (a :class:`~analyzer.results.Clusters`, each against label
    permutations) as display rows."""
    return [{"measure": c.name.replace("_", " "), "value": num(c.value), "null": f"permutation {num(c.null_mean)}",
             "p": format_p(c.p, c.n_null), "verdict": c.verdict} for c in clusters.metrics]


def nulls_used(tests: Iterable[Test | Mapping[str, Any]]) -> dict[str, str]:
    """The one-sentence description of every null that a table of tests uses, in order of first use."""
    from .stats import NULLS

    return {n: NULLS.get(n, n) for n in dict.fromkeys(_row(r).null for r in tests)}


def description_lines(summary: Iterable[str]) -> list[str]:
    """The sentences of a summary that describe (the task set, the profile, "related to T: ..."), without the
    test verdicts, which the table of tests shows."""
    return [s for s in summary if "(a reference, not a claim)" not in s and " q=" not in s and " q<" not in s]


__all__ = ["description_lines", "nulls_used", "cluster_rows", "NULL_SHORT", "num", "short_verdict", "label", "compact_rows"]

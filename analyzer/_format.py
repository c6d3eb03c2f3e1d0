"""Plain display helpers shared by the renderers (``report.py``, ``_html.py``) and the dashboard: numbers, and the
compact view of a prompt's table of tests.  No I/O, no imports beyond the statistics layer."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .stats import ALPHA, format_p

NULL_SHORT = {"matched": "matched", "init": "init", "random_vectors": "random (ref.)",
              "vocab_tokens": "tokens (ref.)"}


def num(x, digits: int = 3) -> str:
    """A value for display: ``—`` when unknown (None), floats with ``digits`` decimals."""
    return "—" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def short_verdict(row: Mapping[str, Any]) -> str:
    """``higher than chance`` / ``lower than chance`` / ``not distinguishable`` / ``reference``."""
    if not row.get("claim"):
        return "reference"
    if row.get("p") is None:
        return "not testable"
    if not row.get("significant"):
        po = row.get("p_other")
        if po is not None and po < ALPHA:     # a one-sided row beyond chance the other way: said, not claimed
            other = "lower" if row.get("direction") == "greater" else "higher"
            return f"{other} than chance (described, the untested direction)"
        return "not distinguishable"
    higher = (row.get("value") or 0) > (row.get("null_mean") or 0)
    return ("higher" if higher else "lower") + (" than at init" if row.get("null") == "init" else " than chance")


def label(row: Mapping[str, Any]) -> str:
    space = row.get("space")
    return row["measure"] if space in (None, "", "-") else f"{row['measure']} ({space} space)"


def compact_rows(tests: Iterable[Mapping[str, Any]], *, claims_only: bool = False) -> list[dict[str, str]]:
    """The table of tests as display rows ``measure | value | null | q | verdict`` (claims first, then the
    labelled references with their p-value): what the dashboard, the Markdown and the HTML show."""
    tests = list(tests)
    ordered = [r for r in tests if r.get("claim")] + ([] if claims_only else [r for r in tests if not r.get("claim")])
    out = []
    for r in ordered:
        stat = format_p(r.get("q"), None, "q") if r.get("claim") else \
            format_p(r.get("p"), r.get("n_null"), "p", r.get("direction", "two-sided"))
        out.append({"measure": label(r), "value": num(r.get("value")),
                    "null": f"{NULL_SHORT.get(r.get('null'), r.get('null'))} {num(r.get('null_mean'))}",
                    "q": stat, "verdict": short_verdict(r)})
    return out


def cluster_rows(clusters: dict) -> list[dict[str, str]]:
    """The cluster metrics across prompts (each against label permutations) as display rows."""
    return [{"measure": name.replace("_", " "), "value": num(c.get("value")),
             "null": f"permutation {num(c.get('null_mean'))}", "p": format_p(c.get("p"), c.get("n_null")),
             "verdict": c.get("verdict", "")}
            for name, c in clusters.items() if isinstance(c, dict) and "p" in c]


def nulls_used(tests: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The one-sentence description of every null that a table of tests uses, in order of first use."""
    from .stats import NULLS

    return {n: NULLS.get(n, n) for n in dict.fromkeys(r["null"] for r in tests)}


def description_lines(summary: Iterable[str]) -> list[str]:
    """The sentences of a summary that describe (the task set, the profile, "related to T: ..."), without the
    test verdicts, which the table of tests shows."""
    return [s for s in summary if "(a reference, not a claim)" not in s and " q=" not in s and " q<" not in s]


__all__ = ["description_lines", "nulls_used", "cluster_rows", "NULL_SHORT", "num", "short_verdict", "label", "compact_rows"]

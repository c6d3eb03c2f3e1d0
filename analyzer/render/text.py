"""The terminal rendering of a :class:`~analyzer.results.Report`: rich tables recorded to plain text (no
terminal, no colour), readable in a ``width``-column terminal."""

from __future__ import annotations

from .._format import compact_rows, nulls_used, num
from ..results import Skipped


class _NullIO:
    def write(self, s):  # rich needs a file; we only want its recorded export
        return len(s)

    def flush(self):
        pass


def text_console(width: int):
    """A rich console that records what is printed, for ``export_text()`` (no terminal, no colour)."""
    from rich.console import Console

    return Console(width=width, record=True, file=_NullIO(), force_terminal=False, color_system=None)


def report_table(report, width: int = 100) -> str:
    """The report as rich tables: the model line, then per prompt its neighbour table, its table of tests with
    the nulls it uses, and the sections that were skipped."""
    from rich.markup import escape
    from rich.table import Table

    console = text_console(width)
    m = report.model_info
    console.print(f"[bold]{m.name}[/bold]  vocab {m.vocab_size:,} × {m.dim}  tied={m.tied}  "
                  f"metric={report.metric}  k={report.k}  "
                  f"median norm={num(m.median_norm)}")
    if m.source_line:
        console.print(escape(m.source_line))
    for p in report.prompts:
        t = Table(title=f"{p.name} ({p.kind}, {p.num_virtual_tokens}×{p.dim})", title_justify="left",
                  expand=False, show_lines=False)
        t.add_column("#", justify="right", no_wrap=True)
        t.add_column("norm", justify="right", no_wrap=True)
        t.add_column("×med", justify="right", no_wrap=True)
        t.add_column("neighbours (score)", overflow="fold")
        for tok in p.tokens:
            nb = "  ".join(f"{n.token}:{n.score:.2f}" for n in tok.neighbors)
            t.add_row(str(tok.index), f"{tok.norm:.2f}", num(tok.norm_ratio, 2), nb)
        console.print(t)
        rows = compact_rows(p.tests)
        if rows:
            s = Table(title=f"{p.name}: the table of tests (two-sided; q: Benjamini-Hochberg over the "
                            f"claims; references are never claims)", title_justify="left")
            for col in ("measure", "value", "null (mean)", "q / p", "verdict"):
                s.add_column(col, justify="left" if col in ("measure", "verdict") else "right", overflow="fold")
            for r in rows:
                s.add_row(r["measure"], r["value"], r["null"], r["q"], r["verdict"])
            console.print(s)
            for name, text in nulls_used(p.tests).items():
                console.print(f"  {name}: {text}")
        for key in ("relatedness", "faithfulness"):
            sec = getattr(p, key)
            if isinstance(sec, Skipped):
                console.print(f"{key}: skipped — {sec.reason}")
    return console.export_text()


__all__ = ["text_console", "report_table"]

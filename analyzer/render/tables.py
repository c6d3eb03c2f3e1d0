"""The one shape of a reading's result table in text, Markdown and HTML: a title, the provenance line (which model
was run, :func:`analyzer.provenance.model_line`), a table of string cells, and bullet lines below it.  The
readings' ``to_table``/``to_markdown``/``to_html`` (decode, frontier, evaluation) give their head, rows and
sentences; the layout lives here once.

Importing this module pulls no renderer library: rich is imported inside :func:`text_table`."""

from __future__ import annotations

from html import escape as _html_escape
from typing import Any, Callable, Container, Sequence

from ..provenance import model_line


def source_html(provenance: dict[str, Any] | None) -> list[str]:
    """The provenance line as an HTML paragraph (``[]`` when there is none)."""
    line = model_line(provenance)
    return [f"<p class='source'>{_html_escape(line)}.</p>"] if line else []


def text_table(title: str, head: Sequence[str], rows: Sequence[Sequence[str]], *, provenance=None,
               left: Container[str] = (), no_wrap: Callable[[str], bool] | None = None,
               bullets: Sequence[str] = (), width: int = 120) -> str:
    """The provenance line, a rich table (columns named in ``left`` left-aligned, the others right-aligned;
    ``no_wrap(h)`` per column when given) and ``• bullet`` lines, as plain text (every cell escaped)."""
    from rich.markup import escape
    from rich.table import Table

    from .text import text_console

    console = text_console(width)
    if model_line(provenance):
        console.print(escape(model_line(provenance)))
    t = Table(title=escape(title), title_justify="left")
    for h in head:
        extra = {} if no_wrap is None else {"no_wrap": no_wrap(h)}
        t.add_column(h, justify="left" if h in left else "right", **extra)
    for row in rows:
        t.add_row(*[escape(c) for c in row])
    console.print(t)
    for line in bullets:
        console.print(f"• {escape(line)}")
    return console.export_text()


def markdown_table(title: str, head: Sequence[str], rows: Sequence[Sequence[str]], *, provenance=None,
                   left: Container[str] = (), bullets: Sequence[str] | None = None,
                   cell: Callable[[str], str] = lambda c: c.replace("|", "\\|")) -> str:
    """``**title**``, the provenance line, a pipe table (``left`` columns left-aligned; each cell through
    ``cell``) and, when ``bullets`` is given, a blank line and ``- bullet`` lines."""
    lines = [f"**{title}**", ""]
    if model_line(provenance):
        lines += [model_line(provenance) + ".", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "".join(":---|" if h in left else "---:|" for h in head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    if bullets is not None:
        lines += [""] + [f"- {s}" for s in bullets]
    return "\n".join(lines) + "\n"


def html_table_page(title: str, head: Sequence[str], rows: Sequence[Sequence[str]], *, provenance=None,
                    before: Sequence[Any] = (), bullets: Sequence[str] | None = None) -> str:
    """A self-contained page: the title, the provenance line, ``before`` (figures, paragraphs), the table (every
    cell left-aligned) and, when ``bullets`` is given, a list of them."""
    from .html import page

    th = "".join(f"<th class='l'>{_html_escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td class='l'>{_html_escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    table = f"<table><tr>{th}</tr>{body}</table>"
    parts = [f"<h1>{_html_escape(title)}</h1>", *source_html(provenance), *before]
    if bullets is None:
        return page(title, parts + [table])
    return page(title, parts + [table + "<ul>"] + [f"<li>{_html_escape(s)}</li>" for s in bullets] + ["</ul>"])


__all__ = ["source_html", "text_table", "markdown_table", "html_table_page"]

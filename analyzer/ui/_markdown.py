"""Text made safe to show as Markdown: the one escaping helper for token strings, prompt names and model-written
text that the dashboard passes to ``st.markdown``, ``st.caption``, ``st.subheader`` or ``st.table`` cells
(streamlit-free; ``st.dataframe`` cells are plain text and need none).

Streamlit renders those as GitHub-flavoured Markdown with its own extensions (``$...$`` as LaTeX, ``:name:``
shortcodes, ``:color[...]``), each ``st.table`` cell on its own: a vocabulary token such as ``>,`` becomes an
empty block quote, ``*`` or ``_`` start emphasis, ``|`` splits a cell, ``<0x85>`` reads as an HTML tag and
vanishes, ``#`` at the start makes a heading.  CommonMark lets any ASCII punctuation be escaped with a backslash;
:func:`escape_markdown` escapes the characters that mark up text anywhere, and those that open a block only where
they would (at the start), so ordinary names such as ``text-init-run`` or ``words.npy`` read as they are."""

from __future__ import annotations

import re

#: characters that mark up text wherever they stand (inline markup, HTML, tables, LaTeX, shortcodes, entities)
_ANYWHERE = frozenset("\\`*_<>|$~:&#")
#: a "]" opens a link only before "(" or "[" (a reference definition's ":" is escaped anyway), so a bracketed
#: name such as "[zero-shot]" stays as it is
_LINK = re.compile(r"\](?=[(\[])")
#: characters that open a block (list, heading underline) when they start the text
_AT_START = frozenset("-+=")
_ORDERED = re.compile(r"^(\d{1,9})([.)])")     # "1." or "1)" at the start opens an ordered list
_NBSP = "&nbsp;"              # an entity: a paragraph keeps it where it strips leading spaces


def escape_markdown(text) -> str:
    """``text`` (any object, shown as ``str``) escaped so Markdown shows it literally: ``escape_markdown(">,")`` is
    ``"\\\\>,"``; line breaks become spaces and leading spaces ``&nbsp;`` (four would open a code block)."""
    s = "" if text is None else str(text)
    s = s.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    body = s.lstrip(" ")
    lead = _NBSP * (len(s) - len(body))
    out = _LINK.sub(r"\\]", "".join("\\" + c if c in _ANYWHERE else c for c in body))
    m = _ORDERED.match(out)
    if m:
        out = m.group(1) + "\\" + m.group(2) + out[m.end():]
    elif out[:1] in _AT_START:
        out = "\\" + out
    return lead + out


def code_span(text) -> str:
    """``text`` as an inline code span (a token shown in monospace), whatever backticks it holds: the fence is
    one backtick longer than its longest run of them, padded with spaces when it starts or ends with one."""
    s = ("" if text is None else str(text)).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    longest = max((len(r) for r in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def escape_rows(rows) -> list[dict]:
    """Table rows (dicts) for ``st.table``, whose every cell Streamlit renders as Markdown: each string escaped
    (:func:`escape_markdown`), numbers and other values left as they are."""
    return [{k: escape_markdown(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows]


__all__ = ["escape_markdown", "escape_rows", "code_span"]

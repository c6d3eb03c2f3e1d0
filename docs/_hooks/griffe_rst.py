"""Griffe extension for the API reference: the package's docstrings are reST-flavoured prose, which this writes as
Markdown before mkdocstrings renders it:

* cross-reference roles (``:func:`analyzer.cli.main```, ``:class:`~analyzer.results.Report```) become code
  (`analyzer.cli.main`, `Report` where the reST ``~`` asks for the last name only);
* a reST literal block (a paragraph ending in ``::``, then an indented block) becomes a fenced Python block;
* a numpydoc-like ``Parameters`` block whose lines read ``name : what it is`` (a description, not a type, after
  the colon) becomes a bulleted list under a bold title, so the parser takes no description for a type."""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|data|obj|exc|const):`(~?)([^`]+)`")
SECTION = re.compile(r"^(Parameters|Attributes|Returns|Raises)\n-{3,}\n((?:.+\n?)+)", re.M)
ITEM = re.compile(r"^([\w*][\w, *]*?) : (.*)$")
LITERAL = re.compile(r"(\S)::\n\n((?:(?:    .*)?\n)*(?:    .*))", re.M)


def markdown_roles(text: str) -> str:
    """``text`` with every reST cross-reference role written as Markdown code."""
    return ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)


def markdown_literals(text: str) -> str:
    """``text`` with each reST literal block (``Example::`` and an indented block) as a fenced Python block."""
    def fence(m: re.Match) -> str:
        code = "\n".join(line[4:] for line in m.group(2).split("\n"))
        return f"{m.group(1)}:\n\n```python\n{code.strip(chr(10))}\n```"

    return LITERAL.sub(fence, text)


def _section(match: re.Match) -> str:
    items: list[str] = []
    for line in match.group(2).rstrip("\n").split("\n"):
        item = ITEM.match(line)
        if item:
            names = ", ".join(f"`{n.strip()}`" for n in item.group(1).split(","))
            items.append(f"- {names}: {item.group(2)}")
        elif items:
            items[-1] += " " + line.strip()
        else:
            return match.group(0)          # not the ``name : text`` layout: leave it to the parser
    return f"**{match.group(1)}**\n\n" + "\n".join(items) + "\n"


def markdown_sections(text: str) -> str:
    """``text`` with each ``name : description`` section written as a Markdown list."""
    return SECTION.sub(_section, text)


class RstRoles(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_sections(markdown_literals(markdown_roles(obj.docstring.value)))

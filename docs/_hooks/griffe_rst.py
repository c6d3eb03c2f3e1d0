"""Griffe extension for the API reference: the package's docstrings are reST-flavoured prose, which this writes as
Markdown before mkdocstrings renders it:

* cross-reference roles (``:func:`analyzer.cli.main```, ``:class:`~analyzer.results.Report```) become code
  (`analyzer.cli.main`, `Report` where the reST ``~`` asks for the last name only), a link where the target is
  rendered on docs/reference/api.md (a reference to a member that does not exist then fails the strict build);
* a reST literal block (a paragraph ending in ``::``, then an indented block) becomes a fenced Python block;
* a numpydoc-like ``Parameters`` block whose lines read ``name : what it is`` (a description, not a type, after
  the colon) becomes a bulleted list under a bold title, so the parser takes no description for a type."""

from __future__ import annotations

import re
from pathlib import Path

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|data|obj|exc|const):`(~?)([^`]+)`")
SECTION = re.compile(r"^(Parameters|Attributes|Returns|Raises)\n-{3,}\n((?:.+\n?)+)", re.M)
ITEM = re.compile(r"^([\w*][\w, *]*?) : (.*)$")
LITERAL = re.compile(r"(\S)::\n\n((?:(?:    .*)?\n)*(?:    .*))", re.M)


API_PAGE = Path(__file__).resolve().parents[1] / "reference" / "api.md"


def documented() -> tuple[frozenset[str], frozenset[str]]:
    """What docs/reference/api.md renders: every object (each ``::: path`` block and the ``members: [...]`` it
    lists), and the blocks rendered with all their public members (those without a ``members`` list)."""
    text = API_PAGE.read_text(encoding="utf-8") if API_PAGE.is_file() else ""
    paths, whole = set(), set()
    for block, options in re.findall(r"^::: ([\w.]+)\n((?:[ ]{4}.*\n?)*)", text, flags=re.M):
        paths.add(block)
        listed = re.findall(r"members: \[([^\]]*)\]", options)
        for members in listed:
            paths.update(f"{block}.{m.strip()}" for m in members.split(",") if m.strip())
        if not listed:
            whole.add(block)
    return frozenset(paths), frozenset(whole)


def markdown_roles(text: str, linkable: frozenset[str] = frozenset(), whole: frozenset[str] = frozenset()) -> str:
    """``text`` with every reST cross-reference role written as Markdown code, linked (an autorefs reference)
    where the target is an object the API page renders or a public member of one rendered whole."""
    def code(m: re.Match) -> str:
        target = m.group(2)
        shown = f"`{target.rsplit('.', 1)[-1] if m.group(1) else target}`"
        owner, _, name = target.rpartition(".")
        if target in linkable or (owner in whole and not name.startswith("_")):
            return f"[{shown}][{target}]"
        return shown

    return ROLE.sub(code, text)


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
    def __init__(self) -> None:
        super().__init__()
        self.linkable, self.whole = documented()

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            text = markdown_roles(obj.docstring.value, self.linkable, self.whole)
            obj.docstring.value = markdown_sections(markdown_literals(text))

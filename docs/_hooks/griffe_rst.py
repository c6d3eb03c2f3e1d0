"""Griffe extension for the API reference: the package's docstrings cross-reference in reST roles
(``:func:`analyzer.cli.main```, ``:class:`~analyzer.results.Report```); this writes each as Markdown code
(`analyzer.cli.main`, `Report` where the reST ``~`` asks for the last name only), so the Markdown site shows
names, not role markup."""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|data|obj|exc|const):`(~?)([^`]+)`")


def markdown_roles(text: str) -> str:
    """``text`` with every reST cross-reference role written as Markdown code."""
    return ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)


class RstRoles(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_roles(obj.docstring.value)

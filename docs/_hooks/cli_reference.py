"""MkDocs hook: writes the CLI reference (docs/reference/cli.md) from ``analyzer._cli_args.build_parser()`` at build
time, so that every subcommand, its help and every flag are described once, in the parser.

The page holds the marker ``<!-- cli-reference -->``; this hook replaces it with one section per subcommand (its
help, usage line and a table of its arguments, defaults as ``--help`` shows them)."""

from __future__ import annotations

import argparse
import html
import os

MARKER = "<!-- cli-reference -->"
PAGE = "reference/cli.md"


def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: pipes escaped, angle brackets as entities, one line."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage lines as ``--help`` prints them in a 78-column terminal (the width of the page's code blocks)."""
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "78"
    try:
        return parser.format_usage().rstrip()
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _argument_rows(parser: argparse.ArgumentParser, help_row: bool = True) -> list[str]:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if isinstance(action, argparse._HelpAction) and not help_row:
            continue
        if action.option_strings:
            name = ", ".join(f"`{s}`" for s in action.option_strings)
            if action.nargs != 0:
                name += f" `{formatter._format_args(action, formatter._get_default_metavar_for_optional(action))}`"
        else:
            name = f"`{formatter._format_args(action, formatter._get_default_metavar_for_positional(action))}`"
        text = formatter._expand_help(action) if action.help else ""
        if action.choices and not isinstance(action.choices, dict):
            text += f" Choices: {', '.join(str(c) for c in action.choices)}."
        if action.required and action.option_strings:
            text += " Required."
        rows.append(f"| {name} | {_cell(text)} |")
    return rows


def _section(name: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} {name}", ""]
    if parser.description:
        lines += [html.escape(parser.description, quote=False), ""]
    lines += ["```text", _usage(parser), "```", ""]
    rows = _argument_rows(parser, help_row=False)
    if rows:
        lines += ["| Argument | Description |", "| --- | --- |", *rows, ""]
    for sub_name, sub in _subcommands(parser).items():
        lines += _section(f"{name} {sub_name}", sub, level + 1)
    return lines


def cli_reference() -> str:
    """The Markdown of the whole CLI reference: the program's own options, then one section per subcommand."""
    from analyzer._cli_args import build_parser

    parser = build_parser()
    subs = _subcommands(parser)
    lines = ["## Commands", "", "| Command | What it does |", "| --- | --- |"]
    lines += [f"| [`{n}`](#{n}) | {_cell(s.description or '')} |" for n, s in subs.items()]
    lines += ["", "## Global options", "", "```text", _usage(parser), "```", "",
              "Every command also takes `-h`, `--help`: its own help.", "",
              "| Argument | Description |", "| --- | --- |", *_argument_rows(parser), ""]
    for name, sub in subs.items():
        lines += _section(name, sub, 2)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} must hold the marker {MARKER}; got a page without it: put the marker back")
    return markdown.replace(MARKER, cli_reference())

"""MkDocs hook: renders notebooks/explore.ipynb as the page tutorial/notebook.md, executed at build time (nbclient;
a cell that raises fails the build, and tests/test_docs_site.py reads the executed page), with its plotly figures drawn by a plotly.js copied from the installed plotly
package, so the page makes no request to an outside host.

``SOFTPROMPT_DOCS_NOTEBOOK=source`` renders the cells without running them (a quick preview; the page then says
so).  A cell that raises fails the build: a tutorial whose code does not run is a broken page."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"
PAGE = "tutorial/notebook.md"
DOWNLOAD = "tutorial/explore.ipynb"
PLOTLY_JS = "assets/javascripts/plotly.min.js"
_PLOTLY_SRC = "@@PLOTLY_JS@@"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _execute(nb) -> None:
    from nbclient import NotebookClient

    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute(env=env)


def _demoted(markdown: str) -> str:
    """A Markdown output's headings as bold lines, so the report a cell shows neither retitles the page nor
    enters its table of contents."""
    return re.sub(r"^#{1,6} +(.*?) *#*$", r"**\1**", markdown, flags=re.M)


def _fence(text: str, lang: str = "text") -> str:
    """A fenced block; an output (``text``) carries the class ``nb-output`` (docs/stylesheets/extra.css)."""
    ticks = "````" if "```" in text else "```"
    info = "{ .text .nb-output }" if lang == "text" else lang
    return f"{ticks}{info}\n{text.rstrip()}\n{ticks}"


def _join(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _output(out, figure: int) -> tuple[str, int]:
    """The Markdown of one cell output and the next figure number."""
    kind = out["output_type"]
    if kind == "stream":
        return _fence(_join(out["text"])), figure
    if kind == "error":
        raise RuntimeError(f"{NOTEBOOK.name}: a cell raised {out['ename']}: {out['evalue']} (fix the notebook)")
    data = out.get("data", {})
    if PLOTLY_MIME in data:
        spec = json.dumps(data[PLOTLY_MIME]).replace("</", "<\\/")
        div = f"nb-figure-{figure}"
        return (f'<div id="{div}" class="nb-plotly"></div>\n\n<script>(function (f) {{ Plotly.newPlot("{div}", '
                f'f.data, f.layout, {{"responsive": true, "displaylogo": false}}); }})({spec});</script>'), figure + 1
    if "text/markdown" in data:
        return _demoted(_join(data["text/markdown"])), figure
    if "image/png" in data:
        return f'<img alt="figure" src="data:image/png;base64,{_join(data["image/png"]).strip()}">', figure
    if "text/plain" in data:
        return _fence(_join(data["text/plain"])), figure
    return "", figure


def render(nb, executed: bool) -> str:
    """The page's Markdown: markdown cells as they are, code cells fenced, each followed by its outputs."""
    parts, figure = [], 0
    for n, cell in enumerate(nb.cells):
        source = _join(cell.source)
        if cell.cell_type == "markdown":
            parts.append(source)
            if n == 0:
                how = ("executed when this site was built" if executed else
                       "shown **without outputs**: this build was made with SOFTPROMPT_DOCS_NOTEBOOK=source")
                parts.append(f'!!! info "This page is the notebook `notebooks/explore.ipynb`"\n    {how}; '
                             f"[download it](explore.ipynb) and run it from the repository's `notebooks/` folder.")
        elif cell.cell_type == "code":
            parts.append(_fence(source, "python"))
            for out in cell.get("outputs", []):
                text, figure = _output(out, figure)
                if text:
                    parts.append(text)
    page = "\n\n".join(parts) + "\n"
    page = page.replace(str(ROOT) + os.sep, "")      # the builder's checkout path is nobody's business
    if figure:
        page = f'<script src="{_PLOTLY_SRC}"></script>\n\n' + page
    return page


def on_files(files, config):
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    executed = os.environ.get("SOFTPROMPT_DOCS_NOTEBOOK", "execute") != "source"
    if executed:
        _execute(nb)
    files.append(File.generated(config, PAGE, content=render(nb, executed)))
    files.append(File.generated(config, DOWNLOAD, abs_src_path=str(NOTEBOOK)))
    import plotly

    files.append(File.generated(config, PLOTLY_JS,
                                abs_src_path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    return markdown.replace(_PLOTLY_SRC, html.escape(get_relative_url(PLOTLY_JS, page.url)))

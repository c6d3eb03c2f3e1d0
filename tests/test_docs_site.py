"""The documentation site builds with ``mkdocs build --strict`` (as ``make docs`` does): every page, the executed
notebook, the CLI reference generated from the parser and the API reference from the docstrings; a broken link
fails the build; the site asks no outside host for anything."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app_helpers import ROOT

MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict"]
HOOKS = ROOT / "docs" / "_hooks"


def _build(site: Path, cwd: Path = ROOT, **env) -> subprocess.CompletedProcess:
    return subprocess.run([*MKDOCS, "--config-file", str(cwd / "mkdocs.yml"), "--site-dir", str(site)], cwd=cwd,
                          capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1", **env})


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", HOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The real site, built strictly with the notebook executed (what `make docs` and a fresh clone get)."""
    out = tmp_path_factory.mktemp("site") / "site"
    done = _build(out)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-4000:]}"
    return out


@pytest.mark.integration
def test_strict_build_writes_every_part(site):
    for page in ("index.html", "tutorial/index.html", "tutorial/notebook/index.html", "how-to/own-adapter/index.html",
                 "dashboard/index.html", "explanation/claims/index.html", "explanation/architecture/index.html",
                 "reference/cli/index.html", "reference/api/index.html", "reference/json-schema/index.html",
                 "reference/schemas/report.schema.json", "reference/schemas/analyze.schema.json",
                 "reference/schemas/evaluate.schema.json", "tutorial/explore.ipynb"):
        assert (site / page).is_file(), page
    api = (site / "reference" / "api" / "index.html").read_text()
    for ident in ("analyzer.neighbors.NeighborIndex", "analyzer.results.Report", "analyzer.loaders.load_prompt",
                  "analyzer.training.config.TrainConfig", "analyzer.faithfulness.evaluation.evaluate_for_model"):
        assert f'id="{ident}"' in api, ident
    assert ":func:`" not in api and ":class:`" not in api      # reST roles written as Markdown


@pytest.mark.integration
def test_notebook_page_is_executed_with_local_plotly(site):
    page = (site / "tutorial" / "notebook" / "index.html").read_text()
    assert "executed when this site was built" in page
    assert len(re.findall(r'class="nb-plotly"', page)) >= 4   # tightness, geometry, map, relatedness
    assert "v0" in page and "•" in page and "Traceback" not in page    # the notebook's printed report
    assert '<script src="../../assets/javascripts/plotly.min.js">' in page
    assert (site / "assets" / "javascripts" / "plotly.min.js").stat().st_size > 1_000_000
    assert str(ROOT) not in page                                  # no builder path in the published page


@pytest.mark.integration
def test_site_loads_nothing_from_outside_hosts(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        text = page.read_text()
        outside = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="(https?://[^"]+)"', text)
        assert not [u for u in outside if not u.startswith("https://github.com/")], (page, outside)
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text
        assert "data-md-component=\"source\"" not in text, "repo_url makes Material ask api.github.com"


def test_broken_link_fails_the_strict_build(tmp_path):
    """The check can fail: a copy of the site with one link to a page that does not exist does not build."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "docs", copy / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    (copy / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "explore.ipynb", copy / "notebooks")
    index = copy / "docs" / "index.md"
    index.write_text(index.read_text() + "\n\nSee [the missing page](how-to/no-such-page.md).\n")
    done = _build(tmp_path / "site", cwd=copy, SOFTPROMPT_DOCS_NOTEBOOK="source")
    assert done.returncode != 0
    log = done.stdout + done.stderr
    assert "how-to/no-such-page.md" in log and "Aborted" in log and "strict mode" in log, log[-3000:]


def test_cli_reference_lists_every_command_and_flag():
    """The CLI page is generated from the parser: every subcommand, its help and every visible flag appear."""
    from analyzer._cli_args import build_parser

    text = _hook("cli_reference").cli_reference()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sub.choices
    for name, command in sub.choices.items():
        assert f"\n## {name}\n" in text, name
        assert " ".join(command.description.split())[:60] in text
        for action in command._actions:
            if action.help != argparse.SUPPRESS:
                for flag in action.option_strings:
                    assert f"`{flag}`" in text, (name, flag)
    assert "(default: 10)" in text                              # report -k shows its default, as --help does


def test_cli_reference_page_needs_its_marker():
    hook = _hook("cli_reference")

    class Page:
        class file:
            src_uri = hook.PAGE

    with pytest.raises(ValueError, match="marker"):
        hook.on_page_markdown("# Command line\n", Page, {}, None)


def test_api_page_documents_every_public_name():
    """Every name of ``analyzer.__all__`` has its ``::: module.Name`` block in docs/reference/api.md."""
    import analyzer

    page = (ROOT / "docs" / "reference" / "api.md").read_text()
    blocks = set(re.findall(r"^::: ([\w.]+)", page, flags=re.M))
    documented = {b.rsplit(".", 1)[-1] for b in blocks}
    documented |= set(re.findall(r"members: \[([^\]]+)\]", page)[-1].replace(" ", "").split(","))  # the errors
    missing = [n for n in analyzer.__all__ if n != "__version__" and n not in documented]
    assert not missing, f"add these to docs/reference/api.md: {missing}"


def test_notebook_with_a_failing_cell_fails_the_page():
    import nbformat

    hook = _hook("notebook")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("1/0")])
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                                  traceback=[])]
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        hook.render(nb, executed=True)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="v0 • x\n")]
    page = hook.render(nb, executed=True)
    assert page.startswith("# T") and "```python\n1/0\n```" in page and "v0 • x" in page


def test_api_cross_references_link_only_to_rendered_objects():
    """A reST role becomes a link only where the API page renders its target (else plain code), so the strict
    build never meets a link to an object that is not on the page."""
    hook = _hook("griffe_rst")
    linkable, whole = hook.documented()
    assert "analyzer.results.Report" in linkable and "analyzer.exceptions.TaskError" in linkable
    assert "analyzer.exceptions" not in whole      # rendered with a members list: only those members link
    text = hook.markdown_roles(":class:`~analyzer.results.Report`, :meth:`analyzer.results.Report.to_dict`, "
                               ":func:`analyzer.cli.main`, :func:`analyzer.exceptions.other`", linkable, whole)
    assert text == ("[`Report`][analyzer.results.Report], "
                    "[`analyzer.results.Report.to_dict`][analyzer.results.Report.to_dict], "
                    "`analyzer.cli.main`, `analyzer.exceptions.other`")
    literal = hook.markdown_literals("With a loop::\n\n    rec = R()\n    rec.step()\n\nThen.")
    assert literal == "With a loop:\n\n```python\nrec = R()\nrec.step()\n```\n\nThen."

"""notebooks/explore.ipynb is committed without outputs.  That it runs top to bottom is checked once, where it is
executed anyway: the documentation site's strict build runs it with nbclient (``docs/_hooks/notebook.py`` fails the
build on a cell that raises) and ``tests/test_docs_site.py`` reads the executed page (its figures and outputs)."""

from __future__ import annotations

from app_helpers import ROOT

NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"


def test_explore_notebook_is_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has no code cells"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        "commit the notebook without outputs (Kernel > Restart & Clear Output)"

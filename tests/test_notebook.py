"""notebooks/explore.ipynb runs top to bottom (nbclient), so the walk-through cannot rot."""

from __future__ import annotations

import os

import pytest

from app_helpers import ROOT, sample_prompt_dir

pytestmark = pytest.mark.integration

NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"


def test_explore_notebook_executes(request, tmp_path_factory, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    folder, label = sample_prompt_dir(request, tmp_path_factory)
    default = ROOT / "sample_prompts" / "sentiment-labels"
    if not (default / "adapter_config.json").is_file():  # the notebook's default prompt is not there yet
        monkeypatch.setenv("SOFTPROMPT_ANALYZER_NOTEBOOK_PROMPT", str(folder / label))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=dict(os.environ))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    plotly = [o for o in outputs if o.output_type in ("execute_result", "display_data")
              and "application/vnd.plotly.v1+json" in o.data]
    assert len(plotly) >= 4  # tightness, geometry, map, relatedness (and the trajectory when there are snapshots)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "v0" in text and "•" in text

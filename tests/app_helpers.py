"""Shared set-up of the dashboard tests (AppTest, browser, benchmark): a prompt folder to point the app at."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_prompts"


def sample_labels(folder: Path = SAMPLES, model: str = "smollm2-135m") -> list[str]:
    """The labels the dashboard lists for ``folder`` with ``model`` (the prompts of its width: the samples hold
    other models' prompts too, which the sidebar sets apart)."""
    from analyzer.models import EMBEDDED_MODELS
    from analyzer.ui._sources import discover
    from analyzer.ui.sidebar import split_by_width

    return list(split_by_width(discover(folder), EMBEDDED_MODELS[model].dim)[0])


def sample_prompt_dir(request, tmp_path_factory) -> tuple[Path, str]:
    """``(folder, label)``: the repository's sample prompts when present, else a folder holding an untrained
    TEXT-init PEFT adapter on the real SmolLM2 (the ``smollm2_text_adapter`` fixture)."""
    labels = sample_labels()
    if labels:
        return SAMPLES, labels[0]
    adapter, _ = request.getfixturevalue("smollm2_text_adapter")
    return Path(adapter).parent, Path(adapter).name

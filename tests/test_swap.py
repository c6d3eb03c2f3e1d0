"""The per-task prompt swap (analyzer.swap): one frozen model, a prompt per task, every prompt scored on every
task.  On the tiny random llama with two mirrored toy tasks (the same reviews, the label words swapped), so
the answer is known: a prompt's accuracy on the mirror task is exactly one minus its accuracy on its own.  The
dashboard test reads ``sample_prompts/swap.json`` for the real sample prompts."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from analyzer.exceptions import AnalyzerError
from analyzer.swap import ZERO_SHOT, SwapResult, prompt_hash, prompt_swap
from analyzer.types import SoftPrompt
from app_helpers import ROOT, SAMPLES

@pytest.fixture(scope="module")
def setup(steerable_toy):
    return steerable_toy


@pytest.fixture(scope="module")
def result(setup):
    model, tok, toy, mirror, prompts = setup
    lines = []
    res = prompt_swap(model, tok, prompts, [toy, mirror], limit=None, model_name="tiny", progress=lines.append)
    assert len(lines) == 2 * 3 and lines[0].startswith("toy: zero-shot")
    return res


def test_matrix_shape_and_paired_cells(setup, result):
    _, _, toy, mirror, prompts = setup
    assert result.tasks == ("toy", "toy-mirror")
    assert result.columns == (ZERO_SHOT, "toy-prompt", "toy-mirror-prompt")
    assert result.accuracy_matrix().shape == (2, 3)
    for row, task in zip(result.rows, (toy, mirror)):
        assert {c.n for c in row.cells} == {len(task.test)}          # every cell on the same examples
        assert all(len(c.outcomes) == c.n and c.correct == c.outcomes.count("1") for c in row.cells)
        for c in row.cells:
            assert c.ci_low <= c.accuracy <= c.ci_high
    assert result.row("toy").right == ("toy-prompt",) and result.row("toy-mirror").right == ("toy-mirror-prompt",)
    assert not result.cell(ZERO_SHOT, "toy").right
    assert [p.task for p in result.prompts] == ["toy", "toy-mirror"]
    assert [p.hash for p in result.prompts] == [prompt_hash(p) for p in prompts.values()]


def test_mirror_task_is_the_complement_and_the_right_prompt_wins(result):
    # the same examples and label words in the other order: every prediction flips, so accuracy is 1 - accuracy
    for col in result.columns:
        a, b = result.cell(col, "toy"), result.cell(col, "toy-mirror")
        assert a.outcomes == "".join("1" if x == "0" else "0" for x in b.outcomes)
    for task, other in (("toy", "toy-mirror"), ("toy-mirror", "toy")):
        row = result.row(task)
        right, wrong = row.cell(f"{task}-prompt"), row.cell(f"{other}-prompt")
        assert right.accuracy >= 0.75, (task, right.accuracy)          # 60 steps learn the toy task
        assert right.accuracy > wrong.accuracy
        assert row.vs_wrong.a == right.prompt and row.vs_wrong.b == wrong.prompt
        assert row.vs_wrong.diff == pytest.approx(right.accuracy - wrong.accuracy)
        assert row.vs_wrong.a_only > row.vs_wrong.b_only and row.vs_wrong.p_value < 0.05
        assert row.vs_zero_shot.b == ZERO_SHOT
        s = row.sentence()
        assert s.startswith(f"{task}: right prompt {task}-prompt {right.accuracy:.3f} vs best wrong") and "McNemar p" in s


def test_round_trip_and_renderers(result, tmp_path):
    d = json.loads(result.to_json())
    again = SwapResult.from_dict(d)
    assert again == result and again.to_dict() == result.to_dict()
    (tmp_path / "swap.json").write_text(result.to_json())
    assert SwapResult.read(tmp_path / "swap.json") == result
    assert again.covers({p.name: p.hash for p in result.prompts})
    assert not again.covers({p.name: "0" * 32 for p in result.prompts})
    md = result.render("markdown")
    assert "| toy |" in md and f"**{result.cell('toy-prompt', 'toy').accuracy:.3f}" in md
    table = result.render("table")
    assert "toy-mirror-prompt" in table and "*" in table
    assert "<table" in result.render("html")
    script = _script()
    assert script.readme_section(tmp_path).startswith("## One model, a prompt per task") and md in \
        script.readme_section(tmp_path)
    assert script.readme_section(tmp_path / "nothing-here") == ""
    with pytest.raises(AnalyzerError, match="schema"):
        SwapResult.from_dict({"rows": []})
    with pytest.raises(AnalyzerError, match="malformed"):
        SwapResult.from_dict({**d, "rows": [{"task": "toy"}]})


def _script():
    """scripts/prompt_swap.py as a module (its readme_section is what the sample README can include)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prompt_swap_script", ROOT / "scripts" / "prompt_swap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_task_without_its_prompt_gets_a_row_and_bad_inputs(setup):
    model, tok, toy, mirror, prompts = setup
    only = {"toy-prompt": prompts["toy-prompt"]}
    res = prompt_swap(model, tok, only, [toy, mirror], limit=8, model_name="tiny")
    row = res.row("toy-mirror")
    assert row.right == () and row.vs_wrong is None and row.vs_zero_shot.a == "toy-prompt"
    assert "no prompt was trained for it" in row.sentence()
    assert {c.n for r in res.rows for c in r.cells} == {8}
    unknown = SoftPrompt(name="loose", vectors=prompts["toy-prompt"].vectors, source="memory", kind="TENSOR")
    with pytest.raises(AnalyzerError, match="records no task"):
        prompt_swap(model, tok, {"loose": unknown}, [toy])
    with pytest.raises(AnalyzerError, match="at least one prompt"):
        prompt_swap(model, tok, {}, [toy])
    with pytest.raises(AnalyzerError, match="no-prompt column"):
        prompt_swap(model, tok, {ZERO_SHOT: prompts["toy-prompt"]}, [toy])
    with pytest.raises(AnalyzerError, match="limit"):
        prompt_swap(model, tok, only, [toy], limit=0)


def test_import_pulls_no_torch():
    code = "import sys, analyzer.swap; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_stored_swap_is_matched_by_content(setup, result, tmp_path):
    """The dashboard uses a swap.json only for exactly the prompts it holds: by content, whatever the names."""
    from analyzer.ui import _compare

    _, _, _, _, prompts = setup
    (tmp_path / "swap.json").write_text(result.to_json())
    (tmp_path / "other").mkdir()
    renamed = {f"renamed-{k}": v for k, v in prompts.items()}
    found = _compare.stored_swap(renamed, [tmp_path / "other", tmp_path], model="tiny")
    assert found is not None and found[0] == result and found[1] == tmp_path / "swap.json"
    moved = dict(prompts)
    p = moved["toy-prompt"]
    moved["toy-prompt"] = SoftPrompt(name=p.name, vectors=p.vectors + 1e-3, source=p.source, kind=p.kind,
                                     config=p.config)                       # retrained: same name, new content
    assert _compare.stored_swap(moved, [tmp_path]) is None
    assert _compare.stored_swap({"toy-prompt": p}, [tmp_path]) is None      # a subset is not covered
    assert _compare.stored_swap(prompts, [tmp_path], model="another-model") is None
    (tmp_path / "other" / "swap.json").write_text("{not json")               # unreadable: skipped
    assert _compare.stored_swap(prompts, [tmp_path / "other", tmp_path])[1] == tmp_path / "swap.json"
    assert _compare.swap_folders([str(tmp_path / "a" / "x"), str(tmp_path / "a" / "y")]) == [str(tmp_path / "a")]


# ---------------------------------------------------------------------------------------------- the CLI
def _cli(*args):
    p = subprocess.run([sys.executable, "-m", "analyzer", "swap", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    return p.stdout, p.stderr, p.returncode


@pytest.mark.parametrize("args, expect", [
    (["/no/such/adapter"], "No such file or directory"),
    (["{loose}"], "records no task"),
    (["{adapter}", "--task", "no-such-task"], "no-such-task"),
    (["{adapter}", "--limit", "0"], "positive integer"),
    (["{adapter}", "--format", "xml"], "invalid choice"),
])
def test_cli_bad_inputs_are_one_line(args, expect, tmp_path):
    loose = tmp_path / "loose.npy"
    np.save(loose, np.ones((2, 576), np.float32))
    args = [a.format(loose=loose, adapter=SAMPLES / "spam-labels") for a in args]
    out, err, rc = _cli(*args)
    assert rc == 2 and expect in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and not out


# ---------------------------------------------------------------------------------------------- the dashboard
SWAP_PROMPTS = ("sentiment-labels", "question-type-text", "spam-labels")


def _swap_json_matches() -> bool:
    from analyzer.loaders import load_prompt

    path = SAMPLES / "swap.json"
    if not path.is_file() or not all((SAMPLES / p).is_dir() for p in SWAP_PROMPTS):
        return False
    return SwapResult.read(path).covers({p: prompt_hash(load_prompt(SAMPLES / p)) for p in SWAP_PROMPTS})


@pytest.mark.integration
def test_compare_shows_the_swap_from_swap_json(monkeypatch):
    """Compare with the three single-task sample prompts selected reads sample_prompts/swap.json (no model run):
    the matrix with the right prompts marked and one sentence per task; two of them: a button instead."""
    from streamlit.testing.v1 import AppTest

    if not _swap_json_matches():
        pytest.fail("sample_prompts/swap.json is missing or was computed for other prompts: run `make sample-swap`")
    res = SwapResult.read(SAMPLES / "swap.json")
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_PROMPTS", str(SAMPLES))
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_SELECT", ",".join(SWAP_PROMPTS))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run()
    at.sidebar.radio(key="section").set_value("Compare").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert "One model, a prompt per task" in [h.value for h in at.subheader]
    html = next(m.value for m in at.markdown if "<table" in m.value)
    for task in res.tasks:
        cell = res.cell(res.row(task).right[0], task)
        assert f"{cell.accuracy:.3f}" in html and f"[{cell.ci_low:.2f}, {cell.ci_high:.2f}]" in html
    assert html.count("font-weight:700") == len(res.tasks)           # one marked cell per task
    text = _shown("\n".join(m.value for m in at.markdown))
    for s in res.summary():
        assert s in text
    assert "swap.json" in "\n".join(c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "swap_run"]

    at.sidebar.multiselect(key="prompt").set_value(["sentiment-labels", "spam-labels"]).run()
    assert not at.exception and not at.error
    assert [b for b in at.button if b.key == "swap_run"]              # not covered: computed on request
    at.sidebar.multiselect(key="prompt").set_value(["sentiment-labels"]).run()
    assert any("at least two prompts" in i.value for i in at.info)


@pytest.mark.integration
def test_compare_shows_the_multitask_samples_swap(monkeypatch):
    """Selecting the one multitask sample adapter gives Compare its three task prompts, and the swap comes from
    sample_prompts/swap-multitask.json: each task's own prompt of the adapter framed, every task above zero-shot
    with its own prompt (the sample's claim, on the shipped numbers)."""
    from streamlit.testing.v1 import AppTest

    from analyzer.loaders import load_prompts
    from analyzer.report import prompt_task

    path = SAMPLES / "swap-multitask.json"
    prompts = load_prompts(SAMPLES / "three-task-multitask")
    assert [prompt_task(p) for p in prompts] == ["sentiment", "question-type", "spam"]
    res = SwapResult.read(path)
    if not res.covers({p.name: prompt_hash(p) for p in prompts}):
        pytest.fail("sample_prompts/swap-multitask.json was computed for other prompts: run `make sample-multitask`")
    for task in res.tasks:
        row = res.row(task)
        assert row.right == (f"three-task-multitask/task{['sentiment', 'question-type', 'spam'].index(task)}",)
        assert row.best_right.accuracy > res.cell(ZERO_SHOT, task).accuracy
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_PROMPTS", str(SAMPLES))
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_SELECT", "three-task-multitask")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run()
    at.sidebar.radio(key="section").set_value("Compare").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    html = next(m.value for m in at.markdown if "<table" in m.value)
    assert html.count("font-weight:700") == len(res.tasks)
    for s in res.summary():
        assert s in _shown("\n".join(m.value for m in at.markdown))
    assert "swap-multitask.json" in "\n".join(c.value for c in at.caption)


def _shown(markdown: str) -> str:
    """What a reader sees of Markdown the dashboard escaped (``p\\<0.001`` is shown as ``p<0.001``)."""
    return re.sub(r"\\(.)", r"\1", markdown)

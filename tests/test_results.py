"""The typed result (analyzer.results, analyzer.result_groups): built from the measure functions' JSON in one
place, it gives back that JSON exactly, its q and verdicts come from the table's Test rows, and the renderers
and figures read it.  No model is loaded: the pinned analysis of the sentiment-labels sample is the input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from analyzer.result_groups import Faithfulness, Relatedness, ScoreVsNulls, Tightness
from analyzer.results import PromptAnalysis, Report, Skipped

PINNED = Path(__file__).parent / "data" / "analyze_sentiment_labels.json"


@pytest.fixture(scope="module")
def pinned() -> dict:
    return json.loads(PINNED.read_text())


def _strip_adjusted(obj) -> int:
    """Remove what the table's adjustment decides (q, claim, direction; a stale verdict and significance) from
    every null comparison of a measure dict; returns how many were changed."""
    n = 0
    if isinstance(obj, dict):
        if {"q", "claim", "direction", "verdict", "p"} <= set(obj) and "measure" not in obj:
            for key in ("q", "claim", "direction"):
                del obj[key]
            obj["verdict"], obj["significant"] = "stale", None
            n += 1
        for v in obj.values():
            n += _strip_adjusted(v)
    elif isinstance(obj, list):
        n += sum(_strip_adjusted(v) for v in obj)
    return n


def test_to_dict_gives_back_the_json_exactly(pinned):
    rep = Report.from_dict(pinned)
    assert json.dumps(rep.to_dict()) == json.dumps(pinned)          # values and key order
    assert Report.from_dict(json.loads(rep.to_json())).to_json() == rep.to_json()


def test_typed_attributes(pinned):
    p = Report.from_dict(pinned).prompts[0]
    assert isinstance(p, PromptAnalysis) and p.name == "the-prompt" and p.task == "sentiment"
    assert isinstance(p.tightness, Tightness) and isinstance(p.relatedness, Relatedness)
    assert p.faithfulness == Skipped(pinned["prompts"][0]["faithfulness"]["skipped"])
    assert len(p.tokens) == p.num_virtual_tokens and p.tokens[0].neighbors[0].token
    model = p.tightness.space("model")
    assert isinstance(model, ScoreVsNulls) and model.value == pytest.approx(0.3711817193)
    assert set(model.nulls) == {"matched", "random_vectors", "vocab_tokens", "init"}
    assert p.tests[0].measure == "tightness" and p.tests[0].q is None
    assert p.relatedness.space("model").share.computed and p.relatedness.specificity is not None
    assert p.tightness.space("nowhere").omitted == "not computed"
    assert p["tightness"] == pinned["prompts"][0]["tightness"]      # the JSON view, for dict-layout callers


def test_q_and_verdicts_come_from_the_test_rows(pinned):
    stale = copy.deepcopy(pinned)
    n = sum(_strip_adjusted(v) for p in stale["prompts"] for k, v in p.items() if k not in ("tests", "summary"))
    assert n >= 30
    rep = Report.from_dict(stale)
    assert json.dumps(rep.to_dict()) == json.dumps(pinned)
    p = rep.prompts[0]
    row = next(t for t in p.tests if (t.measure, t.space, t.null) == ("tightness", "model", "init"))
    reading = p.tightness.space("model").nulls["init"]
    assert (reading.q, reading.verdict, reading.claim) == (row.q, row.verdict, row.claim)


def test_renderers_read_the_typed_result(pinned):
    rep = Report.from_dict(pinned)
    md, table = rep.to_markdown(), rep.render("table")
    assert md.startswith("# Soft-prompt report — smollm2-135m") and "**The table of tests**" in md
    assert "### faithfulness" in md and "Skipped: not requested" in md
    assert "the table of tests" in table and "faithfulness: skipped" in table


def test_faithfulness_is_read_once():
    f = Faithfulness.from_dict({
        "projection_gap": {"chance": 0.5, "majority": 0.55,
                           "accuracy": {"soft": {"accuracy": 0.8, "ci_low": 0.7, "ci_high": 0.9, "n": 100},
                                        "none": {"accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 100}},
                           "gap": {"diff": 0.3, "ci_low": 0.2, "ci_high": 0.4, "mcnemar": {"p_value": 0.01},
                                   "agreement": 0.6}},
        "projection": {"text": "good bad", "tokens": ["good", "bad"]},
        "self_description": [{"question": "What?", "soft": {"text": "reviews"}, "none": {"text": "hm"}}]})
    gap = f.projection_gap
    assert [c.condition for c in gap.conditions] == ["soft", "none"] and gap.gap.mcnemar_p == 0.01
    assert f.projection_tokens == ("good", "bad") and f.self_description[0].texts == {"soft": "reviews", "none": "hm"}


def test_figures_take_the_typed_result_or_its_json(pinned):
    pytest.importorskip("plotly")
    from analyzer.plotting import plot_geometry, plot_relatedness, plot_tightness

    d = pinned["prompts"][0]
    p = PromptAnalysis.from_dict(d)
    assert plot_tightness(p, space="text").to_json() == plot_tightness(d, space="text").to_json()
    assert plot_geometry(p).to_json() == plot_geometry(d).to_json()
    assert plot_relatedness(p.relatedness).to_json() == plot_relatedness(d["relatedness"]).to_json()
    assert plot_relatedness(Skipped("no task")).layout.annotations[-1].text == "not computed"

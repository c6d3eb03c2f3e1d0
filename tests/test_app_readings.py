"""Explore's model-running tabs (Evaluate, Importance, Describe) through ``AppTest``: each renders before and after
its compute button, on the real SmolLM2 with tiny settings (a few examples, a tiny null), waiting on the
background future; a failure is one error box with a way to try again; importance sizes the map."""

from __future__ import annotations

import pytest

from test_app import _no_background_work_left, app, chart_specs, folders, ok, settle  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture()
def tiny(monkeypatch):
    """The readings' choices and settings made tiny (the CLI's defaults take minutes)."""
    from analyzer.ui import _model_readings as mr

    monkeypatch.setattr(mr, "EVAL_LIMITS", (4, 8))
    monkeypatch.setattr(mr, "EVAL_DEFAULT_LIMIT", 4)
    monkeypatch.setattr(mr, "IMPORTANCE_LIMITS", (4, 6))
    monkeypatch.setattr(mr, "IMPORTANCE_DEFAULT_LIMIT", 4)
    monkeypatch.setattr(mr, "IMPORTANCE_SETTINGS", dict(null_size=3, null_prompts=3, null_limit=3, n_orders=1,
                                                        band_points=1, n_boot=200))
    monkeypatch.setattr(mr, "DESCRIBE_SETTINGS", dict(layers=(0, 8), null_size=1, max_new_tokens=2))
    from analyzer.ui import _decode_view as dv

    monkeypatch.setattr(dv, "STEPS", (2, 3))
    monkeypatch.setattr(dv, "DEFAULT_STEPS", 2)
    monkeypatch.setattr(dv, "LIMITS", (4, 6))
    monkeypatch.setattr(dv, "DEFAULT_LIMIT", 4)
    monkeypatch.setattr(dv, "SETTINGS", dict(eval_every=1, select_examples=4, batch_size=2))
    return mr


def titles(at) -> list[str]:
    return [s["layout"].get("title", {}).get("text", "") for s in chart_specs(at)]


def test_tabs_wait_for_their_buttons(app, tiny):
    at = app().run()
    ok(at)
    assert [t.label for t in at.tabs] == ["Neighbours", "Tightness", "Relatedness", "Geometry", "Evaluate",
                                          "Faithfulness", "Importance", "Describe", "Decode"]
    assert at.button(key="dec_run").label == "Decode"
    assert at.button(key="eval_run").label == "Evaluate"
    assert at.button(key="imp_run").label == "Compute importance"
    assert at.button(key="desc_run").label == "Describe the prompt"
    captions = " ".join(c.value for c in at.caption)
    assert "Slow the first time" in captions and "cached on disk" in captions
    assert at.multiselect(key="eval_extra").options == ["sentiment-amazon"]     # a sentiment task: out of domain
    assert not [t for t in titles(at) if t.startswith(("Accuracy on", "ΔNLL", "Class rate"))]


def test_evaluate_on_request_with_evaluation_only_data(app, tiny):
    at = app().run()
    at.multiselect(key="eval_extra").set_value(["sentiment-amazon"]).run()
    at.button(key="eval_run").click().run()
    settle(at)
    ok(at)
    assert "Accuracy on the first 4 test examples (95% Wilson interval)" in titles(at)
    table = next(t.value for t in at.table if "vs zero-shot" in t.value.columns)
    assert set(table["task"]) == {"sentiment", "sentiment-amazon"}
    assert {"text-init", "[zero-shot]", "[instruction]"} <= set(table["prompt"])
    assert any("vs zero-shot" in m.value and "(n=4" in m.value for m in at.markdown)   # the verdict sentences


def test_importance_on_request_sizes_the_map(app, tiny):
    at = app().run()
    virtual = next(t for t in chart_specs(at)[0]["data"] if t["name"] == "text-init")
    assert virtual["marker"]["size"] == 13                                     # nothing known yet: the default
    at.button(key="imp_run").click().run()
    settle(at)
    ok(at)
    assert any(t.startswith("ΔNLL of the gold label") for t in titles(at))
    assert any(t.startswith("Partial-projection curve") for t in titles(at))
    table = next(d.value for d in at.dataframe if "removed ΔNLL" in d.value.columns)
    assert len(table) == 12 and list(table["v"])[:2] == ["v0", "v1"]
    assert any("positions matter" in m.value or "No position matters" in m.value for m in at.markdown)
    umap = chart_specs(at)[0]
    virtual = next(t for t in umap["data"] if t["name"] == "text-init")
    assert isinstance(virtual["marker"]["size"], list) and len(virtual["marker"]["size"]) == 12
    assert any(t["name"].startswith("size: importance") for t in umap["data"])
    assert any("Sized by importance: text-init" in c.value for c in at.caption)


def test_describe_on_request(app, tiny):
    at = app().run()
    at.button(key="desc_run").click().run()
    settle(at)
    ok(at)
    assert any(t.startswith("Class rate of the description of text-init") for t in titles(at))
    text = " ".join(m.value for m in at.markdown)
    assert ("**Best description**" in text or "**No description names a class of sentiment**" in text)
    assert "**Planted control**" in text
    assert any("Null: 4 meaningless prompts" in c.value for c in at.caption)
    at.toggle(key="desc_show_planted").set_value(True).run()
    ok(at)
    assert any("planted instruction" in t for t in titles(at))


def test_decode_on_request_shows_the_texts_and_the_frontier(app, tiny):
    at = app().run()
    at.multiselect(key="dec_fluency").set_value([0.0, 1.0]).run()
    at.button(key="dec_run").click().run()
    settle(at)
    ok(at)
    assert any(t.startswith("Accuracy against readability of the decodes of text-init") for t in titles(at))
    text = " ".join(m.value for m in at.markdown)
    assert "**λ = 0**" in text and "**λ = 1**" in text and "agrees with the soft prompt on" in text
    assert len(at.code) == 2 and all(c.value.strip() for c in at.code)       # the two decoded texts
    table = next(t.value for t in at.table if "perplexity" in t.value.columns)
    assert list(table["prompt"])[:2] == ["decoded, λ=0", "decoded, λ=1"] and "[soft]" in set(table["prompt"])
    assert all(0.0 <= float(b.replace("\\", "")) <= 1.0 for b in table["balanced"])  # references too (escaped)
    assert any("PEFT adapter (init TEXT)" in c.value for c in at.caption)


def test_a_failed_reading_is_one_error_box_and_can_be_tried_again(app, tiny, monkeypatch):
    monkeypatch.setattr(tiny, "IMPORTANCE_SETTINGS", dict(null_size=0))
    at = app().run()
    at.button(key="imp_run").click().run()
    settle(at)
    assert not at.exception
    [err] = at.error
    assert "'null_size' parameter of importance must be an int >= 1" in err.value and "\n" not in err.value
    at.button(key="imp_run_retry").click().run()
    assert not at.error and at.button(key="imp_run").label == "Compute importance"

"""The published JSON Schemas (docs/reference/schemas/) describe the real JSON of ``report``, ``analyze`` and
``evaluate``: real outputs validate, and an output missing a required key or holding a wrong type does not."""

from __future__ import annotations

import copy
import json

import pytest

from app_helpers import ROOT

SCHEMAS = ROOT / "docs" / "reference" / "schemas"
PINNED = ROOT / "tests" / "data" / "analyze_sentiment_labels.json"   # a full analysis (test_same_claims keeps it live)
SAMPLE = ROOT / "sample_prompts" / "sentiment-labels"


def _validator(name: str):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    # the schemas refer to each other by file name (report.schema.json#/$defs/...), as they lie in one folder
    registry = Registry(retrieve=lambda uri: Resource.from_contents(json.loads((SCHEMAS / uri).read_text())))
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def _errors(name: str, doc) -> list[str]:
    return [f"{e.json_path}: {e.message[:200]}" for e in _validator(name).iter_errors(doc)]


def _cli(tmp_path, *args) -> dict:
    from analyzer.cli import main

    out = tmp_path / f"{args[0]}.json"
    assert main([*map(str, args), "--format", "json", "--out", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def pinned() -> dict:
    return json.loads(PINNED.read_text())


@pytest.mark.parametrize("name", ["report", "analyze", "evaluate"])
def test_schemas_are_valid_draft_2020_12(name):
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    _validator(name)   # check_schema raises on an invalid schema


def test_pinned_analysis_validates_as_analysis_and_as_report(pinned):
    assert _errors("analyze", pinned) == []
    assert _errors("report", pinned) == []   # an analysis is a report with more in it


def test_report_without_measures_is_not_an_analysis(pinned):
    report = copy.deepcopy(pinned)
    for p in report["prompts"]:
        for key in ("tightness", "hubness", "geometry", "relatedness", "tests", "summary"):
            p.pop(key)
    assert _errors("report", report) == []
    assert any("'tests' is a required property" in e for e in _errors("analyze", report))


@pytest.mark.parametrize("path, value, expect", [
    (("prompts", 0, "tests", 0, "p"), 1.5, "greater than the maximum"),
    (("prompts", 0, "tests", 0, "significant"), "yes", "is not of type 'boolean'"),
    (("prompts", 0, "tokens", 0, "neighbors", 0, "token_id"), "17225", "is not of type 'integer'"),
    (("prompts", 0, "num_virtual_tokens"), 0, "less than the minimum"),
    (("settings", "metric"), "cosinus", "is not one of"),
])
def test_wrong_type_or_range_fails(pinned, path, value, expect):
    doc = copy.deepcopy(pinned)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = _errors("analyze", doc)
    assert errors and any(expect in e for e in errors), errors


def test_p_value_deep_in_a_measure_group_is_checked(pinned):
    """The p/q rule holds at any depth, not only in the table of tests."""
    doc = copy.deepcopy(pinned)
    doc["prompts"][0]["tightness"]["model"]["null"]["matched"]["p"] = -0.1
    assert _errors("analyze", doc)
    doc = copy.deepcopy(pinned)
    doc["prompts"][0]["relatedness"]["model_space"]["per_token"][0]["p"]["random_vectors"] = 2.0
    assert _errors("analyze", doc)


def test_reference_row_cannot_be_significant(pinned):
    doc = copy.deepcopy(pinned)
    row = next(t for t in doc["prompts"][0]["tests"] if not t["claim"])
    row["significant"] = True
    assert _errors("analyze", doc)


@pytest.mark.parametrize("missing", ["model", "prompts"])
def test_required_top_level_key_removed_fails(pinned, missing):
    doc = copy.deepcopy(pinned)
    doc.pop(missing)
    assert any(f"'{missing}' is a required property" in e for e in _errors("report", doc))


def test_new_optional_key_is_accepted(pinned):
    doc = copy.deepcopy(pinned)
    doc["prompts"][0]["tokens"][0]["a_future_measure"] = {"value": 1.0}
    doc["prompts"][0]["tests"][0]["ci"] = [0.1, 0.2]
    doc["settings"]["a_future_setting"] = True
    assert _errors("analyze", doc) == []


@pytest.mark.integration
def test_real_report_validates(tmp_path):
    doc = _cli(tmp_path, "report", SAMPLE, "-k", "3")
    assert _errors("report", doc) == []
    assert len(doc["prompts"][0]["tokens"][0]["neighbors"]) == 3
    doc["prompts"][0]["tokens"][0]["neighbors"][0].pop("token")
    assert any("'token' is a required property" in e for e in _errors("report", doc))


@pytest.mark.integration
def test_real_analysis_validates(tmp_path):
    doc = _cli(tmp_path, "analyze", SAMPLE, "--n-null", "20", "--no-text-space", "-q")
    assert _errors("analyze", doc) == []
    assert doc["prompts"][0]["tests"], "an analysis has a table of tests"


@pytest.mark.integration
def test_real_evaluation_validates(tmp_path):
    doc = _cli(tmp_path, "evaluate", SAMPLE, "--limit", "4", "-q")
    assert _errors("evaluate", doc) == []
    result = doc["results"][0]
    assert result["n"] == 4
    bad = copy.deepcopy(doc)
    bad["results"][0]["accuracy"] = "0.75"
    assert any("is not of type 'number'" in e for e in _errors("evaluate", bad))
    bad = copy.deepcopy(doc)
    bad["results"][0]["vs_zero_shot"].pop("p")
    assert any("'p' is a required property" in e for e in _errors("evaluate", bad))

"""The map sized by importance (analyzer.plotting._map) and the rows of Explore's model-running tabs
(analyzer.ui._readings), on hand-made objects: no model, no UMAP."""

from __future__ import annotations

import numpy as np
import pytest

from analyzer.types import Vocabulary


def _vocab(n: int = 12, d: int = 4) -> Vocabulary:
    emb = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    toks = tuple(f"t{i}" for i in range(n))
    return Vocabulary(name="tiny", source="memory", embeddings=emb, tokens=toks, raw_tokens=toks,
                      excluded=np.zeros(n, bool), tied=True, key="tiny-map-importance", architecture=None)


def _pmap(sizes=(4, 3), k: int = 2, dims: int = 2):
    from analyzer.projection import ProjectedPrompt, PromptMap

    rng = np.random.default_rng(1)
    prompts = tuple(ProjectedPrompt(name=f"p{j}", coords=rng.normal(size=(n, dims)).astype(np.float32),
                                    neighbor_ids=rng.integers(0, 12, size=(n, k)),
                                    neighbor_scores=np.full((n, k), 0.5, np.float32),
                                    neighbor_coords=rng.normal(size=(n, k, dims)).astype(np.float32),
                                    norms=np.ones(n, np.float32))
                    for j, n in enumerate(sizes))
    return PromptMap(background_ids=np.arange(12), background_coords=rng.normal(size=(12, dims)).astype(np.float32),
                     prompts=prompts, metric="cosine", highlight_ids=np.zeros(0, np.int64),
                     highlight_coords=np.zeros((0, dims), np.float32))


def _reading(values, significant=()):
    """An importance reading with only the removal replacement (what the map and the Importance tab read)."""
    from analyzer.faithfulness import ImportanceResult, PositionImportance, ReplacementEffect

    positions = tuple(PositionImportance(index=i, removed=ReplacementEffect(0.0, v, (0.0, 0.0), (v - 0.1, v + 0.1)),
                                         p=0.01 if i in significant else 0.5, q=0.01 if i in significant else 0.5,
                                         significant=i in significant) for i, v in enumerate(values))
    return ImportanceResult(model="m", prompt="p", task="sentiment", split="test", n=4, original={},
                            positions=positions, projection_curve=None, tests=({},), null={},
                            settings={"alpha": 0.05})


def test_importance_sizes_area_grows_linearly_with_the_clipped_value():
    from analyzer.plotting._map import importance_sizes

    s = importance_sizes([-0.3, 0.0, 0.25, 0.5, 1.0, float("nan")], 0.5, 8, 30)
    assert s[0] == s[1] == s[5] == pytest.approx(8)            # at or below 0 (and NaN): the smallest
    assert s[3] == pytest.approx(30) and s[4] == pytest.approx(30)   # at vmax and beyond: the largest
    assert s[2] ** 2 == pytest.approx((8 ** 2 + 30 ** 2) / 2)   # half the value, half way in area
    assert importance_sizes([0.2, 0.4], 0.0, 8, 30).tolist() == [8, 8]   # nothing positive: all the smallest


def test_map_sizes_virtual_tokens_by_importance_and_keeps_the_default_look_without():
    from analyzer.plotting import plot_prompt_map
    from analyzer.plotting._map import SIZES_2D

    pmap, vocab = _pmap(), _vocab()
    plain = plot_prompt_map(pmap, vocab, show_background=False)
    assert [t.marker.size for t in plain.data if t.name in ("p0", "p1")] == [SIZES_2D[0]] * 2
    assert not [t for t in plain.data if t.name.startswith("size:")]

    fig = plot_prompt_map(pmap, vocab, show_background=False,
                          importance=[_reading([0.4, -0.2, 0.1, 0.0], significant={0}), None])
    p0 = next(t for t in fig.data if t.name == "p0")
    p1 = next(t for t in fig.data if t.name == "p1")
    assert p1.marker.size == SIZES_2D[0]                                       # unknown: unchanged
    sizes = list(p0.marker.size)
    assert sizes[0] == pytest.approx(SIZES_2D[2]) and sizes[1] == sizes[3] == pytest.approx(SIZES_2D[1])
    assert sizes[1] < sizes[2] < sizes[0]
    assert list(p0.marker.line.color) == ["#111111", "white", "white", "white"]   # position 0 matters
    assert "removal ΔNLL +0.400 (matters)" in p0.hovertext[0] and "removal ΔNLL -0.200" in p0.hovertext[1]
    legend = [t for t in fig.data if t.name.startswith("size:")]
    assert len(legend) == 1 and "clipped at 0" in legend[0].name and "+0.400" in legend[0].name
    assert "outlined" in legend[0].name and legend[0].hoverinfo == "skip"
    # plain values work as well (nothing outlined), one scale for every prompt on the map
    both = plot_prompt_map(pmap, vocab, show_background=False, importance=[[0.2, 0, 0, 0], [0.4, 0, 0]])
    s0, s1 = (list(next(t for t in both.data if t.name == n).marker.size) for n in ("p0", "p1"))
    assert s1[0] == pytest.approx(SIZES_2D[2]) and s0[0] < s1[0]
    assert "outlined" not in next(t for t in both.data if t.name.startswith("size:")).name


def test_map_importance_in_3d_and_bad_lengths():
    from analyzer.plotting import plot_prompt_map
    from analyzer.plotting._map import SIZES_3D

    pmap, vocab = _pmap(dims=3), _vocab()
    fig = plot_prompt_map(pmap, vocab, show_background=False, importance=[_reading([1, 0, 0, 0], {0}), None])
    p0 = next(t for t in fig.data if t.name == "p0")
    assert p0.type == "scatter3d" and p0.marker.size[0] == pytest.approx(SIZES_3D[2])
    with pytest.raises(ValueError, match="3 positions but the prompt has 4 virtual tokens"):
        plot_prompt_map(pmap, vocab, show_background=False, importance=[[1, 2, 3], None])
    with pytest.raises(ValueError, match="1 entries but the map holds 2 prompts"):
        plot_prompt_map(pmap, vocab, show_background=False, importance=[None])


# ------------------------------------------------------------------------------------------ the tabs' rows
def test_importance_rows_and_which_positions_matter():
    from analyzer.ui._readings import importance_rows, mattering

    r = _reading([0.4, -0.2, 0.1], significant={0})
    rows = importance_rows(r)
    assert [x["v"] for x in rows] == ["v0", "v1", "v2"] and rows[0]["removed ΔNLL"] == 0.4
    assert rows[0]["95% CI"] == "[+0.300, +0.500]" and rows[0]["matters"] and not rows[1]["matters"]
    assert rows[0]["nearest ΔNLL"] is None                                    # a replacement not run
    assert mattering(r).startswith("**1 of 3 positions matter**: v0 (q=0.01)")
    assert mattering(_reading([0.1, 0.2])).startswith("**No position matters more than chance**")


def test_evaluation_rows_and_description_sentences():
    from analyzer.faithfulness.evaluation import Baselines, EvaluationResult, PromptEvaluation, Score, Versus
    from analyzer.ui._readings import (best_description, description_claim, evaluation_rows, planted_lines,
                                       verdict_words)

    s = Score.of([1, 1, 0, 1], ["pos", "neg"], [0, 1, 1, 0], 0.41)
    z = Score.of([1, 0, 0, 1], ["pos", "neg"], [0, 1, 1, 0], 0.69)
    verdict = "p on sentiment: 0.750 vs zero-shot 0.500 (n=4, q=1): not distinguishable from zero-shot."
    res = EvaluationResult(model="m", results=(PromptEvaluation("p", "sentiment", s, Versus(
        "zero-shot", 0.25, 1, 0, 1.0, 1.0, verdict)),), baselines={"sentiment": Baselines(
            z, None, Score.of([1, 0, 0, 1], ["pos", "neg"], [0, 1, 1, 0], None), "pos", None)}, limit=4)
    rows = evaluation_rows(res)
    assert [r["prompt"] for r in rows] == ["p", "[zero-shot]", "[majority (pos)]"]   # no instruction: left out
    assert rows[0]["accuracy [95% CI]"].startswith("0.750 [") and rows[0]["NLL"] == "0.410"
    assert rows[0]["vs zero-shot"] == "+0.250 (q=1)" and rows[0]["verdict"] == "not distinguishable from zero-shot"
    assert rows[2]["NLL"] == "—" and verdict_words("") == ""

    from dataclasses import replace

    from analyzer.faithfulness import DescriptionCell, DescriptionNull, DescriptionResult, PlantedDescription
    from analyzer.stats import Test

    claim = Test(measure="description class rate, grid mean", space="model", null="matched", value=0.4,
                 null_mean=0.05, null_sd=0.1, effect=3.5, p=0.01, q=0.01, direction="greater", significant=True,
                 verdict="", claim=True, n_null=80)
    cell = DescriptionCell(source_layer=0, target_layer=0, text="", class_rate=0.0, keyword_share=0.0, p=None,
                           q=None, null_class_rate=0.0)
    grid = (cell, replace(cell, target_layer=8, text=" language"), replace(cell, source_layer=8, text="language "))
    d = DescriptionResult(prompt={"name": "p"}, task="sentiment", model="m", grid=grid, best=cell,
                          tests=(claim, replace(claim, claim=False)), describes_task=True, class_rate_mean=0.4,
                          null=None, planted=(PlantedDescription(
                              kind="instruction", text="Classify it.", detected=False,
                              grid=grid, best=replace(cell, text=" about movies"),
                              tests=(replace(claim, q=0.4, significant=False),), class_rate_mean=0.1, profile=[],
                              null=DescriptionNull(constructions=("random tokens",), per_construction=80, n=80,
                                                   cached=False, file=None, class_rate_mean=0.08,
                                                   class_rate_by_construction={}, class_rate_by_cell=(),
                                                   frequent_texts=())),))
    ok, sentence = description_claim(d)
    assert ok and sentence == ("**Claim: the model describes this prompt as about sentiment** (class rate, grid mean "
                               "0.40 vs the null's 0.05, q=0.01).")
    ok, sentence = description_claim(replace(d, describes_task=False))
    assert not ok and sentence.startswith("**Not distinguishable from chance**")
    [(detected, line)] = planted_lines(d)
    assert not detected and "**NOT detected**" in line and "q=0.4" in line and "“about movies”" in line

    assert best_description(d) == (
        "No description names a class of sentiment", "language",
        "The grid's most frequent description (2 of 3 cells); class rate 0 in every cell.")
    named = replace(cell, text=" positive or negative", class_rate=1.0, null_class_rate=0.1)
    heading, text, detail = best_description(replace(d, best=named, grid=grid + (named,)))
    assert (heading, text) == ("Best description", "positive or negative")
    assert detail == ("Source layer 0 → target layer 0 · class rate 1.00 (the null's 0.10 in that cell) · keyword "
                      "share 0.00.")


def test_shipped_readings_read_back_through_from_dict():
    """sample_prompts/importance.json and describe.json (written by scripts/importance_samples.py and
    describe_samples.py) read back into the typed results, whose to_dict() gives the same JSON."""
    import json
    from pathlib import Path

    from analyzer.faithfulness import DescriptionResult, ImportanceResult

    samples = Path(__file__).resolve().parents[1] / "sample_prompts"
    full = json.loads((samples / "importance.json").read_text())["full"]
    back = ImportanceResult.from_dict(full).to_dict()
    back.pop("model_provenance")                                 # written before the provenance was recorded
    assert json.dumps(back) == json.dumps(full)
    for other in samples.glob("*/importance.json"):               # other models' readings (scale study)
        fulls = json.loads(other.read_text())["full"] or []
        for f in fulls if isinstance(fulls, list) else [fulls]:
            f = {k: v for k, v in f.items() if k != "seconds"}
            assert json.dumps(ImportanceResult.from_dict(f).to_dict()) == json.dumps(f), other
    described = json.loads((samples / "describe.json").read_text())
    for model in described.values():
        for d in model["results"].values():
            d = {k: v for k, v in d.items() if k != "seconds"}
            back = DescriptionResult.from_dict(d).to_dict()
            if "model_provenance" not in d:                 # written before the provenance was recorded
                back.pop("model_provenance")
            assert json.dumps(back) == json.dumps(d)


def test_shipped_readings_record_no_path_of_the_machine_that_wrote_them():
    """Every shipped JSON names its prompts relative to the repository (a clone elsewhere reads them the same)."""
    import json
    from pathlib import Path

    samples = Path(__file__).resolve().parents[1] / "sample_prompts"

    def strings(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                yield from strings(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from strings(v)
        elif isinstance(obj, str):
            yield obj

    files = sorted(samples.rglob("*.json"))
    assert len(files) > 10
    absolute = [(f.relative_to(samples).as_posix(), s) for f in files for s in strings(json.loads(f.read_text()))
                if s.startswith(("/work/", "/tmp/", "/home/", "/root/", str(samples.parent)))]
    assert not absolute, absolute[:5]


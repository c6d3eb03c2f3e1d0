"""`analyze` end to end on the real SmolLM2: the report's sections, its honesty checks (random vectors sit at
their null; an untrained TEXT-init prompt persists its init tokens), and the self-contained HTML."""

import json
import re
from html import escape
from pathlib import Path

import numpy as np
import pytest

from analyzer import analyze, load_prompt, load_vocabulary
from analyzer.cli import main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vocab(smollm2_available):
    return load_vocabulary("smollm2-135m")


def test_random_vectors_are_not_distinguishable_from_chance(vocab, tmp_path):
    rng = np.random.default_rng(123)
    v = rng.normal(size=(12, vocab.dim)).astype(np.float32)
    v *= np.median(np.linalg.norm(vocab.embeddings, axis=1)) / np.linalg.norm(v, axis=1, keepdims=True)
    path = tmp_path / "random.npy"
    np.save(path, v)
    rep = analyze(load_prompt(path), vocab, task="sentiment", k=10, text_space=False, n_null=300)
    p = rep.prompts[0]
    tight = p["tightness"]["model"]["null"]["random_vectors"]
    assert tight["p"] > 0.05 and "a reference, not a claim" in tight["verdict"]
    assert "a reference, not a claim" in p["tightness"]["model"]["null"]["matched"]["verdict"]
    assert p["tests"] and not any(r["significant"] for r in p["tests"])       # no claim fires on noise
    # every row two-sided except task specificity's ("related to T" is directional)
    assert {r["direction"] for r in p["tests"] if r["measure"] != "task specificity"} == {"two-sided"}
    assert {r["direction"] for r in p["tests"] if r["measure"] == "task specificity"} == {"greater"}
    assert all(r["q"] is not None for r in p["tests"] if r["claim"])
    assert p["faithfulness"]["skipped"]
    # same inputs -> same numbers
    again = analyze(load_prompt(path), vocab, task="sentiment", k=10, text_space=False, n_null=300)
    assert json.dumps(again.prompts[0]["tightness"], sort_keys=True) == json.dumps(p["tightness"], sort_keys=True)


def test_text_init_untrained_prompt_persists_its_init(vocab, smollm2_text_adapter):
    d, init_ids = smollm2_text_adapter
    prompt = load_prompt(d)
    assert list(prompt.init_token_ids) == init_ids
    rep = analyze(prompt, vocab, task="sentiment", k=10, text_space=False, n_null=300)
    p = rep.prompts[0]
    assert p["persistence"]["init"]["rate"] == pytest.approx(1.0)
    assert p["persistence"]["init"]["rank"] == [1] * len(init_ids)  # 1-based: the init token is top-1
    assert p["geometry"]["drift"]["l2"]["mean"] == pytest.approx(0.0, abs=1e-5)
    assert p["geometry"]["drift"]["cosine"]["mean"] == pytest.approx(1.0, abs=1e-5)
    # real tokens are their own top-1: tightness equals the vocabulary-token null's order of magnitude, and is
    # far above random vectors
    assert p["tightness"]["model"]["null"]["random_vectors"]["p"] < 0.01


def test_cli_analyze_json_and_html(smollm2_text_adapter, tmp_path, capsys):
    d, _ = smollm2_text_adapter
    out = tmp_path / "a.json"
    assert main(["analyze", str(d), "--task", "sentiment", "-k", "5", "--n-null", "200", "--no-text-space", "-q",
                 "--format", "json", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    p = data["prompts"][0]
    for key in ("tightness", "null", "hubness", "relatedness", "faithfulness", "tokens"):
        assert key in p, key
    # every reported score carries its null reference
    c = p["tightness"]["model"]["null"]["vocab_tokens"]
    assert {"value", "null_mean", "z", "p", "verdict"} <= set(c)
    html_path = tmp_path / "a.html"
    assert main(["analyze", str(d), "--task", "sentiment", "-k", "5", "--n-null", "200", "--no-text-space", "-q",
                 "--format", "html", "--out", str(html_path)]) == 0
    html = html_path.read_text()
    assert html.startswith("<!doctype html>") and "Plotly.newPlot" in html
    assert not re.search(r"<script[^>]+src=", html), "the HTML must not load scripts from the network"
    # the page shows what the analysis found (the JSON run above, same inputs, same numbers): the prompt's
    # section, each virtual token with its nearest token, and the tightness score beside its random-vector
    # chance level, its p-value marked significant or not
    assert f"<h2>{escape(p['name'])}</h2>" in html
    for t in p["tokens"]:
        top = escape(t["neighbors"][0]["token"])
        assert re.search(rf"<tr><td>{t['index']}</td>[^\n]*?<code>{re.escape(top)}</code>", html), (t["index"], top)
    # the table of tests: every JSON row appears as one HTML row (measure, value, null mean, q or p, verdict)
    from analyzer._format import compact_rows

    assert p["tests"] and "<h3>The table of tests</h3>" in html
    section = html.split("<h3>The table of tests</h3>", 1)[1].split("</table>", 1)[0]
    for r in compact_rows(p["tests"]):
        cells = "".join(rf"<td class='l[^']*'>{re.escape(escape(r[c]))}</td>" for c in
                        ("measure", "value", "null", "q", "verdict"))
        assert re.search(rf"<tr>{cells}</tr>", section), f"no row {r} in: {section[:1500]}"
    claim = next(r for r in p["tests"] if r["claim"] and r["null"] == "matched")
    # task specificity is one-sided ("related to T" is directional), every other row two-sided
    assert claim["q"] is not None and claim["direction"] == (
        "greater" if claim["measure"] == "task specificity" else "two-sided")


def _null_comparisons(obj):
    if isinstance(obj, dict):
        if {"value", "null_mean", "p"} <= set(obj):
            yield obj
        for v in obj.values():
            yield from _null_comparisons(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _null_comparisons(v)


@pytest.mark.parametrize("name", ["sentiment-labels", "question-type-text"])
def test_sample_prompts_analysis_is_sane(vocab, name):
    """The shipped, trained prompts: the task comes from training_meta.json, every p-value is a probability with
    +1 smoothing, and the numbers are plausible for a trained prompt."""
    prompt = load_prompt(ROOT / "sample_prompts" / name)
    rep = analyze(prompt, vocab, k=5, text_space=False, n_null=200)
    p = rep.to_dict()["prompts"][0]                       # the JSON a user gets
    assert p["task"] == {"sentiment-labels": "sentiment", "question-type-text": "question-type"}[name]
    comps = list(_null_comparisons(p))
    assert len(comps) >= 10
    for c in comps:
        assert 0 < c["p"] <= 1 and c["verdict"]
    # init ids are recorded by our trainer: drift and persistence are measured, not omitted
    assert "rate" in p["persistence"]["init"] and 0.0 <= p["persistence"]["init"]["rate"] <= 1.0
    assert p["geometry"]["drift"]["l2"]["mean"] > 0.0  # it was trained: it moved
    assert "share" in p["relatedness"]["model_space"]


def test_one_label_word_mapping_for_training_init_and_persistence(vocab, smollm2_frozen, tmp_path):
    """The token ids a label word maps to are the same for training (tokenizer), the labels init and the
    analysis' label-persistence test (vocabulary strings only): one rule, Task.label_token_ids."""
    from analyzer.analysis import label_token_groups
    from analyzer.tasks import get_task
    from analyzer.training import init_prompt

    model, tok = smollm2_frozen
    for name in ("sentiment", "question-type", "spam"):
        task = get_task(name)
        scored = task.label_token_ids(tok)
        assert task.label_token_ids(vocab) == scored, name
        assert label_token_groups(task, vocab) == {lab: [i] for lab, i in zip(task.labels, scored)}
        init = init_prompt("labels", embeddings=model.get_input_embeddings().weight, tokenizer=tok,
                           num_virtual_tokens=len(task.labels), seed=0, task=task)
        assert list(init.token_ids) == scored, name
    path = tmp_path / "labels.npy"
    np.save(path, np.asarray(init.vectors))
    rep = analyze(load_prompt(path), vocab, task="spam", k=5, text_space=False, relatedness=False, n_null=50)
    pers = rep.prompts[0]["persistence"]["labels"]
    assert pers["label_token_ids"] == {lab: [i] for lab, i in zip(task.labels, scored)}

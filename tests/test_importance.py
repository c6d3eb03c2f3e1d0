"""The importance reading: per-position deltas against hand computations with ``evaluate``, the null and its
cache, the claim rows, the JSON layout, held-out validity, bad inputs and the CLI.

Unit tests run on a tiny random llama whose weights are large enough (initializer_range 0.3) for a prompt to move
the label logits; one integration test runs the real SmolLM2 on a 3-token prompt and 6 examples."""

import json

import numpy as np
import pytest

from analyzer.exceptions import AnalyzerError, ShapeMismatchError
from analyzer.types import SoftPrompt

N = 5
SMALL = dict(null_size=6, null_prompts=3, null_limit=4, n_orders=2, band_points=1, n_boot=200)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tiny_models import make_tiny_llama

    from analyzer.loaders import load_vocabulary
    from analyzer.models import load_frozen_model

    d = tmp_path_factory.mktemp("tiny-llama-loud")
    make_tiny_llama(d, initializer_range=0.3)
    model, tok = load_frozen_model(d)
    return model, tok, load_vocabulary(d), d


@pytest.fixture(scope="module")
def task_csv(tmp_path_factory):
    from test_training import make_task_csv

    return str(make_task_csv(tmp_path_factory.mktemp("task") / "tiny_task.csv", n=60))


@pytest.fixture(scope="module")
def task(task_csv):
    from test_training import WORDS

    from analyzer.tasks import get_task

    return get_task(task_csv, label_words=WORDS, test_size=12, validation_size=6)


@pytest.fixture(scope="module")
def prompt(tiny):
    model, *_ = tiny
    d = model.get_input_embeddings().weight.shape[1]
    v = np.random.default_rng(0).standard_normal((N, d)).astype(np.float32)
    return SoftPrompt(name="noise", vectors=v, source="memory", kind="TENSOR")


@pytest.fixture(scope="module")
def result(tiny, task, prompt, tmp_path_factory):
    from analyzer.faithfulness import importance

    model, tok, vocab, _ = tiny
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path_factory.mktemp("cache")))
        return importance(model, tok, prompt, task, vocab, limit=10, prefix_cache=False, **SMALL)


def _by_hand(model, tok, task, feed, limit=10):
    from analyzer.training.scoring import evaluate

    r = evaluate(model, tok, task, feed, split="test", limit=limit)
    nll = -np.log(r.label_probs[np.arange(r.n), r.targets].astype(np.float64))
    return r.accuracy, nll


def test_removed_and_mean_deltas_equal_evaluate_by_hand(tiny, task, prompt, result, one_torch_thread):
    import torch

    model, tok, vocab, _ = tiny
    acc0, nll0 = _by_hand(model, tok, task, prompt.vectors)
    assert result.original.accuracy == acc0
    assert result.original.nll == pytest.approx(nll0.mean(), abs=1e-5)
    ok = np.flatnonzero(~vocab.excluded)
    with torch.no_grad():
        mean = model.get_input_embeddings()(torch.as_tensor(ok)).double().mean(0).float().numpy()
    for i in (0, 2, N - 1):
        acc, nll = _by_hand(model, tok, task, np.delete(prompt.vectors, i, axis=0))
        row = result.positions[i].removed
        assert row.delta_accuracy == acc - acc0
        assert row.delta_nll == pytest.approx(float(np.mean(nll - nll0)), abs=1e-5)
        v = prompt.vectors.copy()
        v[i] = mean
        acc, nll = _by_hand(model, tok, task, v)
        assert result.positions[i].mean.delta_accuracy == acc - acc0
        assert result.positions[i].mean.delta_nll == pytest.approx(float(np.mean(nll - nll0)), abs=1e-5)
    deltas = [abs(p.removed.delta_nll) for p in result.positions]
    assert max(deltas) > 1e-3                       # the loud tiny model does feel its prompt


def test_prefix_cache_matches_the_plain_forward(tiny, task, prompt, result, one_torch_thread):
    from analyzer.faithfulness import importance

    model, tok, vocab, _ = tiny
    fast = importance(model, tok, prompt, task, vocab, limit=10, replacements=("removed",), curve=False,
                      prefix_cache=True, **SMALL)
    assert fast.settings["prefix_cache"] is True and result.settings["prefix_cache"] is False
    for a, b in zip(fast.positions, result.positions):
        assert a.removed.delta_nll == pytest.approx(b.removed.delta_nll, abs=1e-4)
        assert a.removed.delta_accuracy == b.removed.delta_accuracy


def test_nearest_of_a_prompt_made_of_tokens_changes_nothing(tiny, task, one_torch_thread):
    import torch

    from analyzer.faithfulness import importance

    model, tok, vocab, _ = tiny
    ids = [int(i) for i in np.flatnonzero(~vocab.excluded)[[10, 50, 90]]]
    with torch.no_grad():
        vec = model.get_input_embeddings()(torch.tensor(ids)).numpy()
    p = SoftPrompt(name="tokens", vectors=vec, source="memory", kind="TENSOR")
    r = importance(model, tok, p, task, vocab, limit=8, replacements=("nearest",), curve=True, **SMALL)
    for i, row in enumerate(r.positions):
        assert row.nearest.token_id == ids[i]
        assert row.nearest.delta_accuracy == 0.0 and row.nearest.delta_nll == 0.0
        assert list(row.nearest.ci_nll) == [0.0, 0.0]
    assert r.tests == () and r.positions[0].p is None              # no removal, no claim
    assert "p" not in r.to_dict()["positions"][0]
    assert list(r.projection_curve.accuracy) == [r.original.accuracy] * 4


def test_projection_curve_ranks_and_ends_at_the_full_projection(tiny, task, prompt, result):
    from analyzer.training.scoring import evaluate

    model, tok, *_ = tiny
    c = result.projection_curve
    d = [p.nearest.delta_nll for p in result.positions]
    assert sorted(c.order) == list(range(N))
    assert [d[i] for i in c.order] == sorted(d)                  # least important first
    assert list(c.counts) == list(range(N + 1)) and len(c.accuracy) == N + 1
    assert c.accuracy[0] == result.original.accuracy
    ids = [p.nearest.token_id for p in result.positions]
    assert c.accuracy[N] == evaluate(model, tok, task, ids, split="test", limit=10).accuracy
    first = result.positions[c.order[0]].nearest
    assert c.accuracy[1] == result.original.accuracy + first.delta_accuracy
    band = c.random_band
    assert band.n_orders == 2 and band.counts[0] == 0 and band.counts[-1] == N
    assert all(lo <= m <= hi for lo, m, hi in zip(band.low, band.median, band.high))
    assert band.low[-1] == band.high[-1] == c.accuracy[N]
    assert type(c).from_dict(c.to_dict()) == c                   # the JSON reads back

def test_json_layout_and_claim_rows(result):
    from analyzer.stats import benjamini_hochberg

    d = json.loads(result.to_json())
    assert {"model", "prompt", "task", "split", "n", "original", "positions", "projection_curve", "tests",
            "settings", "null"} <= set(d)
    assert set(d["original"]) == {"accuracy", "nll"} and d["n"] == 10 and d["split"] == "test"
    pos = d["positions"][0]
    assert {"index", "removed", "nearest", "mean", "p", "q", "significant"} <= set(pos)
    assert {"delta_accuracy", "delta_nll", "ci"} <= set(pos["removed"]) and "token" in pos["nearest"]
    assert len(pos["removed"]["ci"]["delta_nll"]) == 2
    assert {"order", "accuracy", "random_band"} <= set(d["projection_curve"])
    assert {"low", "median", "high"} <= set(d["projection_curve"]["random_band"])
    assert len(d["tests"]) == N
    for t, p in zip(d["tests"], d["positions"]):
        assert t["null"] == "removal" and t["claim"] and t["direction"] == "greater"
        assert t["p"] == p["p"] and t["q"] == p["q"] and t["significant"] == p["significant"]
        assert t["value"] == p["removed"]["delta_nll"] and t["n_null"] == d["null"]["size"] == 7
        assert t["p"] >= 1 / 8                                   # the null's resolution
    assert [t["q"] for t in d["tests"]] == pytest.approx(benjamini_hochberg([t["p"] for t in d["tests"]]))
    assert d["null"]["resolution"] == pytest.approx(1 / 8)
    assert d["null"]["strata"]["first position"]["n"] == 3          # every pseudo-prompt removes its first position
    for fmt in ("table", "markdown", "html"):
        text = result.render(fmt)
        assert "position" in text.lower() or "#" in text


def test_null_is_cached_and_keyed_by_the_norm_profile(tiny, task, prompt, tmp_path, monkeypatch, one_torch_thread):
    from analyzer.faithfulness import importance

    model, tok, vocab, _ = tiny
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    kw = dict(limit=6, replacements=("removed",), curve=False, **SMALL)
    a = importance(model, tok, prompt, task, vocab, **kw)
    b = importance(model, tok, prompt, task, vocab, **kw)
    assert not a.null.cached and b.null.cached
    assert [t.p for t in a.tests] == [t.p for t in b.tests]
    assert list(tmp_path.glob("importance-null/*/removal-*.npz"))
    scaled = SoftPrompt(name="scaled", vectors=prompt.vectors * 2, source="memory", kind="TENSOR")
    assert not importance(model, tok, scaled, task, vocab, **kw).null.cached


def test_pseudo_prompts_have_the_prompt_norms(tiny):
    from analyzer.faithfulness._removal_null import null_plan, pseudo_prompts, removal_plan

    _, _, vocab, _ = tiny
    norms = np.array([0.5, 1.0, 3.0, 0.1])
    x = pseudo_prompts(vocab, norms, 3, seed=1)
    assert x.shape == (3, 4, vocab.embeddings.shape[1])
    assert np.allclose(np.linalg.norm(x, axis=2), norms[None, :], rtol=1e-5)
    assert null_plan(20, 200, 20) == (20, 10) and null_plan(3, 10, 20) == (10, 1)
    plan = removal_plan(20, 200, 20)
    assert len(plan) == 20 and all(0 in p for p in plan) and sum(map(len, plan)) == 210
    assert sorted(i for p in plan for i in p if i) == sorted(list(range(1, 20)) * 10)   # each other position 10x


def test_stratified_test_standardises_each_stratum_leave_one_out():
    from analyzer.stats import empirical_p, make_test, stratified_test

    rng = np.random.default_rng(0)
    first = rng.normal(0, 1.0, 20)               # the first position: a wide null
    rest = rng.normal(0, 0.1, 180)
    x = np.concatenate([first, rest])
    g = np.array([0] * 20 + [1] * 180)
    wide = stratified_test("position 0", "model", "removal", 0.5, x, g, 0)
    narrow = stratified_test("position 3", "model", "removal", 0.5, x, g, 1)
    assert wide.p > 0.2 and narrow.p == pytest.approx(1 / 201)      # typical of its stratum / beyond every sample
    assert wide.null_mean == pytest.approx(first.mean()) and wide.null_sd == pytest.approx(first.std(ddof=1))
    assert wide.n_null == 200 and wide.value == 0.5
    loo = [(v - np.delete(first, j).mean()) / np.delete(first, j).std(ddof=1) for j, v in enumerate(first)]
    loo += [(v - np.delete(rest, j).mean()) / np.delete(rest, j).std(ddof=1) for j, v in enumerate(rest)]
    stat = (0.5 - first.mean()) / first.std(ddof=1)
    assert wide.p == pytest.approx(empirical_p(stat, np.array(loo), "greater"))
    tiny = stratified_test("position 0", "model", "removal", 0.5, x[18:], g[18:], 0)   # 2 first-position samples
    assert tiny.p == make_test("position 0", "model", "removal", 0.5, x[18:], direction="greater").p


def test_held_out_validity_structure(tiny, task, prompt, one_torch_thread):
    from analyzer.faithfulness import held_out_validity

    model, tok, *_ = tiny
    v = held_out_validity(model, tok, prompt, task, ks=(1, 2, N), limit=12, n_boot=100)
    assert v["n_rank"] == v["n_check"] == 6 and sorted(v["ranking"]) == list(range(N))
    assert [v["rank_half_delta_nll"][i] for i in v["ranking"]] == sorted(v["rank_half_delta_nll"], reverse=True)
    k1, k2, kn = v["ks"]
    assert k1["top"] == [v["ranking"][0]] and k1["bottom"] == [v["ranking"][-1]]
    assert k2["top_minus_bottom_nll"]["diff"] == pytest.approx(k2["top_delta_nll"] - k2["bottom_delta_nll"])
    assert "skipped" in kn
    json.dumps(v, allow_nan=False)


@pytest.mark.parametrize("kw, words", [
    (dict(split="train"), "split"), (dict(limit=1), "limit"), (dict(replacements=("gone",)), "replacements"),
    (dict(replacements=("removed",)), "curve"), (dict(n_orders=-1), "n_orders"), (dict(band=(50, 10)), "band"),
    (dict(null_size=0), "null_size"),
])
def test_bad_inputs_say_what_was_expected(tiny, task, prompt, kw, words):
    from analyzer.faithfulness import importance

    model, tok, vocab, _ = tiny
    with pytest.raises(AnalyzerError, match=words):
        importance(model, tok, prompt, task, vocab, **kw)


def test_bad_prompt_and_missing_vocabulary(tiny, task, prompt):
    from analyzer.faithfulness import importance

    model, tok, vocab, _ = tiny
    with pytest.raises(ShapeMismatchError, match="dim 7"):
        importance(model, tok, np.zeros((3, 7), np.float32), task, vocab)
    with pytest.raises(AnalyzerError, match="Vocabulary"):
        importance(model, tok, prompt, task, None)


def test_cli_writes_json(tiny, task_csv, prompt, tmp_path, capsys, monkeypatch, one_torch_thread):
    from test_training import WORDS

    from analyzer.cli import main

    _, _, _, model_dir = tiny
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))
    np.save(tmp_path / "p.npy", prompt.vectors[:3])
    out = tmp_path / "imp.json"
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    rc = main(["importance", str(tmp_path / "p.npy"), "--model", str(model_dir), "--task", task_csv,
               "--label-words", words, "--limit", "6", "--null-size", "3", "--null-limit", "3", "--orders", "1",
               "--format", "json", "--out", str(out), "--quiet"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["n"] == 6 and len(d["positions"]) == 3 and len(d["tests"]) == 3
    rc = main(["importance", str(tmp_path / "p.npy"), "--model", str(model_dir), "--task", task_csv,
               "--label-words", words, "--split", "validation", "--limit", "1", "--quiet"])
    assert rc == 2 and "error: --limit must be an int >= 2. Got 1 instead." in capsys.readouterr().err


def test_cli_without_a_task_says_how_to_give_one(tiny, prompt, tmp_path, capsys):
    from analyzer.cli import main

    np.save(tmp_path / "p.npy", prompt.vectors[:2])
    rc = main(["importance", str(tmp_path / "p.npy"), "--model", str(tiny[3]), "--quiet"])
    assert rc == 2 and "--task" in capsys.readouterr().err


@pytest.mark.integration
def test_smollm2_importance_small(smollm2_frozen, tmp_path, monkeypatch):
    from analyzer.faithfulness import importance
    from analyzer.loaders import load_prompt, load_vocabulary

    model, tok = smollm2_frozen
    vocab = load_vocabulary("smollm2-135m")                     # from the shared test cache
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))   # the null is computed, not read
    p = load_prompt("sample_prompts/sentiment-labels")
    small = SoftPrompt(name="first3", vectors=p.vectors[:3], source="memory", kind="TENSOR")
    r = importance(model, tok, small, "sentiment", vocab, limit=6, model_name="smollm2-135m",
                   null_size=3, null_prompts=3, null_limit=3, n_orders=1, band_points=1, n_boot=200)
    assert not r.null.cached
    assert r.settings["prefix_cache"] is True
    d = json.loads(r.to_json())
    assert len(d["positions"]) == 3 and all(t["null"] == "removal" for t in d["tests"])
    assert d["projection_curve"]["accuracy"][0] == d["original"]["accuracy"]


def test_calibration_helper_runs_on_the_tiny_model(tiny, task, prompt, tmp_path, monkeypatch, one_torch_thread):
    """The calibration function ``benchmarks/calibration_importance.py`` offers (its rates are measured on SmolLM2,
    not here): every family keeps the reference's norms, and the planted prompt keeps its rows."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import calibration_importance as ci

    model, tok, vocab, _ = tiny
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    norms = np.linalg.norm(prompt.vectors, axis=1)
    for fam in ci.FAMILIES:
        x = ci.meaningless_prompt(fam, prompt.vectors, model, vocab, seed=3).vectors
        assert np.allclose(np.linalg.norm(x, axis=1), norms, rtol=1e-5)
    planted = ci.planted_prompt(prompt.vectors, [1, 3], vocab, seed=4).vectors
    assert np.array_equal(planted[[1, 3]], prompt.vectors[[1, 3]])
    out = ci.importance_calibration(model, tok, vocab, prompt, task, per_family=1, planted_k=2, planted_count=1,
                                    limit=5, null_size=4, null_prompts=2, null_limit=3)
    assert set(out["families"]) == set(ci.FAMILIES)
    assert all(f["any_claim"]["n"] == 1 and f["position_rate"]["n"] == N for f in out["families"].values())
    assert len(out["planted"]["positions"]) == 2 and out["planted"]["false_positions"]["n"] == N - 2
    runs = [p for f in out["families"].values() for p in f["prompts"]] + out["planted"]["prompts"]
    assert [r["null"]["cached"] for r in runs] == [False] + [True] * (len(runs) - 1)    # one null for all


def test_trained_plant_trains_only_its_rows_at_the_reference_norms(tiny, task, prompt, tmp_path, monkeypatch,
                                                                   one_torch_thread):
    """The trained plant of the calibration (``--planted trained``): every row but the planted ones is exactly the
    carrier (a draw of the null's own family), the planted rows moved and kept the reference's norm at their
    position, so the prompt is read against the same removal null as the meaningless prompts."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import calibration_importance as ci

    model, tok, vocab, _ = tiny
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path))
    pos = [1, 3]
    carrier = ci.meaningless_prompt("vocabulary-shaped noise", prompt.vectors, None, vocab, seed=5).vectors
    plant, rec = ci.trained_plant(model, tok, prompt.vectors, pos, vocab, task, 5, steps=4, batch_size=4)
    x = plant.vectors
    others = [i for i in range(N) if i not in pos]
    assert np.array_equal(x[others], carrier[others]) and rec["untouched_rows_equal"]
    assert not np.allclose(x[pos], carrier[pos])
    assert np.allclose(np.linalg.norm(x[pos], axis=1), np.linalg.norm(prompt.vectors[pos], axis=1), rtol=1e-5)
    assert 0.0 <= rec["validation_accuracy_carrier"] <= 1.0 and 0.0 <= rec["validation_accuracy_planted"] <= 1.0
    out = ci.importance_calibration(model, tok, vocab, prompt, task, families=(), planted="trained", planted_k=2,
                                    planted_count=1, plant_steps=2, limit=5, null_size=4, null_prompts=2,
                                    null_limit=3)
    rec = out["planted"]["prompts"][0]
    assert out["planted"]["mode"] == "trained" and len(rec["positions"]) == 2 and 0 not in rec["positions"]
    assert out["planted"]["detected"]["n"] == 2 and out["planted"]["false_positions"]["n"] == N - 2
    # re-read against the same null (recomputed from its seed): the same claims; no model runs in reread itself
    null = ci.cached_null(model, tok, vocab, prompt, task, size=4, prompts=2, limit=3)
    again = ci.reread(out, null)
    assert again["planted"] == {k: out["planted"][k] for k in ("detected", "false_positions")}

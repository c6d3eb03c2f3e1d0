"""``evaluate``: any prompt on any task beside zero-shot, the instruction and the majority class.

On the tiny steerable llama with two mirrored toy tasks (the same reviews, the label words swapped), every number
is checked against a hand computation from :func:`analyzer.training.scoring.evaluate` (the one scoring path):
accuracy and its Wilson interval, recall per class, the gold-label NLL, the majority class, and the exact McNemar
test against zero-shot (scipy's binomial test of the discordant pairs).  The swap is a view of the same scores.
On the real SmolLM2: the CLI on a shipped sample, in domain and on the evaluation-only ``sentiment-amazon``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from analyzer.exceptions import AnalyzerError
from analyzer.faithfulness.evaluation import evaluate_prompts
from app_helpers import ROOT, SAMPLES


@pytest.fixture(scope="module")
def evaluated(steerable_toy):
    model, tok, toy, mirror, prompts = steerable_toy
    lines = []
    res = evaluate_prompts(model, tok, prompts, [toy, mirror], limit=None, model_name="tiny", progress=lines.append)
    assert lines[0].startswith("toy: zero-shot") and len(lines) == 2 * 3   # no instruction on the toy tasks
    return res


@pytest.fixture(scope="module")
def toy_with_instruction(steerable_toy):
    from dataclasses import replace

    _, _, toy, _, _ = steerable_toy
    return replace(toy, name="toy-instructed", instruction="Is the review positive or negative?")


def test_every_number_matches_a_hand_computation(steerable_toy, toy_with_instruction):
    from scipy.stats import binomtest

    from analyzer.training.scoring import evaluate

    model, tok, toy, mirror, prompts = steerable_toy
    task = toy_with_instruction
    res = evaluate_prompts(model, tok, prompts, [task], limit=None, model_name="tiny")
    zero = evaluate(model, tok, task, None, split="test")
    instr = evaluate(model, tok, task, task.instruction, split="test")
    for name, p in prompts.items():
        r = evaluate(model, tok, task, p, split="test")
        got = res.result(name, task.name)
        ok = r.predictions == r.targets
        assert got.score.n == len(task.test) and got.score.correct == int(ok.sum())
        assert got.score.accuracy == pytest.approx(ok.mean())
        lo, hi = binomtest(int(ok.sum()), len(ok)).proportion_ci(method="wilson")
        assert (got.score.ci_low, got.score.ci_high) == pytest.approx((lo, hi))
        for i, lab in enumerate(task.labels):
            assert got.score.per_class[lab] == pytest.approx(ok[r.targets == i].mean())
        assert got.score.balanced_accuracy == pytest.approx(np.mean([ok[r.targets == i].mean() for i in (0, 1)]))
        nll = -np.log(r.label_probs[np.arange(len(r.targets)), r.targets]).mean()
        assert got.score.nll == pytest.approx(nll, rel=1e-4)
        z = zero.predictions == zero.targets
        a_only, b_only = int((ok & ~z).sum()), int((~ok & z).sum())
        v = got.vs_zero_shot
        assert (v.a_only, v.b_only) == (a_only, b_only)
        want = 1.0 if a_only + b_only == 0 else binomtest(min(a_only, b_only), a_only + b_only).pvalue
        assert v.p == pytest.approx(want)
        assert v.q is not None and v.q >= v.p - 1e-12
    b = res.baselines[task.name]
    assert b.zero_shot.accuracy == pytest.approx(zero.accuracy)
    assert b.instruction.accuracy == pytest.approx(instr.accuracy) and b.instruction_text == task.instruction
    counts = task.label_counts("train")
    maj = max(task.labels, key=lambda lab: (counts[lab], -task.labels.index(lab)))
    assert b.majority_label == maj
    assert b.majority.accuracy == pytest.approx(np.mean([ex.label == task.labels.index(maj) for ex in task.test]))
    assert b.majority.nll is None


def test_the_right_prompt_wins_and_the_mirror_is_its_complement(steerable_toy, evaluated):
    _, _, toy, mirror, prompts = steerable_toy
    own = evaluated.result("toy-prompt", "toy")
    other = evaluated.result("toy-prompt", "toy-mirror")
    # the mirror task swaps the label words: every prediction flips, so accuracy is exactly its complement
    assert other.score.correct == own.score.n - own.score.correct
    assert own.score.accuracy > 0.8 and own.vs_zero_shot.diff > 0
    assert own.vs_zero_shot.significant and "higher than zero-shot" in own.vs_zero_shot.verdict
    assert evaluated.baselines["toy"].instruction is None        # the toy task has no instruction


def test_swap_is_a_view_of_the_same_scores(steerable_toy, evaluated):
    from analyzer.swap import prompt_swap

    model, tok, toy, mirror, prompts = steerable_toy
    swap = prompt_swap(model, tok, prompts, [toy, mirror], limit=None, model_name="tiny")
    for r in evaluated.results:
        cell = swap.cell(r.prompt, r.task)
        assert (cell.correct, cell.n, cell.outcomes) == (r.score.correct, r.score.n, r.score.outcomes)
        assert (cell.ci_low, cell.ci_high) == (r.score.ci_low, r.score.ci_high)
    for t, b in evaluated.baselines.items():
        assert swap.cell("zero-shot", t).outcomes == b.zero_shot.outcomes


def test_json_layout_and_renderers(evaluated):
    d = json.loads(evaluated.to_json())
    assert set(d) >= {"model", "results", "baselines", "split", "limit", "settings"}
    r = d["results"][0]
    assert set(r) >= {"prompt", "task", "n", "accuracy", "ci", "balanced_accuracy", "per_class", "nll",
                      "vs_zero_shot"}
    assert set(r["vs_zero_shot"]) >= {"p", "q", "a_only", "b_only", "diff", "significant", "verdict"}
    assert len(r["ci"]) == 2 and r["ci"][0] <= r["accuracy"] <= r["ci"][1]
    assert set(d["baselines"]["toy"]) == {"zero_shot", "instruction", "majority"}
    assert d["baselines"]["toy"]["majority"]["label"] in ("pos", "neg")
    table = evaluated.render("table")
    assert "toy-prompt" in table and "[zero-shot]" in table and "[majority" in table
    md = evaluated.render("markdown")
    assert md.count("| toy") >= 6
    html = evaluated.render("html")
    assert html.startswith("<!doctype html>") and "plotly" in html and "toy-mirror-prompt" in html


def test_bad_inputs_get_one_clear_line(steerable_toy):
    model, tok, toy, _, prompts = steerable_toy
    with pytest.raises(AnalyzerError, match="at least one prompt"):
        evaluate_prompts(model, tok, {}, [toy])
    with pytest.raises(AnalyzerError, match="at least one task"):
        evaluate_prompts(model, tok, prompts, [])
    with pytest.raises(AnalyzerError, match="'split' parameter of evaluate_prompts must be one of 'test', "):
        evaluate_prompts(model, tok, prompts, [toy], split="dev")
    with pytest.raises(AnalyzerError, match="'limit' parameter of evaluate_prompts must be an int >= 1 or None"):
        evaluate_prompts(model, tok, prompts, [toy], limit=0)
    with pytest.raises(AnalyzerError, match="names a baseline column"):
        evaluate_prompts(model, tok, {"zero-shot": prompts["toy-prompt"]}, [toy])
    with pytest.raises(AnalyzerError, match="Each task may appear once"):
        evaluate_prompts(model, tok, prompts, [toy, toy])
    bad = np.zeros((3, 7), np.float32)
    with pytest.raises(AnalyzerError, match="dim 7"):
        evaluate_prompts(model, tok, {"wrong": bad}, [toy])


def test_held_out_sentiment_task_is_not_a_known_task():
    from analyzer.tasks import BUILTIN_TASKS, HELD_OUT_TASKS, get_task

    t = get_task("sentiment-amazon")
    s = get_task("sentiment")
    assert "sentiment-amazon" not in BUILTIN_TASKS and "sentiment-amazon" in HELD_OUT_TASKS
    # the sentiment prompts apply as they are: the same template and label words, other texts
    assert (t.template, t.label_words) == (s.template, s.label_words)
    assert not {ex.text for ex in t.test} & {ex.text for ex in s.train}
    assert min(t.label_counts("test").values()) > 100


@pytest.mark.integration
def test_cli_evaluates_a_sample_in_and_out_of_domain(tmp_path):
    out = tmp_path / "ev.json"
    r = subprocess.run([sys.executable, "-m", "analyzer", "evaluate", str(SAMPLES / "sentiment-labels"),
                        "--task", "sentiment", "--task", "sentiment-amazon", "--limit", "8", "-f", "json", "-o",
                        str(out), "-q"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(out.read_text())
    assert d["model"] == "smollm2-135m"
    assert [(x["prompt"], x["task"], x["n"]) for x in d["results"]] == [
        ("sentiment-labels", "sentiment", 8), ("sentiment-labels", "sentiment-amazon", 8)]
    assert set(d["baselines"]) == {"sentiment", "sentiment-amazon"}
    assert d["baselines"]["sentiment"]["instruction"]["text"].startswith("Classify the sentiment")
    assert all(x["vs_zero_shot"]["q"] is not None for x in d["results"])


@pytest.mark.integration
def test_cli_bad_inputs_exit_2_with_one_line(tmp_path):
    cases = [
        ([str(SAMPLES / "sentiment-labels"), "--task", "no-such-task"], "Unknown task 'no-such-task'"),
        ([str(tmp_path / "missing")], "missing"),
        ([str(SAMPLES / "sentiment-labels"), "--limit", "0"], "positive integer"),
    ]
    for argv, needle in cases:
        r = subprocess.run([sys.executable, "-m", "analyzer", "evaluate", *argv, "-q"], capture_output=True,
                           text=True, cwd=ROOT, timeout=300)
        assert r.returncode == 2, (argv, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, (argv, r.stderr)


# ---------------------------------------------------------------------------------------------- batching
def _brute_least_work(sizes, cap, max_tokens, overhead):
    """The least padded work over every partition of ``sizes`` into batches (exhaustive, for a handful)."""
    from functools import lru_cache

    n = len(sizes)

    @lru_cache(None)
    def best(left: frozenset) -> float:
        if not left:
            return 0.0
        first = min(left)                      # the batch holding the lowest index left, all its choices
        rest = sorted(left - {first})
        out = float("inf")
        for mask in range(1 << len(rest)):
            batch = [first] + [rest[b] for b in range(len(rest)) if mask >> b & 1]
            m = max(sizes[i] for i in batch)
            if len(batch) > cap or (len(batch) > 1 and m * len(batch) > max_tokens):
                continue
            out = min(out, m * len(batch) + overhead + best(left - frozenset(batch)))
        return out

    return best(frozenset(range(n)))


@pytest.mark.parametrize("seed", range(6))
def test_batching_pads_as_little_as_any_partition_allows(seed):
    """The batches of the one scoring path: every index once, the limits kept, and the work (padded tokens +
    overhead per batch) equal to the best of all partitions, found exhaustively on 7 random lengths."""
    from analyzer.training.scoring import length_sorted_batches

    rng = np.random.default_rng(seed)
    sizes = [int(v) for v in rng.integers(3, 60, size=7)]
    cap, max_tokens, overhead = int(rng.integers(2, 5)), int(rng.integers(80, 200)), int(rng.integers(0, 60))
    batches = length_sorted_batches(sizes, cap, max_tokens, overhead=overhead)
    assert sorted(i for b in batches for i in b) == list(range(len(sizes)))
    for b in batches:
        assert len(b) <= cap and (len(b) == 1 or max(sizes[i] for i in b) * len(b) <= max_tokens)
    work = sum(max(sizes[i] for i in b) * len(b) + overhead for b in batches)
    assert work == _brute_least_work(tuple(sizes), cap, max_tokens, overhead)


def test_batching_trades_padding_against_the_batch_overhead():
    """No overhead: batches of equal lengths only (no padding at all); a large one: as few batches as the
    limits allow."""
    from analyzer.training.scoring import length_sorted_batches

    sizes = [5, 9, 5, 9, 7, 5, 30]
    exact = length_sorted_batches(sizes, 8, None, overhead=0)
    assert all(len({sizes[i] for i in b}) == 1 for b in exact)
    assert len(length_sorted_batches(sizes, 8, None, overhead=10_000)) == 1
    # three batches of at most 3; of those, the one padding least keeps the 30 alone
    assert [sorted(sizes[i] for i in b) for b in length_sorted_batches(sizes, 3, None, overhead=10_000)] == [
        [30], [7, 9, 9], [5, 5, 5]]

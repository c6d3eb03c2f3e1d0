"""Prompt similarity and transfer (analyzer.decode.similarity / compare): the measures against hand computations,
the activation overlap's hooks, the correlation with transfer on planted and on unrelated structure, and the
compare command on a tiny llama."""

import json

import numpy as np
import pytest

from analyzer.exceptions import AnalyzerError

torch = pytest.importorskip("torch")

from test_decode import tiny  # noqa: E402,F401  (the tiny llama fixture)
from test_training import WORDS, task_csv  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_similarities_match_a_hand_computation():
    from analyzer.decode.similarity import prompt_similarity

    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[3.0, 0.0]])
    s = prompt_similarity([a, b])
    # mean vectors (0.5, 1) and (3, 0): cosine 0.5 / |(0.5, 1)|
    assert np.isclose(s["mean_vector"][0, 1], 0.5 / np.hypot(0.5, 1.0))
    # token pairs: cos((1,0),(3,0)) = 1, cos((0,2),(3,0)) = 0 -> mean 0.5; a with itself: its one distinct pair, 0
    assert np.isclose(s["token_pairs"][0, 1], 0.5) and np.isclose(s["token_pairs"][0, 0], 0.0)
    # max inner product: a's rows -> max over b: 3, 0 (mean 1.5); b's row -> max over a: 3; average 2.25
    assert np.isclose(s["max_inner"][0, 1], 2.25) and np.isclose(s["max_inner"][1, 0], 2.25)
    for m in s.values():
        np.testing.assert_allclose(m, m.T)
    with pytest.raises(ValueError, match="different widths"):
        prompt_similarity([a, np.ones((1, 3))])


def test_activation_overlap_runs_the_model_and_leaves_no_hook(tiny):
    from analyzer.decode.similarity import activation_overlap, activation_states

    _, model, tok, _ = tiny
    rng = np.random.default_rng(0)
    p = rng.normal(size=(4, model.config.hidden_size)).astype(np.float32)
    q = rng.normal(size=(4, model.config.hidden_size)).astype(np.float32)
    st = activation_states(model, p)
    n_neurons = model.config.num_hidden_layers * model.config.intermediate_size
    assert st.dtype == bool and st.shape == (n_neurons,) and 0 < st.sum() < n_neurons
    assert all(not m._forward_pre_hooks for m in model.modules())
    on = activation_overlap(model, [p, q, p])
    assert np.isclose(on[0, 2], 1.0) and np.isclose(on[0, 0], 1.0) and on[0, 1] < 1.0
    np.testing.assert_allclose(on, on.T)


def _structure(p: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(p, 3))
    sim = x @ x.T
    return sim, rng


def test_similarity_predicting_transfer_is_found_and_unrelated_structure_is_not():
    from analyzer.decode.similarity import similarity_vs_transfer

    sim, rng = _structure(9, 1)
    planted = 1 / (1 + np.exp(-sim))                      # transfer a monotone function of the similarity
    unrelated, _ = _structure(9, 2)
    rows = similarity_vs_transfer({"planted": sim, "unrelated": unrelated}, planted, n_perm=500, n_boot=300, seed=0)
    got = {r["similarity"]: r for r in rows}
    assert np.isclose(got["planted"]["rho"], 1.0) and got["planted"]["significant"]
    assert got["planted"]["p"] <= 1 / 501 + 1e-12 and got["planted"]["ci"][0] > 0.9
    assert not got["unrelated"]["significant"] and got["unrelated"]["p"] > 0.05
    assert got["planted"]["n_pairs"] == 9 * 8
    with pytest.raises(AnalyzerError, match="at least 4 prompts"):
        similarity_vs_transfer({"s": sim[:3, :3]}, planted[:3, :3])


def test_compare_scores_every_prompt_on_every_task(tiny, task_csv, tmp_path, capsys):
    from analyzer.cli import main
    from analyzer.decode import compare_prompts
    from analyzer.tasks import get_task

    path, model, tok, _ = tiny
    task = get_task(task_csv, label_words=WORDS)
    rng = np.random.default_rng(1)
    prompts = {f"p{i}": rng.normal(size=(3, model.config.hidden_size)).astype(np.float32) for i in range(4)}
    res = compare_prompts(model, tok, prompts, tasks_of=[task] * 4, limit=12, n_perm=99, n_boot=50)
    assert res.accuracy.shape == (4, 1) and res.relative.shape == (4, 4)
    np.testing.assert_allclose(np.diag(res.relative), 1.0)
    assert np.isclose(res.relative[0, 1], res.accuracy[0, 0] / res.accuracy[1, 0])
    assert {r["similarity"] for r in res.correlations} == {"mean_vector", "token_pairs", "max_inner",
                                                           "activation_overlap"}
    json.dumps(res.to_dict(), allow_nan=False)
    assert "Prompt similarity and transfer" in res.render("html")
    # the CLI, similarities only, on tensor files
    files = []
    for name, v in list(prompts.items())[:2]:
        np.save(tmp_path / f"{name}.npy", v)
        files.append(str(tmp_path / f"{name}.npy"))
    assert main(["compare", *files, "--model", path, "--no-transfer", "-f", "json", "-q"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["similarities"]) == {"mean_vector", "token_pairs", "max_inner", "activation_overlap"}
    assert d["transfer"] is None and [p["name"] for p in d["prompts"]] == ["p0", "p1"]
    assert main(["compare", *files, "--model", path, "-q"]) == 2           # transfer needs the prompts' tasks
    err = capsys.readouterr().err
    assert "record none" in err and len(err.strip().splitlines()) == 1


def test_heat_map_labels_of_long_similar_names_stay_distinct():
    """Axis labels that read the same merge into one row in plotly: the three task prompts of one multitask
    adapter must keep nine rows, not seven."""
    from analyzer.plotting import plot_prompt_similarity, plot_transfer

    names = ["sentiment-labels", "three-task-multitask/task0", "three-task-multitask/task1"]
    sims = {"mean_vector": np.eye(3), "max_inner": np.eye(3)}
    fig = plot_prompt_similarity(names, sims)
    assert all(len(set(t.y)) == 3 for t in fig.data)
    fig = plot_transfer(names, np.ones((3, 3)), ["sentiment", "sentiment", "spam"])
    assert len(set(fig.data[0].x)) == 3 and len(set(fig.data[0].y)) == 3


def test_heat_map_labels_are_whole_names_and_the_rows_leave_room_for_them():
    """No name is cut ("transfer-study/questi…" hid which prompt a row is): a line per ``/`` part; the gap
    between panel rows grows with the longest part, so slanted labels stay clear of the next row's title."""
    from analyzer.plotting import plot_prompt_similarity
    from analyzer.plotting._similarity import axis_labels, label_depth

    long = ["transfer-study/question-type-random", "spam-labels", "sentiment-labels", "question-type-text"]
    assert axis_labels(long)[0] == "transfer-study/<br>question-type-random"
    sims = {k: np.eye(4) for k in ("mean_vector", "token_pairs", "max_inner", "activation_overlap")}
    short, wide = plot_prompt_similarity(["a", "b", "c", "d"], sims, height=600), plot_prompt_similarity(long, sims,
                                                                                                         height=600)
    assert list(wide.data[0].x) == axis_labels(long)
    gap = lambda f: f.layout.yaxis.domain[0] - f.layout.yaxis3.domain[1]            # noqa: E731
    assert gap(wide) > gap(short)
    # in px the gap holds the slanted labels plus a title line
    assert gap(wide) * (600 - 110) >= label_depth(axis_labels(long)) + 30


def test_relative_transfer_and_the_dashboards_reading_of_a_swap():
    from analyzer.decode.similarity import relative_transfer
    from analyzer.swap import SwapCell, SwapPrompt, SwapResult, TaskRow
    from analyzer.ui._compare import transfer_reading

    # prompts a, b (task x) and c (task y); accuracy "prompt task" over tasks (x, y)
    acc = np.array([[0.8, 0.3], [0.4, 0.5], [0.2, 0.6]])
    rel = relative_transfer(acc, ["x", "y"], ["x", "x", "y"])
    want = np.array([[1.0, 0.8 / 0.4, 0.3 / 0.6], [0.4 / 0.8, 1.0, 0.5 / 0.6], [0.2 / 0.8, 0.2 / 0.4, 1.0]])
    np.testing.assert_allclose(rel, want)
    assert np.isnan(relative_transfer(np.array([[0.0, 0.5], [0.5, 0.5]]), ["x", "y"], ["x", "y"])[1, 0])
    with pytest.raises(AnalyzerError, match="not scored"):
        relative_transfer(acc, ["x", "y"], ["x", "x", "z"])

    # the same numbers through a swap result, as the Compare section reads them (column 0 of a swap is zero-shot)
    names, own = ["a", "b", "c", "d"], ["x", "x", "y", "y"]
    acc4 = np.array([[0.8, 0.3], [0.4, 0.5], [0.2, 0.6], [0.1, 0.9]])

    def cell(prompt, task, a):
        return SwapCell(prompt=prompt, task=task, correct=int(100 * a), n=100, accuracy=a, ci_low=max(0.0, a - 0.1),
                        ci_high=min(1.0, a + 0.1), right=dict(zip(names, own)).get(prompt) == task, outcomes="")

    rows = tuple(TaskRow(task=t, cells=(cell("zero-shot", t, 0.5),
                                        *(cell(n, t, acc4[i, k]) for i, n in enumerate(names))),
                         right=tuple(n for n, o in zip(names, own) if o == t), vs_wrong=None, vs_zero_shot=None)
                 for k, t in enumerate(["x", "y"]))
    swap = SwapResult(model="tiny", prompts=tuple(SwapPrompt(name=n, task=o, hash=n, source=n, num_virtual_tokens=2)
                                                   for n, o in zip(names, own)), rows=rows)
    rng = np.random.default_rng(0)
    vectors = {n: rng.normal(size=(2, 3)) for n in names}
    t = transfer_reading(swap, vectors)
    assert t.names == tuple(names) and t.own_tasks == tuple(own)
    np.testing.assert_allclose(t.relative, relative_transfer(acc4, ["x", "y"], own))
    assert {r["similarity"] for r in t.correlations} == {"mean_vector", "token_pairs", "max_inner"}
    assert all(0 < r["p"] <= 1 and r["n_pairs"] == 12 for r in t.correlations)
    assert transfer_reading(swap, vectors) is t                     # computed once per swap and prompts

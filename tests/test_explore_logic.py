"""The streamlit-free logic of Explore's linked views (analyzer.ui._explore): names, isolation by click and by
table row, the neighbour table rows, the side list of distances, search results and the nearest virtual tokens."""

from __future__ import annotations

import numpy as np
import pytest

from analyzer.types import SoftPrompt, Vocabulary
from analyzer.ui import _explore


def _vocab():
    emb = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [-1, 0, 0]], dtype=np.float32)
    tokens = ("␣good", "␣bad", "␣movie", "Good", "␣evil")
    return Vocabulary(name="toy", source="memory", embeddings=emb, tokens=tokens, raw_tokens=tokens,
                      excluded=np.zeros(5, dtype=bool), tied=True, key="toy-explore")


def test_display_names_are_the_sidebar_labels():
    assert _explore.display_names(["trained/run", "multi"], [1, 2], [["run"], ["a", "b"]]) == \
        ["trained/run", "multi/a", "multi/b"]


def test_click_isolates_and_a_second_click_leaves():
    names = ["p", "q"]
    on_v = [{"customdata": [1, 3], "curve_number": 4}]
    assert _explore.after_click(None, on_v, names) == ("q", 3)
    assert _explore.after_click(("q", 3), on_v, names) is None                     # the same token again
    on_neighbour = [{"customdata": [0, 2, 4]}]                                     # a neighbour: its virtual token
    assert _explore.after_click(("q", 3), on_neighbour, names) == ("p", 2)
    assert _explore.after_click(("q", 3), [], names) is None                       # a click on empty space
    assert _explore.after_click(("q", 3), [{"x": 1.0}], names) == ("q", 3)         # no customdata: unchanged
    assert _explore.after_click(None, [{"customdata": [7, 0]}], names) is None     # a prompt no longer drawn


def test_row_pick_isolates_and_an_emptied_pick_leaves_only_its_own_prompt():
    assert _explore.after_row_pick(None, "p", [4]) == ("p", 4)
    assert _explore.after_row_pick(("p", 4), "p", []) is None
    assert _explore.after_row_pick(("q", 1), "p", []) == ("q", 1)


def test_isolation_index_follows_the_selection():
    assert _explore.isolation_index(["p", "q"], ("q", 2), [5, 3]) == (1, 2)
    assert _explore.isolation_index(["p"], ("q", 2), [5]) is None                  # deselected prompt
    assert _explore.isolation_index(["p", "q"], ("q", 3), [5, 3]) is None          # fewer positions now
    assert _explore.isolation_index(["p"], None, [5]) is None


def test_neighbour_rows_and_distance_rows():
    neighbours = [{"token": "␣good", "score": 0.912}, {"token": "x", "score": 0.5}]
    rows = _explore.neighbour_rows([{"index": 0, "norm_ratio": 1.234, "neighbors": neighbours}])
    assert rows == [{"v": "v0", "norm ×median": 1.23, "#1": "␣good  0.91", "#2": "x  0.50"}]

    class P:
        neighbor_ids = np.array([[0, 3]])
        neighbor_scores = np.array([[0.2, 0.1]], dtype=np.float32)
        neighbor_cosines = np.array([[0.9, 0.7]], dtype=np.float32)

    out = _explore.distance_rows(P, _vocab(), 0, "csls")
    assert out == [{"#": 1, "token": "␣good", "id": 0, "cosine": 0.9, "csls": 0.2},
                   {"#": 2, "token": "Good", "id": 3, "cosine": 0.7, "csls": 0.1}]
    assert "csls" not in _explore.distance_rows(P, _vocab(), 0, "cosine")[0]


def test_search_rows_and_nearest_virtual_tokens():
    vocab = _vocab()
    p = SoftPrompt(name="p", vectors=np.array([[2, 0.1, 0], [0, 0, 3]], dtype=np.float32), source="mem",
                   kind="TENSOR")
    q = SoftPrompt(name="q", vectors=np.array([[0, 1, 0]], dtype=np.float32), source="mem", kind="TENSOR")
    rows = _explore.search_rows(vocab, [0, 1], [("p", p), ("q", q)])
    assert [(r["token"], r["id"], r["nearest virtual token"]) for r in rows] == \
        [("␣good", 0, "v0 · p"), ("␣bad", 1, "v0 · q")]
    assert rows[1]["cosine"] == 1.0
    near = _explore.nearest_virtual(vocab, [("p", p), ("q", q)], 2, neighbor_ids={"p": np.array([[0, 3], [2, 1]])})
    assert [(r["prompt"], r["v"], r["rank"]) for r in near][:1] == [("p", "v1", "#1")]
    assert [r["cosine"] for r in near] == sorted((r["cosine"] for r in near), reverse=True)
    assert _explore.search_rows(vocab, [], [("p", p)]) == []


def test_inspector_labels_wrap_between_words():
    """The inspector's tables label a virtual token ``vN · name`` and size their rows by greedy wrapping at spaces
    (the grid's rule), so a prompt name is never cut inside a word unless one word is wider than the column."""
    assert _explore.virtual_label("transfer-study/question-type-random", "v3", 23) == \
        "v3 · transfer-study/ question-type-random"
    assert _explore.virtual_label("a/b", "v3", 23) == "v3 · a/b"             # fits: the name as it is
    assert _explore.wrapped_lines("v14 · sentiment-random", 23) == 1
    assert _explore.wrapped_lines("v14 · sentiment-random", 19) == 2            # "v14 ·" | "sentiment-random"
    assert _explore.wrapped_lines("v3 · transfer-study/ question-type-random", 23) == 2
    assert _explore.wrapped_lines("abcdefghij", 4) == 3                          # a word wider than the column
    assert _explore.wrapped_lines("ab abcdefghij", 4) == 4
    assert _explore.wrapped_lines("", 5) == 1


def test_report_file_names_keep_whole_prompt_names():
    five = ["question-type-text", "sentiment-labels", "sentiment-random", "spam-labels", "trained/h11-t3"]
    assert _explore.report_basename(five) == \
        "question-type-text_sentiment-labels_sentiment-random_spam-labels_trained-h11-t3"
    assert _explore.report_basename(five, limit=48) == "question-type-text_sentiment-labels_and-3-more"
    assert _explore.report_basename(["trained/x"]) == "trained-x" and _explore.report_basename([]) == "report"


def test_prompt_similarity_matrices():
    from analyzer.ui._compare import prompt_similarity

    a = np.array([[1, 0], [0, 1]], dtype=float)
    b = np.array([[1, 0], [1, 0]], dtype=float)
    c = -a
    sims = prompt_similarity([a, b, c])
    np.testing.assert_allclose(np.diag(sims["mean_vector"]), 1.0)
    assert sims["mean_vector"][0, 2] == pytest.approx(-1.0) and sims["mean_vector"][0, 1] == pytest.approx(2 ** -0.5)
    assert sims["token_pairs"][0, 0] == pytest.approx(0.0) and sims["token_pairs"][1, 1] == pytest.approx(1.0)
    assert sims["token_pairs"][0, 1] == pytest.approx(0.5) and sims["token_pairs"][0, 2] == pytest.approx(-0.5)
    np.testing.assert_allclose(sims["token_pairs"], sims["token_pairs"].T)
    with pytest.raises(ValueError, match="different widths"):
        prompt_similarity([a, np.ones((1, 3))])


def test_glossary_explains_every_measure_of_the_table_of_tests():
    from analyzer.ui._glossary import glossary_lines, measure_help

    for m in ("tightness", "k-occurrence skew", "mutual-neighbour share", "task-related share"):
        assert measure_help(m)
    lines = glossary_lines(["tightness (model space)", "tightness (text space)", "k-occurrence skew", "other"])
    assert [ln.split("**")[1] for ln in lines] == ["tightness", "k-occurrence skew", "null", "q", "verdict"]

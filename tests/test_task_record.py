"""A user's own task end to end (issue 20.6): a run records its task file by content (training_meta.json) and every
reader finds it again -- at its path, beside the run -- or says in one line what to pass; a file named like a
built-in task is read as the file.  Tiny synthetic model; runs trained in process."""

import json
import shutil
import warnings

import pytest

from analyzer.exceptions import TaskError, TaskWarning
from test_training import WORDS

POS = ["the movie was great", "the acting was wonderful", "great film and wonderful acting"]
NEG = ["the film was terrible", "boring, a waste of time", "terrible and boring film"]


def write_jsonl(path, labels=("pos", "neg"), n=48):
    with open(path, "w") as f:
        for i in range(n):
            src, lab = (POS, labels[0]) if i % 2 else (NEG, labels[1])
            f.write(json.dumps({"sentence": f"{src[i % 3]} {' '.join(['again'] * (i % 5))} {i}", "y": lab}) + "\n")
    return path


def train_on(tiny, tiny_llama_dir, task_file, out, words):
    from analyzer.training import TrainConfig, train

    model, tok = tiny
    cfg = TrainConfig(model=str(tiny_llama_dir), task=str(task_file), out=str(out), label_words=words,
                      text_column="sentence", label_column="y", num_virtual_tokens=3, steps=2, batch_size=8,
                      eval_every=2, checkpoint_every=2, snapshot_every=2, eval_examples=8, seed=1)
    train(cfg, model=model, tokenizer=tok)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from analyzer.models import load_frozen_model

    return load_frozen_model(str(tiny_llama_dir))


@pytest.fixture(scope="module")
def file_run(tiny, tiny_llama_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("filetask")
    (base / "data").mkdir()
    data = write_jsonl(base / "data" / "mine.jsonl")
    return train_on(tiny, tiny_llama_dir, data, base / "run", WORDS), data


def test_run_records_its_task_file_by_content(file_run):
    import hashlib

    run, data = file_run
    rec = json.loads((run / "training_meta.json").read_text())["task"]
    assert rec["name"] == "mine" and rec["kind"] == "file"
    assert rec["labels"] == ["neg", "pos"] and rec["label_words"] == ["was", "the"]
    f = rec["file"]
    assert f["path"] == str(data) and f["resolved"] == str(data.resolve())
    assert f["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest() and f["size"] == data.stat().st_size
    assert f["text_column"] == "sentence" and f["label_column"] == "y"
    for key in ("template", "instruction", "source", "sizes"):     # the keys it had keep their place
        assert key in rec


def test_builtin_task_is_recorded_as_builtin():
    from analyzer.task_record import task_record
    from analyzer.tasks import get_task

    rec = task_record(get_task("spam"))
    assert rec["kind"] == "builtin" and rec["name"] == "spam" and "file" not in rec


def test_readers_find_the_task_file_at_its_path_then_beside_the_run(file_run, tiny_llama_dir, tmp_path, capsys):
    from analyzer import load_prompt
    from analyzer.cli import main
    from analyzer.task_record import resolve_task

    run, data = file_run
    task = resolve_task(None, load_prompt(run))
    assert task.name == "mine" and task.verbalizer == WORDS and task.file["sha256"]
    # the command `train` suggests, and a reader that runs the model
    assert main(["analyze", str(run), "--model", str(tiny_llama_dir), "-k", "3", "--n-null", "20",
                 "--no-text-space", "--format", "json", "--quiet"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["prompts"][0]["task"] == "mine" and "skipped" not in rep["prompts"][0]["relatedness"]
    assert main(["evaluate", str(run), "--model", str(tiny_llama_dir), "--limit", "4", "--format", "json",
                 "--quiet"]) == 0
    assert [r["task"] for r in json.loads(capsys.readouterr().out)["results"]] == ["mine"]
    # moved next to the run (into a copy of the run folder, so the module's run stays as it was)
    moved = tmp_path / "moved"
    shutil.copytree(run, moved / "run")
    shutil.copy(data, moved / "mine.jsonl")
    hidden = data.with_suffix(".away")
    data.rename(hidden)
    try:
        t2 = resolve_task(None, load_prompt(moved / "run"))
        assert t2.source == str((moved / "mine.jsonl").resolve()) and t2.verbalizer == WORDS
        (moved / "mine.jsonl").rename(moved / "run" / "mine.jsonl")           # inside the run folder
        assert resolve_task(None, load_prompt(moved / "run")).verbalizer == WORDS
        # --task FILE with the recorded content keeps the recorded columns and label words
        t3 = resolve_task(str(moved / "run" / "mine.jsonl"), load_prompt(moved / "run"))
        assert t3.verbalizer == WORDS
    finally:
        hidden.rename(data)


def test_changed_or_missing_task_file_is_one_line(file_run, tiny_llama_dir, tmp_path, capsys):
    from analyzer import load_prompt
    from analyzer.cli import main
    from analyzer.task_record import resolve_task

    run, data = file_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    meta = json.loads((copy / "training_meta.json").read_text())
    changed = write_jsonl(tmp_path / "changed.jsonl", n=30)
    meta["task"]["file"].update(path=str(changed), resolved=str(changed.resolve()))
    (copy / "training_meta.json").write_text(json.dumps(meta))
    with pytest.raises(TaskError) as e:
        resolve_task(None, load_prompt(copy))
    msg = str(e.value)
    assert "\n" not in msg and str(changed) in msg and meta["task"]["file"]["sha256"][:12] in msg
    assert "changed since training" in msg and "--task FILE --label-words neg=was,pos=the" in msg
    assert "a file named changed.jsonl is read with the recorded columns 'sentence' and 'y'" in msg
    # as the line says: the file under its name again, with the words, reads with the recorded columns
    t = resolve_task(str(changed), load_prompt(copy), label_words={"neg": "was", "pos": "the"})
    assert t.verbalizer == WORDS and t.file["text_column"] == "sentence"
    assert main(["analyze", str(copy), "--task", str(changed), "--label-words", "neg=was,pos=the", "--model",
                 str(tiny_llama_dir), "-k", "3", "--n-null", "20", "--no-text-space", "--format", "json",
                 "--quiet"]) == 0
    assert "skipped" not in json.loads(capsys.readouterr().out)["prompts"][0]["relatedness"]
    changed.unlink()
    assert main(["evaluate", str(copy), "--model", str(tiny_llama_dir), "--limit", "4", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no file of that name" in err and "--task FILE" in err


def test_a_task_file_named_like_a_builtin_task_is_the_file(tiny, tiny_llama_dir, tmp_path, capsys):
    from analyzer import load_prompt
    from analyzer.cli import main
    from analyzer.task_record import is_recorded_task, resolve_task
    from analyzer.tasks import get_task

    data = write_jsonl(tmp_path / "sentiment.jsonl", labels=("politics", "sports"))
    run = train_on(tiny, tiny_llama_dir, data, tmp_path / "run", {"politics": "the", "sports": "was"})
    p = load_prompt(run)
    t = resolve_task(None, p)
    assert t.name == "sentiment" and t.labels == ("politics", "sports") and t.file
    assert is_recorded_task(p, t) and not is_recorded_task(p, get_task("sentiment"))
    # --task sentiment is used as asked, with one warning line
    with pytest.warns(TaskWarning, match=r"trained on the task file .*sentiment\.jsonl.*not on the built-in task"):
        assert resolve_task("sentiment", p).labels == ("fresh", "rotten")
    assert main(["evaluate", str(run), "--model", str(tiny_llama_dir), "--limit", "4", "--format", "json",
                 "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["task"] for r in out["results"]} == {"sentiment"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskWarning)       # no warning when the run's own file is used
        resolve_task(None, p)
    # the CLI prints the warning as one line and goes on
    assert main(["analyze", str(run), "--task", "sentiment", "--model", str(tiny_llama_dir), "-k", "3", "--n-null",
                 "20", "--no-text-space", "--format", "json", "--quiet"]) == 0
    cap = capsys.readouterr()
    warned = [line for line in cap.err.splitlines() if "built-in task" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ") and "sentiment.jsonl" in warned[0]
    assert json.loads(cap.out)["prompts"][0]["task"] == "sentiment"


def test_dashboard_run_info_names_the_task_file(file_run):
    from analyzer.ui._sources import run_info

    run, data = file_run
    assert run_info(run).task == str(data)
    # the task box's value (that path) reads the file with the run's recorded columns and label words
    from analyzer import load_prompt
    from analyzer.ui import resources

    assert resources.task_for(run_info(run).task, load_prompt(run)).verbalizer == WORDS


def test_run_recorder_records_a_task_file_by_content(tmp_path):
    import torch

    from analyzer.tasks import get_task
    from analyzer.training import RunRecorder

    data = write_jsonl(tmp_path / "own.jsonl")
    task = get_task(str(data), text_column="sentence", label_column="y", label_words=WORDS)
    with RunRecorder(torch.nn.Parameter(torch.ones(2, 8)), tmp_path / "loop", every=1, model="m", task=task):
        pass
    rec = json.loads((tmp_path / "loop" / "training_meta.json").read_text())["task"]
    assert rec["kind"] == "file" and rec["file"]["sha256"] == task.file["sha256"] and rec["labels"] == ["neg", "pos"]
    with RunRecorder(torch.nn.Parameter(torch.ones(2, 8)), tmp_path / "named", every=1, model="m", task="spam"):
        pass
    assert json.loads((tmp_path / "named" / "training_meta.json").read_text())["task"] == {"name": "spam"}


def test_a_run_from_before_the_content_record_reads_its_file_by_path(file_run, tmp_path):
    from analyzer import load_prompt
    from analyzer.task_record import resolve_task

    run, data = file_run
    copy = tmp_path / "old-run"
    shutil.copytree(run, copy)
    meta = json.loads((copy / "training_meta.json").read_text())
    for key in ("kind", "file"):
        meta["task"].pop(key)
    (copy / "training_meta.json").write_text(json.dumps(meta))
    t = resolve_task(None, load_prompt(copy))          # the recorded path, the config's columns and the words
    assert t.name == "mine" and t.verbalizer == WORDS and t.source == str(data.resolve())


def test_a_builtin_run_is_read_with_the_words_it_was_trained_with(file_run, tmp_path):
    from analyzer import load_prompt
    from analyzer.task_record import resolve_task, task_record
    from analyzer.tasks import get_task

    run, _ = file_run
    copy = tmp_path / "spam-run"
    shutil.copytree(run, copy)
    meta = json.loads((copy / "training_meta.json").read_text())
    meta["task"] = task_record(get_task("spam", label_words={"spam": "junk"}, template="SMS: {text}\nIs it:"))
    (copy / "training_meta.json").write_text(json.dumps(meta))
    t = resolve_task(None, load_prompt(copy))
    assert t.name == "spam" and t.verbalizer == {"ham": "ham", "spam": "junk"} and t.template.startswith("SMS:")
    meta["task"] = task_record(get_task("spam"))          # defaults: the built-in task itself
    (copy / "training_meta.json").write_text(json.dumps(meta))
    assert resolve_task(None, load_prompt(copy)) is get_task("spam")

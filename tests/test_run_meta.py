"""RunMeta (analyzer.training.run_meta), the one writer and reader of training_meta.json: each writer (single-task,
multitask, the recorder of runs trained elsewhere) writes the key layout the code before it wrote; a record keeps
keys it does not know; a missing or unreadable record reads as empty; the task name and the end-of-run summary;
the CLI's TrainConfig from its field-to-flag table; no import cycle inside the training package."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from analyzer.training.run_meta import LAYOUTS, META, RunMeta

ROOT = Path(__file__).resolve().parent.parent
LAYOUT_FILE = Path(__file__).parent / "data" / "training_meta_layouts.json"


def _layout(v):
    """Keys in order, the first item of a list of dicts, None for any other value (as the layout file holds)."""
    if isinstance(v, dict):
        return {k: _layout(x) for k, x in v.items()}
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return [_layout(v[0])]
    return None


@pytest.fixture(scope="module")
def runs(tiny_llama_dir, tmp_path_factory):
    """The runs of the layout file, trained and recorded on the tiny llama: {case: run folder}."""
    import torch

    from analyzer.training import TrainConfig, train
    from analyzer.training.recorder import RunRecorder
    from test_multitask import _task_csv
    from test_training import WORDS, make_task_csv

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("run-meta")
    csv = str(make_task_csv(root / "t.csv"))
    base = dict(model=str(tiny_llama_dir), task=csv, label_words=WORDS, num_virtual_tokens=4, steps=6,
                batch_size=8, lr=0.05, eval_every=3, checkpoint_every=3, snapshot_every=3, seed=3)
    multi = dict(base, label_words=None, prompt_tuning_init="random",
                 task=f"{_task_csv(root / 'toy.csv', ('the', 'was'))},{_task_csv(root / 'mirror.csv', ('was', 'the'))}")
    runs = {}
    for case, kw in (("single", base), ("single_keep_best", dict(base, keep_best=True)),
                     ("multitask", multi), ("multitask_keep_best", dict(multi, keep_best=True))):
        runs[case] = root / case
        train(TrainConfig(out=str(runs[case]), **kw))
    prompt = torch.nn.Parameter(torch.randn(4, 32))
    rec = RunRecorder(prompt, root / "recorded", total_steps=4, model="m", task="tiny")
    for step in range(1, 5):
        rec.step(step, loss=1.0, eval_accuracy=0.5 if step == 4 else None)
    rec.close()
    rec = RunRecorder(prompt, root / "recorded_bare")
    rec.step(1, loss=1.0)
    rec.close()
    runs.update(recorded=root / "recorded", recorded_bare=root / "recorded_bare")
    torch.set_num_threads(threads)
    return runs


@pytest.mark.parametrize("case", ["single", "single_keep_best", "multitask", "multitask_keep_best", "recorded",
                                  "recorded_bare"])
def test_every_writer_writes_the_layout_the_code_before_it_wrote(runs, case):
    text = (runs[case] / META).read_text()
    meta = json.loads(text)
    assert json.dumps(_layout(meta)) == json.dumps(json.loads(LAYOUT_FILE.read_text())[case])   # keys and order
    # reading and writing the record again changes no byte
    rm = RunMeta.load(runs[case])
    assert rm.kind == case.split("_")[0] and list(meta)[:len(LAYOUTS[rm.kind])] == list(LAYOUTS[rm.kind])
    rm.save(runs[case])
    assert (runs[case] / META).read_text() == text


def test_a_record_keeps_keys_it_does_not_know_and_adds_divergence_at_the_end(tmp_path):
    from analyzer.training.divergence import record_divergence

    written = {"model": "m", "task": {"name": "t"}, "steps_done": 3, "by_another_tool": {"x": [1, 2]},
               "note": "kept"}
    (tmp_path / META).write_text(json.dumps(written))
    meta = RunMeta.load(tmp_path)
    assert meta.extra == {"by_another_tool": {"x": [1, 2]}, "note": "kept"} and meta.task_name() == "t"
    record_divergence(tmp_path, 4, "the loss became nan", 0.3)
    again = json.loads((tmp_path / META).read_text())
    assert list(again)[-3:] == ["diverged", "by_another_tool", "note"]
    assert again["diverged"] == {"step": 4, "reason": "the loss became nan", "lr": 0.3}
    assert {k: again[k] for k in written} == written
    record_divergence(tmp_path / "none", 4, "x", 0.3)          # no record yet: nothing is written
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]", "{}"])
def test_a_missing_or_unreadable_record_reads_as_empty(tmp_path, content):
    from analyzer.training.config import read_training_meta

    if content is not None:
        (tmp_path / META).write_text(content)
    meta = RunMeta.load(tmp_path)
    assert meta.is_empty() and meta.task_name() is None and meta.final_accuracy is None and not meta.multitask
    assert read_training_meta(tmp_path) == {}
    assert RunMeta.load(tmp_path / "no-such-folder").is_empty()


def test_the_task_name_of_single_multitask_and_older_records():
    from analyzer.training.config import meta_task_name

    assert RunMeta(task={"name": "spam"}).task_name() == "spam"
    assert RunMeta(task="sentiment").task_name() == "sentiment"                   # an older record: the name
    assert RunMeta(config={"task": "question-type"}).task_name() == "question-type"   # the config's
    many = RunMeta(multitask=True, tasks=[{"id": 0, "name": "a"}, {"id": 1, "name": "b"}], task=None)
    assert [many.task_name(i) for i in (None, 0, 1, 2)] == [None, "a", "b", None]
    assert many.task_record(1) == {"id": 1, "name": "b"} and many.task_names == ["a", "b"]
    assert meta_task_name({"multitask": True, "tasks": [{"name": "a"}]}, 0) == "a"     # the dict reader report uses
    assert meta_task_name({"task": {"name": "x"}}) == "x"


def _result(**kw):
    base = dict(out="runs/r", steps=6, start_step=0, total_steps=6, loss=0.5, last_loss=0.4, eval_accuracy=0.75,
                stopped=False)
    return SimpleNamespace(**{**base, **kw})


def test_the_summary_of_a_run():
    assert RunMeta().summary(_result()) == (
        "trained 6 steps, final loss 0.4000 (step 6; mean of the last 6 steps 0.5000), validation accuracy 0.750; "
        "PEFT adapter in runs/r\ninspect it: softprompt-analyzer analyze runs/r")
    kept = RunMeta(final_eval={"step": 3, "accuracy": 0.875, "kept": "best"})
    assert kept.summary(_result(stopped=True, steps=4, start_step=2)) == (
        "trained 4 steps (stopped early), final loss 0.4000 (step 4; mean of the last 2 steps 0.5000), validation "
        "accuracy 0.750; the adapter holds the best evaluation's prompt (step 3, 0.875); PEFT adapter in runs/r\n"
        "inspect it: softprompt-analyzer analyze runs/r")
    many = RunMeta(multitask=True, tasks=[{"name": "a"}, {"name": "b"}], evals_by_task=[{"step": 6, "a": 0.5}])
    assert many.summary(_result()) == (
        "trained a multitask prompt for 2 tasks, 6 steps, final loss 0.4000 (step 6; mean of the last 6 steps "
        "0.5000), validation accuracy task 0 a 0.500, task 1 b; PEFT MULTITASK_PROMPT_TUNING adapter in runs/r\n"
        "inspect it: softprompt-analyzer analyze runs/r (one prompt per task)")
    assert RunMeta().summary(_result(start_step=6)) == (
        "nothing to train: the run in runs/r already reached step 6 (--steps 6); its PEFT adapter is in place. Pass "
        "a larger --steps with --resume to train on.")


def test_the_cli_builds_its_train_config_from_the_field_to_flag_table():
    from dataclasses import fields

    from analyzer._cli_args import TRAIN_DESTS, build_parser
    from analyzer.cli import _train_config
    from analyzer.training import TrainConfig
    from analyzer.training.config import FLAGS

    assert set(TRAIN_DESTS) == set(FLAGS) <= {f.name for f in fields(TrainConfig)}
    args = build_parser().parse_args(
        ["train", "--task", "a.csv", "--out", "o", "--virtual-tokens", "7", "--init", "text", "--init-text", "hi",
         "--steps", "9", "--batch-size", "2", "--lr", "0.1", "--seed", "4", "--warmup-steps", "1", "--eval-every", "3",
         "--eval-examples", "5", "--checkpoint-every", "2", "--snapshot-every", "0", "--max-length", "32",
         "--device", "cpu", "--dtype", "float32", "--text-column", "x", "--label-column", "y",
         "--label-words", "p=good,n=bad", "--template", "T: {text}", "--instruction", "do", "--keep-best",
         "--overwrite"])
    cfg = _train_config(args)
    assert cfg == TrainConfig(
        task="a.csv", out="o", num_virtual_tokens=7, prompt_tuning_init="text", prompt_tuning_init_text="hi", steps=9,
        batch_size=2, lr=0.1, seed=4, warmup_steps=1, eval_every=3, eval_examples=5, checkpoint_every=2,
        snapshot_every=0, max_length=32, device="cpu", dtype="float32", text_column="x", label_column="y",
        label_words={"p": "good", "n": "bad"}, template="T: {text}", instruction="do", keep_best=True,
        overwrite=True)


def test_no_module_of_the_training_package_imports_another_back():
    pkg = ROOT / "analyzer" / "training"
    names = {p.stem for p in pkg.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in pkg.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):      # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                mod = (node.module or "").split(".")[0]
                deps |= {mod} if mod in names else {a.name for a in node.names if not node.module}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("analyzer.training."):
                deps.add(node.module.split(".")[2])
        graph[path.stem] = (deps & names) - {path.stem}

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(m == goal or (m not in seen and reaches(m, goal, seen | {m})) for m in graph[start])

    back = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if a != "__init__" and reaches(b, a, {b}))
    assert not back, f"import cycles in analyzer/training: {back}"

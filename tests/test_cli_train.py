"""The `train`, `tasks` and `app` subcommands through the real console entry point (subprocesses)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_training import WORDS, make_task_csv

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=timeout)
    return p.stdout, p.stderr, p.returncode


def test_train_cli_writes_a_peft_adapter_that_analysis_reads(tiny_llama_dir, tmp_path):
    csv = make_task_csv(tmp_path / "task.csv")
    out = tmp_path / "run"
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    _, err, rc = run_cli("train", "--model", tiny_llama_dir, "--task", csv, "--label-words", words,
                         "--virtual-tokens", "4", "--init", "labels", "--steps", "6", "--batch-size", "8",
                         "--eval-every", "3", "--eval-examples", "16", "--checkpoint-every", "3", "--out", out,
                         "--dtype", "bfloat16", "--quiet")
    assert rc == 0, err
    assert "trained 6 steps" in err and "PEFT adapter" in err
    precision = json.loads((out / "training_meta.json").read_text())["precision"]
    assert precision["requested"] == "bfloat16" and precision["dtype"] == "bfloat16"
    for f in ("adapter_config.json", "adapter_model.safetensors", "training_log.jsonl", "snapshots.safetensors"):
        assert (out / f).is_file(), f
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "PROMPT_TUNING" and cfg["num_virtual_tokens"] == 4
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r][-1] == 6
    assert any("eval_accuracy" in r for r in log)
    # the adapter goes straight into the report
    stdout, err, rc = run_cli("report", out, "--model", tiny_llama_dir, "-k", "3", "--format", "json")
    assert rc == 0, err
    data = json.loads(stdout)
    assert data["prompts"][0]["num_virtual_tokens"] == 4
    # resuming a finished run against another prompt size is refused in one line
    _, err, rc = run_cli("train", "--model", tiny_llama_dir, "--task", csv, "--label-words", words,
                         "--virtual-tokens", "5", "--steps", "8", "--out", out, "--resume", "--quiet")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("args, pattern", [
    (["--task", "no-such-task"], "Unknown task 'no-such-task'.*sentiment"),
    (["--task", "sentiment", "--virtual-tokens", "0"], "positive integer"),
    (["--task", "sentiment", "--init", "magic"], "invalid choice"),
    (["--task", "sentiment", "--dtype", "fp16"], "invalid choice: 'fp16'"),
])
def test_train_cli_bad_input_one_line(args, pattern, tmp_path):
    import re

    _, err, rc = run_cli("train", "--out", tmp_path / "x", *args)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert re.search(pattern, err), err
    assert "Traceback" not in err


def test_waywardness_cli_trains_pulled_prompts_and_renders_every_format(tiny_llama_dir, tmp_path):
    csv = make_task_csv(tmp_path / "task.csv")
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    target = "who wrote the book? how many people live there?"
    common = ["waywardness", "--model", tiny_llama_dir, "--task", csv, "--label-words", words, "--target", target,
              "--virtual-tokens", "6", "--steps", "20", "--batch-size", "4", "--lr", "0.1", "--limit", "16"]
    out, err, rc = run_cli(*common, "--gammas", "0,30", "--format", "json")
    assert rc == 0, err
    data = json.loads(out)
    free, pulled = data["rows"]
    assert [free["gamma"], pulled["gamma"]] == [0.0, 30.0]
    assert pulled["distance"] < 0.5 * free["distance"] and pulled["prompt_f1"] > free["prompt_f1"]
    from analyzer.tasks import get_task

    n_val = len(get_task(csv, label_words=WORDS).validation)
    assert free["accuracy"]["n"] == min(16, n_val) and data["settings"]["num_virtual_tokens"] == 6
    assert any("γ=30" in line for line in data["summary"]) and "training 2 prompts" in err
    assert "γ=30 (2/2): training 20 steps" in err and "scoring the references" in err  # progress as it goes
    # the same run again, as a self-contained HTML page with the figure, and as a table
    html_out = tmp_path / "w.html"
    _, err, rc = run_cli(*common, "--gammas", "0,30", "--format", "html", "--out", html_out, "-q")
    assert rc == 0, err
    page = html_out.read_text()
    assert "<script src" not in page and "Prompt-F1" in page and page.count("<tr>") == 3
    assert f"{pulled['prompt_f1']:.2f}" in page  # same seed, same numbers
    out, err, rc = run_cli(*common, "--gammas", "0", "--format", "table", "-q")
    assert rc == 0 and "Waywardness stress test" in out and "accuracy [95% CI]" in out and "balanced acc." in out
    assert "γ=0 projection: " in out


@pytest.mark.parametrize("args, pattern", [
    (["--gammas", "0,-1"], "comma-separated numbers >= 0"),
    (["--target", "  "], "^error: --target must be a non-empty str\\. Got '  ' instead"),
    (["--init", "no/such/adapter"], "no/such/adapter"),
    (["--task", "no-such-task"], "Unknown task"),
])
def test_waywardness_cli_bad_input_one_line(args, pattern, tmp_path):
    import re

    base = {"--task": "sentiment", "--target": "a recipe for bread"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    _, err, rc = run_cli("waywardness", *[x for kv in base.items() for x in kv])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and re.search(pattern, err), err


def test_tasks_cli_lists_builtin_tasks():
    out, err, rc = run_cli("tasks")
    assert rc == 0, err
    for name in ("sentiment", "question-type", "spam"):
        assert name in out
    assert "positive" in out and "train " in out
    out, _, rc = run_cli("tasks", "--json")
    rows = json.loads(out)
    assert {r["name"] for r in rows} == {"sentiment", "question-type", "spam", "sentiment-amazon"}
    assert all(r["available"] and r["n_test"] > 0 for r in rows)
    # the held-out task is listed (evaluate takes it) but marked as never trained on
    assert {r["name"] for r in rows if r["evaluation_only"]} == {"sentiment-amazon"}


def test_app_cli_refuses_a_bad_port():
    _, err, rc = run_cli("app", "--port", "70000", "--no-browser")
    assert rc == 2 and "port" in err and "Traceback" not in err


@pytest.mark.integration
def test_report_csls_differs_from_cosine_on_random_vectors(smollm2_available, tmp_path):
    v = np.random.default_rng(5).normal(size=(6, 576)).astype(np.float32)
    np.save(tmp_path / "r.npy", v)
    res = {}
    for metric in ("cosine", "csls"):
        out, err, rc = run_cli("report", tmp_path / "r.npy", "-k", "5", "--metric", metric, "--format", "json")
        assert rc == 0, err
        res[metric] = [[n["token_id"] for n in t["neighbors"]] for t in json.loads(out)["prompts"][0]["tokens"]]
    assert res["cosine"] != res["csls"]  # hubness correction changes the lists


def test_train_cli_resume_of_a_finished_run_says_so_and_exits_0(tiny_llama_dir, tmp_path, capsys):
    """`train --resume` on a run that already reached --steps: one line saying so, exit 0 (no step, no loss)."""
    from analyzer.cli import main

    csv = make_task_csv(tmp_path / "task.csv")
    out = tmp_path / "run"
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    common = ["train", "--model", str(tiny_llama_dir), "--task", str(csv), "--label-words", words,
              "--virtual-tokens", "4", "--batch-size", "8", "--eval-examples", "8", "--out", str(out), "--quiet"]
    assert main([*common, "--steps", "2"]) == 0
    assert "trained 2 steps" in capsys.readouterr().err
    for steps in ("2", "1"):                     # as asked, and a --steps below what the run already did
        rc = main([*common, "--steps", steps, "--resume"])
        err = capsys.readouterr().err
        assert rc == 0, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "already" in lines[0] and "step 2" in lines[0] and f"--steps {steps}" in lines[0], lines[0]
        assert "internal error" not in err and str(out) in lines[0]
    # the launcher entry point on the same finished run: its JSON line, loss null, exit 0
    from analyzer.training.__main__ import main as module_main

    cfg = dict(model=str(tiny_llama_dir), task=str(csv), out=str(out), label_words=WORDS, num_virtual_tokens=4,
               steps=2, batch_size=8, eval_examples=8, resume=True)
    assert module_main(["--quiet", "--config", json.dumps(cfg)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["steps"] == 2 and res["loss"] is None and res["mean_step_time"] is None


@pytest.mark.parametrize("make, pattern", [
    (lambda d: d / "missing.json", r"Cannot read the config file .*missing\.json.*No such file"),
    (lambda d: d, r"Cannot read the config file .* directory"),
    (lambda d: (d / "bad.json", (d / "bad.json").write_text('{"steps": 3,'))[0],
     r"bad\.json is not valid JSON .*line 1"),
    (lambda d: (d / "list.json", (d / "list.json").write_text('["steps"]'))[0],
     r"Expected a JSON object .* got a list"),
    (lambda d: '{"steps": 3', r"--config text is not valid JSON"),
    (lambda d: "3", r"Cannot read the config file '3'"),
], ids=["missing", "directory", "bad-json-file", "json-list", "bad-json-text", "number"])
def test_training_module_bad_config_is_one_line(make, pattern, tmp_path, capsys):
    """`python -m analyzer.training --config X` with a missing, unreadable or malformed X: one line, exit 2."""
    import re

    from analyzer.training.__main__ import main

    rc = main(["--quiet", "--config", str(make(tmp_path))])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert re.search(pattern, err), err

"""The `report` CLI and the Report object: JSON contract, formats, errors (one line, non-zero exit)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analyzer import build_report, load_prompt, load_vocabulary
from analyzer.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None):
    """The real console entry point in a subprocess: stdout, stderr, exit code."""
    import os

    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, env=e, timeout=600)
    return p.stdout, p.stderr, p.returncode


@pytest.fixture(scope="module")
def tiny_adapter(tiny_llama_dir, tmp_path_factory):
    """A PEFT TEXT-init adapter on the tiny llama, saved by PEFT."""
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=6, prompt_tuning_init="TEXT",
                             prompt_tuning_init_text="the movie was great", tokenizer_name_or_path=str(tiny_llama_dir))
    m = get_peft_model(base, cfg)
    d = tmp_path_factory.mktemp("tiny-adapter") / "tiny-text"
    m.save_pretrained(d)
    cfg_path = d / "adapter_config.json"
    c = json.loads(cfg_path.read_text())
    c["base_model_name_or_path"] = str(tiny_llama_dir)
    cfg_path.write_text(json.dumps(c))
    return d


def test_report_json_contract_on_tiny_model(tiny_adapter, tiny_llama_dir, capsys):
    assert main(["report", str(tiny_adapter), "-k", "4", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["model"]) >= {"name", "source", "vocab_size", "dim", "tied"}
    assert data["model"]["dim"] == 32 and data["model"]["tied"] is False
    (p,) = data["prompts"]
    assert set(p) >= {"name", "source", "kind", "num_virtual_tokens", "dim", "tokens"}
    assert p["kind"] == "PROMPT_TUNING" and p["num_virtual_tokens"] == 6 and p["dim"] == 32
    assert [t["index"] for t in p["tokens"]] == list(range(6))
    for t in p["tokens"]:
        assert set(t) >= {"index", "norm", "neighbors"} and len(t["neighbors"]) == 4
        assert all(set(n) >= {"token_id", "token", "score"} for n in t["neighbors"])
        scores = [n["score"] for n in t["neighbors"]]
        assert scores == sorted(scores, reverse=True)
    # untrained TEXT init: each virtual token's top-1 is its init token, score 1
    prompt = load_prompt(tiny_adapter)
    top1 = [t["neighbors"][0] for t in p["tokens"]]
    assert [n["token_id"] for n in top1] == list(prompt.init_token_ids)
    np.testing.assert_allclose([n["score"] for n in top1], 1.0, atol=1e-5)


def test_report_formats_and_out_file(tiny_adapter, tmp_path, capsys):
    out = tmp_path / "r.md"
    assert main(["report", str(tiny_adapter), "-k", "3", "--format", "markdown", "--out", str(out)]) == 0
    md = out.read_text()
    assert md.startswith("# Soft-prompt report") and "| # | norm |" in md
    assert main(["report", str(tiny_adapter), "-k", "10"]) == 0
    table = capsys.readouterr().out
    assert "tiny-text" in table and "neighbours" in table
    assert max(len(line) for line in table.splitlines()) <= 100


def test_metric_l2_and_dot(tiny_adapter, capsys):
    for metric in ("l2", "dot"):
        assert main(["report", str(tiny_adapter), "-k", "2", "--metric", metric, "--format", "json"]) == 0
        d = json.loads(capsys.readouterr().out)
        assert d["settings"]["metric"] == metric
        s = [n["score"] for n in d["prompts"][0]["tokens"][0]["neighbors"]]
        assert s == (sorted(s) if metric == "l2" else sorted(s, reverse=True))
        if metric == "l2":
            assert s[0] == pytest.approx(0.0, abs=1e-3)  # untrained TEXT init sits on its token


def test_cli_errors_are_one_line(tiny_adapter, tmp_path):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    nodir = tmp_path / "no-adapter"
    nodir.mkdir()
    (nodir / "notes.txt").write_text("x")
    nan = tmp_path / "nan.npy"
    a = np.ones((3, 32), np.float32)
    a[1, 0] = np.nan
    np.save(nan, a)
    wrong_dim = tmp_path / "wrong.npy"
    np.save(wrong_dim, np.ones((3, 7), np.float32))
    cases = [
        ([tmp_path / "missing"], "not found|does not exist|No such"),
        ([empty], "empty"),
        ([nodir], "adapter"),
        ([nan, "--model", tiny_adapter.parent.parent], "NaN|Inf"),
    ]
    for args, pattern in cases:
        out, err, rc = run_cli("report", *args)
        assert rc == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        import re

        assert re.search(pattern, err, re.I), err
    # argparse-level error for k
    _, err, rc = run_cli("report", tiny_adapter, "-k", "0")
    assert rc == 2 and "positive integer" in err


def test_dimension_mismatch_names_both_dims(tiny_adapter, tiny_llama_dir, tmp_path):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((3, 7), np.float32))
    _, err, rc = run_cli("report", wrong, "--model", tiny_llama_dir)
    assert rc == 2 and "7" in err and "32" in err and len(err.strip().splitlines()) == 1


def test_base_model_null_asks_for_model(tiny_adapter, tmp_path):
    import shutil

    d = tmp_path / "nobase"
    shutil.copytree(tiny_adapter, d)
    c = json.loads((d / "adapter_config.json").read_text())
    c["base_model_name_or_path"] = None
    (d / "adapter_config.json").write_text(json.dumps(c))
    _, err, rc = run_cli("report", d)
    assert rc == 2 and "--model" in err and "null" in err
    c["base_model_name_or_path"] = "/nonexistent/path/to/model"
    (d / "adapter_config.json").write_text(json.dumps(c))
    _, err, rc = run_cli("report", d)
    assert rc == 2 and "--model" in err and "/nonexistent/path/to/model" in err


def test_models_command_lists_embedded():
    out, err, rc = run_cli("models")
    assert rc == 0 and "smollm2-135m (default)" in out and "installed" in out
    assert "gemma3-270m" in out


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from analyzer.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('torch','faiss','streamlit','transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


@pytest.mark.integration
def test_smollm2_text_init_adapter_top1_is_init_token(smollm2_text_adapter):
    d, init_ids = smollm2_text_adapter
    vocab = load_vocabulary("smollm2-135m")
    prompt = load_prompt(d)
    rep = build_report(prompt, vocab, k=5)
    top1 = [t["neighbors"][0] for t in rep.prompts[0]["tokens"]]
    assert [n["token_id"] for n in top1] == init_ids
    np.testing.assert_allclose([n["score"] for n in top1], 1.0, atol=1e-5)
    assert rep.model["vocab_size"] == 49152 and rep.model["dim"] == 576 and rep.model["tied"] is True


@pytest.mark.integration
def test_smollm2_cli_report_json(smollm2_text_adapter):
    d, init_ids = smollm2_text_adapter
    out, err, rc = run_cli("report", d, "--model", "smollm2-135m", "-k", "3", "--format", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["model"]["name"] == "smollm2-135m"
    assert [t["neighbors"][0]["token_id"] for t in data["prompts"][0]["tokens"]] == init_ids


@pytest.fixture(scope="module")
def mostly_zero_model(tmp_path_factory):
    """A tiny llama whose input embeddings are zero but for 16 rows: the vocabulary's median norm is 0."""
    from safetensors.torch import load_file, save_file
    from tiny_models import make_tiny_llama

    d = tmp_path_factory.mktemp("zero-embeddings")
    make_tiny_llama(d)
    weights = load_file(str(d / "model.safetensors"))
    key = next(k for k in weights if k.endswith("embed_tokens.weight"))
    weights[key][20:] = 0.0
    save_file(weights, str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "html"])
def test_report_renders_when_the_vocabulary_median_norm_is_zero(fmt, mostly_zero_model, tmp_path, capsys):
    """The norm ratio to the median is unknown (the median is 0): every format shows it as missing, none fails."""
    vectors = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
    np.save(tmp_path / "p.npy", vectors)
    vocab = load_vocabulary(str(mostly_zero_model))
    report = build_report(load_prompt(tmp_path / "p.npy"), vocab, k=3)
    assert report.model["median_norm"] == 0.0
    assert [t["norm_ratio"] for t in report.prompts[0]["tokens"]] == [None, None, None]
    if fmt == "html":                      # the dashboard's and `analyze --format html`'s renderer
        assert report.render("html").count("<td>—</td>") >= 3
        return
    rc = main(["report", str(tmp_path / "p.npy"), "--model", str(mostly_zero_model), "-k", "3", "--format", fmt])
    out, err = capsys.readouterr()
    assert rc == 0, err
    if fmt == "json":
        assert [t["norm_ratio"] for t in json.loads(out)["prompts"][0]["tokens"]] == [None, None, None]
    else:                                  # the "× median" column of each virtual token's row reads "—"
        sep = "|" if fmt == "markdown" else "│"
        rows = [[c.strip() for c in line.split(sep)] for line in out.splitlines() if sep in line]
        rows = [r for r in rows if len(r) > 3 and r[1] in ("0", "1", "2")]
        assert [r[1] for r in rows] == ["0", "1", "2"] and all(r[3] == "—" for r in rows), out


def _degenerate_prompts(tmp_path):
    """An all-zero prompt, one with a zero and a subnormal row, and one whose entries (1e38) overflow its norm."""
    rng = np.random.default_rng(0)
    some = rng.normal(size=(5, 32)).astype(np.float32)
    some[2], some[3] = 0.0, np.float32(1e-40)
    cases = {"zero": (np.zeros((4, 32), np.float32), "rows 0, 1, 2, 3 (all 4)"),
             "some": (some, "row 2 (of 5)"),
             "huge": (np.full((3, 32), 1e38, np.float32), "rows 0, 1, 2 (all 3)")}
    for name, (a, _) in cases.items():
        np.save(tmp_path / f"{name}.npy", a)
    return {name: (tmp_path / f"{name}.npy", rows) for name, (_, rows) in cases.items()}


@pytest.mark.parametrize("command", ["report", "analyze"])
def test_degenerate_prompt_is_one_line_naming_rows(command, tiny_llama_dir, tmp_path):
    """report and analyze through the console entry point: exit 2, one line naming the rows and why, no scores
    (an all-zero prompt used to get neighbours at 0.00 and a 'k-occurrence skew' claim; 1e38 an internal error)."""
    for path, rows in _degenerate_prompts(tmp_path).values():
        args = [command, path, "--model", tiny_llama_dir, *(["--format", "json"] if command == "report" else ["-q"])]
        out, err, rc = run_cli(*args)
        assert rc == 2, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and not out.strip(), err
        assert err.startswith("error:") and rows in err and ("cosine undefined" in err or "overflows" in err), err


@pytest.mark.parametrize("command", ["evaluate", "importance", "describe", "swap"])
def test_degenerate_prompt_refused_by_every_command(command, tiny_llama_dir, tmp_path, capsys):
    """The commands that run the frozen model meet the same rule before loading it."""
    path, rows = _degenerate_prompts(tmp_path)["some"]
    rc = main([command, str(path), "--model", str(tiny_llama_dir), "--task", "sentiment"])
    out, err = capsys.readouterr()
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert rows in err and "row 3 (of 5)" in err and not out.strip()

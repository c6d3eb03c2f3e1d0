"""analyzer.models: a damaged model directory or .gguf gives one ModelNotFoundError line that names the path,
whatever transformers, safetensors or gguf raised underneath (ValueError, TypeError, json, struct errors...)."""

import json
import shutil

import pytest

from analyzer.exceptions import ModelNotFoundError

pytest.importorskip("torch")


def _config(d):
    return json.loads((d / "config.json").read_text())


def _write_config(d, value):
    (d / "config.json").write_text(json.dumps(value))


DAMAGE = {
    # transformers: ValueError "does not recognize this architecture"
    "unknown_model_type": lambda d: _write_config(d, {**_config(d), "model_type": "no-such-architecture"}),
    # transformers: ValueError "Should have a `model_type` key"
    "no_model_type": lambda d: _write_config(d, {"hidden_size": 32}),
    # transformers: TypeError "argument after ** must be a mapping, not list"
    "config_is_a_list": lambda d: _write_config(d, [1, 2]),
    # safetensors: SafetensorError "header too large"
    "corrupt_weights": lambda d: (d / "model.safetensors").write_bytes(b"garbage" * 10),
    # tokenizers: json.JSONDecodeError
    "corrupt_tokenizer": lambda d: (d / "tokenizer.json").write_text("{bad"),
    # transformers: RuntimeError "ignore_mismatched_sizes" (config and weights disagree)
    "config_disagrees_with_weights": lambda d: _write_config(d, {**_config(d), "hidden_size": 64}),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_model_dir_is_one_clear_error(damage, tiny_llama_dir, tmp_path):
    from analyzer.models import load_frozen_model

    d = tmp_path / damage
    shutil.copytree(tiny_llama_dir, d)
    DAMAGE[damage](d)
    with pytest.raises(ModelNotFoundError) as info:
        load_frozen_model(str(d))
    msg = str(info.value)
    assert str(d) in msg and "\n" not in msg
    assert "Hugging Face model directory" in msg          # what was expected / what to do


def test_damaged_gguf_is_one_clear_error(tmp_path, monkeypatch):
    from analyzer.models import load_frozen_model

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUFxxxxgarbage")                  # gguf: struct.error on the truncated header
    with pytest.raises(ModelNotFoundError) as info:
        load_frozen_model(str(bad))
    msg = str(info.value)
    assert str(bad) in msg and "\n" not in msg and "GGUF" in msg
    assert not list((tmp_path / "cache").rglob("model.safetensors"))   # nothing half-written into the cache


def test_train_cli_with_a_damaged_model_dir_is_one_line(tiny_llama_dir, tmp_path, capsys):
    from test_training import WORDS, make_task_csv

    from analyzer.cli import main

    d = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, d)
    DAMAGE["unknown_model_type"](d)
    csv = make_task_csv(tmp_path / "task.csv")
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    rc = main(["train", "--model", str(d), "--task", str(csv), "--label-words", words, "--out",
               str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and str(d) in err
    assert "internal error" not in err

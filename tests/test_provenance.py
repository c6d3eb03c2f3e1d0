"""Which model's vocabulary (or weights) a reading used, and whether it stands in for the model the adapter or the
user named: another checkpoint of the family, or a quantised copy (``analyzer.provenance``).

Unit tests resolve names against the registry only (no weights read) and run the tiny llama; the ones that read
the real SmolLM2 vocabulary (a PEFT adapter of ``sample_prompts`` renamed to name the hub checkpoints) are marked
integration."""

import html
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from analyzer.cli import main
from analyzer.models import DEFAULT_MODEL, EMBEDDED_MODELS
from analyzer.provenance import FAMILY, OTHER, QUANTISED, model_provenance, provenance_sentence
from analyzer.types import SoftPrompt

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_prompts" / "sentiment-labels"
SMOL = EMBEDDED_MODELS[DEFAULT_MODEL]
INSTRUCT = SMOL.checkpoint                       # the checkpoint the embedded file was converted from
BASE = INSTRUCT.removesuffix("-Instruct")        # its family's base checkpoint, which adapters also name


def adapter(base, dim=576):
    return SoftPrompt(name="a", vectors=np.ones((2, dim), np.float32), source="memory", kind="PROMPT_TUNING",
                      base_model=base)


def with_base(src: Path, dst: Path, base: str) -> Path:
    """A copy of a real PEFT adapter folder whose config names ``base`` as its base model."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = base
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    return dst


# ------------------------------------------------------------------------------------- names only
def test_registry_knows_what_each_embedded_file_holds():
    for m in EMBEDDED_MODELS.values():
        assert m.checkpoint.count("/") == 1 and m.quantization and m.embedding_quantization
        # the checkpoint it was converted from is one of the family names read against it
        assert model_provenance(m.checkpoint, [adapter(m.checkpoint)])["used"] == m.name


def test_base_checkpoint_named_by_an_adapter_is_a_stand_in():
    info = model_provenance(BASE, [adapter(BASE)])
    assert info["stand_in"] and info["embedded"] and info["used"] == DEFAULT_MODEL
    assert info["named"] == BASE and info["named_by"] == "adapter" and info["checkpoint"] == INSTRUCT
    assert info["stand_in_for"] == [{"name": BASE, "named_by": "adapter", "reasons": [FAMILY, QUANTISED]}]
    s = info["sentence"]
    assert s.startswith(f"vocabulary: {INSTRUCT.split('/')[-1]} (GGUF {SMOL.quantization}")
    assert f"the embedded {DEFAULT_MODEL}" in s
    assert s.endswith(f"a stand-in for {BASE} named by the adapter: {FAMILY}, {QUANTISED}")


def test_the_converted_checkpoint_is_stood_in_for_by_a_quantised_copy():
    info = model_provenance(INSTRUCT, [adapter(INSTRUCT)])
    assert info["stand_in_for"][0]["reasons"] == [QUANTISED]
    assert info["sentence"].endswith(f"a stand-in for {INSTRUCT} named by the adapter: a quantised copy")


def test_the_embedded_name_itself_is_no_stand_in():
    for prompts in ([adapter(DEFAULT_MODEL)], [SoftPrompt("t", np.ones((2, 576), np.float32), "x", "TENSOR")]):
        info = model_provenance(DEFAULT_MODEL, prompts)
        assert not info["stand_in"] and info["stand_in_for"] == [] and "stand-in" not in info["sentence"]
    default = model_provenance(None, [])
    assert default["named_by"] == "default" and default["used"] == DEFAULT_MODEL and not default["stand_in"]


def test_model_chosen_over_the_adapters_base_is_said():
    # --model smollm2-135m (or the dashboard's Model box) for an adapter trained on the base checkpoint
    info = model_provenance(DEFAULT_MODEL, [adapter(BASE)])
    assert info["requested"] == DEFAULT_MODEL and info["stand_in_for"][0]["reasons"] == [FAMILY, QUANTISED]
    # a model of another family in place of the adapter's
    other = next((m for m in EMBEDDED_MODELS if m != DEFAULT_MODEL), None)
    if other:
        assert model_provenance(other, [adapter(BASE)])["stand_in_for"][0]["reasons"] == [OTHER, QUANTISED]


def test_a_folder_named_like_the_checkpoint_is_exact(tmp_path):
    same = tmp_path / BASE.split("/")[-1]
    same.mkdir()
    (same / "config.json").write_text("{}")
    info = model_provenance(str(same), [adapter(BASE)])
    assert info["kind"] == "hf_dir" and not info["stand_in"]
    assert info["sentence"] == f"vocabulary: {same} (a Hugging Face folder)"
    sibling = tmp_path / INSTRUCT.split("/")[-1]       # another checkpoint of the family, unquantised
    sibling.mkdir()
    (sibling / "config.json").write_text("{}")
    assert model_provenance(str(sibling), [adapter(BASE)])["stand_in_for"][0]["reasons"] == [FAMILY]


def test_one_sentence_for_every_reader():
    info = model_provenance(BASE, [adapter(BASE)])
    assert provenance_sentence(info) == info["sentence"]
    assert provenance_sentence(info, "model") == "model" + info["sentence"].removeprefix("vocabulary")


# ------------------------------------------------------------------------------------- tiny model
@pytest.fixture(scope="module")
def tiny_prompt(tiny_llama_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-prompt")
    np.save(d / "p.npy", np.random.default_rng(0).standard_normal((3, 32)).astype(np.float32))
    return d / "p.npy"


def test_report_on_a_synthetic_folder_given_by_model_says_no_stand_in(tiny_prompt, tiny_llama_dir, capsys):
    assert main(["report", str(tiny_prompt), "--model", str(tiny_llama_dir), "-k", "3", "--format", "json"]) == 0
    prov = json.loads(capsys.readouterr().out)["model"]["provenance"]
    assert prov["kind"] == "hf_dir" and prov["used"] == str(tiny_llama_dir) and prov["named_by"] == "model"
    assert not prov["stand_in"] and prov["stand_in_for"] == []
    assert main(["report", str(tiny_prompt), "--model", str(tiny_llama_dir), "-k", "3"]) == 0
    table = capsys.readouterr().out
    assert "stand-in" not in table and prov["sentence"] in " ".join(table.split())
    assert main(["report", str(tiny_prompt), "--model", str(tiny_llama_dir), "-k", "3", "--format", "html"]) == 0
    assert f"<p class='source'>{html.escape(prov['sentence'])}.</p>" in capsys.readouterr().out


@pytest.fixture(scope="module")
def tiny_on_base(tiny_llama_dir, tmp_path_factory):
    """The tiny llama saved as a folder named like the family's Instruct checkpoint, and a PEFT adapter trained on
    it whose config names the base checkpoint (as an adapter trained on the hub's base model does)."""
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("tiny-family")
    model_dir = root / INSTRUCT.split("/")[-1]
    shutil.copytree(tiny_llama_dir, model_dir)
    m = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                       PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3, prompt_tuning_init="RANDOM"))
    m.save_pretrained(root / "saved")
    return model_dir, with_base(root / "saved", root / "adapter", BASE)


def test_readings_that_run_the_model_say_what_it_stands_in_for(tiny_on_base, tmp_path, capsys, monkeypatch,
                                                                 one_torch_thread):
    from test_training import WORDS, make_task_csv

    from analyzer.faithfulness import description

    model_dir, ad = tiny_on_base
    task = str(make_task_csv(tmp_path / "t.csv", n=40))
    words = ",".join(f"{k}={v}" for k, v in WORDS.items())
    monkeypatch.setattr(description, "task_keywords", lambda task, vocab, n=50: ["film"])   # no mining here
    on_file = ["--task", task, "--label-words", words]
    runs = {"evaluate": ["evaluate", str(ad), "--limit", "4", *on_file],
            "importance": ["importance", str(ad), "--limit", "6", "--null-size", "3", "--null-limit", "3",
                           "--orders", "1", *on_file],
            "describe": ["describe", str(ad), "--task", "sentiment", "--layers", "0,1", "--null-size", "2",
                         "--max-new-tokens", "2", "--no-planted"],
            "decode": ["decode", str(ad), "--steps", "1", "--eval-every", "1", "--limit", "4", *on_file],
            "waywardness": ["waywardness", "--init", str(ad), "--target", "a b c", "--steps", "1", "--gammas", "0",
                            "--limit", "4", *on_file]}
    for name, argv in runs.items():
        common = ["--model", str(model_dir), "--quiet"]
        assert main(argv + common + ["--format", "json"]) == 0, name
        prov = json.loads(capsys.readouterr().out)["model_provenance"]
        assert prov["named"] == BASE and prov["named_by"] == "adapter" and prov["kind"] == "hf_dir", name
        assert prov["stand_in_for"] == [{"name": BASE, "named_by": "adapter", "reasons": [FAMILY]}], name
        assert prov["sentence"] == (f"model: {model_dir} (a Hugging Face folder) — a stand-in for {BASE} named by "
                                    f"the adapter: {FAMILY}"), name
        for fmt in ("table", "markdown"):
            assert main(argv + common + ["--format", fmt]) == 0, (name, fmt)
            assert prov["sentence"] in " ".join(capsys.readouterr().out.split()), (name, fmt)


# ------------------------------------------------------------------------------------- real SmolLM2
@pytest.mark.integration
def test_embedded_file_holds_the_registered_embedding_type(smollm2_available):
    from analyzer.loaders import load_vocabulary

    assert load_vocabulary(DEFAULT_MODEL).quantization == SMOL.embedding_quantization


@pytest.mark.integration
@pytest.mark.parametrize("base, reasons, what", [(BASE, [FAMILY, QUANTISED], f"{FAMILY}, {QUANTISED}"),
                                                 (INSTRUCT, [QUANTISED], "a quantised copy")])
def test_report_on_an_adapter_naming_a_hub_checkpoint(smollm2_available, tmp_path, capsys, base, reasons, what):
    ad = with_base(SAMPLE, tmp_path / "adapter", base)
    assert main(["report", str(ad), "-k", "3", "--format", "json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert model["name"] == DEFAULT_MODEL                     # the keys it had keep their meaning
    prov = model["provenance"]
    assert prov["requested"] == base and prov["used"] == DEFAULT_MODEL and prov["stand_in"]
    assert prov["embedding_quantization"] == SMOL.embedding_quantization
    assert prov["stand_in_for"] == [{"name": base, "named_by": "adapter", "reasons": reasons}]
    assert prov["sentence"].endswith(f"a stand-in for {base} named by the adapter: {what}")
    assert main(["report", str(ad), "-k", "3"]) == 0
    lines = capsys.readouterr().out.split("\n")
    head = " ".join(" ".join(lines[:6]).split())      # the header, before the first table
    assert prov["sentence"] in head
    assert main(["report", str(ad), "-k", "3", "--format", "markdown"]) == 0
    assert prov["sentence"] in capsys.readouterr().out


@pytest.mark.integration
def test_an_adapter_trained_on_the_dequantised_embedded_copy_is_no_stand_in(smollm2_text_adapter, capsys):
    """PEFT on ``load_frozen_model("smollm2-135m")`` names the cached float copy of the embedded file: its rows."""
    from analyzer import load_prompt

    adapter_dir, _ = smollm2_text_adapter
    base = load_prompt(adapter_dir).base_model
    for requested in (DEFAULT_MODEL, base):             # the dashboard's Model box; the CLI's default (the adapter's)
        info = model_provenance(requested, [load_prompt(adapter_dir)])
        assert info["used"] == DEFAULT_MODEL and not info["stand_in"], info
    assert main(["report", str(adapter_dir), "-k", "2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["provenance"]["stand_in"] is False

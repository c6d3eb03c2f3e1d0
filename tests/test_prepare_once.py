"""A prompt is prepared once per analysis (issue 22, point 3): ``analyze`` prepares each prompt and hands the
:class:`~analyzer.baselines.PreparedPrompt` to the metrics and to task-relatedness, which prepared it again
before (three calls per prompt); called alone, each still prepares its own input."""

import numpy as np
import pytest

from analyzer import NeighborIndex, SoftPrompt, Vocabulary, analyze
from analyzer import baselines, metrics, relatedness
from analyzer.neighbors import normalize_rows
from analyzer.tasks import Example, Task

D = 16
WORDS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "plum", "good", "bad", "tasty", "sour"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def world():
    """A tiny vocabulary (a fruit cluster and filler words), a fruit task and two soft prompts."""
    rng = np.random.default_rng(0)
    filler = [f"{a}{b}{c}" for a in "bdfgk" for b in "aeiou" for c in "lmnrst"][:60]
    centre = normalize_rows(rng.normal(size=(1, D)))[0]
    emb = np.vstack([rng.normal(size=(2, D)), centre + 0.3 * normalize_rows(rng.normal(size=(len(WORDS), D))),
                     normalize_rows(rng.normal(size=(len(filler), D)))]).astype(np.float32)
    tokens = tuple(["<s>", "</s>"] + [f"␣{w}" for w in WORDS + filler])
    excluded = np.zeros(len(tokens), bool)
    excluded[:2] = True
    vocab = Vocabulary(name="tiny", source="memory", embeddings=emb, tokens=tokens, raw_tokens=tokens,
                       excluded=excluded, tied=False, key="tiny-prepare-once")
    texts = [" ".join(rng.choice(WORDS[:8], 3)) + (" good tasty" if i % 2 == 0 else " bad sour") for i in range(60)]
    task = Task(name="fruit", labels=("fresh", "spoiled"), label_words=("good", "bad"),
                train=tuple(Example(t, i % 2) for i, t in enumerate(texts)), validation=(), test=(),
                instruction="Say whether the fruit is good or bad.")
    prompts = [SoftPrompt(name=f"p{i}", vectors=(centre + 0.2 * rng.normal(size=(4, D))).astype(np.float32),
                          source="memory", kind="TENSOR") for i in range(2)]
    return vocab, task, prompts


def _count_prepares(monkeypatch) -> list:
    """Count calls of prepare_prompt wherever a module bound it by name."""
    calls = []
    real = baselines.prepare_prompt

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    for mod in (baselines, metrics, relatedness):
        monkeypatch.setattr(mod, "prepare_prompt", counting)
    return calls


@pytest.fixture(autouse=True)
def _no_builtin_tasks(monkeypatch):
    """Keyword mining and specificity compare with the given tasks only (no corpus read from disk)."""
    import analyzer.tasks

    monkeypatch.setattr(analyzer.tasks, "BUILTIN_TASKS", {})


def test_analyze_prepares_each_prompt_once(world, monkeypatch):
    vocab, task, prompts = world
    calls = _count_prepares(monkeypatch)
    rep = analyze(prompts, vocab, task=task, k=3, text_space=False, neighborhood=False, csls=False, n_null=50)
    assert all("skipped" not in d["relatedness"] for d in rep.to_dict()["prompts"])   # all three readings ran
    assert [p.name for p in calls] == [p.name for p in prompts]                      # was three per prompt


def test_readings_called_alone_prepare_their_own_input(world, monkeypatch):
    vocab, task, prompts = world
    calls = _count_prepares(monkeypatch)
    index = NeighborIndex(k=3).fit(vocab)
    kw = dict(k=3, n_null=50, n_boot=100, text_embedder=False)
    metrics.analyze_prompt(prompts[0], vocab, index, neighborhood=False, csls=False, **kw)
    relatedness.task_relatedness(prompts[0], vocab, index, task, background_tasks=[], **kw)
    assert len(calls) == 2

"""The variant scorer behind importance, its null and the projection curve: many variants of a prompt stacked
into one forward, the shared prefix (the prompt and the template's fixed head) computed once per variant --
checked against the plain forward, one variant at a time, on tiny models of three architectures.

Tolerance: the stacked path sums the same float32 products in another order (a cached prefix, other batch
shapes), so label logits of order 1 may differ in the 6th or 7th digit; 1e-4 is far below anything a reading
reports and far above that rounding."""

from __future__ import annotations

import numpy as np
import pytest

ARCHS = ("llama", "gpt2", "gemma3")
TOL = 1e-4


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request, tmp_path_factory):
    from tiny_models import make_tiny_gemma, make_tiny_gpt2, make_tiny_llama

    from analyzer.models import load_frozen_model

    d = tmp_path_factory.mktemp(f"tiny-{request.param}")
    {"llama": lambda p: make_tiny_llama(p, initializer_range=0.3), "gpt2": make_tiny_gpt2,
     "gemma3": lambda p: make_tiny_gemma(p, "gemma3_text")}[request.param](d)
    return load_frozen_model(d)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    from test_training import WORDS, make_task_csv

    from analyzer.tasks import get_task

    path = make_task_csv(tmp_path_factory.mktemp("task") / "tiny_task.csv", n=60)
    return get_task(str(path), label_words=WORDS, test_size=12, validation_size=6)


def _variants(model):
    """A prompt and variants of it of four lengths, with no prompt and an empty one among them."""
    import torch

    d = model.get_input_embeddings().weight.shape[1]
    x = torch.as_tensor(np.random.default_rng(0).standard_normal((5, d)).astype(np.float32))
    y = x.clone()
    y[2] = 0.0
    return [x, x[:3], None, y, x[1:], x[:0], torch.cat([x[:1], x[2:]]), x * 0.5, x[:3].flip(0)]


def _scorer(model, tok, task, **kw):
    from analyzer.faithfulness._variants import VariantScorer

    return VariantScorer(model, tok, task, task.split("test"), **kw)


def test_shared_head_leaves_every_sequence_a_token_of_its_own():
    from analyzer.faithfulness._variants import shared_head

    assert shared_head([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert shared_head([[1, 2], [1, 2]]) == 1
    assert shared_head([[7], [7, 8]]) == 0
    assert shared_head([[4, 5, 6]]) == 2
    assert shared_head([[1, 2], [3, 2]]) == 0
    assert shared_head([]) == 0


@pytest.mark.parametrize("max_tokens", [8192, 48])
def test_stacked_variants_equal_the_plain_forward(tiny, task, max_tokens, monkeypatch, one_torch_thread):
    """8192: every variant of a length in one chunk; 48: a chunk of one or two variants and a batch of one
    example at a time (the budget counts the cached prefix too)."""
    import analyzer.faithfulness._variants as v

    monkeypatch.setattr(v, "MAX_TOKENS", max_tokens)
    model, tok = tiny
    variants = _variants(model)
    fast = _scorer(model, tok, task)
    assert fast.head > 0                           # the template's head ("Text:"...) is shared by every example
    got = fast.logits_many(variants)
    assert fast.prefix_cache is True               # the stacked path ran (its first call checked it)
    assert (fast.calls, fast.scored) == (len(variants), len(variants) * fast.n)
    plain = _scorer(model, tok, task, prefix_cache=False)
    spread = 0.0
    for g, p in zip(got, variants):
        want = plain.logits(p)
        assert g.shape == want.shape == (fast.n, 2)
        np.testing.assert_allclose(g, want, atol=TOL, rtol=0)
        spread = max(spread, float(np.abs(want - plain.logits(variants[0])).max()))
    assert spread > 100 * TOL                      # the variants do move the logits: the comparison can fail


def test_one_variant_at_a_time_equals_many_together(tiny, task, one_torch_thread):
    model, tok = tiny
    variants = _variants(model)
    together = _scorer(model, tok, task).outcomes(variants)
    one = _scorer(model, tok, task)
    for o, p in zip(together, variants):
        alone = one.outcome(p)
        np.testing.assert_allclose(o.nll, alone.nll, atol=TOL, rtol=0)


@pytest.mark.parametrize("fault", ["shifted", "swapped"])
def test_a_cache_that_does_not_reproduce_the_plain_forward_is_dropped(tiny, task, fault, monkeypatch,
                                                                      one_torch_thread):
    """A model whose cached forward is off -- its logits shifted by ten times the tolerance, or two variants'
    rows swapped -- is scored by the plain path from its first call on."""
    from analyzer.faithfulness._variants import PREFIX_CACHE_TOL, VariantScorer

    stacked = VariantScorer._stacked
    broken = {"shifted": lambda self, *a: [z + 10 * PREFIX_CACHE_TOL for z in stacked(self, *a)],
              "swapped": lambda self, *a: stacked(self, *a)[::-1]}[fault]
    monkeypatch.setattr(VariantScorer, "_stacked", broken)
    model, tok = tiny
    variants = _variants(model)
    s = _scorer(model, tok, task)
    got = s.logits_many(variants)
    assert s.prefix_cache is False
    plain = _scorer(model, tok, task, prefix_cache=False)
    for g, p in zip(got, variants):
        np.testing.assert_array_equal(g, plain.logits(p))     # the very same plain path

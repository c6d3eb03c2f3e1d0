"""The description reading (Patchscopes / InSPEcT): patching mechanics on tiny models of three architectures,
scoring of texts, the null's cache, the JSON layout, the CLI, and one small run on the real SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ARCHS = ("llama", "gpt2", "gemma3")


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request, tmp_path_factory):
    """(model, tokenizer, directory) of a random tiny causal LM of each architecture."""
    from tiny_models import make_tiny_gemma, make_tiny_gpt2, make_tiny_llama

    d = tmp_path_factory.mktemp(f"tiny-{request.param}")
    make = {"llama": make_tiny_llama, "gpt2": make_tiny_gpt2,
            "gemma3": lambda p: make_tiny_gemma(p, "gemma3_text")}[request.param]
    model, tok = make(d)
    return model, tok, d


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _prompt(model, n=4, seed=0, scale=1.0):
    d = model.get_input_embeddings().weight.shape[1]
    return (scale * np.random.default_rng(seed).standard_normal((n, d))).astype(np.float32)


def _target(tok, n=4):
    from analyzer.faithfulness.patchscope import DEMONSTRATIONS, description_prompt

    return description_prompt(tok, n, DEMONSTRATIONS[:2])


def _own_states(model, target, layer):
    """The run's own residual stream at ``layer`` at the placeholder positions (one plain forward, batch 1)."""
    import torch

    from analyzer.faithfulness.logit_lens import decoder_parts, residual_stream_hooks

    x = model.get_input_embeddings()(torch.tensor([target.ids]))
    with torch.no_grad(), residual_stream_hooks(decoder_parts(model)[0]) as store:
        model(inputs_embeds=x, use_cache=False)
        h = x if layer == 0 else store[layer]
        return h[0, target.start:target.start + target.n].clone()


# ------------------------------------------------------------------------------------------ mechanics

@pytest.mark.parametrize("layer", [0, 1, 2])
def test_patching_a_state_with_itself_reproduces_the_unpatched_run(tiny, one_torch_thread, layer):
    """Source = the run's own states at the same layer, placed at the same positions: without the shared
    prefix cache the patched run does exactly the unpatched run's arithmetic, so logits and text are equal
    bitwise.  With the shared prefix (the demonstrations' KV cache computed once, then the rest) the matmuls are
    split differently, which moves float32 sums in the last bits: equal to ~1e-5 relative, same greedy text."""
    import torch

    from analyzer.faithfulness.patchscope import patched_generate

    model, tok, _ = tiny
    target = _target(tok)
    own = _own_states(model, target, layer)
    for share in (False, True):
        plain, patched = patched_generate(model, tok, target, [(layer, None), (layer, own)], max_new_tokens=5,
                                          share_prefix=share, return_logits=True, batch_size=1)
        if share:
            torch.testing.assert_close(patched["logits"], plain["logits"], rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(patched["logits"], plain["logits"])
        assert patched["token_ids"] == plain["token_ids"]
    # and the shared-prefix path agrees with the plain one (and with a full forward of the same tokens)
    full = model(torch.tensor([target.ids])).logits[0, -1].float()
    a = patched_generate(model, tok, target, [(0, None)], max_new_tokens=1, return_logits=True)[0]["logits"]
    torch.testing.assert_close(a, full.detach(), rtol=1e-5, atol=1e-5)


def test_a_patch_changes_the_run_and_only_its_own_row(tiny, one_torch_thread):
    """Rows of one batch are independent: a row patched with other states differs from the unpatched one, and
    batching does not change any row's result."""
    import torch

    from analyzer.faithfulness.patchscope import patched_generate

    model, tok, _ = tiny
    target = _target(tok)
    other = torch.as_tensor(_prompt(model, scale=30.0))
    rows = [(0, None), (1, other), (0, other)]
    together = patched_generate(model, tok, target, rows, max_new_tokens=3, return_logits=True)
    alone = [patched_generate(model, tok, target, [r], max_new_tokens=3, return_logits=True)[0] for r in rows]
    for a, b in zip(together, alone):
        torch.testing.assert_close(a["logits"], b["logits"], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(together[0]["logits"], together[1]["logits"])
    assert not torch.allclose(together[0]["logits"], together[2]["logits"])


def test_hooks_are_removed_after_an_exception(tiny, one_torch_thread):
    import torch

    from analyzer.faithfulness.logit_lens import decoder_parts
    from analyzer.faithfulness.patchscope import patched_generate

    model, tok, _ = tiny
    layers = decoder_parts(model)[0]
    target = _target(tok)

    def boom(*_):
        raise RuntimeError("boom")

    before = [len(m._forward_hooks) for m in layers] + [len(model._forward_hooks)]
    handle = layers[-1].register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            patched_generate(model, tok, target, [(1, torch.zeros(target.n, model.config.hidden_size))])
    finally:
        handle.remove()
    assert [len(m._forward_hooks) for m in layers] + [len(model._forward_hooks)] == before


def test_bad_patches_and_layers_are_one_clear_error(tiny):
    import torch

    from analyzer import AnalyzerError
    from analyzer.faithfulness import describe_prompt
    from analyzer.faithfulness.patchscope import patched_generate

    model, tok, _ = tiny
    target = _target(tok)
    with pytest.raises(AnalyzerError, match=r"'target_layer' parameter of patched_generate must be an int in \[0, 2\]"):
        patched_generate(model, tok, target, [(99, None)])
    with pytest.raises(AnalyzerError, match="shape"):
        patched_generate(model, tok, target, [(1, torch.zeros(3, 5))])
    with pytest.raises(AnalyzerError, match=r"ints in \[0, 2\]"):
        describe_prompt(model, tok, _prompt(model), "sentiment", keywords=[], layers=[0, 7])
    with pytest.raises(AnalyzerError, match="dim"):
        describe_prompt(model, tok, np.zeros((4, 7), np.float32), "sentiment", keywords=[])
    with pytest.raises(AnalyzerError, match="planted"):
        describe_prompt(model, tok, _prompt(model), "sentiment", keywords=[], planted=("poem",))
    with pytest.raises(AnalyzerError, match="at or below"):
        describe_prompt(model, tok, _prompt(model), "sentiment", keywords=[], source_layers=[0], target_layers=[1])
    with pytest.raises(AnalyzerError, match="null_size"):
        describe_prompt(model, tok, _prompt(model), "sentiment", keywords=[], null_size=0)


# ------------------------------------------------------------------------------------------ scoring

def test_class_rate_on_word_forms():
    from analyzer.faithfulness.patchscope import class_rate, keyword_share, mentions, stem

    classes = [("positive", "fresh"), ("negative", "rotten")]
    assert class_rate("sentiment (positive, negative)", classes) == 1.0
    assert class_rate("POSITIVES only", classes) == 0.5                      # case and plural
    assert class_rate("Rotten tomatoes", classes) == 0.5                     # the class name counts too
    assert class_rate("positively not", classes) == 0.0                      # an adverb is no plural
    assert class_rate("nonnegative", classes) == 0.0                         # whole words only
    assert class_rate("", classes) == 0.0
    six = [("abbreviation",), ("description",), ("entity",), ("person",), ("location",), ("number",)]
    assert class_rate("Entities, persons and numbers.", six) == 0.5
    assert class_rate("the location's number", six) == pytest.approx(2 / 6)  # possessive
    assert stem("classes") == "class" and stem("boxes") == "box" and stem("glass") == "glass"
    assert mentions("a bug report here", "bug reports") and not mentions("a bug", "bug report")
    assert keyword_share("Films and a movie", ["film", "movie", "plot", "acting"]) == 0.5
    assert keyword_share("anything", []) is None


def test_demonstrations_avoid_the_task_classes():
    from analyzer.faithfulness.patchscope import DEMONSTRATIONS, choose_demos, mentions, task_classes
    from analyzer.tasks import get_task

    for name in ("sentiment", "spam", "question-type"):
        classes = task_classes(get_task(name))
        demos = choose_demos(classes)
        assert demos == DEMONSTRATIONS[:3]                  # one null serves every built-in task
        assert not any(mentions(" ".join(d), f) for d in demos for forms in classes for f in forms)
    skipped = choose_demos([("season",), ("sports",)])
    assert DEMONSTRATIONS[0] not in skipped and DEMONSTRATIONS[1] not in skipped and len(skipped) == 3


def test_grid_tests_floor_and_composite_null():
    """A prompt that names every class where no meaningless prompt names any: p is 1/(m+1), the largest over
    the four constructions, so the one claim row (grid mean) is significant from m=20 (1/21 < 0.05) and never at
    m=19; the best cell and the keyword share are described beside it, never claimed."""
    from analyzer.faithfulness._description_null import describes, grid_tests

    cells = 4
    for m, sig in ((20, True), (19, False)):
        groups = np.repeat(np.arange(4), m)
        null = np.zeros((groups.size, cells))
        tests, cell_p, cell_q = grid_tests(np.ones(cells), np.zeros(cells), null, np.zeros_like(null), groups)
        assert [(t.measure, t.claim) for t in tests] == [("description class rate, grid mean", True),
                                                          ("description class rate, best cell", False),
                                                          ("description keyword share, grid mean", False)]
        assert tests[0].p == pytest.approx(1 / (m + 1)) and tests[0].q == tests[0].p
        assert describes(tests) is sig
        assert cell_p == [pytest.approx(1 / (m + 1))] * cells and len(cell_q) == cells
        assert "under matched meaningless prompts" in tests[0].verdict
        assert "(a reference, not a claim)" in tests[1].verdict
    # one construction that names the classes as often as the prompt is enough to withhold the claim
    null = np.zeros((80, cells))
    null[:20] = 1.0
    tests, _, _ = grid_tests(np.ones(cells), np.zeros(cells), null, null, np.repeat(np.arange(4), 20))
    assert not describes(tests) and tests[0].p == 1.0
    # a best cell alone above a null that names one class everywhere: described, not claimed
    null = np.full((80, cells), 0.5)
    tests, _, _ = grid_tests(np.array([1.0, 0, 0, 0]), np.zeros(cells), null, null, np.repeat(np.arange(4), 20))
    assert tests[1].p == pytest.approx(1 / 21) and not describes(tests)


# ------------------------------------------------------------------------------------------ the reading

def _count_forwards(model):
    calls = {"n": 0}

    def hook(*_):
        calls["n"] += 1

    return calls, model.register_forward_hook(hook)


def test_the_null_is_cached_and_reused(tiny, cache_dir, one_torch_thread):
    """The null's texts are written once; a second prompt of the same length and norm profile, read against
    another task, costs only its own grid (model forwards counted: its source run, the prefix and the decoding
    steps), and the first prompt read again gets the same rows."""
    from analyzer.faithfulness import describe_prompt

    model, tok, _ = tiny
    kw = dict(keywords=["film"], layers=[0, 1], all_pairs=True, null_size=3, max_new_tokens=3, planted=(),
              other_readings=False)
    calls, h = _count_forwards(model)
    try:
        first = describe_prompt(model, tok, _prompt(model), "sentiment", **kw)
        n_first = calls["n"]
        calls["n"] = 0
        second = describe_prompt(model, tok, _prompt(model, seed=1), "spam", **kw)
        n_second = calls["n"]
        again = describe_prompt(model, tok, _prompt(model), "sentiment", **kw)
    finally:
        h.remove()
    assert first.null.cached is False and second.null.cached is True and again.null.cached is True
    assert first.prompt.norm_profile == second.prompt.norm_profile
    assert n_second <= 1 + 1 + kw["max_new_tokens"]              # source run + shared prefix + decoding steps
    assert n_first >= n_second + 4 * kw["null_size"]              # + one source run per null prompt at least
    assert again.to_dict()["tests"] == first.to_dict()["tests"] and again.grid == first.grid
    assert len(list(cache_dir.rglob("null-*.json"))) == 1
    # nothing cached: the null is made again
    calls, h = _count_forwards(model)
    try:
        describe_prompt(model, tok, _prompt(model), "sentiment", cache=False, **kw)
    finally:
        h.remove()
    assert calls["n"] >= n_second + 4 * kw["null_size"]


def test_result_json_layout_and_renderings(tiny, cache_dir, one_torch_thread):
    from analyzer.faithfulness import DescriptionResult, describe_prompt
    from analyzer.plotting import plot_description

    model, tok, _ = tiny
    res = describe_prompt(model, tok, _prompt(model, scale=3.0), "sentiment", keywords=["film", "movie"],
                          layers=[0, 1, 2], null_size=2, max_new_tokens=3, planted=("instruction", "label_words"))
    assert isinstance(res, DescriptionResult)
    d = json.loads(res.to_json())
    assert {"grid", "best", "tests", "settings", "null", "planted", "other_readings", "describes_task",
            "summary", "prompt", "task", "model"} <= set(d)
    assert len(d["grid"]) == 6                                   # the pairs with target <= source
    for c in d["grid"]:
        assert {"source_layer", "target_layer", "text", "class_rate", "keyword_share", "p", "q"} <= set(c)
        assert 0.0 <= c["class_rate"] <= 1.0 and 0.0 < c["p"] <= 1.0
    assert [(c["source_layer"], c["target_layer"]) for c in d["grid"]] == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1),
                                                                           (2, 2)]
    assert d["best"] in d["grid"] and d["settings"]["cells"] == [[0, 0], [1, 0], [1, 1], [2, 0], [2, 1], [2, 2]]
    assert d["settings"]["source_layers"] == [0, 1, 2] and d["settings"]["target_layers"] == [0, 1, 2]
    assert d["settings"]["classes"] == [["positive", "fresh"], ["negative", "rotten"]]
    assert [t["null"] for t in d["tests"]] == ["description"] * 3
    assert [t["claim"] for t in d["tests"]] == [True, False, False]
    assert [p["kind"] for p in d["planted"]] == ["instruction", "label_words"]
    assert all(isinstance(p["detected"], bool) and p["tests"] for p in d["planted"])
    assert d["null"]["n"] == 8 and d["null"]["constructions"][0] == "random tokens"
    assert {"self_description", "logit_lens"} <= set(d["other_readings"])
    assert d["other_readings"]["logit_lens"]["layers"] == [0, 1, 2]
    assert "Task:" in d["settings"]["description_prompt"]["text"]
    for fmt in ("table", "markdown", "html"):
        assert "class rate" in res.render(fmt)
    fig = plot_description(res, width=500, height=300)
    assert fig.layout.width == 500 and fig.data[0].type == "heatmap"
    assert plot_description(d, planted="instruction").data[0].z is not None


# ------------------------------------------------------------------------------------------ CLI

def test_cli_describe_writes_json(tiny_llama_dir, tmp_path, cache_dir, monkeypatch):
    from analyzer import cli
    from analyzer.faithfulness import description

    monkeypatch.setattr(description, "task_keywords", lambda task, vocab, n=50: ["film"])   # no mining here
    prompt = tmp_path / "p.npy"
    np.save(prompt, np.random.default_rng(0).standard_normal((4, 32)).astype(np.float32))
    out = tmp_path / "d.json"
    rc = cli.main(["describe", str(prompt), "--task", "sentiment", "--model", str(tiny_llama_dir), "--layers", "0,1",
                   "--all-pairs", "--null-size", "2", "--max-new-tokens", "3", "--no-planted", "--format", "json",
                   "--out", str(out), "--quiet"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["task"] == "sentiment" and len(d["grid"]) == 4 and d["planted"] == []


def test_cli_describe_bad_input_is_one_line(tiny_llama_dir, tmp_path, capsys):
    from analyzer import cli

    prompt = tmp_path / "p.npy"
    np.save(prompt, np.ones((4, 7), np.float32))
    rc = cli.main(["describe", str(prompt), "--task", "sentiment", "--model", str(tiny_llama_dir), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "dim 7" in err and len(err.splitlines()) == 1
    rc = cli.main(["describe", str(prompt), "--model", str(tiny_llama_dir), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--task" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit):
        cli.main(["describe", str(prompt), "--layers", "a,b"])


# ------------------------------------------------------------------------------------------ SmolLM2

@pytest.mark.integration
def test_smollm2_describes_its_planted_instruction(smollm2_frozen, one_torch_thread):
    """On the real model, a small grid and a small null: the task's instruction embedded as a prompt is
    described with the task's class names in some cell (the planted signal the reading must find)."""
    from analyzer import load_prompt, load_vocabulary
    from analyzer.faithfulness import describe_prompt

    model, tok = smollm2_frozen
    prompt = load_prompt(Path(__file__).resolve().parents[1] / "sample_prompts" / "sentiment-labels")
    res = describe_prompt(model, tok, prompt, "sentiment", vocab=load_vocabulary("smollm2-135m"), source_layers=[0],
                          target_layers=[0, 8], all_pairs=True,
                          keywords=["film", "movie"], null_size=1, max_new_tokens=6, other_readings=False,
                          cache=False)
    assert len(res.grid) == 2 and all(isinstance(c.text, str) for c in res.grid)
    assert res.settings["num_layers"] == 30 and res.null.n == 4
    planted = res.planted[0]
    assert planted.best.class_rate >= 0.5, planted.grid
    assert "sentiment" in planted.best.text.lower()

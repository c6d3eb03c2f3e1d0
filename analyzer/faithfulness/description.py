"""What the model says the prompt means: three readings of one family, each a *patch* of the soft prompt's
hidden states into a run of the frozen model, read out as text.

* **Description** (:func:`describe_prompt`; Patchscopes, Ghandeharioun et al. 2024; InSPEcT, Ramati, Gottesman &
  Geva, Findings of ACL 2025): the model runs on the soft prompt alone; the virtual tokens' residual stream at a
  *source* layer replaces, at a *target* layer, the placeholders of a few-shot description prompt
  (``Instruction: <placeholders>`` / ``Task:`` after three demonstrations about unrelated tasks, none naming the
  analysed task's classes), and the model continues greedily.  A bounded grid of (source, target) layers is swept
  -- by default the layers ``round(linspace(0, 0.75 L, 4))`` of an ``L``-layer model (0, 8, 15, 22 for SmolLM2's
  30; 0, 4, 9, 14 for Gemma 3 270M's 18) as sources and targets, in the 10 pairs whose target is at or below
  the source (patching into a later layer leaves the model little depth to read the state; InSPEcT found the
  useful pairs there) -- and each text is scored by the InSPEcT class rate (share of the task's classes it
  names, on word forms) and the share of the task's keywords it names.  "The model describes this prompt as
  about T" is a claim only against the same grid run on matched meaningless prompts (:mod:`._description_null`:
  same length, the prompt's norm profile, four constructions; cached per model): one claim row, the grid's mean
  class rate, so the grid is one test; each cell's p is shown with BH across the grid.  The task's
  instruction embedded as a prompt (its token embeddings as the model embeds them, tiled or cut to the prompt's
  length like PEFT's TEXT init) is the planted signal the reading must find, reported beside it.
* **Self-description** (:func:`self_description`): the soft prompt placed before a question and the greedy
  continuation -- the grid's cell (source 0, target 0) with a zero-shot question instead of demonstrations, and
  no null: shown as an *other reading*, never a claim.
* **Logit lens** (:mod:`.logit_lens`): each virtual token's state at a layer read through the final norm and the
  output layer -- the same patch with the output layer as the target and the identity as the target prompt
  (the state decoded at its own position, no text around it); also an other reading.

**Hooks, not nnsight.**  Patching uses plain forward hooks on the decoder layers found by
:func:`~.logit_lens.decoder_parts` (llama, Gemma, Qwen2, GPT-2 layouts), removed in ``finally``; layer 0 is the
input rows themselves.  nnsight would add a dependency and a tracing layer whose module paths still differ per
architecture, for what is ~30 lines here.  Generation runs its own greedy loop with the KV cache: the patch
applies on the first forward only (where the placeholder positions exist); the tokens before the placeholders
are computed once and their cache shared by every row (see :mod:`.patchscope`).

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from numbers import Integral
from typing import Any, Callable, Sequence

import numpy as np

from .._params import SEED, Interval, ListOf, Options, check_param, check_params
from ..exceptions import AnalyzerError
from ..stats import ALPHA
from ..types import SoftPrompt, Vocabulary
from ._common import _device, _init_ids, _prompt_matrix, _text_ids, _tile
from ._description_null import (DEFAULT_NULL_SIZE, NULL_CONSTRUCTIONS, describes, grid_tests, grid_texts,
                                norm_profile, null_summary, null_texts, score_texts)
from ._description_result import (DescribedPrompt, DescriptionCell, DescriptionResult, LensTops, OtherReadings,
                                  PlantedDescription, SelfDescription)
from .patchscope import (check_layers, choose_demos, default_layers, description_prompt, num_layers,
                         patched_generate, task_classes)
from .projection import hard_projection

#: Questions of the self-description probe: each follows the soft prompt directly.
DEFAULT_QUESTIONS = (
    "The instruction above asks to",
    "\nIn other words, the text above means:",
)

def greedy_continuation(model, tokenizer, prefix, question: str, *, max_new_tokens: int = 24) -> dict[str, Any]:
    """The greedy continuation of ``[prefix][question tokens]``.

    prefix: ``None``, a ``"n d"`` soft prompt / ``SoftPrompt``, or a list of token ids (fed in the prompt's
    place).  Greedy decoding (no sampling), so the result is deterministic.  Returns ``text`` and
    ``token_ids`` of the continuation (stopped at EOS)."""
    import torch

    dev = _device(model)
    emb_mod = model.get_input_embeddings()
    q_ids = _text_ids(tokenizer, question)
    parts = []
    if prefix is not None:
        if isinstance(prefix, (list, tuple)) and all(isinstance(i, (int, np.integer)) for i in prefix):
            parts.append(emb_mod(torch.tensor([int(i) for i in prefix], device=dev)))
        else:
            parts.append(_prompt_matrix(prefix, model).to(dev, emb_mod.weight.dtype))
    parts.append(emb_mod(torch.tensor(q_ids, device=dev)))
    x = torch.cat(parts, 0).unsqueeze(0)
    eos = tokenizer.eos_token_id
    from transformers import GenerationConfig

    gc = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=int(max_new_tokens),
                          eos_token_id=eos, pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id
                          is not None else eos)
    with torch.no_grad():
        gen = model.generate(inputs_embeds=x, attention_mask=torch.ones(x.shape[:2], dtype=torch.long, device=dev),
                             generation_config=gc)
    out = [int(i) for i in gen[0].tolist()]
    if eos is not None and eos in out:
        out = out[:out.index(eos)]
    return {"text": tokenizer.decode(out, skip_special_tokens=True), "token_ids": out}


def self_description(model, tokenizer, prompt: SoftPrompt, *, questions: Sequence[str] = DEFAULT_QUESTIONS,
                     max_new_tokens: int = 24, index=None, baselines: bool = True) -> list[dict[str, Any]]:
    """Ask the model what the soft prompt says: the prompt, then each question, then the greedy continuation.

    baselines: the same question after no prompt, after the prompt's init tokens (when known) and after its
    hard projection (needs ``index``, a fitted ``NeighborIndex`` or ``Vocabulary``), so a continuation can be
    told apart from what the question alone elicits.  Returns one row per question:
    ``{"question", "soft": {...}, "none": {...}, "init": {...}, "projection": {...}, "differs_from_none"}``."""
    check_param("self_description", "max_new_tokens", max_new_tokens, Interval(Integral, 1, None))
    matrix = _prompt_matrix(prompt, model)
    feeds: dict[str, Any] = {"soft": matrix}
    if baselines:
        feeds["none"] = None
        if isinstance(prompt, SoftPrompt):
            ids = _init_ids(prompt, tokenizer)
            if ids is not None:
                feeds["init"] = ids
        if index is not None:
            feeds["projection"] = list(hard_projection(matrix.numpy(), index).token_ids)
    rows = []
    for q in questions:
        row: dict[str, Any] = {"question": q}
        for name, feed in feeds.items():
            row[name] = greedy_continuation(model, tokenizer, feed, q, max_new_tokens=max_new_tokens)
        if "none" in row:
            row["differs_from_none"] = row["soft"]["token_ids"] != row["none"]["token_ids"]
        rows.append(row)
    return rows



# ---------------------------------------------------------------------------------------------------
# Description (Patchscopes / InSPEcT)
# ---------------------------------------------------------------------------------------------------

DEFAULT_MAX_NEW_TOKENS = 16
PLANTED_KINDS = ("instruction", "label_words")


def embedding_vocabulary(model, tokenizer) -> Vocabulary:
    """A :class:`Vocabulary` of a loaded model's input embeddings (the rows the model sees), for the null's
    constructions when no vocabulary was loaded; its ``key`` hashes the rows."""
    import hashlib

    import torch

    from ..scale import input_embed_scale

    emb = model.get_input_embeddings()
    with torch.no_grad():
        w = (emb.weight.detach().float() * input_embed_scale(emb)).cpu().numpy()
    size = w.shape[0]
    toks = [str(t) for t in tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))]
    toks += [f"<unused{i}>" for i in range(len(toks), size)]
    excluded = np.zeros(size, bool)
    excluded[len(tokenizer):] = True
    excluded[[i for i in tokenizer.all_special_ids if 0 <= i < size]] = True
    key = "emb-" + hashlib.blake2b(np.ascontiguousarray(w).tobytes(), digest_size=8).hexdigest()
    return Vocabulary(name=getattr(model.config, "_name_or_path", "") or type(model).__name__, source="(model)",
                      embeddings=w, tokens=tuple(toks), raw_tokens=tuple(toks), excluded=excluded,
                      tied=False, key=key)


def task_keywords(task, vocab: Vocabulary, n: int = 50) -> list[str]:
    """The task's keywords as the relatedness reading mines them (:func:`analyzer.relatedness.mine_keywords`,
    the task's train texts against the other built-in tasks'): the ``n`` words of ``source="task"``."""
    from ..relatedness import mine_keywords

    return [k["word"] for k in mine_keywords(task, vocab, n=n, n_per_class=0) if k.get("source") == "task"]


def planted_prompt(model, tokenizer, text: str, n: int):
    """float32 ``"n d"``: ``text``'s token embeddings as the model embeds them (Gemma's scale included), tiled
    or cut to ``n`` rows like PEFT's TEXT init."""
    import torch

    emb = model.get_input_embeddings()
    ids = _tile(_text_ids(tokenizer, text), int(n))
    with torch.no_grad():
        return emb(torch.tensor(ids, device=_device(model))).detach().float().cpu()


def describe_prompt(model, tokenizer, prompt, task, *, vocab: Vocabulary | None = None,
                    keywords: Sequence[str] | None = None, layers: Sequence[int] | None = None,
                    source_layers: Sequence[int] | None = None, target_layers: Sequence[int] | None = None,
                    all_pairs: bool = False, null_size: int = DEFAULT_NULL_SIZE,
                    constructions: Sequence[str] = NULL_CONSTRUCTIONS,
                    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, planted: Sequence[str] = ("instruction",),
                    other_readings: bool = True, seed: int = 0, cache: bool = True, alpha: float = ALPHA,
                    model_name: str | None = None, progress: Callable[[str], None] | None = None):
    """The description reading of one soft prompt (see the module docstring): a :class:`DescriptionResult`.

    prompt: a ``SoftPrompt`` or ``"n d"`` matrix in the model's input-embedding space.  task: a ``Task`` or a
    task name/path.  vocab: the model's :class:`Vocabulary` (for the keywords and the null's constructions;
    default: built from the model's embeddings).  keywords: the words whose share is scored (default: the
    relatedness reading's task keywords, :func:`task_keywords`; ``[]`` for none).  layers: the grid's source
    and target layers (``source_layers``/``target_layers`` set them apart); default :func:`default_layers`;
    the cells are the pairs with target <= source, or every pair with ``all_pairs``.  null_size: meaningless
    prompts per construction (4 constructions; at least 20 for p to reach below 0.05; their texts are cached on
    disk unless ``cache=False``).  planted: planted signals to report (``instruction``: the task's instruction
    embedded; ``label_words``: its label words embedded), each read the same way against its own null.
    other_readings:
    also the self-description continuations and the logit lens top tokens (never claims).  progress: a
    callable given one line of text as each step starts."""
    from ..tasks import get_task

    null_size, max_new_tokens, _, seed = check_params("describe_prompt", {
        "null_size": null_size, "max_new_tokens": max_new_tokens, "planted": planted, "seed": seed}, {
        "null_size": [Interval(Integral, 1, None)], "max_new_tokens": [Interval(Integral, 1, None)],
        "planted": [ListOf(Options(*PLANTED_KINDS))], "seed": [SEED]}).values()
    task = get_task(task)
    matrix = _prompt_matrix(prompt, model)
    n = int(matrix.shape[0])
    base = default_layers(model) if layers is None else layers
    sources = check_layers(model, base if source_layers is None else source_layers,
                           "layers" if source_layers is None else "source_layers")
    targets = check_layers(model, base if target_layers is None else target_layers,
                           "layers" if target_layers is None else "target_layers")
    cells = [(s, t) for s in sources for t in targets if all_pairs or t <= s]
    if not cells:
        raise AnalyzerError(f"No cell of the description grid has its target layer at or below its source layer "
                            f"(sources {sources}, targets {targets}); give lower targets or all_pairs=True.")
    classes = task_classes(task)
    if not classes or not all(classes):
        raise AnalyzerError(f"Task {task.name!r} has a class with no word to look for (labels "
                            f"{list(task.labels)}, label words {list(task.label_words)}).")
    target = description_prompt(tokenizer, n, choose_demos(classes))
    vocab = vocab if vocab is not None else embedding_vocabulary(model, tokenizer)
    if vocab.dim != matrix.shape[1]:
        raise AnalyzerError(f"The vocabulary {vocab.name!r} has dim {vocab.dim} but the prompt has dim "
                            f"{matrix.shape[1]}.")
    say = progress or (lambda msg: None)
    if keywords is None:
        say(f"mining the keywords of task {task.name}")
        keywords = task_keywords(task, vocab)
    keywords = [str(k) for k in keywords]

    def read(x, label: str) -> dict[str, Any]:
        profile = norm_profile(x.numpy())
        say(f"{label}: {len(cells)} descriptions (the grid's cells)")
        texts = grid_texts(model, tokenizer, target, [x], cells, max_new_tokens=max_new_tokens)[0]
        null = null_texts(model, tokenizer, vocab, target, profile, cells, max_new_tokens=max_new_tokens,
                          constructions=constructions, per_construction=null_size, seed=seed, cache=cache,
                          progress=say)
        (rates,), (kws,) = score_texts([texts], classes, keywords)
        null_rates, null_kws = score_texts(null["texts"], classes, keywords)
        tests, cell_p, cell_q = grid_tests(rates, kws, null_rates, null_kws, np.asarray(null["groups"]), alpha)
        grid = tuple(DescriptionCell(source_layer=s, target_layer=t, text=texts[k], class_rate=float(rates[k]),
                                     keyword_share=None if not np.isfinite(kws[k]) else round(float(kws[k]), 4),
                                     p=cell_p[k], q=cell_q[k], null_class_rate=round(float(null_rates[:, k].mean()), 4))
                     for k, (s, t) in enumerate(cells))
        best = max(range(len(grid)), key=lambda k: (grid[k].class_rate, grid[k].keyword_share or 0.0,
                                                     bool(grid[k].text.strip()),
                                                     -(grid[k].p if grid[k].p is not None else 1.0), -k))
        return {"grid": grid, "best": grid[best], "tests": tuple(tests),
                "describes_task": describes(tests), "class_rate_mean": round(float(rates.mean()), 4),
                "profile": list(profile), "null": null_summary(null, null_rates, cells)}

    main = read(matrix, "prompt")
    plants = []
    for kind in planted:
        text = task.instruction if kind == "instruction" else " ".join(task.label_words)
        if not text.strip():
            raise AnalyzerError(f"Task {task.name!r} has no {kind.replace('_', ' ')} to plant.")
        r = read(planted_prompt(model, tokenizer, text, n), f"planted {kind.replace('_', ' ')}")
        plants.append(PlantedDescription(kind=kind, text=text, detected=r.pop("describes_task"), **r))
    other = None
    if other_readings:
        say("other readings: self-description and logit lens")
        other = _other_readings(model, tokenizer, prompt, sources, vocab, max_new_tokens)
    settings = {"source_layers": sources, "target_layers": targets, "num_layers": num_layers(model),
                "cells": [list(c) for c in cells],
                "grid": ("layers round(linspace(0, 0.75 L, 4))" if layers is None and source_layers is None and
                         target_layers is None else "given")
                + (", every (source, target) pair" if all_pairs else ", pairs with target <= source"),
                "description_prompt": target.to_dict(), "max_new_tokens": max_new_tokens,
                "classes": [list(c) for c in classes], "keywords": keywords, "null_size": null_size,
                "constructions": list(constructions), "seed": int(seed), "alpha": float(alpha),
                "decoding": "greedy, stops at the first newline or EOS",
                "score": "class rate: share of the task's classes named (label word or class name, word forms: "
                         "lower case, plurals/possessives folded); keyword share: share of the keywords named"}
    name = prompt.name if isinstance(prompt, SoftPrompt) else "prompt"
    return DescriptionResult(prompt=DescribedPrompt(name=name, num_virtual_tokens=n, norm_profile=main["profile"],
                                                    source=getattr(prompt, "source", None)),
                             task=task.name, model=model_name or getattr(model.config, "_name_or_path", ""),
                             grid=main["grid"], best=main["best"], tests=main["tests"],
                             describes_task=main["describes_task"], class_rate_mean=main["class_rate_mean"],
                             null=main["null"], planted=tuple(plants), other_readings=other, settings=settings)


def _other_readings(model, tokenizer, prompt, sources, vocab, max_new_tokens) -> OtherReadings:
    """Self-description continuations and the logit lens top tokens of the virtual tokens (never claims)."""
    from .logit_lens import logit_lens

    vocab_rows = vocab if vocab.size == model.get_output_embeddings().weight.shape[0] else None
    sd = self_description(model, tokenizer, prompt, max_new_tokens=max_new_tokens)
    lens = logit_lens(model, tokenizer, prompt, k=3, vocab=vocab_rows)
    keep = sorted(set(sources) | {lens.layers[-1]})
    return OtherReadings(
        self_description=tuple(SelfDescription(question=r["question"], soft=r["soft"]["text"],
                                               none=r.get("none", {}).get("text"), init=r.get("init", {}).get("text"),
                                               differs_from_none=r.get("differs_from_none")) for r in sd),
        logit_lens=LensTops(layers=tuple(keep), positions=tuple(lens.positions),
                            top_tokens=tuple(tuple(tuple(lens.top_tokens[layer][i]) for i in range(lens.n_virtual))
                                             for layer in keep),
                            top_probs=tuple(tuple(tuple(round(float(p), 4) for p in lens.top_probs[layer, i])
                                                  for i in range(lens.n_virtual)) for layer in keep)))

def describe_for_model(model: str | None, prompt_path, task=None, *, task_index: int | None = None,
                       label_words=None, progress: Callable[[str], None] | None = None, **settings):
    """:func:`describe_prompt` from names, as the ``describe`` command runs it: loads the prompt (``task_index``
    for one task of a multitask adapter), the frozen ``model`` (default: the adapter's base model) and its
    vocabulary, and the task (default: the one the adapter records; ``label_words`` for a CSV/JSONL task).
    ``settings`` go to :func:`describe_prompt`."""
    from dataclasses import replace

    from ..provenance import vocab_provenance
    from ._common import one_prompt_reading

    prompt, task, name, frozen, tok, vocab = one_prompt_reading(
        "describe", model, prompt_path, task, label_words=label_words, task_index=task_index, progress=progress)
    res = describe_prompt(frozen, tok, prompt, task, vocab=vocab, model_name=name, progress=progress, **settings)
    return replace(res, provenance=vocab_provenance(vocab, [prompt], what="model"))


__all__ = ["DEFAULT_QUESTIONS", "DEFAULT_MAX_NEW_TOKENS", "PLANTED_KINDS", "DescriptionResult", "greedy_continuation",
           "self_description", "embedding_vocabulary", "task_keywords", "planted_prompt", "describe_prompt",
           "describe_for_model", "patched_generate"]

"""The machinery of the description reading (:mod:`.description`): a soft prompt's hidden states patched into
a few-shot description prompt, and the greedy text the model then writes; plus the scoring of such texts.

* :func:`source_states` -- the frozen model run on the soft prompt alone (nothing before it, as in prompt
  tuning); the residual stream of the virtual tokens at chosen layers.
* :func:`description_prompt` -- the few-shot target prompt: demonstrations ``Instruction: ...`` / ``Task: ...``
  about unrelated tasks, then ``Instruction:`` followed by one placeholder token per virtual token, then
  ``Task:``.  Demonstrations that mention the analysed task's class names are skipped (the model would copy
  them); the ones used are recorded.
* :func:`patched_generate` -- greedy decoding of the target prompt with the placeholders' residual stream
  replaced after a target layer.  Many patches (cells of a layer grid, several prompts) run as one batch: the
  rows share the target tokens, so no padding is needed, and the demonstrations before the placeholders -- the
  same in every row, and by causal attention untouched by any patch -- are run once and their KV cache copied
  into every row.  Patching happens in forward hooks on the decoder layers (:func:`decoder_parts`) on the first
  forward only (where the placeholder positions exist; later steps feed one new token against the KV cache,
  which already holds the patched positions' keys and values); layer 0 (the input embeddings) is patched by
  replacing the input rows.  The hooks are removed in ``finally``.
* :func:`class_rate` / :func:`keyword_share` -- the InSPEcT class rate (share of the task's classes a text
  names) and the share of the task's keywords it names, on word forms (lower case, plurals and possessives
  folded by :func:`stem`).

Layers are numbered as in :mod:`.logit_lens`: 0 is the input embeddings, ``l`` the residual stream after decoder
layer ``l``.  Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import copy
import re
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Iterator, Sequence

import numpy as np

from .._params import Interval, ListOf, check_param
from ..exceptions import AnalyzerError
from ._common import _device, _prompt_matrix
from .logit_lens import decoder_parts

#: Demonstrations of the description prompt: (instruction, task with its classes), about tasks unrelated to the
#: built-in ones.  The first :data:`N_DEMOS` that name none of the analysed task's classes are used.
DEMONSTRATIONS = (
    ("Name the season the passage describes.", "season (summer, winter, autumn, spring)"),
    ("Tell which sport the news report is about.", "sport (football, tennis, golf)"),
    ("Name the language the sentence is written in.", "language (English, French, German)"),
    ("Tell which animal the story is about.", "animal (cat, dog, horse)"),
    ("Decide whether the statement is true or false.", "truth (true, false)"),
    ("Decide which side the political speech leans to.", "political leaning (left, right)"),
    ("Sort the customer feedback by kind.", "feedback (bug report, feature request, compliment)"),
    ("Name the colour the poem is about.", "colour (red, green, blue)"),
)
N_DEMOS = 3
INSTRUCTION_CUE, TASK_CUE = "Instruction:", "Task:"
PLACEHOLDERS = (" x", "x", " _", " a")       # the first that is one token of the tokenizer is used

_WORD = re.compile(r"[^\W\d_]+")


# ---------------------------------------------------------------------------------------------------
# Scoring on word forms
# ---------------------------------------------------------------------------------------------------

def stem(word: str) -> str:
    """A lower-case word with plurals and possessives folded: ``Entities`` -> ``entity``, ``classes`` ->
    ``class``, ``numbers`` -> ``number``, ``spam's`` -> ``spam`` (a light rule set, not a full stemmer: verb
    and adjective endings are kept, so ``positively`` is not ``positive``)."""
    w = word.lower().strip("'’")
    for tail in ("'s", "’s"):
        if w.endswith(tail):
            w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("sses", "ches", "shes", "xes", "zes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def text_stems(text: str) -> list[str]:
    """The stems of a text's words (runs of letters)."""
    return [stem(w) for w in _WORD.findall(str(text).replace("’", "'"))]


def _phrase(words: str) -> tuple[str, ...]:
    return tuple(text_stems(words))


def mentions(text_or_stems, phrase: str) -> bool:
    """Whether a text (or its :func:`text_stems`) names ``phrase`` (one or more words) as whole word forms."""
    st = text_stems(text_or_stems) if isinstance(text_or_stems, str) else list(text_or_stems)
    ph = _phrase(phrase)
    if not ph:
        return False
    k = len(ph)
    return any(tuple(st[i:i + k]) == ph for i in range(len(st) - k + 1))


def task_classes(task) -> list[tuple[str, ...]]:
    """The forms of each class of ``task``: its label word and its class name (``("positive", "fresh")``), a
    class counting as named when any of its forms is.  A class name that is no word (``0``) is left out."""
    out = []
    for lab, w in zip(task.labels, task.label_words):
        forms = [str(w).strip()]
        if str(lab).strip() and _phrase(str(lab)) and _phrase(str(lab)) != _phrase(forms[0]):
            forms.append(str(lab).strip())
        out.append(tuple(f for f in forms if _phrase(f)))
    return out


def class_rate(text: str, classes: Sequence[Sequence[str]]) -> float:
    """InSPEcT's class rate: the share of the classes (each a tuple of forms) that ``text`` names."""
    if not classes:
        return float("nan")
    st = text_stems(text)
    return sum(any(mentions(st, f) for f in forms) for forms in classes) / len(classes)


def keyword_share(text: str, keywords: Sequence[str]) -> float | None:
    """The share of ``keywords`` that ``text`` names (None without keywords)."""
    kws = list(dict.fromkeys(k for k in keywords if _phrase(k)))
    if not kws:
        return None
    st = text_stems(text)
    return sum(mentions(st, k) for k in kws) / len(kws)


# ---------------------------------------------------------------------------------------------------
# The description prompt
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DescriptionPrompt:
    """A tokenized description prompt: ``ids`` with ``n`` placeholders at ``start``; ``text`` as readable text;
    ``demos``: the demonstrations used; ``placeholder``: the placeholder token's text."""

    ids: tuple[int, ...]
    start: int
    n: int
    text: str
    demos: tuple[tuple[str, str], ...]
    placeholder: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "demonstrations": [list(d) for d in self.demos], "placeholder": self.placeholder,
                "placeholder_start": self.start, "n_tokens": len(self.ids)}


def choose_demos(classes: Sequence[Sequence[str]], n_demos: int = N_DEMOS,
                 pool: Sequence[tuple[str, str]] = DEMONSTRATIONS) -> tuple[tuple[str, str], ...]:
    """The first ``n_demos`` demonstrations of ``pool`` that name none of the classes' forms."""
    keep = [d for d in pool if not any(mentions(d[0] + " " + d[1], f) for forms in classes for f in forms)]
    if len(keep) < n_demos:
        raise AnalyzerError(f"Only {len(keep)} of the {len(pool)} description demonstrations avoid the task's class "
                            f"names {[list(c) for c in classes]}; {n_demos} are needed.")
    return tuple(keep[:n_demos])


def description_prompt(tokenizer, n: int, demos: Sequence[tuple[str, str]]) -> DescriptionPrompt:
    """The target prompt for ``n`` virtual tokens: the demonstrations, then ``Instruction:`` + ``n``
    placeholders + a newline and ``Task:``.  The text before the placeholders is tokenized with the tokenizer's
    own special tokens (a BOS where the model expects one)."""
    head = "".join(f"{INSTRUCTION_CUE} {ins}\n{TASK_CUE} {desc}\n" for ins, desc in demos) + INSTRUCTION_CUE
    tail = f"\n{TASK_CUE}"
    pre = [int(i) for i in tokenizer(head, add_special_tokens=True)["input_ids"]]
    eos = tokenizer.eos_token_id
    if eos is not None and len(pre) > 1 and pre[-1] == eos:      # some tokenizers append EOS as well
        pre = pre[:-1]
    for ph in PLACEHOLDERS:
        ph_ids = tokenizer.encode(ph, add_special_tokens=False)
        if len(ph_ids) == 1:
            break
    else:
        raise AnalyzerError(f"No one-token placeholder among {list(PLACEHOLDERS)} in this tokenizer.")
    post = [int(i) for i in tokenizer.encode(tail, add_special_tokens=False)]
    ids = tuple(pre + [int(ph_ids[0])] * n + post)
    return DescriptionPrompt(ids=ids, start=len(pre), n=int(n), text=head + ph * n + tail, demos=tuple(demos),
                             placeholder=ph)


# ---------------------------------------------------------------------------------------------------
# Source states and patched generation
# ---------------------------------------------------------------------------------------------------

def num_layers(model) -> int:
    return len(decoder_parts(model)[0])


def check_layers(model, layers: Sequence[int], name: str = "layers", owner: str = "describe_prompt") -> list[int]:
    """``layers`` sorted and without repeats when they are a non-empty list of ints in ``[0, n]`` (0: the input
    embeddings, n: the last decoder layer of this model); else AnalyzerError naming ``owner``'s ``name``."""
    return sorted(set(check_param(owner, name, layers, ListOf(Interval(Integral, 0, num_layers(model)), min_len=1))))


def default_layers(model, k: int = 4) -> list[int]:
    """``k`` evenly spaced layers from the input embeddings (0) to three quarters of the depth."""
    n = num_layers(model)
    return sorted({int(round(x)) for x in np.linspace(0, 0.75 * n, k)})


def source_states(model, prompt, layers: Sequence[int]) -> dict[int, Any]:
    """``{layer: float32 "n_virtual d_model"}``: the residual stream of the soft prompt alone at ``layers``
    (0: the prompt's own vectors).  One forward, no KV cache."""
    import torch

    from .logit_lens import residual_stream_hooks

    dev = _device(model)
    emb = model.get_input_embeddings()
    x = _prompt_matrix(prompt, model).to(dev, emb.weight.dtype).unsqueeze(0)
    dec, _, _ = decoder_parts(model)
    with torch.no_grad(), residual_stream_hooks(dec) as store:
        model(inputs_embeds=x, use_cache=False)
        states = {0: x[0]} | {i: store[i][0] for i in store}
    return {int(layer): states[int(layer)].detach().float().cpu() for layer in layers}


@contextmanager
def patch_hooks(model, start: int, plan: dict[int, list[tuple[int, Any]]]) -> Iterator[dict[str, int]]:
    """Forward hooks that, on the first forward after entering, replace the residual stream after decoder layer
    ``l`` (1-based) at positions ``start .. start + n - 1`` of batch row ``r`` by ``states`` for every
    ``(r, states "n d")`` in ``plan[l]``.  Later forwards (one new token against the KV cache) pass untouched.
    Yields a counter ``{"forwards": ..., "patched": ...}``; the hooks are removed in ``finally``."""
    dec, _, _ = decoder_parts(model)
    count = {"forwards": 0, "patched": 0}
    handles = []

    def make(rows):
        def hook(_module, _inputs, output):
            if count["forwards"]:
                return None
            h = output[0] if isinstance(output, (tuple, list)) else output
            for r, st in rows:
                h[r, start:start + st.shape[0]] = st.to(h.device, h.dtype)
                count["patched"] += 1
            return None
        return hook

    def done(_module, _inputs, _output):
        count["forwards"] += 1

    try:
        for layer, rows in plan.items():
            if rows:
                handles.append(dec[int(layer) - 1].register_forward_hook(make(rows)))
        handles.append(model.register_forward_hook(done))
        yield count
    finally:
        for h in handles:
            h.remove()


def _is_stop(tokenizer, tid: int, eos) -> bool:
    return (eos is not None and tid in eos) or "\n" in tokenizer.decode([tid])


def _forward_kwargs(model) -> tuple[str, dict[str, Any]]:
    """The name under which the model's forward takes a KV cache (``cache`` since transformers 5.2x, before
    that ``past_key_values``), and ``logits_to_keep=1`` where it takes that (only the last logits are read)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return ("cache" if "cache" in params else "past_key_values",
            {"logits_to_keep": 1} if "logits_to_keep" in params else {})


def patched_generate(model, tokenizer, target: DescriptionPrompt, patches: Sequence[tuple[int, Any]], *,
                     max_new_tokens: int = 20, batch_size: int = 64, share_prefix: bool = True,
                     return_logits: bool = False) -> list[dict[str, Any]]:
    """Greedy continuations of ``target`` with its placeholders patched, one per ``(target_layer, states
    "n d")`` of ``patches`` (``None`` states: unpatched).  Layer 0 replaces the placeholder rows of the input
    embeddings; layer ``l >= 1`` the residual stream after decoder layer ``l``, on the first forward only.

    Each continuation stops at its first newline or EOS (the newline is dropped) or after ``max_new_tokens``;
    finished rows leave the batch.  ``share_prefix``: run the tokens before the placeholders once and copy their
    KV cache into every row (the same values up to float rounding of a different matmul split; off reruns them
    in every row).  Returns one dict per patch: ``text`` and ``token_ids`` of the continuation and, with
    ``return_logits``, ``logits`` (float32 "vocab") of the first predicted token.  Deterministic."""
    import torch
    from transformers import DynamicCache

    check_param("patched_generate", "max_new_tokens", max_new_tokens, Interval(Integral, 1, None))
    dev = _device(model)
    emb = model.get_input_embeddings()
    d = int(emb.weight.shape[1])
    n_layers = num_layers(model)
    for layer, st in patches:
        check_param("patched_generate", "target_layer", layer, Interval(Integral, 0, n_layers))
        if st is not None and tuple(st.shape) != (target.n, d):
            raise AnalyzerError(f"Patched states have shape {tuple(st.shape)}; the description prompt has "
                                f"{target.n} placeholders of dim {d}.")
    eos = tokenizer.eos_token_id
    eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) if eos is not None else None
    cache_arg, kw = _forward_kwargs(model)
    out: list[dict[str, Any]] = []
    with torch.no_grad():
        base = emb(torch.tensor(target.ids, device=dev).unsqueeze(0))                 # 1 T d
        prefix_cache, cut = None, 0
        if share_prefix and target.start > 0:
            prefix_cache = DynamicCache(config=model.config)
            model(inputs_embeds=base[:, :target.start], use_cache=True, **{cache_arg: prefix_cache}, **kw)
            cut = target.start
        start = target.start - cut
        for b0 in range(0, len(patches), int(batch_size)):
            chunk = patches[b0:b0 + int(batch_size)]
            B = len(chunk)
            x = base[:, cut:].expand(B, -1, -1).clone()
            plan: dict[int, list] = {}
            for r, (layer, st) in enumerate(chunk):
                if st is None:
                    continue
                if int(layer) == 0:
                    x[r, start:start + target.n] = st.to(dev, x.dtype)
                else:
                    plan.setdefault(int(layer), []).append((r, st))
            if prefix_cache is not None:
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(B)
            else:
                cache = DynamicCache(config=model.config)
            rows: list[list[int]] = [[] for _ in range(B)]
            first = None
            alive = list(range(B))                      # batch position -> row
            with patch_hooks(model, start, plan):
                res = model(inputs_embeds=x, use_cache=True, **{cache_arg: cache}, **kw)
                for step in range(int(max_new_tokens)):
                    logits = res.logits[:, -1].float()
                    if first is None:
                        first = logits.cpu()
                    nxt = logits.argmax(-1)
                    keep = []
                    for j, r in enumerate(alive):
                        tid = int(nxt[j])
                        if not _is_stop(tokenizer, tid, eos):
                            rows[r].append(tid)
                            keep.append(j)
                    if not keep or step == max_new_tokens - 1:
                        break
                    given = getattr(res, cache_arg, None)
                    cache = given if given is not None else cache
                    if len(keep) < len(alive):
                        cache.batch_select_indices(torch.tensor(keep, device=dev))
                        alive = [alive[j] for j in keep]
                        nxt = nxt[keep]
                    res = model(input_ids=nxt.unsqueeze(1), use_cache=True, **{cache_arg: cache}, **kw)
            for r in range(B):
                item = {"text": tokenizer.decode(rows[r], skip_special_tokens=True).strip(), "token_ids": rows[r]}
                if return_logits:
                    item["logits"] = first[r]
                out.append(item)
    return out


__all__ = ["DEMONSTRATIONS", "N_DEMOS", "DescriptionPrompt", "stem", "text_stems", "mentions", "task_classes",
           "class_rate", "keyword_share", "choose_demos", "description_prompt", "num_layers", "check_layers",
           "default_layers", "source_states", "patch_hooks", "patched_generate"]

"""The prompt read as discrete text, and what that reading costs.

* **Hard projection**: the nearest vocabulary token of each virtual token.
* **Prompt-F1** (Khashabi et al. 2022, "Prompt Waywardness"): token-level F1 between the projected token
  sequence and a reference text's tokens.
* **Projection gap** (PEZ, Wen et al. 2023): rank-classification accuracy of the soft prompt, of its
  nearest-token projection fed as ordinary tokens, of its initialisation and of no prompt at all (plus the task's
  instruction), each with a Wilson 95% interval and the chance levels; the soft − projection gap with a paired
  bootstrap interval and an exact McNemar test (both from :mod:`analyzer.stats`).

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Mapping, Sequence

import numpy as np

from .._params import Interval, ListOf, Options, check_params
from ..exceptions import AnalyzerError
from ..stats import mcnemar_exact, paired_bootstrap_diff
from ..types import SoftPrompt, Vocabulary
from ._common import _device, _init_ids, _prompt_matrix, _text_ids, _tile, _token_strings
from .evaluation import accuracy_from_eval

#: Conditions :func:`projection_gap` can compare, in display order; DEFAULT_CONDITIONS are measured by default.
CONDITIONS = ("none", "instruction", "init", "projection", "projection_text", "soft")
DEFAULT_CONDITIONS = ("none", "instruction", "init", "projection", "soft")

@dataclass(frozen=True)
class HardProjection:
    """The nearest vocabulary token of each virtual token (the prompt read as discrete text).

    token_ids, tokens, scores: one per virtual token (score: cosine, or distance for ``l2``).
    metric:      the neighbour metric.
    text:        the tokens decoded to a string (when a tokenizer was given).
    round_trip:  whether ``text`` re-tokenizes to exactly ``token_ids`` (a decoded projection may not).
    """

    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    scores: tuple[float, ...]
    metric: str
    text: str | None = None
    round_trip: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"token_ids": list(self.token_ids), "tokens": list(self.tokens), "scores": list(self.scores),
                "metric": self.metric, "text": self.text, "round_trip": self.round_trip}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HardProjection:
        """Read back a ``to_dict()``."""
        return cls(token_ids=tuple(d["token_ids"]), tokens=tuple(d["tokens"]), scores=tuple(d["scores"]),
                   metric=d["metric"], text=d.get("text"), round_trip=d.get("round_trip"))


def hard_projection(prompt, index, *, tokenizer=None, metric: str = "cosine") -> HardProjection:
    """Project each virtual token onto its nearest vocabulary token.

    prompt:  a ``SoftPrompt`` or a ``"n_virtual d_model"`` array.
    index:   a fitted :class:`~analyzer.neighbors.NeighborIndex` (its metric is used), or a ``Vocabulary``
             (a ``NeighborIndex(metric)`` is fitted; special and unused rows are never chosen).
    tokenizer: when given, the projection is decoded to text and checked to re-tokenize to the same ids."""
    from ..neighbors import NeighborIndex

    if isinstance(index, Vocabulary):
        index = NeighborIndex(metric=metric, k=1).fit(index)
    elif not isinstance(index, NeighborIndex):
        raise AnalyzerError(f"Expected a fitted NeighborIndex or a Vocabulary to project onto; got "
                            f"{type(index).__name__}.")
    vectors = prompt.vectors if isinstance(prompt, SoftPrompt) else np.asarray(prompt, dtype=np.float32)
    scores, ids = index.kneighbors(vectors, 1)
    ids = tuple(int(i) for i in ids[:, 0])
    text = rt = None
    if tokenizer is not None:
        text = tokenizer.decode(list(ids))
        rt = tokenizer.encode(text, add_special_tokens=False) == list(ids)
    return HardProjection(token_ids=ids, tokens=tuple(_token_strings(ids, tokenizer, index.vocab_)),
                          scores=tuple(float(s) for s in scores[:, 0]), metric=index.metric, text=text,
                          round_trip=rt)



def _loose(tok: str) -> str:
    return tok.replace("␣", " ").replace("Ġ", " ").replace("▁", " ").strip().lower()


def prompt_f1(predicted: Sequence, reference: Sequence) -> dict[str, float]:
    """Token-level F1 of two token sequences (ids or strings), counting repeated tokens as a multiset
    (SQuAD-style, as Prompt-F1 in Khashabi et al. 2022).  Returns ``precision``, ``recall``, ``f1``,
    ``common``; all 0 when either side is empty."""
    p, r = Counter(predicted), Counter(reference)
    common = sum((p & r).values())
    if not predicted or not reference or common == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "common": int(common)}
    prec, rec = common / len(predicted), common / len(reference)
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec), "common": int(common)}


def projection_f1(projection: HardProjection, reference, tokenizer=None, *, tile: bool = True,
                  vocab: Vocabulary | None = None) -> dict[str, Any]:
    """Prompt-F1 of a projection against a reference: a text (tokenized without special tokens) or token ids.

    tile:  repeat/cut the reference tokens to the prompt length first, the way PEFT's TEXT init fills a prompt
           longer or shorter than its text (so an untrained TEXT-init prompt scores exactly 1).
    Returns ``f1``/``precision``/``recall`` over token ids, ``f1_loose`` over token strings with the
    whitespace marker and case ignored (``␣The`` = ``the``), and the reference used."""
    if isinstance(reference, str):
        if tokenizer is None:
            raise AnalyzerError("A reference text needs the tokenizer to be split into tokens; pass tokenizer=.")
        ref_ids = _text_ids(tokenizer, reference)
        ref_text = reference
    else:
        ref_ids = [int(i) for i in reference]
        ref_text = tokenizer.decode(ref_ids) if tokenizer is not None else None
    if tile:
        ref_ids = _tile(ref_ids, len(projection.token_ids))
    out = dict(prompt_f1(list(projection.token_ids), ref_ids))
    pred_s = [_loose(t) for t in projection.tokens]
    ref_s = [_loose(t) for t in _token_strings(ref_ids, tokenizer, vocab)]
    out["f1_loose"] = prompt_f1(pred_s, ref_s)["f1"]
    out.update(reference_text=ref_text, reference_ids=ref_ids, tiled=bool(tile))
    return out


def projection_gap(model, tokenizer, prompt: SoftPrompt, task, index, *, split: str = "test",
                   limit: int | None = 200, conditions: Sequence[str] = DEFAULT_CONDITIONS,
                   reference_text: str | None = None, batch_size: int = 32, max_length: int = 128,
                   model_name: str | None = None, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Accuracy of the soft prompt vs its hard projection vs its init vs no prompt (vs the task's instruction).

    model, tokenizer: the frozen model (:func:`analyzer.models.load_frozen_model`).
    prompt:  a ``SoftPrompt``; task: a ``Task`` or task name; index: a fitted ``NeighborIndex`` or a
             ``Vocabulary`` (for the projection).
    conditions: any of ``none`` (the template alone), ``instruction`` (the task's hand-written instruction as
             text), ``init`` (the prompt's init tokens, as ids in the prompt's place: exactly where training
             started), ``projection`` (the nearest tokens, as ids in the prompt's place), ``projection_text``
             (the projection decoded to a string and written as an instruction, re-tokenized: what a person
             copying the reading into a prompt gets; not measured by default), ``soft``.
    reference_text: an extra reference for Prompt-F1 (the init is always one when known).

    Returns a JSON-able dict: ``accuracy`` {condition: Accuracy dict}, ``gap`` (soft − projection, paired
    bootstrap 95% CI and exact McNemar p), ``projection``, ``prompt_f1`` {reference name: F1 dict},
    ``split``, ``n``, ``chance``, ``majority``, ``skipped`` {condition: why}, ``same_input`` (groups of
    conditions that feed the model exactly the same input and so were scored once)."""
    from ..tasks import get_task
    from ..training.scoring import evaluate

    limit, _ = check_params("projection_gap", {"limit": limit, "conditions": conditions}, {
        "limit": [Interval(Integral, 1, None), None], "conditions": [ListOf(Options(*CONDITIONS))]}).values()
    task = get_task(task)
    matrix = _prompt_matrix(prompt, model)
    proj = hard_projection(prompt, index, tokenizer=tokenizer)
    vocab = getattr(index, "vocab_", index)
    init_ids = _init_ids(prompt, tokenizer)
    feeds: dict[str, Any] = {}
    shown: dict[str, str | None] = {}
    skipped: dict[str, str] = {}
    for c in conditions:
        if c == "none":
            feeds[c], shown[c] = None, None
        elif c == "instruction":
            if task.instruction:
                feeds[c], shown[c] = task.instruction, task.instruction
            else:
                skipped[c] = f"task {task.name!r} has no instruction"
        elif c == "init":
            if init_ids is None:
                skipped[c] = f"the prompt's init ({prompt.init or 'unknown'}) has no tokens"
            else:
                feeds[c], shown[c] = init_ids, "".join(_token_strings(init_ids, tokenizer, vocab))
        elif c == "projection":
            feeds[c], shown[c] = list(proj.token_ids), "".join(proj.tokens)
        elif c == "projection_text":
            if proj.text and proj.text.strip():
                feeds[c], shown[c] = proj.text, proj.text
            else:
                skipped[c] = "the projection decodes to blank text"
        elif c == "soft":
            feeds[c], shown[c] = matrix, None
    # Identical inputs are scored once: init and projection often hold the same ids, and a soft prompt that
    # is exactly its tokens' embeddings (untrained TEXT/VOCAB init) is the same input as its projection.
    import torch

    emb_mod = model.get_input_embeddings()
    with torch.no_grad():       # what the ids become inside the model (Gemma scales its token embeddings)
        as_ids = emb_mod(torch.tensor(list(proj.token_ids), device=_device(model))).to("cpu", torch.float32)
    is_exact = bool(torch.equal(matrix, as_ids))
    results, acc, done, groups = {}, {}, {}, {}
    for c, feed in feeds.items():
        if isinstance(feed, list):
            key = ("ids", tuple(feed))
        elif c == "soft" and is_exact:
            key = ("ids", tuple(proj.token_ids))
        else:
            key = (c,)
        if key not in done:
            done[key] = evaluate(model, tokenizer, task, feed, split=split, limit=limit, batch_size=batch_size,
                                 max_length=max_length, model_name=model_name)
        r = results[c] = done[key]
        groups.setdefault(key, []).append(c)
        acc[c] = accuracy_from_eval(r, task, c, prompt=shown[c]).to_dict()
    gap = None
    if "soft" in results and "projection" in results:
        a = results["soft"].predictions == results["soft"].targets
        b = results["projection"].predictions == results["projection"].targets
        gap = {**paired_bootstrap_diff(a, b, n_boot=n_boot, seed=seed), "mcnemar": mcnemar_exact(a, b),
               "agreement": float((results["soft"].predictions == results["projection"].predictions).mean())}
    f1 = {}
    if init_ids is not None:
        f1["init"] = projection_f1(proj, init_ids, tokenizer, tile=False, vocab=vocab)
    if task.instruction:
        f1["instruction"] = projection_f1(proj, task.instruction, tokenizer, tile=False, vocab=vocab)
    if reference_text:
        f1["reference"] = projection_f1(proj, reference_text, tokenizer, tile=False, vocab=vocab)
    any_acc = next(iter(acc.values()), None)
    return {"task": task.name, "split": split, "n": any_acc["n"] if any_acc else 0,
            "chance": 1.0 / task.num_labels, "majority": any_acc["majority"] if any_acc else None,
            "majority_label": any_acc["majority_label"] if any_acc else None,
            "accuracy": acc, "gap": gap, "projection": proj.to_dict(), "prompt_f1": f1, "skipped": skipped,
            "same_input": [g for g in groups.values() if len(g) > 1]}


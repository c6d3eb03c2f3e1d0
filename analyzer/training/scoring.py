"""Rank classification with a frozen causal LM, with or without a prompt in front: the one forward pass the
trainer, ``evaluate`` and the analysis share.

The input of one example is ``[prompt][tokens of task.format(text)]``; the class whose label word (``" positive"``)
gets the highest next-token logit at the last real position wins.  To be cheap on a CPU:

* sequences are right-padded, so the causal mask alone keeps padding out of every real position (no attention
  mask is built) and the positions are ``0..n-1`` for the prompt then the text, exactly as PEFT's
  ``PeftModelForCausalLM`` does for prompt tuning;
* only the last real position's hidden state goes through the output layer, and only the label words' rows of
  it (``K x d`` instead of ``vocab x d`` for every position);
* batches group examples of similar length (dynamic padding)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Sequence

import numpy as np
import torch

from .._params import Interval, check_params
from ..exceptions import ShapeMismatchError, TaskError
from ..tasks import Example, Task, get_task


# ---------------------------------------------------------------------------------------------- encoding
def encode_examples(tokenizer, task: Task, examples: Sequence[Example], *, max_length: int = 128,
                    instruction: str | None = None) -> list[list[int]]:
    """Token ids of ``task.format(text)`` per example (with the tokenizer's own special tokens), at most
    ``max_length`` long: a longer text is cut, keeping the template's end (``"\\nSentiment:"``).

    ``instruction``: a hard prompt written before the formatted text (``instruction + "\\n" + formatted``)."""
    lead = (instruction.rstrip("\n") + "\n") if instruction else ""
    texts = [lead + task.format(ex.text) for ex in examples]
    if not texts:
        return []
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    tail = task.template.split("{text}")[-1]
    tail_ids = tokenizer.encode(tail, add_special_tokens=False) if tail else []
    limit = max_length + (len(tokenizer.encode(lead, add_special_tokens=False)) if lead else 0)
    out = []
    for seq, ex in zip(ids, examples):
        if len(seq) > limit:
            head = tokenizer(lead + task.template.split("{text}")[0] + ex.text, add_special_tokens=True)["input_ids"]
            seq = head[:max(1, limit - len(tail_ids))] + tail_ids
        out.append(list(seq))
    return out


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int):
    """Right-padded ``"batch seq"`` LongTensor and the lengths ``"batch"``."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    ids = torch.full((len(seqs), int(lengths.max())), int(pad_id), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return ids, lengths


def pad_id_of(tokenizer) -> int:
    for attr in ("pad_token_id", "eos_token_id", "unk_token_id"):
        v = getattr(tokenizer, attr, None)
        if v is not None:
            return int(v)
    return 0


# ---------------------------------------------------------------------------------------------- the module
def _body_of(model):
    """The decoder stack without its output layer (``model.model`` for llama-like models), or None."""
    prefix = getattr(model, "base_model_prefix", None)
    body = getattr(model, prefix, None) if prefix else None
    if body is None or body is model:
        return None
    return body


class PromptedClassifier(torch.nn.Module):
    """A frozen causal LM with a trainable prompt in front, returning label-word logits ``"batch K"``.

    The frozen model is held outside the module's parameters (``self.lm`` is not a submodule), so DDP
    broadcasts and all-reduces only the prompt, and ``state_dict()`` holds only the prompt."""

    def __init__(self, model, label_ids: Sequence[int], prompt=None):
        super().__init__()
        self.prompt = torch.nn.Parameter(prompt) if prompt is not None else None
        object.__setattr__(self, "lm", model)
        self.label_ids = torch.as_tensor(list(label_ids), dtype=torch.long)
        self._body = _body_of(model)
        self._cap = getattr(model.config, "final_logit_softcapping", None)

    @property
    def device(self):
        try:
            return next(self.lm.parameters()).device
        except StopIteration:  # pragma: no cover
            return torch.device("cpu")

    def forward(self, input_ids, lengths, prefix=None):
        """input_ids ``"batch seq"`` (right-padded), lengths ``"batch"``; ``prefix`` (``"n d"``) replaces the
        module's own prompt (evaluation of another soft prompt)."""
        lm = self.lm
        dev = self.device                  # the inputs follow the model (a GPU's model gets CPU-built batches)
        emb = lm.get_input_embeddings()(input_ids.to(dev))
        p = self.prompt if prefix is None else prefix
        n = 0
        if p is not None:
            n = p.shape[0]
            emb = torch.cat([p.to(dev, emb.dtype).unsqueeze(0).expand(emb.shape[0], -1, -1), emb], dim=1)
        last = lengths.to(dev) + (n - 1)
        rows = torch.arange(emb.shape[0], device=dev)
        label_ids = self.label_ids.to(dev)
        if self._body is not None:
            hidden = self._body(inputs_embeds=emb, use_cache=False).last_hidden_state
            logits = self.label_logits(hidden[rows, last])
        else:  # a model without a separable body: full logits, then pick
            full = lm(inputs_embeds=emb, use_cache=False).logits
            logits = full[rows, last][:, label_ids]
        return logits.float()

    def label_logits(self, h):
        """The label words' logits ``"batch K"`` of final hidden states ``h`` ``"batch d"`` (the label rows of the
        output layer, its bias, the model's final logit soft-capping)."""
        out_emb = self.lm.get_output_embeddings()
        label_ids = self.label_ids.to(h.device)
        logits = h @ out_emb.weight[label_ids].T
        bias = getattr(out_emb, "bias", None)
        if bias is not None:
            logits = logits + bias[label_ids]
        if self._cap:
            logits = torch.tanh(logits / self._cap) * self._cap
        return logits


def prompted_classifier(model, label_ids: Sequence[int], prompt=None) -> PromptedClassifier:
    """The shared forward as a ``torch.nn.Module``; ``prompt`` (``"n d"``) becomes its trainable parameter."""
    return PromptedClassifier(model, label_ids, prompt)


#: what one batch costs beyond its padded tokens, in tokens: the per-call work of a forward (about 30 small
#: operations per layer whatever the batch) and the poorer efficiency of small matrix products.  On SmolLM2 with 2
#: threads (``benchmarks/bench_importance.py --batching``) 48 to 100,000 ran within 5% of each other, all 1.1x
#: (sentiment) to 1.36x (spam) faster than fixed batches of 32; 0 (a batch per length) ran 4x slower
BATCH_OVERHEAD_TOKENS = 192


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None, *,
                          overhead: int = BATCH_OVERHEAD_TOKENS) -> list[list[int]]:
    """Indices cut into batches of at most ``batch_size`` examples and, when given, ``max_tokens`` padded tokens,
    padding as little as the batch overhead allows.

    Every batch is padded to its longest sequence, so the work of a batching is its padded tokens plus
    ``overhead`` per batch.  The batches are runs of the indices sorted by length (longest first) -- for this
    cost an optimal batching can always be taken of that form -- and the cut points are chosen by dynamic
    programming to minimise that work.  On 100 test examples fixed batches of 32 padded 22% (sentiment) and 39%
    (spam) of the tokens, this 14% and 18%."""
    n = len(lengths)
    order = sorted(range(n), key=lambda i: -lengths[i])
    size = [int(lengths[i]) for i in order]
    cap = max(1, int(batch_size))
    best = [0.0] + [float("inf")] * n      # best[j]: the least work of the first j sorted sequences
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for c in range(1, min(cap, j) + 1):
            i = j - c                      # the batch order[i:j]; its longest is size[i]
            if c > 1 and max_tokens and size[i] * c > max_tokens:
                break
            work = best[i] + size[i] * c + overhead
            if work < best[j]:
                best[j], cut[j] = work, i
    batches, j = [], n
    while j > 0:
        batches.append(order[cut[j]:j])
        j = cut[j]
    return batches[::-1]


# ---------------------------------------------------------------------------------------------- evaluate
@dataclass(frozen=True, eq=False)
class EvalResult:
    """Rank-classification accuracy of one prompt on a task split.

    predictions, targets: int arrays ``"n"`` (indices into ``labels``); label_probs: float32 ``"n K"`` (softmax
    over the label words only); per_label: accuracy per class; balanced_accuracy: their mean; loss: mean
    cross-entropy over the label words; prompt_kind: ``none``, ``text``, ``token_ids`` or ``soft``; correct: bool
    ``"n"``, per-example correctness (``predictions == targets``)."""

    task: str
    split: str
    prompt_kind: str
    accuracy: float
    balanced_accuracy: float
    loss: float
    n: int
    labels: tuple[str, ...]
    predictions: np.ndarray
    targets: np.ndarray
    label_probs: np.ndarray
    per_label: dict

    def __float__(self) -> float:
        return self.accuracy

    @property
    def correct(self) -> np.ndarray:
        """bool ``"n"``: whether each example was classified right (the paired data of a McNemar test)."""
        return np.asarray(self.predictions) == np.asarray(self.targets)

    def __repr__(self) -> str:
        return (f"EvalResult(task={self.task!r}, split={self.split!r}, prompt={self.prompt_kind}, "
                f"accuracy={self.accuracy:.4f}, balanced_accuracy={self.balanced_accuracy:.4f}, n={self.n})")

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "split": self.split, "prompt": self.prompt_kind, "accuracy": self.accuracy,
                "balanced_accuracy": self.balanced_accuracy, "loss": self.loss, "n": self.n,
                "per_label": dict(self.per_label)}


def _as_prefix(prompt, model, model_name):
    """(kind, instruction text, prefix token ids, prefix matrix) of the prompt argument."""
    if prompt is None:
        return "none", None, None, None
    if isinstance(prompt, str):
        return "text", prompt, None, None
    if isinstance(prompt, os.PathLike):
        from ..loaders import load_prompt

        prompt = load_prompt(prompt)
    vectors = getattr(prompt, "vectors", None)
    src = f" ({prompt.name})" if vectors is not None else ""
    if vectors is None:
        if isinstance(prompt, (list, tuple)) and all(isinstance(i, (int, np.integer)) for i in prompt):
            return "token_ids", None, [int(i) for i in prompt], None
        vectors = prompt
    t = torch.as_tensor(np.asarray(vectors.detach().cpu() if isinstance(vectors, torch.Tensor) else vectors),
                        dtype=torch.float32)
    if t.ndim != 2:
        raise ShapeMismatchError(f"A soft prompt must be a 2-d matrix (n_virtual x d_model); got shape "
                                 f"{tuple(t.shape)}{src}.")
    d = model.get_input_embeddings().weight.shape[1]
    if t.shape[1] != d:
        raise ShapeMismatchError(f"Soft prompt{src} has dim {t.shape[1]} but the model {model_name} has dim {d}.")
    return "soft", None, None, t


def score(module, seqs: Sequence[Sequence[int]], *, pad_id: int, batch_size: int = 32, prefix=None,
          max_tokens: int | None = 8192):
    """Label logits ``"n K"`` (float32 numpy) of already-encoded sequences, in their order."""
    dev = module.device
    lengths = [len(s) for s in seqs]
    out = np.zeros((len(seqs), len(module.label_ids)), dtype=np.float32)
    with torch.no_grad():
        for b in length_sorted_batches(lengths, batch_size, max_tokens):
            ids, lens = pad_batch([seqs[i] for i in b], pad_id)
            logits = module(ids.to(dev), lens.to(dev), prefix=None if prefix is None else prefix.to(dev))
            out[b] = logits.cpu().numpy()
    return out


def evaluate(model, tokenizer, task: Task | str, prompt=None, *, split: str | Sequence[Example] = "test",
             limit: int | None = None, batch_size: int = 32, max_length: int = 128,
             model_name: str | None = None) -> EvalResult:
    """Rank-classification accuracy of ``model`` on a task split with

    * ``prompt=None``: no prompt (zero-shot; the template alone);
    * ``prompt="..."``: a hand-written instruction (hard prompt) written before the formatted text;
    * ``prompt=[ids]``: a hard prompt given as token ids (e.g. a soft prompt's nearest tokens), put where a soft
      prompt goes;
    * a soft prompt: a ``SoftPrompt``, a ``"n d"`` array/tensor, or an adapter path (``pathlib.Path``).

    ``split``: ``train``/``validation``/``test`` or a list of examples; ``limit``: score only the first N."""
    limit, batch_size, max_length = check_params("evaluate", {
        "limit": limit, "batch_size": batch_size, "max_length": max_length}, {
        "limit": [Interval(Integral, 1, None), None], "batch_size": [Interval(Integral, 1, None)],
        "max_length": [Interval(Integral, 1, None)]}).values()
    task = get_task(task) if not isinstance(task, Task) else task
    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "the model"
    if isinstance(split, str):
        examples, split_name = task.split(split), split
    else:
        examples, split_name = tuple(split), "custom"
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise TaskError(f"No examples to evaluate on (task {task.name!r}, split {split_name!r}).")
    label_ids = task.label_token_ids(tokenizer, model_name)
    kind, text, prefix_ids, matrix = _as_prefix(prompt, model, name)
    seqs = encode_examples(tokenizer, task, examples, max_length=max_length, instruction=text)
    if prefix_ids is not None:
        seqs = [prefix_ids + s for s in seqs]
    module = prompted_classifier(model, label_ids)
    logits = score(module, seqs, pad_id=pad_id_of(tokenizer), batch_size=batch_size, prefix=matrix)
    return _result(task, split_name, kind, logits, np.array([ex.label for ex in examples]))


def _result(task: Task, split: str, kind: str, logits: np.ndarray, targets: np.ndarray) -> EvalResult:
    z = logits - logits.max(1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(1, keepdims=True)
    pred = logits.argmax(1)
    loss = float(-np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-30, None)).mean())
    per = {}
    for i, lab in enumerate(task.labels):
        m = targets == i
        if m.any():
            per[lab] = float((pred[m] == i).mean())
    acc = float((pred == targets).mean())
    return EvalResult(task=task.name, split=split, prompt_kind=kind, accuracy=acc,
                      balanced_accuracy=float(np.mean(list(per.values()))) if per else acc, loss=loss,
                      n=int(len(targets)), labels=task.labels, predictions=pred, targets=targets,
                      label_probs=probs.astype(np.float32), per_label=per)


__all__ = ["PromptedClassifier", "EvalResult", "evaluate", "encode_examples", "pad_batch", "pad_id_of",
           "prompted_classifier", "score", "length_sorted_batches"]

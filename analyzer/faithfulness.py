"""Measures that need the frozen model: does the discrete reading of a soft prompt do what the prompt does?

* **Projection gap** (PEZ, Wen et al. 2023): rank-classification accuracy of the soft prompt, of its
  nearest-token hard projection fed as ordinary tokens, of its initialisation and of no prompt at all (plus
  the task's hand-written instruction), each with ``n``, a Wilson 95% interval and the chance levels
  (``1/num_classes`` and the majority class); the soft − projection gap with a paired bootstrap interval and an
  exact McNemar test.  Accuracy always comes from :func:`analyzer.training.scoring.evaluate`.
* **Prompt-F1** (Khashabi et al. 2022, "Prompt Waywardness"): token-level F1 between the projected token
  sequence and a reference text's tokens.
* **Waywardness stress test**: train with an extra term ``γ·‖P − E[target]‖²`` pulling the prompt toward the
  embeddings of an unrelated text, and report accuracy against Prompt-F1 for a few ``γ``.
* **Logit lens** (nostalgebraist 2020): each virtual token's residual stream after every layer, read through
  the final norm and the output layer (hooks installed by a context manager that removes them in ``finally``).
* **Self-description**: the soft prompt placed before a question (``"The instruction above asks to"``) and the
  model's greedy (deterministic) continuation, beside the same question after no prompt / the projection / the
  init text.

All results are plain dataclasses or dicts of JSON-able numbers (``to_dict()``).  Shapes are written as
``"n_virtual d_model"``.  Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import math
import numbers
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .exceptions import AnalyzerError, ShapeMismatchError
from .report import Renderable
from .types import SoftPrompt, Vocabulary

#: Questions of the self-description probe: each follows the soft prompt directly.
DEFAULT_QUESTIONS = (
    "The instruction above asks to",
    "\nIn other words, the text above means:",
)
#: Conditions :func:`projection_gap` can compare, in display order; DEFAULT_CONDITIONS are measured by default.
CONDITIONS = ("none", "instruction", "init", "projection", "projection_text", "soft")
DEFAULT_CONDITIONS = ("none", "instruction", "init", "projection", "soft")
#: γ values of the stress test (penalty per virtual token, see :func:`waywardness_stress_test`).
DEFAULT_GAMMAS = (0.0, 0.03, 0.3, 3.0)
Z95 = 1.959963984540054


# ================================================================================================ statistics
def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n`` (95% by default); ``(nan, nan)`` for n=0."""
    if n <= 0:
        return float("nan"), float("nan")
    p = correct / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _binom_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> dict[str, Any]:
    """Exact two-sided McNemar test of two classifiers scored on the same examples.

    Returns ``{"a_only", "b_only", "p_value"}``: how many examples only A / only B got right, and the p-value
    of "A and B are equally accurate"."""
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    m = a_only + b_only
    p = 1.0 if m == 0 else min(1.0, 2.0 * _binom_cdf(min(a_only, b_only), m))
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p)}


def paired_bootstrap_diff(a_correct: np.ndarray, b_correct: np.ndarray, *, n_boot: int = 2000,
                          seed: int = 0) -> dict[str, float]:
    """Accuracy difference ``acc(A) − acc(B)`` on the same examples with a paired percentile-bootstrap 95%
    interval (examples resampled with replacement, ``n_boot`` times, fixed ``seed``)."""
    a = np.asarray(a_correct, dtype=np.float64)
    b = np.asarray(b_correct, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise AnalyzerError(f"Expected two equally long non-empty 1-d arrays of per-example correctness; got "
                            f"shapes {a.shape} and {b.shape}.")
    d = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    boots = d[idx].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"diff": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": int(d.size),
            "n_boot": int(n_boot)}


@dataclass(frozen=True)
class Accuracy:
    """Rank-classification accuracy of one condition, beside its chance levels.

    condition:   ``none``, ``instruction``, ``init``, ``projection``, ``soft`` (or a stress-test label).
    accuracy, correct, n: the score and the counts it comes from; ci_low/ci_high: Wilson 95% interval.
    balanced_accuracy: mean per-class recall (chance = ``1/num_classes`` whatever the class balance).
    chance:      ``1/num_classes``.
    majority:    accuracy of always answering the majority class of the task's train split, on these examples.
    majority_label: that class.
    above_chance: the interval's lower end is above both chance levels.
    prompt:      what was fed (the text, or the readable tokens), for the report.
    """

    condition: str
    accuracy: float
    correct: int
    n: int
    ci_low: float
    ci_high: float
    balanced_accuracy: float
    chance: float
    majority: float
    majority_label: str
    above_chance: bool
    prompt: str | None = None
    loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "accuracy": self.accuracy, "correct": self.correct, "n": self.n,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "balanced_accuracy": self.balanced_accuracy,
                "chance": self.chance, "majority": self.majority, "majority_label": self.majority_label,
                "above_chance": self.above_chance, "prompt": self.prompt, "loss": self.loss}


def accuracy_from_eval(result, task, condition: str, *, prompt: str | None = None) -> Accuracy:
    """An :class:`Accuracy` from an ``EvalResult`` of :func:`analyzer.training.scoring.evaluate`."""
    correct = int((np.asarray(result.predictions) == np.asarray(result.targets)).sum())
    n = int(result.n)
    lo, hi = wilson_interval(correct, n)
    if task.train:
        counts = task.label_counts("train")
    else:  # no train split: the majority of the scored examples themselves
        counts = Counter(task.labels[int(t)] for t in np.asarray(result.targets))
    maj_label = max(task.labels, key=lambda lab: (counts.get(lab, 0), -task.labels.index(lab)))
    maj_idx = task.labels.index(maj_label)
    majority = float((np.asarray(result.targets) == maj_idx).mean()) if n else float("nan")
    chance = 1.0 / task.num_labels
    return Accuracy(condition=condition, accuracy=float(result.accuracy), correct=correct, n=n,
                    ci_low=float(lo), ci_high=float(hi), balanced_accuracy=float(result.balanced_accuracy),
                    chance=chance, majority=majority, majority_label=maj_label,
                    above_chance=bool(lo > max(chance, majority)), prompt=prompt,
                    loss=float(result.loss) if result.loss is not None else None)


# ================================================================================================ helpers
def _prompt_matrix(prompt, model=None) -> "Any":
    """A soft prompt (``SoftPrompt``, ``"n d"`` array or tensor) as a float32 CPU tensor ``"n_virtual d_model"``,
    checked against the model's embedding width."""
    import torch

    name = f" {prompt.name!r}" if isinstance(prompt, SoftPrompt) else ""
    v = prompt.vectors if isinstance(prompt, SoftPrompt) else prompt
    if isinstance(v, torch.Tensor):
        t = v.detach().to("cpu", torch.float32)
    else:
        t = torch.as_tensor(np.asarray(v, dtype=np.float32))
    if t.ndim != 2 or t.shape[0] == 0:
        raise ShapeMismatchError(f"A soft prompt{name} must be a non-empty 2-d matrix (n_virtual x d_model); "
                                 f"got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all():
        raise AnalyzerError(f"The soft prompt{name} contains NaN or Inf; expected finite values.")
    if model is not None:
        d = int(model.get_input_embeddings().weight.shape[1])
        if t.shape[1] != d:
            mname = getattr(getattr(model, "config", None), "_name_or_path", "") or "the model"
            raise ShapeMismatchError(f"Soft prompt{name} has dim {t.shape[1]} but {mname} has dim {d}.")
    return t.contiguous()


def _device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover
        import torch

        return torch.device("cpu")


_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def _token_strings(ids: Sequence[int], tokenizer=None, vocab: Vocabulary | None = None) -> list[str]:
    """Readable token strings: the vocabulary's own (``␣the``) when given, else the tokenizer's decoding with
    whitespace made visible."""
    out = []
    for i in ids:
        i = int(i)
        if vocab is not None and 0 <= i < vocab.size:
            out.append(vocab.tokens[i])
        elif tokenizer is not None:
            s = tokenizer.decode([i])
            out.append("".join(_VISIBLE.get(c, c) for c in s))
        else:
            out.append(f"<{i}>")
    return out


def _tile(ids: Sequence[int], n: int) -> list[int]:
    """``ids`` repeated or cut to length ``n`` (PEFT's rule for TEXT init)."""
    ids = list(ids)
    if not ids:
        return []
    return (ids * (-(-n // len(ids))))[:n]


def _text_ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise AnalyzerError(f"The text {text!r} tokenizes to no tokens.")
    return [int(i) for i in ids]


# ================================================================================================ projection
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


def hard_projection(prompt, index, *, tokenizer=None, metric: str = "cosine") -> HardProjection:
    """Project each virtual token onto its nearest vocabulary token.

    prompt:  a ``SoftPrompt`` or a ``"n_virtual d_model"`` array.
    index:   a fitted :class:`~analyzer.neighbors.NeighborIndex` (its metric is used), or a ``Vocabulary``
             (a ``NeighborIndex(metric)`` is fitted; special and unused rows are never chosen).
    tokenizer: when given, the projection is decoded to text and checked to re-tokenize to the same ids."""
    from .neighbors import NeighborIndex

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


# ================================================================================================ Prompt-F1
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


# ================================================================================================ projection gap
def _init_ids(prompt: SoftPrompt, tokenizer) -> list[int] | None:
    n = prompt.num_virtual_tokens
    if prompt.init_token_ids:
        return _tile(prompt.init_token_ids, n)
    if prompt.init_text and tokenizer is not None:
        return _tile(_text_ids(tokenizer, prompt.init_text), n)
    return None


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
    from .tasks import get_task
    from .training.scoring import evaluate

    task = get_task(task)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise AnalyzerError(f"Unknown projection-gap condition(s) {unknown}; expected some of {list(CONDITIONS)}.")
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


# ================================================================================================ waywardness
@dataclass
class WaywardnessResult(Renderable):
    """Rows of the stress test, one per γ, and the references they are read against.

    rows:  ``gamma``, ``accuracy`` (Accuracy dict of the trained soft prompt), ``projection_accuracy`` (its
           projection fed as tokens), ``prompt_f1``/``prompt_f1_loose`` (projection vs target text),
           ``init_f1`` (projection vs the start), ``distance`` (mean ‖P_i − E_i‖ to the target embeddings),
           ``final_loss``, ``steps``.
    target_text, target_ids: the unrelated text the penalty pulls toward (tiled to the prompt length).
    target_accuracy: the target text itself fed as tokens in the prompt's place (the γ → ∞ limit).
    none_accuracy: no prompt.  chance, majority: chance levels.
    """

    task: str
    target_text: str
    target_ids: list[int]
    rows: list[dict[str, Any]]
    target_accuracy: dict[str, Any]
    none_accuracy: dict[str, Any]
    chance: float
    majority: float
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "target_text": self.target_text, "target_ids": list(self.target_ids),
                "rows": self.rows, "target_accuracy": self.target_accuracy, "none_accuracy": self.none_accuracy,
                "chance": self.chance, "majority": self.majority, "settings": dict(self.settings),
                "summary": self.summary()}

    def summary(self) -> list[str]:
        """Plain sentences: how far the projection was pulled toward the target, and what it cost."""
        rows = sorted(self.rows, key=lambda r: r["gamma"])
        if not rows:
            return []
        base = rows[0]
        out = []
        a0 = base["accuracy"]
        if not a0.get("above_chance", True):
            out.append(f"Caution: the unpulled prompt (γ={base['gamma']:g}) is not above chance — accuracy "
                       f"{a0['accuracy']:.3f} against a majority class of {self.majority:.3f}, balanced accuracy "
                       f"{a0['balanced_accuracy']:.2f} against {self.chance:.2f} — so it did not learn the task in "
                       f"{self.settings.get('steps')} steps and these rows cannot show waywardness. Train longer "
                       f"(--steps) or start from a trained prompt (--init PATH).")
        out.append(f"Without the pull (γ={base['gamma']:g}) the prompt scores {_acc(a0)} (balanced "
                   f"{a0['balanced_accuracy']:.2f}; no prompt {self.none_accuracy['accuracy']:.3f}) and its "
                   f"projection reads as the target text with Prompt-F1 {base['prompt_f1']:.2f}.")
        for r in rows[1:]:
            diff = r["accuracy"]["accuracy"] - base["accuracy"]["accuracy"]
            out.append(f"γ={r['gamma']:g}: Prompt-F1 {r['prompt_f1']:.2f} with accuracy {_acc(r['accuracy'])} "
                       f"({diff:+.3f} vs γ={base['gamma']:g}; balanced {r['accuracy']['balanced_accuracy']:.2f}); "
                       f"its projection fed as tokens scores {r['projection_accuracy']['accuracy']:.3f}.")
        out.append(f"References: the target text as the prompt {_acc(self.target_accuracy)}, no prompt "
                   f"{_acc(self.none_accuracy)}, chance {self.chance:.3f}, majority class {self.majority:.3f}.")
        return out

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def _table_rows(self) -> list[list[str]]:
        return [[f"{r['gamma']:g}", _acc(r["accuracy"]), f"{r['accuracy']['balanced_accuracy']:.3f}",
                 _acc(r["projection_accuracy"]), f"{r['prompt_f1']:.2f}",
                 f"{r['prompt_f1_loose']:.2f}", f"{r['init_f1']:.2f}", f"{r['distance']:.3f}",
                 f"{r['final_loss']:.3f}", " ".join(r["projection"]["tokens"])]
                for r in sorted(self.rows, key=lambda r: r["gamma"])]

    _HEAD = ["γ", "accuracy [95% CI]", "balanced acc.", "projection acc.", "Prompt-F1", "loose F1", "F1 vs start",
             "distance", "loss", "projection"]

    def _title(self) -> str:
        st = self.settings
        return (f"Waywardness stress test — task {self.task}, target {self.target_text!r}; {st.get('steps')} steps "
                f"per γ from init {st.get('init')}, {st.get('num_virtual_tokens')} virtual tokens, accuracy on "
                f"{st.get('split')}")

    def to_markdown(self) -> str:
        lines = [f"# {self._title()}", "", "| " + " | ".join(self._HEAD) + " |",
                 "|" + "---:|" * (len(self._HEAD) - 1) + ":---|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self._table_rows()]
        return "\n".join(lines + [""] + [f"- {s}" for s in self.summary()])

    def to_table(self, width: int = 120) -> str:
        """The numbers as a terminal table; each γ's projection (the tokens it reads as) below it."""
        from rich.table import Table

        from .report import text_console

        console = text_console(width)
        t = Table(title=self._title(), title_justify="left")
        keep = ("γ", "accuracy [95% CI]", "balanced acc.", "projection acc.", "Prompt-F1", "F1 vs start", "distance")
        cols = [self._HEAD.index(h) for h in keep]
        for h in keep:
            t.add_column(h, justify="right", no_wrap=True)
        rows = self._table_rows()
        for row in rows:
            t.add_row(*[row[i] for i in cols])
        console.print(t)
        for row in rows:
            console.print(f"γ={row[0]} projection: {row[-1]}")
        for line in self.summary():
            console.print(f"• {line}")
        return console.export_text()

    def to_html(self) -> str:
        """A self-contained page: the accuracy-vs-Prompt-F1 figure (plotly inline) and the table."""
        from html import escape

        from ._html import page
        from .plotting import plot_waywardness

        body = [f"<h1>{escape(self._title())}</h1>", plot_waywardness(self), "<table><tr>"
                + "".join(f"<th>{escape(h)}</th>" for h in self._HEAD) + "</tr>"]
        body += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in self._table_rows()]
        body += ["</table><ul>"] + [f"<li>{escape(s)}</li>" for s in self.summary()] + ["</ul>"]
        return page(self._title(), body)



def _acc(a: Mapping[str, Any]) -> str:
    return f"{a['accuracy']:.3f} [{a['ci_low']:.2f}, {a['ci_high']:.2f}]"


def waywardness_penalty(prompt, target) -> "Any":
    """``mean_i ‖P_i − E_i‖²``: squared L2 distance per virtual token, averaged over tokens (``"n d"`` each)."""
    return ((prompt - target.to(prompt.dtype)) ** 2).sum(-1).mean()


def train_with_penalty(model, tokenizer, task, init, target, gamma: float, *, steps: int = 60,
                       batch_size: int = 8, lr: float = 0.03, seed: int = 0, max_length: int = 128,
                       model_name: str | None = None) -> tuple["Any", float]:
    """Prompt tuning with the loss ``CE(label words) + γ · mean_i ‖P_i − E_i‖²`` (``target`` E ``"n d"``).

    The trainer (:func:`analyzer.training.train`) has no hook for an extra loss term, so this is a minimal loop
    built from its pieces: the shared forward of :mod:`analyzer.training.scoring` (the same rank classification
    ``evaluate`` uses), the trainer's seeded length-grouped batches of the task's train split, its learning-rate
    schedule (``TrainConfig.lr_at``: linear warm-up, then decay) and AdamW on the prompt only.  Nothing is
    written to disk.  Returns ``(prompt "n d" float32 CPU tensor, mean loss of the last 10 steps)``."""
    import torch

    from .training.config import TrainConfig
    from .training.scoring import encode_examples, pad_batch, pad_id_of, prompted_classifier
    from .training.trainer import LengthGroupedBatches

    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not math.isfinite(gamma) or gamma < 0:
        raise AnalyzerError(f"The 'gamma' of the waywardness penalty must be a finite float >= 0. Got {gamma!r} "
                            f"instead.")
    cfg = TrainConfig(model=model_name or "frozen model", task=task.name, out="(in memory)", steps=steps,
                      batch_size=batch_size, lr=lr, seed=seed, max_length=max_length)
    if len(task.train) < cfg.batch_size:
        raise AnalyzerError(f"Task {task.name!r} has {len(task.train)} training examples, fewer than batch_size "
                            f"{cfg.batch_size}; the waywardness stress test cannot train on it.")
    dev = _device(model)
    label_ids = task.label_token_ids(tokenizer, model_name)
    module = prompted_classifier(model, label_ids, _prompt_matrix(init, model).clone().to(dev))
    tgt = _prompt_matrix(target, model).to(dev)
    if tgt.shape != module.prompt.shape:
        raise ShapeMismatchError(f"The waywardness target has shape {tuple(tgt.shape)} but the prompt has shape "
                                 f"{tuple(module.prompt.shape)}.")
    seqs = encode_examples(tokenizer, task, task.train, max_length=cfg.max_length)
    y = torch.tensor([ex.label for ex in task.train], dtype=torch.long)
    batches = LengthGroupedBatches([len(s) for s in seqs], cfg.batch_size, cfg.seed)
    opt = torch.optim.AdamW([module.prompt], lr=cfg.lr, weight_decay=0.0)
    pad = pad_id_of(tokenizer)
    losses: list[float] = []
    for step in range(1, cfg.steps + 1):
        b = batches.batch(step)
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        ids, lens = pad_batch([seqs[i] for i in b], pad)
        loss = torch.nn.functional.cross_entropy(module(ids.to(dev), lens.to(dev)), y[b].to(dev))
        if gamma:
            loss = loss + gamma * waywardness_penalty(module.prompt, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise AnalyzerError(f"The loss became {losses[-1]} at step {step} of the waywardness run with "
                                f"gamma={gamma}; lower lr (now {cfg.lr}) or gamma.")
    return module.prompt.detach().float().cpu(), float(np.mean(losses[-10:]))


def waywardness_stress_test(model, tokenizer, task, target_text: str, index, *, init=None,
                            gammas: Sequence[float] = DEFAULT_GAMMAS, num_virtual_tokens: int | None = None,
                            steps: int = 60, batch_size: int = 8, lr: float = 0.03, seed: int = 0,
                            split: str = "validation", limit: int | None = 200, max_length: int = 128,
                            model_name: str | None = None, progress=None) -> WaywardnessResult:
    """Train a prompt for each ``γ`` in ``gammas`` with the extra loss ``γ · mean_i ‖P_i − E[target]_i‖²``
    toward the embeddings of an unrelated ``target_text``, then measure its accuracy and the Prompt-F1 of its
    projection against the target text (Khashabi et al. 2022): high F1 at unchanged accuracy means the
    projection can be made to *read* as anything while the prompt still solves the task.

    init:  where every run starts: a ``SoftPrompt`` or ``"n d"`` matrix, or an init mode of
           :func:`analyzer.training.initialize.init_prompt` (``vocab``, ``labels``, ``random``, ``text``: the
           task's instruction); default ``vocab``.
    index: a fitted ``NeighborIndex`` or a ``Vocabulary`` (for the projections).
    E[target]: the input embeddings of the target's tokens, tiled to the prompt length.
    Accuracy is measured on ``split`` (validation by default, so the test split stays held out) with
    :func:`analyzer.training.scoring.evaluate`; every run uses the same seed and batches.
    progress: an optional callable given one line of text as each step starts."""
    import torch

    from .neighbors import NeighborIndex
    from .scale import input_embed_scale
    from .tasks import get_task
    from .training.initialize import init_prompt
    from .training.scoring import evaluate

    task = get_task(task)
    bad = [g for g in gammas if isinstance(g, bool) or not isinstance(g, numbers.Real) or not math.isfinite(g)
           or g < 0]
    if bad or not len(gammas):
        raise AnalyzerError(f"The 'gammas' of the waywardness stress test must be a non-empty list of finite "
                            f"floats >= 0. Got {list(gammas)!r} instead.")
    if isinstance(index, Vocabulary):
        index = NeighborIndex(metric="cosine", k=1).fit(index)
    emb = model.get_input_embeddings()
    if init is None or isinstance(init, str):
        mode = init or "vocab"
        n = num_virtual_tokens or 20
        start = init_prompt(mode, embeddings=emb.weight, tokenizer=tokenizer, num_virtual_tokens=n, seed=seed,
                            text=task.instruction if mode == "text" else None, task=task,
                            embed_scale=input_embed_scale(emb)).vectors
        init_ids = None
    else:
        start = _prompt_matrix(init, model)
        init_ids = _init_ids(init, tokenizer) if isinstance(init, SoftPrompt) else None
        mode = getattr(init, "name", "matrix")
    start = _prompt_matrix(start, model)
    n = start.shape[0]
    target_ids = _tile(_text_ids(tokenizer, target_text), n)
    with torch.no_grad():       # the module's output (Gemma scales its rows): the space the prompt lives in
        target = emb(torch.tensor(target_ids, device=emb.weight.device)).detach().float().cpu()
    start_proj = hard_projection(start.numpy(), index, tokenizer=tokenizer)

    def acc_of(feed, label):
        r = evaluate(model, tokenizer, task, feed, split=split, limit=limit, max_length=max_length,
                     model_name=model_name)
        return accuracy_from_eval(r, task, label).to_dict()

    say = progress or (lambda msg: None)
    rows = []
    for j, gamma in enumerate(gammas, 1):
        say(f"γ={gamma:g} ({j}/{len(gammas)}): training {steps} steps, then scoring the prompt and its projection")
        p, last = train_with_penalty(model, tokenizer, task, start, target, float(gamma), steps=steps,
                                     batch_size=batch_size, lr=lr, seed=seed, max_length=max_length,
                                     model_name=model_name)
        proj = hard_projection(p.numpy(), index, tokenizer=tokenizer)
        f1 = projection_f1(proj, target_ids, tokenizer, tile=False, vocab=index.vocab_)
        ref_start = init_ids if init_ids is not None else list(start_proj.token_ids)
        rows.append({
            "gamma": float(gamma),
            "accuracy": acc_of(p, f"soft γ={gamma:g}"),
            "projection_accuracy": acc_of(list(proj.token_ids), f"projection γ={gamma:g}"),
            "prompt_f1": f1["f1"], "prompt_f1_loose": f1["f1_loose"],
            "init_f1": prompt_f1(list(proj.token_ids), ref_start)["f1"],
            "distance": float((p - target).norm(dim=-1).mean()),
            "final_loss": last, "steps": int(steps), "projection": proj.to_dict(),
        })
    say("scoring the references: the target text as the prompt, and no prompt")
    tgt_acc = acc_of(target_ids, "target text")
    none_acc = acc_of(None, "none")
    return WaywardnessResult(task=task.name, target_text=target_text, target_ids=target_ids, rows=rows,
                             target_accuracy=tgt_acc, none_accuracy=none_acc, chance=1.0 / task.num_labels,
                             majority=none_acc["majority"],
                             settings={"init": mode, "num_virtual_tokens": int(n), "steps": int(steps),
                                       "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed),
                                       "split": split, "limit": limit, "penalty": "mean_i ||P_i - E_i||^2"})


def waywardness_for_model(model: str, task, target_text: str, *, init="vocab", label_words=None,
                          gammas: Sequence[float] = DEFAULT_GAMMAS, steps: int = 60, limit: int | None = 200,
                          split: str = "validation", progress=None, **settings) -> WaywardnessResult:
    """:func:`waywardness_stress_test` from names, as the ``waywardness`` command runs it: loads the frozen
    ``model`` and its vocabulary, the task (``label_words`` for a CSV/JSONL task), and ``init`` — an init mode
    (``vocab``, ``labels``, ``random``, ``text``) or the path of one adapter or tensor to start from.
    ``settings`` go to the stress test (``num_virtual_tokens``, ``batch_size``, ``lr``, ``seed``, ``max_length``)."""
    from .loaders import load_prompts, load_vocabulary
    from .models import load_frozen_model
    from .tasks import get_task
    from .training.config import INIT_MODES

    if not isinstance(target_text, str) or not target_text.strip():
        raise AnalyzerError("--target must be a non-empty text (the unrelated text the prompt is pulled toward).")
    task = get_task(task, label_words=label_words)
    if isinstance(init, str) and init not in INIT_MODES:
        prompts = load_prompts(init)
        if len(prompts) != 1:
            raise AnalyzerError(f"--init {init!r} holds {len(prompts)} prompts; give one adapter or tensor, or an "
                                f"init mode: {', '.join(INIT_MODES)}.")
        init = prompts[0]
    say = progress or (lambda msg: None)
    say(f"loading {model}")
    frozen, tok = load_frozen_model(model)
    vocab = load_vocabulary(model)
    say(f"training {len(gammas)} prompts × {steps} steps on {task.name} (γ = {', '.join(f'{g:g}' for g in gammas)}),"
        f" then scoring each on {limit or 'all'} {split} examples")
    return waywardness_stress_test(frozen, tok, task, target_text, vocab, init=init, gammas=gammas, steps=steps,
                                   limit=limit, split=split, model_name=model, progress=progress, **settings)


# ================================================================================================ logit lens
def _lens_parts(model):
    """(decoder layers, final norm, output layer) of a causal LM; AnalyzerError when they cannot be found."""
    import torch

    base = getattr(model, getattr(model, "base_model_prefix", "") or "", None)
    if base is None or base is model:
        base = getattr(model, "model", None) or getattr(model, "transformer", None)
    cfg = getattr(model.config, "get_text_config", lambda: model.config)()
    n_layers = getattr(cfg, "num_hidden_layers", None)
    layers = None
    if base is not None:
        for name in ("layers", "h", "blocks", "decoder_layers"):
            cand = getattr(base, name, None)
            if isinstance(cand, torch.nn.ModuleList):
                layers = cand
                break
        if layers is None:
            for _, mod in base.named_modules():
                if isinstance(mod, torch.nn.ModuleList) and (n_layers is None or len(mod) == n_layers):
                    layers = mod
                    break
    norm = None
    if base is not None:
        for name in ("norm", "final_layernorm", "ln_f", "final_layer_norm", "norm_f"):
            if isinstance(getattr(base, name, None), torch.nn.Module):
                norm = getattr(base, name)
                break
    head = model.get_output_embeddings()
    if layers is None or norm is None or head is None:
        raise AnalyzerError(f"The logit lens cannot find the decoder layers, final norm and output layer of "
                            f"{type(model).__name__}; supported: llama-like (model.layers, model.norm) and "
                            f"gpt2-like (transformer.h, transformer.ln_f) causal LMs.")
    if n_layers is not None:
        layers = layers[:n_layers]
    return layers, norm, head


@contextmanager
def residual_stream_hooks(layers) -> Iterator[dict[int, Any]]:
    """Record the residual stream after each decoder layer: yields a dict ``{layer (1-based): "batch seq d"}``
    filled during the forward.  The hooks are removed in ``finally`` (also on error)."""
    store: dict[int, Any] = {}
    handles = []
    try:
        for i, layer in enumerate(layers):
            def hook(_module, _inputs, output, i=i):
                h = output[0] if isinstance(output, (tuple, list)) else output
                store[i + 1] = h.detach()
            handles.append(layer.register_forward_hook(hook))
        yield store
    finally:
        for h in handles:
            h.remove()


@dataclass(frozen=True, eq=False)
class LogitLens:
    """Logit-lens reading of a soft prompt (and optional text after it).

    layers:      ``0..L`` (0: the input embeddings, l: after decoder layer l).
    positions:   a label per position: ``v0..v{n-1}`` for virtual tokens, then the suffix's tokens.
    n_virtual:   how many of the positions are virtual tokens.
    top_ids:     int ``"layer position k"``; top_tokens: the same as readable strings; top_probs: float32
                 ``"layer position k"`` (softmax over the whole vocabulary).
    entropy:     float32 ``"layer position"`` (nats) of each layer's distribution.
    tracked:     ``{name: float32 "layer position"}`` probability of chosen tokens (e.g. the label words).
    """

    layers: tuple[int, ...]
    positions: tuple[str, ...]
    n_virtual: int
    top_ids: np.ndarray
    top_tokens: tuple[tuple[tuple[str, ...], ...], ...]
    top_probs: np.ndarray
    entropy: np.ndarray
    tracked: Mapping[str, np.ndarray] = field(default_factory=dict)
    tracked_ids: Mapping[str, int] = field(default_factory=dict)

    def final_tokens(self) -> list[str]:
        """The top-1 token at the last layer for each position."""
        return [t[0] for t in self.top_tokens[-1]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers), "positions": list(self.positions), "n_virtual": self.n_virtual,
            "top": [[[{"token_id": int(i), "token": s, "prob": float(p)}
                      for i, s, p in zip(self.top_ids[li, pi], self.top_tokens[li][pi], self.top_probs[li, pi])]
                     for pi in range(len(self.positions))] for li in range(len(self.layers))],
            "entropy": self.entropy.round(5).tolist(),
            "tracked": {k: v.round(6).tolist() for k, v in self.tracked.items()},
            "tracked_ids": {k: int(v) for k, v in self.tracked_ids.items()},
        }


def logit_lens(model, tokenizer, prompt, *, k: int = 5, suffix: str | None = None, suffix_positions: str = "all",
               vocab: Vocabulary | None = None, track: Mapping[str, int] | None = None) -> LogitLens:
    """Decode each virtual token's hidden state at every layer: ``lm_head(final_norm(h_l))`` at the virtual
    positions (plus those of ``suffix``, a text placed after the prompt, e.g. a formatted example).

    The input is ``[prompt][suffix tokens]`` with no special tokens before the prompt, as in prompt tuning;
    because attention is causal, the virtual positions do not depend on the suffix.  At the last layer the
    reading equals the model's own logits.  ``track``: ``{name: token id}`` whose probability is recorded at
    every layer and position (e.g. the task's label words).  ``suffix_positions``: ``all`` the suffix's
    positions, or only the ``last`` (where the next token -- a label word -- is predicted).  Deterministic; no
    gradients."""
    import torch

    if suffix_positions not in ("all", "last"):
        raise AnalyzerError(f"The 'suffix_positions' parameter of logit_lens must be 'all' or 'last'. "
                            f"Got {suffix_positions!r} instead.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise AnalyzerError(f"The 'k' parameter of logit_lens must be a positive int. Got {k!r} instead.")
    layers, norm, head = _lens_parts(model)
    dev = _device(model)
    emb_mod = model.get_input_embeddings()
    p = _prompt_matrix(prompt, model).to(dev, emb_mod.weight.dtype)
    suffix_ids = _text_ids(tokenizer, suffix) if suffix else []
    parts = [p]
    if suffix_ids:
        parts.append(emb_mod(torch.tensor(suffix_ids, device=dev)))
    x = torch.cat(parts, 0).unsqueeze(0)
    cap = getattr(getattr(model.config, "get_text_config", lambda: model.config)(), "final_logit_softcapping",
                  None)
    vocab_rows = int(head.weight.shape[0])
    k = min(int(k), vocab_rows)
    track = dict(track or {})
    for name, tid in track.items():
        if not 0 <= int(tid) < vocab_rows:
            raise AnalyzerError(f"Tracked token {name!r} has id {tid}, outside the output vocabulary "
                                f"[0, {vocab_rows}).")
    n = p.shape[0]
    keep = list(range(x.shape[1]))
    if suffix_ids and suffix_positions == "last":
        keep = keep[:n] + keep[-1:]
    with torch.no_grad(), residual_stream_hooks(layers) as store:
        model(inputs_embeds=x, use_cache=False)
        streams = [h[:, keep] for h in [x] + [store[i] for i in range(1, len(layers) + 1)]]
        top_ids, top_probs, ent = [], [], []
        tracked = {name: [] for name in track}
        for h in streams:
            logits = head(norm(h))[0].float()
            if cap:
                logits = torch.tanh(logits / cap) * cap
            logp = torch.log_softmax(logits, -1)
            probs = logp.exp()
            tp, ti = probs.topk(k, dim=-1)
            top_ids.append(ti.cpu().numpy())
            top_probs.append(tp.cpu().numpy())
            ent.append((-(probs * logp).nan_to_num().sum(-1)).cpu().numpy())
            for name, tid in track.items():
                tracked[name].append(probs[:, int(tid)].cpu().numpy())
    top_ids_a = np.stack(top_ids).astype(np.int64)
    labels = [f"v{i}" for i in range(n)] + _token_strings(suffix_ids, tokenizer, None)
    labels = [labels[i] for i in keep]
    tokens = tuple(tuple(tuple(_token_strings(row, tokenizer, vocab)) for row in layer) for layer in top_ids_a)
    return LogitLens(layers=tuple(range(len(streams))), positions=tuple(labels), n_virtual=int(n),
                     top_ids=top_ids_a, top_tokens=tokens, top_probs=np.stack(top_probs).astype(np.float32),
                     entropy=np.stack(ent).astype(np.float32),
                     tracked={name: np.stack(v).astype(np.float32) for name, v in tracked.items()},
                     tracked_ids={name: int(t) for name, t in track.items()})


# ================================================================================================ self-description
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
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise AnalyzerError(f"The 'max_new_tokens' of self_description must be a positive int. "
                            f"Got {max_new_tokens!r} instead.")
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


# ================================================================================================ all together
def analyze_faithfulness(model, tokenizer, prompt: SoftPrompt, index, *, task=None, split: str = "test",
                         limit: int | None = 200, reference_text: str | None = None, lens_k: int = 3,
                         lens_suffix: str | None = None, questions: Sequence[str] = DEFAULT_QUESTIONS,
                         max_new_tokens: int = 24, model_name: str | None = None) -> dict[str, Any]:
    """Everything model-based for one prompt, as one JSON-able dict (the report's ``"faithfulness"`` object):
    ``projection_gap`` (when a task is given), ``prompt_f1`` (always: against the init and ``reference_text``),
    ``logit_lens`` (virtual tokens, plus the last position of ``lens_suffix`` -- by default the first test
    example formatted by the task, where the label word is predicted -- with the label words' probabilities
    tracked) and ``self_description``.  The stress test is separate (it trains)."""
    from .neighbors import NeighborIndex

    if isinstance(index, Vocabulary):
        index = NeighborIndex(metric="cosine", k=1).fit(index)
    out: dict[str, Any] = {}
    track = None
    if task is not None:
        from .tasks import get_task

        task = get_task(task)
        gap = projection_gap(model, tokenizer, prompt, task, index, split=split, limit=limit,
                             reference_text=reference_text, model_name=model_name)
        out["projection_gap"] = gap
        out["projection"] = gap["projection"]
        out["prompt_f1"] = gap["prompt_f1"]
        track = dict(zip(task.label_words, task.label_token_ids(tokenizer, model_name)))
        if lens_suffix is None and task.test:
            lens_suffix = task.format(task.test[0].text)
    else:
        proj = hard_projection(prompt, index, tokenizer=tokenizer)
        out["projection"] = proj.to_dict()
        f1 = {}
        ids = _init_ids(prompt, tokenizer)
        if ids is not None:
            f1["init"] = projection_f1(proj, ids, tokenizer, tile=False, vocab=index.vocab_)
        if reference_text:
            f1["reference"] = projection_f1(proj, reference_text, tokenizer, tile=False, vocab=index.vocab_)
        out["prompt_f1"] = f1
    lens = logit_lens(model, tokenizer, prompt, k=lens_k, suffix=lens_suffix, suffix_positions="last",
                      vocab=index.vocab_, track=track)
    out["logit_lens"] = lens.to_dict()
    out["self_description"] = self_description(model, tokenizer, prompt, questions=questions,
                                               max_new_tokens=max_new_tokens, index=index)
    return out


__all__ = [
    "DEFAULT_QUESTIONS", "CONDITIONS", "DEFAULT_CONDITIONS", "DEFAULT_GAMMAS", "Accuracy", "HardProjection", "LogitLens",
    "WaywardnessResult", "wilson_interval", "mcnemar_exact", "paired_bootstrap_diff", "accuracy_from_eval",
    "hard_projection", "prompt_f1", "projection_f1", "projection_gap", "waywardness_penalty", "train_with_penalty",
    "waywardness_stress_test", "waywardness_for_model", "residual_stream_hooks", "logit_lens", "greedy_continuation", "self_description",
    "analyze_faithfulness",
]

"""The waywardness stress test (Khashabi et al. 2022): train prompts pulled toward the embeddings of an
unrelated text with an extra loss ``γ·mean_i ‖P_i − E_i‖²``, and report accuracy against the Prompt-F1 of their
projections: a projection can be made to *read* as anything while the prompt still solves the task.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Mapping, Sequence

import numpy as np

from .._params import Interval, ListOf, Text, check_param
from ..exceptions import AnalyzerError, ShapeMismatchError
from ..provenance import model_line
from ..results import Renderable
from ..types import SoftPrompt, Vocabulary
from ._common import _device, _init_ids, _prompt_matrix, _text_ids, _tile
from .evaluation import Accuracy, accuracy_from_eval
from .projection import HardProjection, hard_projection, projection_f1, prompt_f1

#: γ values of the stress test (penalty per virtual token, see :func:`waywardness_stress_test`).
DEFAULT_GAMMAS = (0.0, 0.03, 0.3, 3.0)

@dataclass(frozen=True)
class WaywardnessRow:
    """One γ of the stress test: the trained soft prompt's ``accuracy`` and its projection's
    (``projection_accuracy``, fed as tokens), ``prompt_f1``/``prompt_f1_loose`` (projection vs target text),
    ``init_f1`` (projection vs the start), ``distance`` (mean ‖P_i − E_i‖ to the target embeddings),
    ``final_loss``, ``steps`` and the ``projection`` itself."""

    gamma: float
    accuracy: Accuracy
    prompt_f1: float
    projection_accuracy: Accuracy | None = None
    prompt_f1_loose: float | None = None
    init_f1: float = 0.0
    distance: float = 0.0
    final_loss: float | None = None
    steps: int | None = None
    projection: HardProjection | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "accuracy": self.accuracy.to_dict(),
                "projection_accuracy": self.projection_accuracy.to_dict() if self.projection_accuracy else None,
                "prompt_f1": self.prompt_f1, "prompt_f1_loose": self.prompt_f1_loose, "init_f1": self.init_f1,
                "distance": self.distance, "final_loss": self.final_loss, "steps": self.steps,
                "projection": self.projection.to_dict() if self.projection else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WaywardnessRow:
        """Read back a ``to_dict()`` (fields it lacks take their defaults)."""
        pa, proj = d.get("projection_accuracy"), d.get("projection")
        return cls(gamma=d["gamma"], accuracy=Accuracy.from_dict(d["accuracy"]), prompt_f1=d["prompt_f1"],
                   projection_accuracy=Accuracy.from_dict(pa) if pa else None,
                   prompt_f1_loose=d.get("prompt_f1_loose"), init_f1=d.get("init_f1", 0.0),
                   distance=d.get("distance", 0.0), final_loss=d.get("final_loss"), steps=d.get("steps"),
                   projection=HardProjection.from_dict(proj) if proj else None)


@dataclass
class WaywardnessResult(Renderable):
    """Rows of the stress test, one :class:`WaywardnessRow` per γ, and the references they are read against.

    target_text, target_ids: the unrelated text the penalty pulls toward (tiled to the prompt length).
    target_accuracy: the target text itself fed as tokens in the prompt's place (the γ → ∞ limit).
    none_accuracy: no prompt.  chance, majority: chance levels.
    """

    task: str
    target_text: str
    target_ids: list[int]
    rows: tuple[WaywardnessRow, ...]
    target_accuracy: Accuracy | None
    none_accuracy: Accuracy | None
    chance: float | None
    majority: float | None
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict | None = None   # which model was run, and what it stands in for (analyzer.provenance)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "model_provenance": self.provenance, "target_text": self.target_text,
                "target_ids": list(self.target_ids), "rows": [r.to_dict() for r in self.rows],
                "target_accuracy": self.target_accuracy.to_dict() if self.target_accuracy else None,
                "none_accuracy": self.none_accuracy.to_dict() if self.none_accuracy else None,
                "chance": self.chance, "majority": self.majority, "settings": dict(self.settings),
                "summary": self.summary()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WaywardnessResult:
        """Read back a ``to_dict()`` (the references it lacks are None)."""
        ta, na = d.get("target_accuracy"), d.get("none_accuracy")
        return cls(task=d.get("task", ""), target_text=d.get("target_text", ""),
                   target_ids=list(d.get("target_ids") or ()),
                   rows=tuple(WaywardnessRow.from_dict(r) for r in d.get("rows") or ()),
                   target_accuracy=Accuracy.from_dict(ta) if ta else None,
                   none_accuracy=Accuracy.from_dict(na) if na else None, chance=d.get("chance"),
                   majority=d.get("majority"), settings=dict(d.get("settings") or {}),
                   provenance=d.get("model_provenance"))

    def sorted_rows(self) -> list[WaywardnessRow]:
        """The rows by increasing γ."""
        return sorted(self.rows, key=lambda r: r.gamma)

    def summary(self) -> list[str]:
        """Plain sentences: how far the projection was pulled toward the target, and what it cost."""
        rows = self.sorted_rows()
        if not rows:
            return []
        base = rows[0]
        out = []
        a0 = base.accuracy
        if not a0.above_chance:
            out.append(f"Caution: the unpulled prompt (γ={base.gamma:g}) is not above chance — accuracy "
                       f"{a0.accuracy:.3f} against a majority class of {self.majority:.3f}, balanced accuracy "
                       f"{a0.balanced_accuracy:.2f} against {self.chance:.2f} — so it did not learn the task in "
                       f"{self.settings.get('steps')} steps and these rows cannot show waywardness. Train longer "
                       f"(--steps) or start from a trained prompt (--init PATH).")
        out.append(f"Without the pull (γ={base.gamma:g}) the prompt scores {_acc(a0)} (balanced "
                   f"{a0.balanced_accuracy:.2f}; no prompt {self.none_accuracy.accuracy:.3f}) and its "
                   f"projection reads as the target text with Prompt-F1 {base.prompt_f1:.2f}.")
        for r in rows[1:]:
            diff = r.accuracy.accuracy - a0.accuracy
            out.append(f"γ={r.gamma:g}: Prompt-F1 {r.prompt_f1:.2f} with accuracy {_acc(r.accuracy)} "
                       f"({diff:+.3f} vs γ={base.gamma:g}; balanced {r.accuracy.balanced_accuracy:.2f}); "
                       f"its projection fed as tokens scores {r.projection_accuracy.accuracy:.3f}.")
        out.append(f"References: the target text as the prompt {_acc(self.target_accuracy)}, no prompt "
                   f"{_acc(self.none_accuracy)}, chance {self.chance:.3f}, majority class {self.majority:.3f}.")
        return out

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def _table_rows(self) -> list[list[str]]:
        return [[f"{r.gamma:g}", _acc(r.accuracy), f"{r.accuracy.balanced_accuracy:.3f}",
                 _acc(r.projection_accuracy), f"{r.prompt_f1:.2f}",
                 f"{r.prompt_f1_loose:.2f}", f"{r.init_f1:.2f}", f"{r.distance:.3f}",
                 f"{r.final_loss:.3f}", " ".join(r.projection.tokens)]
                for r in self.sorted_rows()]

    _HEAD = ["γ", "accuracy [95% CI]", "balanced acc.", "projection acc.", "Prompt-F1", "loose F1", "F1 vs start",
             "distance", "loss", "projection"]

    def _title(self) -> str:
        st = self.settings
        return (f"Waywardness stress test — task {self.task}, target {self.target_text!r}; {st.get('steps')} steps "
                f"per γ from init {st.get('init')}, {st.get('num_virtual_tokens')} virtual tokens, accuracy on "
                f"{st.get('split')}")

    def to_markdown(self) -> str:
        src = [model_line(self.provenance) + ".", ""] if model_line(self.provenance) else []
        lines = [f"# {self._title()}", "", *src, "| " + " | ".join(self._HEAD) + " |",
                 "|" + "---:|" * (len(self._HEAD) - 1) + ":---|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self._table_rows()]
        return "\n".join(lines + [""] + [f"- {s}" for s in self.summary()])

    def to_table(self, width: int = 120) -> str:
        """The numbers as a terminal table; each γ's projection (the tokens it reads as) below it."""
        from rich.table import Table

        from ..render.text import text_console

        console = text_console(width)
        if model_line(self.provenance):
            console.print(model_line(self.provenance))
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

        from ..render.html import page
        from ..render.tables import source_html
        from ..plotting import plot_waywardness

        src = source_html(self.provenance)
        body = [f"<h1>{escape(self._title())}</h1>", *src, plot_waywardness(self), "<table><tr>"
                + "".join(f"<th>{escape(h)}</th>" for h in self._HEAD) + "</tr>"]
        body += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in self._table_rows()]
        body += ["</table><ul>"] + [f"<li>{escape(s)}</li>" for s in self.summary()] + ["</ul>"]
        return page(self._title(), body)



def _acc(a: Accuracy) -> str:
    return f"{a.accuracy:.3f} [{a.ci_low:.2f}, {a.ci_high:.2f}]"


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

    from ..training.config import TrainConfig
    from ..training.scoring import encode_examples, pad_batch, pad_id_of, prompted_classifier
    from ..training.trainer import LengthGroupedBatches

    check_param("train_with_penalty", "gamma", gamma, Interval(Real, 0, None))
    cfg = TrainConfig(model=model_name or "frozen model", task=task.name, out="(in memory)", steps=steps,
                      batch_size=batch_size, lr=lr, seed=seed, max_length=max_length)
    if len(task.train) < cfg.batch_size:
        raise AnalyzerError(f"Task {task.name!r} has {len(task.train)} training examples, fewer than batch_size "
                            f"{cfg.batch_size}; the waywardness stress test cannot train on it.")
    dev = _device(model)
    label_ids = task.label_token_ids(tokenizer, model_name)
    module = prompted_classifier(model, label_ids, _prompt_matrix(init, model).clone().to(dev))
    tgt = _prompt_matrix(target, model, check_rows_=False).to(dev)
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

    from ..neighbors import NeighborIndex
    from ..scale import input_embed_scale
    from ..tasks import get_task
    from ..training.initialize import init_prompt
    from ..training.scoring import evaluate

    task = get_task(task)
    check_param("waywardness_stress_test", "gammas", gammas, ListOf(Interval(Real, 0, None), min_len=1))
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
        return accuracy_from_eval(r, task, label)

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
        rows.append(WaywardnessRow(
            gamma=float(gamma), accuracy=acc_of(p, f"soft γ={gamma:g}"),
            projection_accuracy=acc_of(list(proj.token_ids), f"projection γ={gamma:g}"),
            prompt_f1=f1["f1"], prompt_f1_loose=f1["f1_loose"],
            init_f1=prompt_f1(list(proj.token_ids), ref_start)["f1"],
            distance=float((p - target).norm(dim=-1).mean()), final_loss=last, steps=int(steps), projection=proj))
    say("scoring the references: the target text as the prompt, and no prompt")
    tgt_acc = acc_of(target_ids, "target text")
    none_acc = acc_of(None, "none")
    return WaywardnessResult(task=task.name, target_text=target_text, target_ids=target_ids, rows=tuple(rows),
                             target_accuracy=tgt_acc, none_accuracy=none_acc, chance=1.0 / task.num_labels,
                             majority=none_acc.majority,
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
    from ..loaders import load_prompts, load_vocabulary
    from .._progress import loading
    from ..models import load_frozen_model
    from ..tasks import get_task
    from ..training.config import INIT_MODES

    check_param("waywardness_for_model", "target_text", target_text, Text())
    task = get_task(task, label_words=label_words)
    if isinstance(init, str) and init not in INIT_MODES:
        prompts = load_prompts(init)
        if len(prompts) != 1:
            raise AnalyzerError(f"--init {init!r} holds {len(prompts)} prompts; give one adapter or tensor, or an "
                                f"init mode: {', '.join(INIT_MODES)}.")
        init = prompts[0]
    say = progress or (lambda msg: None)
    with loading(progress, model):
        frozen, tok = load_frozen_model(model)
        vocab = load_vocabulary(model)
    say(f"training {len(gammas)} prompts × {steps} steps on {task.name} (γ = {', '.join(f'{g:g}' for g in gammas)}),"
        f" then scoring each on {limit or 'all'} {split} examples")
    res = waywardness_stress_test(frozen, tok, task, target_text, vocab, init=init, gammas=gammas, steps=steps,
                                  limit=limit, split=split, model_name=model, progress=progress, **settings)
    from dataclasses import replace

    from ..provenance import vocab_provenance

    return replace(res, provenance=vocab_provenance(vocab, [init] if hasattr(init, "source") else [], what="model"))


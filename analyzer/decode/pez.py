"""Soft prompt -> hard prompt by projected gradient descent, in the manner of PEZ (Wen et al., NeurIPS 2023,
"Hard Prompts Made Easy").

A continuous copy ``theta`` (``"N d"``) of the prompt is kept; every step it is projected onto the nearest usable
vocabulary rows (cosine, special and unused tokens never chosen), the frozen model runs on that *hard* prompt (real
token embeddings, as the tokens' text would give them), and the gradient taken at the hard prompt updates
``theta`` (the straight-through step of PEZ).  So every prompt the model ever sees is made of real tokens.

The objective, per batch of training examples::

    task_weight * CE(label words)  +  agreement_weight * KL(soft || hard)  +  fluency * NLL(hard prompt as text)

* the task loss is the rank classification the soft prompt was trained with (the task's label words);
* the teacher term asks the hard prompt to predict, on the same inputs, what the soft prompt predicts (the label
  distribution of the soft prompt, computed without gradient);
* the fluency term is the frozen model's mean negative log-likelihood of the hard prompt's tokens as text (each
  token given the ones before it; no BOS), so a larger ``fluency`` favours prompts the model finds likely.

The start is the soft prompt's own nearest-token projection (``init="projection"``; for another ``length`` its
positions are sampled evenly) or random usable tokens (``init="random"``).  Every ``eval_every`` steps the current
hard prompt is scored with the same objective on a fixed set of validation examples and the best is kept (the
start is scored too, so a decode never returns something worse than where it began on that set).

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..exceptions import AnalyzerError, TrainingError
from .config import DecodeConfig

CHECKPOINT = "decode_checkpoint.safetensors"
LOG = "decode_log.jsonl"
RESULT = "decode.json"


@dataclass(frozen=True)
class DecodeTrace:
    """What the optimisation did: the chosen ``token_ids`` (``"N"``), the step they come from (``best_step``; 0 is
    the start), their selection objective (``best_objective``, with its parts in ``best_parts``), the start's
    ids and objective, the soft prompt's nearest-token projection (``projection_ids``, at its own length), the steps run (``steps_done``), whether it was stopped early, and the seconds."""

    token_ids: tuple[int, ...]
    best_step: int
    best_objective: float
    best_parts: dict
    start_ids: tuple[int, ...]
    projection_ids: tuple[int, ...]
    start_objective: float
    steps_done: int
    stopped: bool
    seconds: float


# ---------------------------------------------------------------------------------------------- pieces
def usable_mask(vocab, model) -> np.ndarray:
    """bool ``"V"``: rows a decoded prompt may use -- not special or unused in the vocabulary, and inside the
    model's embedding matrix (some checkpoints pad it)."""
    rows = int(model.get_input_embeddings().weight.shape[0])
    ok = ~np.asarray(vocab.excluded, bool)
    ok = ok[:rows] if ok.size >= rows else np.concatenate([ok, np.zeros(rows - ok.size, bool)])
    if not ok.any():
        raise AnalyzerError("The vocabulary has no usable token to decode into (every row is special or unused).")
    return ok


class Projector:
    """Nearest usable token (cosine) of each row of a ``"N d"`` tensor, over the model's own embedding rows."""

    def __init__(self, model, usable: np.ndarray):
        import torch

        with torch.no_grad():
            w = model.get_input_embeddings().weight.detach().float()
            self.rows = w.shape[0]
            self.unit = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.blocked = torch.as_tensor(~usable).to(self.unit.device)

    def __call__(self, theta) -> list[int]:
        import torch

        with torch.no_grad():
            t = theta.detach().to(self.unit.device, torch.float32)     # a CPU prompt against a GPU model's rows
            s = (t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)) @ self.unit.T
            s[:, self.blocked] = -math.inf
            return [int(i) for i in s.argmax(dim=1)]


def embed_ids(model, ids: Sequence[int]):
    """float32 ``"N d"``: the hard prompt as the model's embedding module gives it (its scale included)."""
    import torch

    emb = model.get_input_embeddings()
    with torch.no_grad():
        return emb(torch.as_tensor(list(ids), dtype=torch.long, device=emb.weight.device)).float()


def text_nll(model, prefix, ids: Sequence[int]):
    """Mean negative log-likelihood of ``ids[1:]`` given the rows before them (``prefix``: ``"N d"`` embeddings of
    ``ids``, differentiable); a 0 tensor for a one-token prompt."""
    import torch

    if len(ids) < 2:
        return prefix.sum() * 0.0
    logits = model(inputs_embeds=prefix.unsqueeze(0).to(model.dtype), use_cache=False).logits[0, :-1].float()
    target = torch.as_tensor(list(ids[1:]), dtype=torch.long, device=logits.device)
    return torch.nn.functional.cross_entropy(logits, target)


def start_ids(config: DecodeConfig, projection: Sequence[int], usable: np.ndarray) -> list[int]:
    """The decode's first hard prompt: the projection (evenly resampled to ``length``) or random usable tokens."""
    n = config.length or len(projection)
    if config.init == "random":
        rng = np.random.default_rng([config.seed, 4201])
        return [int(i) for i in rng.choice(np.flatnonzero(usable), size=n, replace=True)]
    pick = np.round(np.linspace(0, len(projection) - 1, n)).astype(int) if n != len(projection) else range(n)
    return [int(projection[i]) for i in pick]


def batch_rows(n_examples: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The training examples of ``step``: a function of (seed, step) only, so a resumed decode sees the same."""
    rng = np.random.default_rng([seed, 7717, step])
    return [int(i) for i in rng.choice(n_examples, size=min(batch_size, n_examples), replace=False)]


def class_weights(targets: np.ndarray) -> np.ndarray:
    """Per example, ``n / (classes present * count of its class)``: scikit-learn's "balanced" class weight, so that
    every class weighs the same in a mean over the examples."""
    t = np.asarray(targets)
    classes, inv, counts = np.unique(t, return_inverse=True, return_counts=True)
    return (t.size / (classes.size * counts))[inv].astype(np.float64)


class Objective:
    """The decode's loss on a fixed list of encoded examples, with the soft prompt's label distribution (the
    teacher) computed once per example set."""

    def __init__(self, module, model, soft, seqs: Sequence[Sequence[int]], targets: np.ndarray, pad: int,
                 config: DecodeConfig):
        self.module, self.model, self.soft = module, model, soft
        self.seqs, self.targets, self.pad, self.config = list(seqs), np.asarray(targets), pad, config
        self._teacher: dict[int, Any] = {}
        self.weights = class_weights(self.targets) if config.class_balanced else np.ones(len(self.targets))

    def teacher(self, rows: Sequence[int], ids, lens):
        import torch

        missing = [r for r in rows if r not in self._teacher]
        if missing:
            pos = [rows.index(r) for r in missing]
            with torch.no_grad():
                logp = torch.log_softmax(self.module(ids[pos], lens[pos], prefix=self.soft), dim=1)
            for r, row in zip(missing, logp):
                self._teacher[r] = row
        return torch.stack([self._teacher[r] for r in rows])

    def parts(self, hard, ids: Sequence[int], rows: Sequence[int], fluency: bool = True) -> dict:
        """``{"task", "agreement", "fluency", "total"}`` (tensors; differentiable in ``hard``) on ``rows``; without
        ``fluency`` that term is left out (0) of the total."""
        import torch

        from ..training.scoring import pad_batch

        c = self.config
        x, lens = pad_batch([self.seqs[r] for r in rows], self.pad)
        logits = self.module(x, lens, prefix=hard)
        logp = torch.log_softmax(logits, dim=1)
        y = torch.as_tensor(self.targets[list(rows)], dtype=torch.long, device=logp.device)
        w = torch.as_tensor(self.weights[list(rows)], dtype=logp.dtype, device=logp.device)
        w = w / w.sum()                                    # a weighted mean over the batch
        task = -(w * logp.gather(1, y[:, None])[:, 0]).sum()
        agree = logits.sum() * 0.0
        if c.agreement_weight > 0:
            t = self.teacher(list(rows), x, lens)
            agree = (w * (t.exp() * (t - logp)).sum(dim=1)).sum()
        flu = text_nll(self.model, hard, ids) if fluency and c.fluency > 0 else logits.sum() * 0.0
        total = c.task_weight * task + c.agreement_weight * agree + (c.fluency * flu if fluency else 0.0)
        return {"task": task, "agreement": agree, "fluency": flu, "total": total}

    def score(self, ids: Sequence[int], hard, batch: int = 32) -> dict:
        """The objective's parts (floats) over all of this objective's examples, without gradient."""
        import torch

        sums = {"task": 0.0, "agreement": 0.0, "total": 0.0}
        n = len(self.seqs)
        with torch.no_grad():
            for a in range(0, n, batch):
                rows = list(range(a, min(n, a + batch)))
                p = self.parts(hard, ids, rows, fluency=False)
                for k in sums:
                    sums[k] += float(p[k]) * len(rows)
            flu = float(text_nll(self.model, hard, ids)) if len(ids) > 1 else 0.0
        out = {k: v / n for k, v in sums.items()}
        out["fluency"] = flu
        out["total"] = out["total"] + self.config.fluency * flu
        return out


# ---------------------------------------------------------------------------------------------- the loop
def run_pez(model, tokenizer, soft, task, vocab, config: DecodeConfig, *, out: Path | None = None,
            model_name: str | None = None, progress: Callable[[str], None] | None = None,
            stop_event: threading.Event | None = None, resume: bool = False,
            on_step: Callable[[int, float], None] | None = None) -> DecodeTrace:
    """Optimise the hard prompt (see the module docstring); ``soft``: float32 ``"n d"`` tensor.  With ``out``, a
    checkpoint every ``checkpoint_every`` steps and a log line per step (``decode_log.jsonl``); ``resume``
    continues from the checkpoint there (same settings and prompt, else refused).  ``on_step(step, loss)`` is called
    after every step (a progress bar; setting ``stop_event`` there stops the decode after that step)."""
    import torch

    from ..training.files import open_log, optimizer_tensors, restore_optimizer
    from ..training.scoring import encode_examples, pad_id_of, prompted_classifier

    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    usable = usable_mask(vocab, model)
    project = Projector(model, usable)
    proj = project(soft)
    train_ex = task.split("train")
    val_ex = task.split("validation")[:config.select_examples]
    if len(train_ex) < 1 or len(val_ex) < 2:
        raise AnalyzerError(f"Task {task.name!r} has {len(train_ex)} training and {len(val_ex)} validation "
                            f"examples; decode needs at least 1 and 2.")
    label_ids = task.label_token_ids(tokenizer, model_name)
    module = prompted_classifier(model, label_ids)
    pad = pad_id_of(tokenizer)
    train_obj = Objective(module, model, soft, encode_examples(tokenizer, task, train_ex, max_length=config.max_length),
                          np.array([e.label for e in train_ex]), pad, config)
    val_obj = Objective(module, model, soft, encode_examples(tokenizer, task, val_ex, max_length=config.max_length),
                        np.array([e.label for e in val_ex]), pad, config)

    ids0 = start_ids(config, proj, usable)
    theta = torch.nn.Parameter(embed_ids(model, ids0).clone())
    opt = torch.optim.AdamW([theta], lr=config.lr, weight_decay=config.weight_decay)
    start = 0
    first = val_obj.score(ids0, embed_ids(model, ids0))
    best = {"step": 0, "ids": list(ids0), "objective": first["total"], "parts": first}
    fingerprint = {"config": config.to_dict(), "soft_sha": _tensor_key(soft), "task": task.name,
                   "model": str(model_name)}
    if out is not None and resume:
        start, best = _load_checkpoint(out, theta, opt, fingerprint, restore_optimizer)
        say(f"resuming the decode at step {start} of {config.steps}")
    logf = open_log(out / LOG, "a" if resume else "w") if out is not None else None
    stopped, done = False, start
    last_say = 0.0
    try:
        for step in range(start, config.steps):
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            ids = project(theta)
            hard = embed_ids(model, ids).requires_grad_(True)
            rows = batch_rows(len(train_obj.seqs), config.batch_size, config.seed, step)
            parts = train_obj.parts(hard, ids, rows)
            if not torch.isfinite(parts["total"]):
                raise TrainingError(f"The decode's loss became {float(parts['total'])} at step {step + 1}; lower "
                                    f"--lr (now {config.lr:g}) or --fluency and start again.")
            parts["total"].backward()
            theta.grad = hard.grad.detach().to(theta.dtype)
            opt.step()
            opt.zero_grad(set_to_none=True)
            done = step + 1
            row = {"step": done, **{k: float(v.detach()) for k, v in parts.items()}, "token_ids": ids}
            if done % config.eval_every == 0 or done == config.steps:
                new_ids = project(theta)
                sel = val_obj.score(new_ids, embed_ids(model, new_ids))
                row["select"] = sel["total"]
                if sel["total"] < best["objective"]:
                    best = {"step": done, "ids": list(new_ids), "objective": sel["total"], "parts": sel}
            if logf is not None:
                logf.write(json.dumps(row) + "\n")
                logf.flush()
            if out is not None and (done % config.checkpoint_every == 0 or done == config.steps):
                _save_checkpoint(out, theta, opt, done, best, fingerprint, optimizer_tensors)
            if on_step is not None:
                on_step(done, row["total"])
            now = time.perf_counter()
            if now - last_say >= 5 or done in (1, config.steps):
                last_say = now
                say(f"decode step {done}/{config.steps}: loss {row['total']:.3f} (task {row['task']:.3f}, "
                    f"agreement {row['agreement']:.3f}, fluency {row['fluency']:.3f}); best so far at step "
                    f"{best['step']}: {best['objective']:.3f}")
    finally:
        if logf is not None:
            logf.close()
    steps_done = done
    if stopped and out is not None:
        _save_checkpoint(out, theta, opt, steps_done, best, fingerprint, optimizer_tensors)
    return DecodeTrace(token_ids=tuple(best["ids"]), best_step=int(best["step"]),
                       best_objective=float(best["objective"]), best_parts={k: float(v) for k, v in
                                                                           best["parts"].items()},
                       start_ids=tuple(ids0), projection_ids=tuple(proj), start_objective=float(first["total"]), steps_done=int(steps_done),
                       stopped=stopped, seconds=time.perf_counter() - t0)


def _tensor_key(t) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32)).tobytes()).hexdigest()[:16]


def _save_checkpoint(out: Path, theta, opt, step: int, best: dict, fingerprint: dict, optimizer_tensors) -> None:
    from ..training.files import _safetensors_save

    tensors, opt_meta = optimizer_tensors(opt)
    meta = {"step": int(step), "best": {"step": int(best["step"]), "ids": [int(i) for i in best["ids"]],
                                        "objective": float(best["objective"]),
                                        "parts": {k: float(v) for k, v in best["parts"].items()}},
            "optimizer": opt_meta, **fingerprint}
    _safetensors_save({"theta": theta.detach(), **tensors}, out / CHECKPOINT, {"decode": json.dumps(meta)})


def _load_checkpoint(out: Path, theta, opt, fingerprint: dict, restore_optimizer) -> tuple[int, dict]:
    from ..training.files import _safetensors_load

    path = out / CHECKPOINT
    if not path.is_file():
        raise TrainingError(f"Nothing to resume: {out} holds no {CHECKPOINT}. Start the decode without --resume.")
    tensors, meta = _safetensors_load(path)
    try:
        ck = json.loads(meta["decode"])
        step, best = int(ck["step"]), dict(ck["best"])
    except (KeyError, ValueError, TypeError):
        raise TrainingError(f"{path} is not a decode checkpoint; delete it or start without --resume.") from None
    for key in ("config", "soft_sha", "task", "model"):
        if ck.get(key) != fingerprint[key]:
            what = {"config": "settings", "soft_sha": "soft prompt", "task": "task", "model": "model"}[key]
            raise TrainingError(f"The decode in {out} was run with another {what}; resume it with the same "
                                f"arguments, or start again without --resume (and another --out).")
    if tuple(tensors["theta"].shape) != tuple(theta.shape):
        raise TrainingError(f"The checkpoint in {out} holds a prompt of shape {tuple(tensors['theta'].shape)}; "
                            f"this decode makes {tuple(theta.shape)}.")
    with __import__("torch").no_grad():
        theta.copy_(tensors["theta"])
    restore_optimizer(opt, tensors, ck["optimizer"])
    return step, best


__all__ = ["DecodeTrace", "run_pez", "usable_mask", "Projector", "embed_ids", "text_nll", "start_ids",
           "batch_rows", "Objective", "CHECKPOINT", "LOG", "RESULT"]

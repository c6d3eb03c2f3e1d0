"""``decode``: a soft prompt turned into real tokens that do its job, scored on held-out examples and written as a
PEFT adapter.

:func:`decode` runs the optimisation (:mod:`.pez`), then scores on the same first ``limit`` examples of the test
split: the decoded prompt, the soft prompt, its nearest-token projection, the task's instruction and zero-shot,
with an exact McNemar test of the decoded prompt against each (Benjamini-Hochberg over the four), the decoded
prompt's agreement with the soft prompt's predictions and the perplexity of each hard prompt under the frozen
model.  With ``out`` it writes there ``decode.json`` (the result), ``adapter_config.json`` +
``adapter_model.safetensors`` (a PEFT prompt-tuning adapter, init ``TEXT``, holding the hard prompt's token
embeddings; it loads in PEFT and in this toolkit), ``decode_log.jsonl`` and a resumable checkpoint.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace
from numbers import Integral
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._params import Interval, Options, check_params
from ..exceptions import AnalyzerError
from .config import DecodeConfig
from .pez import RESULT, embed_ids, run_pez, text_nll
from .result import DecodeResult, gain_recovered


def _perplexity(model, ids) -> float | None:
    import torch

    ids = [int(i) for i in ids]
    if len(ids) < 2:
        return None
    with torch.no_grad():
        return float(math.exp(float(text_nll(model, embed_ids(model, ids), ids))))


def decode(model, tokenizer, prompt, task, vocab, config: DecodeConfig | None = None, *, split: str = "test",
           limit: int | None = 200, out: str | Path | None = None, resume: bool = False, overwrite: bool = False,
           model_name: str | None = None, progress: Callable[[str], None] | None = None,
           stop_event: threading.Event | None = None,
           on_step: Callable[[int, float], None] | None = None) -> DecodeResult:
    """Decode ``prompt`` (a ``SoftPrompt`` or ``"n d"`` matrix) into real tokens for ``task`` (see the module
    docstring); ``vocab``: the model's ``Vocabulary`` (which rows are usable tokens).  ``out``: a folder for the
    adapter, the result and the checkpoint (one decode per folder, locked while it runs; ``resume`` continues a
    stopped one, ``overwrite`` replaces a finished one).  ``stop_event``/``on_step(step, loss)``: stop after a
    step / follow the steps (the stopped decode is still scored and written, and can be resumed)."""
    from ..faithfulness._common import _prompt_matrix
    from ..faithfulness.evaluation import Score, score_columns, versus
    from ..stats import benjamini_hochberg, wilson_interval
    from ..tasks import get_task
    from ..types import SoftPrompt
    from .result import REFERENCES

    config = config or DecodeConfig()
    split, limit = check_params("decode", {"split": split, "limit": limit}, {
        "split": [Options("test", "validation")], "limit": [Interval(Integral, 1, None), None]}).values()
    task = get_task(task)
    soft = _prompt_matrix(prompt, model)
    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "model"
    pname = prompt.name if isinstance(prompt, SoftPrompt) else "matrix"
    say = progress or (lambda msg: None)
    lock = None
    if out is not None:
        out = Path(out).expanduser()
        lock = _open_out(out, resume=resume, overwrite=overwrite)
    try:
        trace = run_pez(model, tokenizer, soft, task, vocab, config, out=out, model_name=model_name, progress=say,
                        stop_event=stop_event, resume=resume, on_step=on_step)
        ids = list(trace.token_ids)
        proj = list(trace.projection_ids)        # computed once, by the optimisation
        say(f"scoring the decoded prompt and four references on the first {limit} {split} examples")
        columns: dict[str, Any] = {"decoded": ids, "soft": soft, "projection": proj, "zero-shot": None}
        if task.instruction:
            columns["instruction"] = task.instruction
        scored = score_columns(model, tokenizer, columns, [task], split=split, limit=limit, model_name=model_name)
        results = {k: scored[(k, task.name)] for k in columns}
        scores = {k: Score.from_eval(r) for k, r in results.items()}
        refs = [k for k in REFERENCES if k in scores]
        vs = {k: versus(scores["decoded"], scores[k], k) for k in refs}
        qs = benjamini_hochberg([vs[k].p for k in refs])
        vs = {k: replace(vs[k], q=q, verdict=_verdict(k, scores["decoded"], scores[k], vs[k], q)) for k, q in
              zip(refs, qs)}
        same = np.asarray(results["decoded"].predictions) == np.asarray(results["soft"].predictions)
        lo, hi = wilson_interval(int(same.sum()), int(same.size))
        instr_ids = tokenizer.encode(task.instruction, add_special_tokens=False) if task.instruction else []
        ppl = {"decoded": _perplexity(model, ids), "projection": _perplexity(model, proj),
               "instruction": _perplexity(model, instr_ids) if instr_ids else None}
        z, s, d = scores["zero-shot"].accuracy, scores["soft"].accuracy, scores["decoded"].accuracy
        text = tokenizer.decode(ids)
        res = DecodeResult(
            model=str(name), prompt=pname, task=task.name, split=split, n=scores["decoded"].n, text=text,
            token_ids=tuple(ids), tokens=tuple(_token_strings(vocab, ids)),
            round_trip=tokenizer.encode(text, add_special_tokens=False) == ids, scores=scores, versus=vs,
            agreement={"rate": float(same.mean()), "ci": [float(lo), float(hi)], "n": int(same.size)},
            perplexity=ppl, gain_recovered=gain_recovered(d, s, z),
            trace={"best_step": trace.best_step, "best_objective": trace.best_objective,
                   "best_parts": trace.best_parts, "start_ids": list(trace.start_ids),
                   "start_objective": trace.start_objective, "steps_done": trace.steps_done,
                   "stopped": trace.stopped, "seconds": round(trace.seconds, 1)},
            settings={**config.to_dict(), "limit": limit}, projection_text=tokenizer.decode(proj),
            out=str(out) if out is not None else None)
        if out is not None:
            _write(out, res, model, name, task, ids, text)
        if lock is not None:
            lock.release()
            lock = None
        return res
    finally:
        if lock is not None:
            lock.release(failed=True)


def _verdict(name: str, d, other, v, q: float) -> str:
    from ..faithfulness.evaluation import paired_sentence
    from ..stats import ALPHA

    return paired_sentence("decoded", d, name, other, v.diff, q, q < ALPHA)


def _token_strings(vocab, ids) -> list[str]:
    toks = getattr(vocab, "tokens", None)
    return [toks[i] if toks is not None and i < len(toks) else str(i) for i in ids]


def _open_out(out: Path, *, resume: bool, overwrite: bool):
    """Lock the decode's folder; refuse to replace a finished decode unless ``overwrite``."""
    from ..training.runlock import RunFolderLock
    from .pez import CHECKPOINT, LOG

    if out.exists() and not out.is_dir():
        raise AnalyzerError(f"--out {str(out)!r} is a file; expected a folder for the decode.")
    mine = (RESULT, CHECKPOINT, LOG, "adapter_config.json", "adapter_model.safetensors")
    if not resume and out.is_dir() and any((out / f).exists() for f in mine) and not overwrite:
        raise AnalyzerError(f"{out} already holds a decode; pass --resume to continue it, --overwrite to start "
                            f"again, or choose another --out.")
    lock = RunFolderLock(out, disposable=(LOG,)).acquire()
    if overwrite and not resume:
        for f in mine:
            if (out / f).exists():
                (out / f).unlink()
    return lock


def _write(out: Path, res: DecodeResult, model, model_name: str, task, ids, text: str) -> None:
    from ..cache import atomic_write_text
    from ..training.files import save_adapter

    save_adapter(out, embed_ids(model, ids), base_model_name_or_path=str(model_name),
                 model_config=getattr(model, "config", None), init_mode="TEXT", init_text=text, init_token_ids=ids)
    atomic_write_text(out / RESULT, json.dumps(res.to_dict(), indent=2, ensure_ascii=False, allow_nan=False))


def decode_for_model(model_name: str | None, prompt_path, task=None, *, label_words=None, task_index=None,
                     progress=None, fluencies=None, lengths=None, **kw):
    """:func:`decode` from names, as the ``decode`` command runs it: the prompt (``task_index`` for one task of a
    multitask adapter), the frozen model (default: the adapter's base model), its vocabulary, and the task
    (default: the one the adapter's training record names).  With ``fluencies`` or ``lengths``: the frontier sweep
    (:func:`analyzer.decode.decode_frontier`), a ``FrontierResult``."""
    from ..faithfulness._common import one_prompt_reading
    from ..provenance import vocab_provenance

    prompt, task, model_name, frozen, tok, vocab = one_prompt_reading(
        "decode", model_name, prompt_path, task, label_words=label_words, task_index=task_index, progress=progress)
    if fluencies is not None or lengths is not None:
        from .frontier import decode_frontier

        kw.pop("overwrite", None)
        res = decode_frontier(frozen, tok, prompt, task, vocab, fluencies=fluencies or (kw["config"].fluency,),
                              lengths=lengths or (None,), model_name=model_name, progress=progress, **kw)
    else:
        res = decode(frozen, tok, prompt, task, vocab, model_name=model_name, progress=progress, **kw)
    return replace(res, provenance=vocab_provenance(vocab, [prompt], what="model"))


__all__ = ["decode", "decode_for_model"]

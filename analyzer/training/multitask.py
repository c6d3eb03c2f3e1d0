"""Multitask prompt tuning: one PEFT ``MULTITASK_PROMPT_TUNING`` adapter for several tasks on one frozen model.

The prompt of task t is PEFT's ``MultitaskPromptEmbedding``: a shared matrix ``P`` (``"n d"``) times, element by
element, a low-rank task factor ``cols[t] @ rows[t]`` (``"n r"`` @ ``"r d"``).  ``train(config)`` comes here when
``config.task`` names several tasks (``--task sentiment,question-type,spam``); it writes into ``config.out``:

* ``adapter_config.json`` + ``adapter_model.safetensors`` -- PEFT's format (``prompt_embeddings``,
  ``prefix_task_cols``, ``prefix_task_rows``); ``PeftModel.from_pretrained(base, out)`` loads it and its
  ``forward(..., task_ids=...)`` picks the task, task ids in the order of ``config.task``;
* ``training_meta.json`` -- the run, with ``tasks`` (one record per task id: name, labels, label words,
  template) and per-task validation accuracies at each evaluation;
* ``training_log.jsonl`` -- one line per step (its task, loss, lr, tokens, step time; evaluations add
  ``eval_accuracy``, the mean over the tasks, and ``eval_accuracy_by_task``).

Training: the steps go round the tasks in turn (step s trains task ``(s - 1) % T`` on its own length-grouped
batch), so each task gets a third of the steps of a three-task run; AdamW on ``P`` and every task's factors,
the learning-rate schedule of ``TrainConfig.lr_at``; the frozen model in the same precision as single-task
training.  Each task's factor starts at exactly 1 (``cols = 1``, ``rows = 1/r``), so every task starts from the
shared init (text, vocab or random) and learns how it differs; PEFT's own ``RANDOM`` init draws the factors
around 0, which starts every task's prompt near the zero matrix.  A validation evaluation scores every task
(``eval_examples`` each); callbacks' ``on_eval`` gets the mean, so ``PlateauStop`` works on it, and
``keep_best`` keeps the adapter of the best mean.

Not (yet) for multitask runs: ``resume`` and checkpoints, snapshots (the trajectory view), several processes."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..exceptions import TrainingError
from ..scale import input_embed_scale
from ..task_record import task_record
from ..tasks import get_task
from .config import TrainConfig
from .divergence import divergence, diverged_error, norm_limit, record_divergence
from .files import LOG, open_log, save_multitask_adapter
from .initialize import init_prompt
from .loop import LengthGroupedBatches, TrainResult, frozen_model_on, notify, prepare_out, want_stop
from .precision import autocast
from .run_meta import RunMeta
from .runlock import RunFolderLock
from .scoring import PromptedClassifier, _result, encode_examples, pad_batch, pad_id_of, score

MULTITASK_INITS = ("text", "vocab", "random")


def task_prompts(shared: torch.Tensor, cols: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Every task's prompt ``"tasks n d"``: ``shared * (cols[t] @ rows[t])``, as PEFT's
    ``MultitaskPromptEmbedding.forward`` builds it; in float32 also under the run's bfloat16 autocast (only the
    frozen model's products run in bfloat16: the prompt the model sees is the one the adapter saves)."""
    with torch.autocast(shared.device.type, enabled=False):
        return shared.unsqueeze(0) * torch.bmm(cols, rows)


def _check(config: TrainConfig, dist_) -> None:
    if dist_.world > 1:
        raise TrainingError(f"Multitask training runs in one process; got WORLD_SIZE={dist_.world}. Start it "
                            f"without torchrun/accelerate, or train one task per run.")
    if config.resume:
        raise TrainingError("A multitask run cannot be resumed (it writes no checkpoint); start it again with "
                            "--overwrite (or without --resume into a new --out).")
    if config.prompt_tuning_init not in MULTITASK_INITS:
        raise TrainingError(f"A multitask prompt starts from one of {list(MULTITASK_INITS)}; got init "
                            f"{config.prompt_tuning_init!r}, which needs a single task's label words. Pass "
                            f"--init text (with --init-text), vocab or random.")
    if config.label_words is not None:
        raise TrainingError("--label-words applies to one CSV/JSONL task; a multitask run takes built-in tasks or "
                            "files whose label words are their labels. Train the task on its own instead.")


def train_multitask(config: TrainConfig, *, callbacks=(), stop_event=None, model=None, tokenizer=None,
                    dist_=None, t_start: float | None = None, hold_lock: bool = True) -> TrainResult:
    """Train one multitask prompt on the tasks of ``config.task`` (comma-separated); see the module docstring.
    ``TrainResult.eval_accuracy`` is the last mean validation accuracy over the tasks.  ``hold_lock``: hold the
    run folder's lock (:mod:`analyzer.training.runlock`) for the run; ``train`` holds it itself and passes False."""
    if hold_lock:
        with RunFolderLock(Path(config.out), disposable=(LOG,)):
            return train_multitask(config, callbacks=callbacks, stop_event=stop_event, model=model,
                                   tokenizer=tokenizer, dist_=dist_, t_start=t_start, hold_lock=False)
    t_start = time.perf_counter() if t_start is None else t_start
    if dist_ is None:
        from ._dist import dist_setup

        dist_ = dist_setup(config.device)
    from ._dist import choose_device, use_device

    _check(config, dist_)
    callbacks = list(callbacks or ())
    out = Path(config.out).expanduser()
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {str(out)!r} is a file; expected a directory.")
    prepare_out(config, out)
    tasks = [get_task(name, text_column=config.text_column, label_column=config.label_column,
                      template=config.template, instruction=config.instruction) for name in config.tasks]
    for t in tasks:
        if len(t.train) < config.batch_size:
            raise TrainingError(f"Task {t.name!r} has {len(t.train)} training examples, fewer than batch_size "
                                f"{config.batch_size}; lower --batch-size or add data.")
    if len({t.name for t in tasks}) != len(tasks):
        raise TrainingError(f"The tasks {[t.name for t in tasks]} repeat a name; each task id needs its own task. "
                            f"Rename one of the files (a file task is named after its file).")
    out.mkdir(parents=True, exist_ok=True)
    device = use_device(dist_, choose_device(config.device, dist_))
    model, tokenizer, precision = frozen_model_on(config, device, model, tokenizer, callbacks)

    emb_module = model.get_input_embeddings()
    embed_scale = input_embed_scale(emb_module)
    limit = norm_limit(emb_module.weight, embed_scale)     # a prompt row beyond this has exploded
    d, n, r, T = int(emb_module.weight.shape[1]), config.num_virtual_tokens, config.num_ranks, len(tasks)
    init = init_prompt(config.prompt_tuning_init, embeddings=emb_module.weight, tokenizer=tokenizer,
                       num_virtual_tokens=n, seed=config.seed, text=config.prompt_tuning_init_text,
                       task=tasks[0], embed_scale=embed_scale)
    shared = torch.nn.Parameter(init.vectors.clone().float().to(device))
    cols = torch.nn.Parameter(torch.ones(T, n, r, device=device))
    rows = torch.nn.Parameter(torch.full((T, r, d), 1.0 / r, device=device))
    opt = torch.optim.AdamW([shared, cols, rows], lr=config.lr, weight_decay=config.weight_decay)

    pad = pad_id_of(tokenizer)
    heads, train_seqs, train_y, batches, val = [], [], [], [], []
    for k, task in enumerate(tasks):
        label_ids = task.label_token_ids(tokenizer, config.model)
        heads.append(PromptedClassifier(model, label_ids))
        seqs = encode_examples(tokenizer, task, task.train, max_length=config.max_length)
        train_seqs.append(seqs)
        train_y.append(torch.tensor([ex.label for ex in task.train], dtype=torch.long))
        batches.append(LengthGroupedBatches([len(s) for s in seqs], config.batch_size, config.seed + k))
        v = task.validation[:config.eval_examples]
        val.append((encode_examples(tokenizer, task, v, max_length=config.max_length),
                    np.array([ex.label for ex in v])))

    evals: list[tuple[int, float]] = []
    by_task: list[dict] = []
    state = {"step": 0, "elapsed": 0.0, "saved": None}     # saved: the step of the adapter on disk
    best: dict = {"step": None, "accuracy": -math.inf, "params": None}     # config.keep_best

    def validate(step: int) -> dict:
        accs = {}
        with torch.no_grad(), autocast(precision):
            prompts = task_prompts(shared, cols, rows)          # float32
            for k, task in enumerate(tasks):
                logits = score(heads[k], val[k][0], pad_id=pad, batch_size=32, prefix=prompts[k])
                accs[task.name] = _result(task, "validation", "soft", logits, val[k][1]).accuracy
        mean = float(np.mean(list(accs.values())))
        evals.append((step, mean))
        if config.keep_best and mean > best["accuracy"]:
            best.update(step=step, accuracy=mean, params=[x.detach().cpu().clone() for x in (shared, cols, rows)])
        by_task.append({"step": step, **accs})
        notify(callbacks, "on_eval", step, mean)
        return {"eval_accuracy": mean, "eval_accuracy_by_task": accs}

    val_n = {t.name: len(v[1]) for t, v in zip(tasks, val)}    # examples each task's accuracy is over

    def write(stopped: bool, final: bool = False) -> None:
        kept = final and config.keep_best and best["params"] is not None
        params = best["params"] if kept else (shared, cols, rows)
        final_eval = None
        if evals:
            final_eval = {"split": "validation", "step": evals[-1][0], "accuracy": evals[-1][1],
                          "n": val_n, "by_task": {k: v for k, v in by_task[-1].items() if k != "step"}}
        if kept:
            final_eval = {"split": "validation", "step": best["step"], "accuracy": best["accuracy"],
                          "n": val_n, "kept": "best", "last_step": evals[-1][0],
                          "last_accuracy": evals[-1][1],
                          "by_task": next({k: v for k, v in e.items() if k != "step"} for e in by_task
                                          if e["step"] == best["step"])}
        save_multitask_adapter(out, *params, base_model_name_or_path=config.model,
                               model_config=model.config, init_mode=init.mode, init_text=init.text,
                               init_token_ids=init.token_ids, tokenizer_name_or_path=config.tokenizer_name_or_path)
        RunMeta.of_run(config, multitask=True, tasks=[{"id": k, **task_record(t)} for k, t in enumerate(tasks)],
                       init=init.record(), num_ranks=r, token_dim=d, embed_scale=embed_scale,
                       precision=precision.to_dict(), steps_done=state["step"], stopped=stopped,
                       train_seconds=round(state["elapsed"], 2), world_size=1, evals=evals, evals_by_task=by_task,
                       final_eval=final_eval).save(out)
        state["saved"] = state["step"]

    losses, step_times, tokens_done = [], [], 0
    stopped = False
    with open_log(out / LOG, "w") as logf:
        notify(callbacks, "on_start", config, 0, config.steps)
        if config.eval_every:
            logf.write(json.dumps({"step": 0, **validate(0)}) + "\n")
        try:
            for step in range(1, config.steps + 1):
                t0 = time.perf_counter()
                k = (step - 1) % T
                mine = batches[k].batch((step - 1) // T + 1)
                ids, lens = pad_batch([train_seqs[k][i] for i in mine], pad)
                lr = config.lr_at(step)
                for g in opt.param_groups:
                    g["lr"] = lr
                prompt = task_prompts(shared, cols[k:k + 1], rows[k:k + 1])[0]    # float32
                with autocast(precision):
                    logits = heads[k](ids.to(device), lens.to(device), prefix=prompt)
                loss = torch.nn.functional.cross_entropy(logits, train_y[k][mine].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                state["step"] = step
                loss_f = float(loss.detach())
                why = divergence(loss_f, task_prompts(shared.detach(), cols.detach(), rows.detach()), limit)
                if why is not None:   # before this step writes anything: the last good adapter stays
                    record_divergence(out, step, why, config.lr)
                    raise diverged_error(why, step, config.lr, out, state["saved"], resumable=False)
                notify(callbacks, "on_step", step, loss_f, lr)
                stop_now = want_stop(callbacks, stop_event)
                dt = time.perf_counter() - t0
                state["elapsed"] += dt
                losses.append(loss_f)
                step_times.append(dt)
                n_tok = sum(len(train_seqs[k][i]) + n for i in mine)
                tokens_done += n_tok
                row = {"step": step, "task": tasks[k].name, "loss": loss_f, "lr": lr, "tokens": n_tok,
                       "step_time": round(dt, 4), "elapsed": round(state["elapsed"], 2)}
                last = step == config.steps
                if (config.eval_every and step % config.eval_every == 0) or last or stop_now:
                    row.update(validate(step))
                    stop_now = stop_now or want_stop(callbacks, stop_event)   # a rule on this evaluation
                logf.write(json.dumps(row) + "\n")
                logf.flush()
                if (config.checkpoint_every and step % config.checkpoint_every == 0) or last or stop_now:
                    write(stopped=stop_now and not last)
                if stop_now:
                    stopped = step < config.steps
                    break
        except KeyboardInterrupt:     # no resume for a multitask run: this is its end (keep_best applies)
            write(stopped=True, final=True)
            raise
    write(stopped=stopped, final=True)
    result = TrainResult.of_run(out, steps=state["step"], start_step=0, total_steps=config.steps, losses=losses,
                                evals=evals, stopped=stopped, t_start=t_start, step_times=step_times,
                                tokens_done=tokens_done)
    notify(callbacks, "on_end", result)
    return result


__all__ = ["train_multitask", "task_prompts", "MULTITASK_INITS"]

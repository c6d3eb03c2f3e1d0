"""The prompt-tuning trainer: only the virtual-token matrix learns; every model weight stays frozen.

``train(config)`` writes into ``config.out``:

* ``adapter_config.json`` + ``adapter_model.safetensors`` -- a PEFT prompt-tuning adapter in PEFT's exact format
  (``peft.PeftModel.from_pretrained(base, out)`` loads it).  The config holds PEFT's own init mode (``TEXT``,
  ``SAMPLE_VOCAB`` for our ``labels``/``vocab``, ``RANDOM``) and the init text; our exact mode (``LABELS``,
  ``VOCAB``...) and the init token ids go into the weights file's safetensors metadata (``init_mode``,
  ``init_token_ids``), which PEFT ignores, so PEFT loads the adapter without a warning;
* ``training_meta.json`` -- the run: config, task (labels, words, template), init, steps done, accuracies, and
  ``precision`` (the compute dtype ``config.dtype`` led to on this machine, the probe's speed-up, why);
* ``training_log.jsonl`` -- one line per step: step, loss, lr, tokens, step time; eval accuracy when evaluated;
* ``snapshots.safetensors`` -- the prompt every ``snapshot_every`` steps, keys ``step_000050`` (and the init,
  ``step_000000``);
* ``checkpoint.safetensors`` -- prompt, AdamW state, RNG and data position, written atomically every
  ``checkpoint_every`` steps, on stop and on Ctrl-C; ``resume=True`` continues from it;
* ``.run.lock`` -- while the run (or a resumed one) writes: one writer per folder, a second is refused naming the
  first (``analyzer.training.runlock``); a run that fails leaves no folder it created and left empty.

The frozen model's forward (training steps and validation) runs in bfloat16 autocast where the hardware multiplies
bfloat16 natively (``analyzer.training.precision``); the prompt, its gradient and AdamW's state stay float32.

Runs unchanged under ``torchrun``/``accelerate launch``: with ``WORLD_SIZE > 1`` it joins the process group
(gloo on CPU, nccl on GPUs), splits each global batch of ``batch_size`` examples over the ranks, wraps the
prompt in DistributedDataParallel, and writes files from rank 0 only."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from ..cache import atomic_write_text
from ..exceptions import TrainingError
from ..scale import input_embed_scale
from ..task_record import task_record
from ..tasks import Task, get_task
from ._dist import Dist, choose_device, dist_setup, use_device
from .config import FLAGS, RESUME_FIXED, TrainConfig
from .divergence import divergence, diverged_error, norm_limit, record_divergence
from .files import (LOG, SNAPSHOTS, _read_log, _safetensors_load, _safetensors_save, open_log, optimizer_tensors,
                    read_snapshots, read_training_log, restore_optimizer, save_adapter, snapshot_key, write_snapshots)
from .initialize import PromptInit, init_prompt
from .loop import (CHECKPOINT, LengthGroupedBatches, TrainResult, frozen_model_on, notify, prepare_out,
                   want_stop)
from .precision import autocast
from .run_meta import RunMeta
from .runlock import RunFolderLock
from .scoring import PromptedClassifier, _result, encode_examples, pad_batch, pad_id_of, score

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- checkpoint
def _same(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold() or os.path.abspath(a) == os.path.abspath(b)
    return a == b


def _read_checkpoint(out: Path) -> tuple[dict, dict]:
    tensors, meta = _safetensors_load(out / CHECKPOINT)
    try:
        ck = json.loads(meta["checkpoint"])
        if not all(k in ck for k in ("step", "config", "optimizer", "n", "d", "init")) or "prompt" not in tensors:
            raise KeyError("checkpoint")
    except (KeyError, ValueError, TypeError):
        raise TrainingError(f"{out / CHECKPOINT} is not a checkpoint of this trainer; delete it or use --overwrite."
                            ) from None
    return ck, tensors


def _check_resume_config(ck: dict, config: TrainConfig, out: Path) -> None:
    old = ck["config"]
    for name in RESUME_FIXED:
        if not _same(old.get(name), getattr(config, name)):
            raise TrainingError(
                f"Cannot resume the run in {out}: its checkpoint was trained with {name}={old.get(name)!r} but "
                f"this run asks for {getattr(config, name)!r} ({FLAGS.get(name, name)}). Use the same setting, or "
                f"start a new run with another --out (or --overwrite).")


def _check_resume_shape(ck: dict, config: TrainConfig, n: int, d: int, out: Path) -> None:
    if (ck["n"], ck["d"]) != (n, d):
        raise TrainingError(
            f"Cannot resume the run in {out}: its checkpoint prompt is {ck['n']} x {ck['d']} (virtual tokens x dim) "
            f"but the model {config.model!r} with {config.num_virtual_tokens} virtual tokens needs {n} x {d}.")


# ---------------------------------------------------------------------------------------------- the run
def load_task_for(config: TrainConfig) -> Task:
    return get_task(config.task, text_column=config.text_column, label_column=config.label_column,
                    label_words=config.label_words, template=config.template, instruction=config.instruction)


def train(config: TrainConfig, *, callbacks: Iterable = (), stop_event: threading.Event | None = None,
          model=None, tokenizer=None, task: Task | None = None,
          extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None) -> TrainResult:
    """Train a soft prompt as ``config`` says; see the module docstring for the files written.

    ``callbacks``: objects with ``on_start/on_step/on_eval/on_checkpoint/on_end/should_stop`` (see
    ``analyzer.training.callbacks``); ``stop_event``: a ``threading.Event`` that stops the run when set.
    ``model``/``tokenizer``: an already loaded frozen model (the dashboard's cached one); by default
    ``load_frozen_model(config.model)``.  ``task``: an already built Task (default: from ``config.task``).
    ``extra_loss``: ``f(prompt "n d") -> scalar tensor`` added to every step's loss (a regulariser, e.g. a
    distance to target embeddings); the logged loss includes it.

    Several comma-separated tasks in ``config.task`` train one multitask prompt
    (:func:`analyzer.training.multitask.train_multitask`).

    Raises TrainingError / TaskError for settings that cannot work; KeyboardInterrupt after writing a
    checkpoint when interrupted (continue with ``resume=True``)."""
    if not isinstance(config, TrainConfig):
        raise TrainingError(f"train() expects a TrainConfig; got {type(config).__name__}.")
    callbacks = list(callbacks or ())
    t_start = time.perf_counter()
    dist_ = dist_setup(config.device)
    # one writer per run folder (rank 0 writes): a second run on it is refused in one line naming this one
    folder = RunFolderLock(Path(config.out), disposable=(LOG,)) if dist_.main else None
    try:
        if len(config.tasks) > 1:      # several tasks: one PEFT MULTITASK_PROMPT_TUNING adapter
            if task is not None or extra_loss is not None:
                raise TrainingError("A multitask run (several tasks in config.task) takes no task= or extra_loss=.")
            from .multitask import train_multitask

            if folder is not None:
                folder.acquire()
            result = train_multitask(config, callbacks=callbacks, stop_event=stop_event, model=model,
                                     tokenizer=tokenizer, dist_=dist_, t_start=t_start, hold_lock=False)
        else:
            result = _train(config, callbacks, stop_event, model, tokenizer, task, dist_, t_start, extra_loss,
                            folder)
    except BaseException:
        if folder is not None:      # a failed run leaves no folder it created and left empty
            folder.release(failed=True)
        raise
    finally:
        dist_.close()
    if folder is not None:
        folder.release()
    return result


def _train(config, callbacks, stop_event, model, tokenizer, task, dist_: Dist, t_start,
           extra_loss, folder: RunFolderLock | None) -> TrainResult:
    out = Path(config.out).expanduser()
    if dist_.world > 1 and config.batch_size % dist_.world:
        raise TrainingError(f"batch_size {config.batch_size} is not divisible by the {dist_.world} processes; "
                            f"the global batch is split evenly over them.")
    device = use_device(dist_, choose_device(config.device, dist_))   # before the first collective
    if dist_.main:
        folder.acquire()         # creates the folder; refused while another run holds it
        prepare_out(config, out)
    dist_.barrier()
    ck = ck_tensors = None
    if config.resume:          # settings first: a mismatch fails before the model is loaded
        if not (out / CHECKPOINT).is_file():
            raise TrainingError(f"Nothing to resume: {out} holds no {CHECKPOINT}.")
        ck, ck_tensors = _read_checkpoint(out)
        _check_resume_config(ck, config, out)

    task = task or load_task_for(config)
    model, tokenizer, precision = frozen_model_on(config, device, model, tokenizer,
                                                  callbacks if dist_.main else ())
    label_ids = task.label_token_ids(tokenizer, config.model)
    if len(task.train) < config.batch_size:
        raise TrainingError(f"Task {task.name!r} has {len(task.train)} training examples, fewer than batch_size "
                            f"{config.batch_size}; lower --batch-size or add data.")

    emb_module = model.get_input_embeddings()
    emb = emb_module.weight
    embed_scale = input_embed_scale(emb_module)   # Gemma: sqrt(d); the prompt lives in the scaled space
    limit = norm_limit(emb, embed_scale)          # a prompt row beyond this has exploded
    d = int(emb.shape[1])
    n = config.num_virtual_tokens
    init = init_prompt(config.prompt_tuning_init, embeddings=emb, tokenizer=tokenizer, num_virtual_tokens=n,
                       seed=config.seed, text=config.prompt_tuning_init_text or task.instruction,
                       task=task, embed_scale=embed_scale)

    train_seqs = encode_examples(tokenizer, task, task.train, max_length=config.max_length)
    train_y = torch.tensor([ex.label for ex in task.train], dtype=torch.long)
    val_examples = task.validation[:config.eval_examples]
    val_seqs = encode_examples(tokenizer, task, val_examples, max_length=config.max_length)
    val_y = np.array([ex.label for ex in val_examples])
    pad = pad_id_of(tokenizer)
    batches = LengthGroupedBatches([len(s) for s in train_seqs], config.batch_size, config.seed)

    module = PromptedClassifier(model, label_ids, init.vectors.clone().to(device))
    opt = torch.optim.AdamW([module.prompt], lr=config.lr, weight_decay=config.weight_decay)

    start, elapsed0 = 0, 0.0
    snapshots: dict[str, torch.Tensor] = {}
    evals: list[tuple[int, float]] = []
    best: dict = {"step": None, "accuracy": -math.inf, "prompt": None}   # config.keep_best
    if ck is not None:
        tensors = ck_tensors
        _check_resume_shape(ck, config, n, d, out)
        with torch.no_grad():
            module.prompt.copy_(tensors["prompt"].to(device))
        restore_optimizer(opt, tensors, ck["optimizer"])
        torch.set_rng_state(tensors["rng.torch"])
        start, elapsed0 = int(ck["step"]), float(ck.get("elapsed", 0.0))
        init = PromptInit(ck["init"]["mode"], init.vectors, tuple(ck["init"]["token_ids"])
                          if ck["init"]["token_ids"] is not None else None, ck["init"]["text"])
        if dist_.main:
            if (out / SNAPSHOTS).is_file():
                snaps, _ = _safetensors_load(out / SNAPSHOTS)
                snapshots = {k: v for k, v in sorted(snaps.items()) if int(k.split("_")[1]) <= start}
            rows = _read_log(out / LOG, start)
            atomic_write_text(out / LOG, "".join(json.dumps(r) + "\n" for r in rows))
            evals = [(r["step"], r["eval_accuracy"]) for r in rows if "eval_accuracy" in r]
            if isinstance(ck.get("best"), dict) and "best.prompt" in tensors:   # kept by a keep_best run
                best.update(step=int(ck["best"]["step"]), accuracy=float(ck["best"]["accuracy"]),
                            prompt=tensors["best.prompt"].float().clone())
            else:   # the best evaluation before the checkpoint, where a snapshot holds its prompt
                for s_, a in evals:
                    if a > best["accuracy"] and snapshot_key(s_) in snapshots:
                        best.update(step=s_, accuracy=a, prompt=snapshots[snapshot_key(s_)].float().clone())
    elif dist_.main and config.snapshot_every:
        snapshots[snapshot_key(0)] = init.vectors.clone()

    train_module = module
    if dist_.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_module = DDP(module, device_ids=[device.index] if device.type == "cuda" else None)

    local = config.batch_size // dist_.world
    # saved: the step of the last checkpoint on disk (a diverged run keeps it)
    state = {"step": start, "elapsed": elapsed0, "consistent": True, "saved": start if ck is not None else None}
    losses: list[float] = []
    step_times: list[float] = []
    tokens_done = 0

    def run_meta(final_eval=None, stopped=False) -> RunMeta:
        return RunMeta.of_run(config, init=init.record(), task=task_record(task), token_dim=d,
                              embed_scale=embed_scale, label_token_ids=list(label_ids), precision=precision.to_dict(),
                              steps_done=state["step"], stopped=stopped, train_seconds=round(state["elapsed"], 2),
                              world_size=dist_.world, evals=evals, final_eval=final_eval)

    def write_adapter(final_eval=None, stopped=False, vectors=None):
        save_adapter(out, module.prompt if vectors is None else vectors, base_model_name_or_path=config.model,
                     model_config=model.config,
                     init_mode=init.mode, init_text=init.text, init_token_ids=init.token_ids,
                     tokenizer_name_or_path=config.tokenizer_name_or_path)
        run_meta(final_eval, stopped).save(out)

    def write_checkpoint(stopped=False):
        tensors, opt_meta = optimizer_tensors(opt)
        tensors = {"prompt": module.prompt.detach(), "rng.torch": torch.get_rng_state(), **tensors}
        ck = {"step": state["step"], "elapsed": state["elapsed"], "n": n, "d": d, "config": config.to_dict(),
              "optimizer": opt_meta, "world_size": dist_.world,
              "data": {"epoch": (state["step"]) // batches.per_epoch, "batches_per_epoch": batches.per_epoch},
              "init": init.record()}
        if best["prompt"] is not None:      # keep_best: a resumed run keeps the best evaluation before it
            tensors["best.prompt"] = best["prompt"]
            ck["best"] = {"step": best["step"], "accuracy": best["accuracy"]}
        _safetensors_save(tensors, out / CHECKPOINT, {"checkpoint": json.dumps(ck, default=str)})
        write_adapter(stopped=stopped)
        state["saved"] = state["step"]
        notify(callbacks, "on_checkpoint", state["step"], out / CHECKPOINT)

    def save_snapshots():
        write_snapshots(out, snapshots, model=config.model, task=task.name, init=init.mode)

    def validate(step: int) -> dict:
        with autocast(precision):     # the run's own precision (the test-split scores of evaluate() are float32)
            logits = score(module, val_seqs, pad_id=pad, batch_size=32)
        res = _result(task, "validation", "soft", logits, val_y)
        evals.append((step, res.accuracy))
        if config.keep_best and res.accuracy > best["accuracy"]:
            best.update(step=step, accuracy=res.accuracy, prompt=module.prompt.detach().cpu().clone())
        notify(callbacks, "on_eval", step, res.accuracy)
        return {"eval_accuracy": res.accuracy, "eval_balanced_accuracy": res.balanced_accuracy,
                "eval_loss": res.loss, "eval_n": res.n}

    logf = None
    if dist_.main:
        logf = open_log(out / LOG, "a")
        if snapshots and start == 0:
            save_snapshots()
        notify(callbacks, "on_start", config, start, config.steps)
        if start == 0 and config.eval_every:
            logf.write(json.dumps({"step": 0, **validate(0)}) + "\n")
            logf.flush()

    stopped = False
    try:
        for step in range(start + 1, config.steps + 1):
            t0 = time.perf_counter()
            gb = batches.batch(step)
            mine = gb[dist_.rank * local:(dist_.rank + 1) * local]
            ids, lens = pad_batch([train_seqs[i] for i in mine], pad)
            lr = config.lr_at(step)
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast(precision):     # the frozen model's products; prompt, grads, AdamW stay float32
                logits = train_module(ids.to(device), lens.to(device))
            loss = torch.nn.functional.cross_entropy(logits, train_y[mine].to(device))
            if extra_loss is not None:
                loss = loss + extra_loss(module.prompt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            state["consistent"] = False     # prompt and optimizer change together: no checkpoint in between
            opt.step()
            state["step"], state["consistent"] = step, True
            loss_f = float(dist_.sum(loss)) / dist_.world      # the global batch's mean
            why = divergence(loss_f, module.prompt, limit)    # the same on every rank (one global loss, one prompt)
            if why is not None:      # before anything of this step is written: the folder keeps the last good state
                if dist_.main:
                    record_divergence(out, step, why, config.lr)
                raise diverged_error(why, step, config.lr, out, state["saved"])
            if dist_.main:
                notify(callbacks, "on_step", step, loss_f, lr)
            stop_now = dist_.main and want_stop(callbacks, stop_event)
            if dist_.world > 1:                 # rank 0 decides; every rank stops at the same step
                stop_now = bool(dist_.sum([1.0 if stop_now else 0.0])[0] > 0)
            dt = time.perf_counter() - t0
            state["elapsed"] += dt
            losses.append(loss_f)
            step_times.append(dt)
            n_tok = sum(len(train_seqs[i]) + n for i in gb)
            tokens_done += n_tok
            if dist_.main:
                row = {"step": step, "loss": loss_f, "lr": lr, "tokens": n_tok,
                       "step_time": round(dt, 4), "elapsed": round(state["elapsed"], 2)}
                last = step == config.steps
                if config.eval_every and (step % config.eval_every == 0 or last or stop_now):
                    row.update(validate(step))
                elif last or stop_now:
                    row.update(validate(step))
                if "eval_accuracy" in row and not stop_now and dist_.world == 1:
                    stop_now = want_stop(callbacks, stop_event)   # a rule on the evaluation just made
                logf.write(json.dumps(row) + "\n")
                logf.flush()
                if config.snapshot_every and (step % config.snapshot_every == 0 or last or stop_now):
                    snapshots[snapshot_key(step)] = module.prompt.detach().cpu().clone()
                    save_snapshots()
                if step % config.checkpoint_every == 0 or last or stop_now:
                    write_checkpoint(stopped=stop_now and not last)
            if stop_now:
                stopped = step < config.steps
                break
    except KeyboardInterrupt:
        if dist_.main and state["step"] > start and state["consistent"]:
            write_checkpoint(stopped=True)
            log.warning("Interrupted at step %d of %d; checkpoint written to %s. Continue with --resume.",
                        state["step"], config.steps, out)
        raise
    finally:
        if logf is not None:
            logf.close()

    final_eval = None
    if dist_.main:
        if state["step"] == start:   # nothing to do (already complete): refresh the adapter
            write_adapter()
        kept = None
        if evals:
            final_eval = {"split": "validation", "step": evals[-1][0], "accuracy": evals[-1][1],
                          "n": len(val_seqs)}
        if config.keep_best and best["prompt"] is not None:
            kept = best["prompt"]
            final_eval = {"split": "validation", "step": best["step"], "accuracy": best["accuracy"],
                          "n": len(val_seqs), "kept": "best", "last_step": evals[-1][0] if evals else None,
                          "last_accuracy": evals[-1][1] if evals else None}
        write_adapter(final_eval=final_eval, stopped=stopped, vectors=kept)
    dist_.barrier()
    result = TrainResult.of_run(out, steps=state["step"], start_step=start, total_steps=config.steps, losses=losses,
                                evals=evals, stopped=stopped, t_start=t_start, step_times=step_times,
                                tokens_done=tokens_done)
    if dist_.main:
        notify(callbacks, "on_end", result)
    return result


__all__ = ["train", "TrainResult", "save_adapter", "read_training_log", "read_snapshots", "LengthGroupedBatches"]

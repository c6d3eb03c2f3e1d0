"""Step time of our prompt-tuning trainer vs a minimal hand-written PEFT loop, on the same model, in one run.

* **plain loop**: ``peft.get_peft_model(model, PromptTuningConfig(...))`` + AdamW; each example is
  ``formatted text + " label word"`` with ``labels`` = -100 except the label token, and the model's own forward
  computes full-vocabulary logits at every position and the loss (the usual recipe of PEFT's examples);
* **ours**: ``analyzer.training``'s forward (hidden state of the last position only, logits of the label words
  only, no attention mask) + AdamW;
* **ours, bfloat16**: the same step with the frozen model under ``torch.autocast("cpu", dtype=torch.bfloat16)``
  (prompt, gradient and AdamW state float32) -- what ``TrainConfig(dtype="auto")`` picks on a CPU that multiplies
  bfloat16 natively (AMX, AVX512-BF16);
* **floor**: forward+backward of the frozen model with no prompt (gradient to the input embeddings, logits of the
  last position only) -- what no prompt-tuning loop can beat.

Two workloads: *equal batches* (the same padded batches through each loop: per-step cost) and *real task data*
(shuffled batches of sentiment training data, padded to the longest like a plain DataLoader, vs the batches
our trainer draws -- ``LengthGroupedBatches`` -- through the same step code as ``analyzer.training.train``).
The loops run interleaved, round by round, so that load from other processes hits all of them alike; the
table gives medians.  Then *accuracy after the same steps*: ``analyzer.training.train`` runs ``--acc-steps`` steps
twice from the same init, seed and batches, ``dtype="float32"`` and ``dtype="bfloat16"``, and both prompts are
scored in float32 on the same validation examples, with Wilson 95% intervals (``analyzer.faithfulness.wilson_interval``).
Prints Markdown tables.

    python benchmarks/bench_train.py [--model smollm2-135m] [--steps 8] [--acc-steps 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="sentiment")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per loop (after 2 warm-up steps)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--virtual-tokens", type=int, default=20)
    ap.add_argument("--label-words", help="for a CSV/JSONL --task: LABEL=WORD,...")
    ap.add_argument("--acc-steps", type=int, default=60,
                    help="steps of the float32 and bfloat16 trainings compared on validation accuracy (0: skip)")
    ap.add_argument("--lr", type=float, default=0.03, help="learning rate of those trainings")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="time steps by the wall clock, or by the process's CPU time (on a machine shared with other "
                         "jobs: preemption does not count; use with --threads 1, where no thread spin-waits)")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args(argv)

    import torch
    from peft import PromptTuningConfig, get_peft_model

    from analyzer.models import load_frozen_model
    from analyzer.tasks import get_task, parse_label_words
    from analyzer.training.scoring import PromptedClassifier, encode_examples, pad_batch, pad_id_of
    from analyzer.training.trainer import LengthGroupedBatches

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    model, tok = load_frozen_model(args.model)
    task = get_task(args.task, label_words=parse_label_words(args.label_words))
    label_ids = task.label_token_ids(tok, args.model)
    n, B, warm = args.virtual_tokens, args.batch_size, 2
    total = warm + args.steps
    pad = pad_id_of(tok)
    d = model.get_input_embeddings().weight.shape[1]

    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(task.train), generator=g).tolist()
    shuffled = [[task.train[i] for i in order[s * B:(s + 1) * B]] for s in range(total)]

    # ---- the plain loop's batches: text + " word", labels only on the word, padded to the longest (mask)
    def plain_batch(exs):
        seqs = encode_examples(tok, task, exs, max_length=128)
        full = [s + [label_ids[ex.label]] for s, ex in zip(seqs, exs)]
        L = max(map(len, full))
        ids = torch.full((len(full), L), pad)
        lab = torch.full((len(full), L), -100)
        att = torch.zeros((len(full), L), dtype=torch.long)
        for i, s in enumerate(full):
            ids[i, :len(s)] = torch.tensor(s)
            att[i, :len(s)] = 1
            lab[i, len(s) - 1] = s[-1]
        return ids, att, lab, sum(len(s) for s in seqs)

    base_cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n, prompt_tuning_init="RANDOM")
    peft_model = get_peft_model(model, base_cfg)
    opt_plain = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=0.03)

    def plain_step(exs):
        ids, att, lab, ntok = plain_batch(exs)
        t0 = clock()
        loss = peft_model(input_ids=ids, attention_mask=att, labels=lab).loss
        opt_plain.zero_grad()
        loss.backward()
        opt_plain.step()
        return clock() - t0, ntok

    ours = PromptedClassifier(model, label_ids, torch.randn(n, d) * 0.02)
    opt_ours = torch.optim.AdamW([ours.prompt], lr=0.03)

    def our_step(exs, bf16=False):
        seqs = encode_examples(tok, task, exs, max_length=128)
        ids, lens = pad_batch(seqs, pad)
        y = torch.tensor([ex.label for ex in exs])
        t0 = clock()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):   # as train() does for dtype bfloat16
            logits = ours(ids, lens)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()
        return clock() - t0, int(lens.sum())

    def our_bf16_step(exs):
        return our_step(exs, bf16=True)

    emb_layer = model.get_input_embeddings()

    def floor_step(exs):
        seqs = encode_examples(tok, task, exs, max_length=128)
        ids, lens = pad_batch(seqs, pad)
        t0 = clock()
        e = emb_layer(ids).detach().requires_grad_()
        out = model(inputs_embeds=e, logits_to_keep=1).logits
        out[:, -1, label_ids].sum().backward()
        return clock() - t0, int(lens.sum())

    # ---- equal batches: the same sequences, sorted into length-homogeneous batches, through all three loops
    flat = sorted([ex for b in shuffled for ex in b], key=lambda ex: len(ex.text))
    equal = [flat[i * B:(i + 1) * B] for i in range(total)]
    # ---- real task data: the plain loop on shuffled batches (padded to the longest, as a DataLoader would), ours
    # on the trainer's own length-grouped batches (LengthGroupedBatches, as train() draws them)
    seqs_all = encode_examples(tok, task, task.train, max_length=128)
    grouped_idx = LengthGroupedBatches([len(s) for s in seqs_all], B, seed=0)
    grouped = [[task.train[i] for i in grouped_idx.batch(s + 1)] for s in range(total)]

    # Interleaved: every round runs each loop once, in a rotating order, so that load from other processes
    # on a shared machine hits all loops alike.
    jobs = {"plain/equal": (plain_step, equal), "ours/equal": (our_step, equal),
            "bf16/equal": (our_bf16_step, equal), "floor/equal": (floor_step, equal),
            "plain/task": (plain_step, shuffled), "ours/task": (our_step, grouped), "bf16/task": (our_bf16_step, grouped)}
    times = {k: [] for k in jobs}
    toks = {k: [] for k in jobs}
    keys = list(jobs)
    for i in range(total):
        for k in keys[i % len(keys):] + keys[:i % len(keys)]:
            fn, batches = jobs[k]
            dt, nt = fn(batches[i])
            if i >= warm:
                times[k].append(dt)
                toks[k].append(nt)
        print(f"round {i + 1}/{total}: " + ", ".join(f"{k} {times[k][-1]:.2f}s" for k in keys if times[k]),
              file=sys.stderr, flush=True)
    res = {k: (statistics.median(times[k]), sum(toks[k]) / sum(times[k]), len(times[k]) * B / sum(times[k]))
           for k in keys}

    rows = []
    plain_eq, plain_task = res["plain/equal"], res["plain/task"]
    for key, label in (("plain/equal", "plain PEFT loop, equal batches"), ("ours/equal", "ours float32, equal batches"),
                       ("bf16/equal", "ours bfloat16 autocast, equal batches"),
                       ("floor/equal", "floor: frozen fwd+bwd, no prompt, equal batches"),
                       ("plain/task", "plain PEFT loop, shuffled task batches"),
                       ("ours/task", "ours float32, the trainer's length-grouped task batches"),
                       ("bf16/task", "ours bfloat16 autocast, the trainer's length-grouped task batches")):
        st_, tps, eps = res[key]
        ref = plain_eq if key.endswith("equal") else plain_task
        f32 = res["ours/" + key.split("/")[1]]
        rows.append([label, f"{st_:.3f}", f"{st_ / ref[0]:.2f}x", f"{f32[0] / st_:.2f}x", f"{tps:.0f}",
                     f"{tps / ref[1]:.2f}x", f"{eps:.2f}"])
    from _common import table

    from analyzer.neighbors import _low_precision_probe

    low, speed = _low_precision_probe()
    print(f"model {args.model}, task {args.task}, batch {B}, {n} virtual tokens, {args.steps} timed steps, "
          f"torch threads {torch.get_num_threads()}, {args.clock} clock; bfloat16/float32 matrix-product probe "
          f"{speed:.2f}x "
          f"(auto picks {'bfloat16' if low is not None else 'float32'})\n")
    print(table(["loop", f"median step s ({args.clock})", "step time vs plain", "speed-up vs ours float32", "text tokens/s",
                 "tokens/s vs plain", "examples/s"], rows))
    out = {k: {**dict(zip(("median_step_s", "tokens_per_s", "examples_per_s"), v)), "min_step_s": min(times[k]),
               "step_s": times[k]} for k, v in res.items()}
    print("\nfastest step (s), the least disturbed by other load: " +
          ", ".join(f"{k} {min(times[k]):.3f}" for k in keys) +
          f"; bfloat16 vs float32, equal batches: {min(times['ours/equal']) / min(times['bf16/equal']):.2f}x, "
          f"task batches: {min(times['ours/task']) / min(times['bf16/task']):.2f}x")
    out["probe_speedup"] = speed
    if args.acc_steps:
        out["accuracy"] = accuracy_after_same_steps(args, model, tok, task)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


def accuracy_after_same_steps(args, model, tok, task) -> dict:
    """Train ``--acc-steps`` steps in float32 and in bfloat16 from the same init and batches; score both prompts
    in float32 on the same validation examples; Wilson 95% intervals."""
    import tempfile

    from _common import table
    from analyzer.stats import mcnemar_exact, wilson_interval
    from analyzer.training import TrainConfig, evaluate, train

    res, rows, correct = {}, [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "bfloat16"):
            cfg = TrainConfig(model=args.model, task=args.task, out=f"{tmp}/{dtype}", steps=args.acc_steps,
                              batch_size=args.batch_size, lr=args.lr, num_virtual_tokens=args.virtual_tokens,
                              prompt_tuning_init="labels", eval_every=0, eval_examples=1, snapshot_every=0,
                              checkpoint_every=args.acc_steps, seed=0, dtype=dtype)
            r = train(cfg, model=model, tokenizer=tok, task=task)
            from analyzer.loaders import load_prompt

            ev = evaluate(model, tok, task, load_prompt(cfg.out), split="validation", model_name=args.model)
            correct[dtype] = ev.predictions == ev.targets
            k, m = int(round(ev.accuracy * ev.n)), ev.n
            lo, hi = wilson_interval(k, m)
            res[dtype] = {"accuracy": ev.accuracy, "n": m, "wilson95": [lo, hi],
                          "train_seconds": sum(json.loads(x)["step_time"] for x in
                                               Path(cfg.out, "training_log.jsonl").read_text().splitlines()
                                               if "step_time" in x),
                          "mean_step_s": r.mean_step_time}
            rows.append([dtype, args.acc_steps, f"{ev.accuracy:.3f}", f"[{lo:.3f}, {hi:.3f}]", m,
                         f"{r.mean_step_time:.3f}"])
    lo, hi = res["float32"]["wilson95"]
    res["bfloat16_within_float32_interval"] = bool(lo <= res["bfloat16"]["accuracy"] <= hi)
    # paired on the same examples (McNemar, exact): examples only one of the two prompts gets right
    mc = mcnemar_exact(correct["float32"], correct["bfloat16"])
    only32, only16 = mc["a_only"], mc["b_only"]
    res["discordant"] = {"only_float32": only32, "only_bfloat16": only16, "mcnemar_p": mc["p_value"]}
    print(f"\nvalidation accuracy after the same {args.acc_steps} steps (lr {args.lr}, labels init, seed 0), both "
          f"prompts scored in float32:\n")
    print(table(["training dtype", "steps", "validation accuracy", "Wilson 95%", "n", "mean step s"], rows))
    print(f"\nbfloat16 accuracy within the float32 run's Wilson interval: {res['bfloat16_within_float32_interval']}; "
          f"paired: {only32} examples right only in float32, {only16} only in bfloat16 (McNemar exact "
          f"p={res['discordant']['mcnemar_p']:.3g})")
    return res


if __name__ == "__main__":
    main()

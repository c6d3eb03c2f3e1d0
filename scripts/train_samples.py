"""Train the soft prompts shipped in ``sample_prompts/`` on the embedded SmolLM2 and write their README table
(``make sample-prompts``).

Each prompt gets its own directory (PEFT adapter, training_log.jsonl, snapshots.safetensors,
training_meta.json) and is then scored on its task's held-out test split -- the same examples -- as a soft
prompt, with no prompt (zero-shot) and with the task's hand-written instruction.  Results go to
``sample_prompts/results.json``; ``sample_prompts/README.md`` is rendered from it.

    python scripts/train_samples.py                    # all prompts (about an hour on 2 cores)
    python scripts/train_samples.py --only sentiment-labels --resume
    python scripts/train_samples.py --readme-only      # re-render README.md from results.json

A run that is interrupted keeps its checkpoint; ``--resume`` continues it.  ``--budget-minutes`` stops a
prompt's training cleanly when its training time passes the budget (the README then shows the steps done)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "sample_prompts"
MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Spec:
    name: str
    task: str
    init: str
    steps: int
    init_text: str | None = None
    batch_size: int = 8
    lr: float = 0.3            # chosen by the sweep in sample_prompts/README.md (0.03, 0.1, 0.3)
    num_virtual_tokens: int = 20
    seed: int = 0


SPECS = [
    Spec("sentiment-labels", "sentiment", "labels", steps=1000),
    Spec("sentiment-random", "sentiment", "random", steps=1000),
    Spec("question-type-text", "question-type", "text", steps=1000,
         init_text="What kind of thing does this question ask for: a person, a place, a number, a description?"),
    Spec("spam-labels", "spam", "labels", steps=1000),
    Spec("sentiment-vocab", "sentiment", "vocab", steps=1000),
    Spec("sentiment-labels-100", "sentiment", "labels", steps=1000, num_virtual_tokens=100, lr=0.1),  # 0.3 diverged
]
# More prompts per task for the transfer study of `compare` (issue 21: three tasks x three seeds or inits), trained
# by name only (``--only spam-random question-type-random --out sample_prompts/transfer-study``), into their own
# folder so the showcase samples and the readings shipped for them stay as they are.
EXTRA_SPECS = [
    Spec("spam-random", "spam", "random", steps=1000, seed=1),
    Spec("question-type-random", "question-type", "random", steps=1500, seed=1),
]
# Does the finding hold as models grow (issue 23)?  The same recipe on Gemma 3 270M (``--model gemma3-270m --out
# sample_prompts/gemma3-270m``) and Qwen2.5-Coder 0.5B (``--model qwen2.5-coder-0.5b --out
# sample_prompts/qwen2.5-coder-0.5b``), fewer planned steps (the plateau rule's earliest stop is still step 300): a
# step costs ~2x (Gemma) and ~4x (Qwen) SmolLM2's on 2 cores.
SCALE_SPECS = [
    Spec("gemma-sentiment-labels", "sentiment", "labels", steps=400),
    Spec("qwen-sentiment-labels", "sentiment", "labels", steps=400),
    Spec("qwen-spam-labels", "spam", "labels", steps=400),
]

# The plateau rule every prompt trains to (analyzer.training.PlateauStop): stop at an evaluation at step s >=
# min_steps when the best validation accuracy of the last 30% of the steps -- at least min_evals evaluations --
# is not more than 0.01 above the best before; else train the planned steps.  Runs recorded without "rule"
# were trained before min_evals existed (the window could hold a single evaluation).
SNAPSHOT_LIMIT = 2_000_000     # bytes; sample_prompts/ ships in git
PLATEAU = {"window": 0.3, "min_gain": 0.01, "min_steps": 300, "min_evals": 3}


class Budget:
    """Stops a run when its training time (steps only) passes ``seconds``, or at the wall-clock ``deadline``
    (``time.time()`` seconds; 0: none)."""

    def __init__(self, seconds: float, deadline: float = 0.0):
        self.seconds = seconds
        self.deadline = deadline
        self.t0 = None
        self.spent = 0.0

    def on_start(self, config, start_step, total_steps):
        self.t0 = time.perf_counter()

    def on_step(self, step, loss, lr):
        self.spent = time.perf_counter() - self.t0

    def should_stop(self) -> bool:
        return (self.seconds > 0 and self.spent > self.seconds) or (self.deadline > 0 and time.time() > self.deadline)


def _update_results(path: Path, update) -> dict:
    """Read-modify-write ``results.json`` under an exclusive lock (several trainings may run side by side)."""
    import fcntl

    from analyzer.cache import atomic_write_text

    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(path.read_text()) if path.is_file() else {"runs": {}, "baselines": {}}
        update(results)
        atomic_write_text(path, json.dumps(results, indent=2))
        return results


def evaluate_all(model, tok, spec: Spec, out: Path, baselines: dict, limit: int | None = None) -> dict:
    from analyzer.loaders import load_prompt
    from analyzer.tasks import get_task
    from analyzer.training import evaluate

    task = get_task(spec.task)
    if spec.task not in baselines or baselines[spec.task]["zero_shot"]["n"] != len(task.test[:limit]):
        t0 = time.perf_counter()
        zero = evaluate(model, tok, task, None, split="test", limit=limit, model_name=MODEL)
        instr = evaluate(model, tok, task, task.instruction, split="test", limit=limit, model_name=MODEL)
        counts = [int((zero.targets == i).sum()) for i in range(task.num_labels)]
        baselines[spec.task] = {"zero_shot": zero.to_dict(), "instruction": instr.to_dict(),
                                "instruction_text": task.instruction, "majority": max(counts) / sum(counts),
                                "eval_seconds": round(time.perf_counter() - t0, 1)}
    soft = evaluate(model, tok, task, load_prompt(out), split="test", limit=limit, model_name=MODEL)
    return soft.to_dict()


def _ended(r: dict) -> str:
    """How a run ended, for the table."""
    if "plateau" not in r:      # trained by an earlier version of this script, without the rule
        return ("earlier version: 10-min budget, no plateau rule" if r.get("stopped_by_budget")
                else "earlier version: planned steps, no plateau rule")
    if r.get("plateau"):
        return f"plateau at {r['steps']}"
    if r.get("steps", 0) >= r.get("planned_steps", 0):
        ev = [e["accuracy"] for e in r.get("evals") or []]
        last, before = (max(ev[-len(ev) * 3 // 10:]), max(ev[:-len(ev) * 3 // 10])) if len(ev) >= 4 else (None, None)
        gain = f"; best of the last 30% {last:.3f} vs {before:.3f} before" if last is not None else ""
        return f"planned steps, not plateaued by the rule (still improving{gain})"
    return "time budget (not converged)" if r.get("stopped", r.get("stopped_by_budget")) else "stopped"


def _evals_text(r: dict) -> str:
    ev = r.get("evals") or []
    return ", ".join(f"{e['step']}: {e['accuracy']:.3f}" for e in ev) if ev else "(not recorded)"


def _checkpoint(name: str) -> str:
    from analyzer.models import EMBEDDED_MODELS

    m = EMBEDDED_MODELS.get(name)
    return m.checkpoint if m is not None else name


def render_readme(results: dict, folder: Path | None = None) -> str:
    """The README of ``folder`` (default: sample_prompts/) from its results.json, with the prompt-swap table of
    its swap.json when there is one."""
    runs, base = results["runs"], results["baselines"]
    rule = PLATEAU
    lines = [
        "# Sample prompts",
        "",
        f"Soft prompts trained on the embedded `{results.get('model', MODEL)}` "
        f"({_checkpoint(results.get('model', MODEL))}, frozen) by "
        f"`scripts/train_samples.py` (`make {'sample-prompts' if results.get('model', MODEL) == 'smollm2-135m' else 'sample-scale'}`). Each directory is a PEFT prompt-tuning adapter "
        "(`adapter_config.json`, `adapter_model.safetensors`) with its `training_log.jsonl`, "
        "`snapshots.safetensors` (the prompt from the init at step 0, then every `config.snapshot_every` steps of its "
        "`training_meta.json`: 2.5% of the planned steps in this version of the script, 5% for a 100-token prompt, "
        "whose snapshots after step 0 are stored in float16 to stay below 2 MB) and `training_meta.json`.",
        "",
        f"**Plateau rule** (`analyzer.training.PlateauStop`): validation accuracy (200 examples) is evaluated every "
        f"5% of the planned steps; at an evaluation at step s >= {rule['min_steps']}, a run stops when the best "
        f"accuracy after step {1 - rule['window']:.1f}·s is not more than {rule['min_gain']} above the best "
        f"accuracy up to it (no gain > {rule['min_gain']} over the last {rule['window']:.0%} of the steps) and that "
        f"window holds at least {rule['min_evals']} evaluations; otherwise it trains its planned steps. The "
        "minimum number of evaluations was added after a 2,000-step run stopped at step 300 on a window of one "
        "evaluation (0.715 against 0.705, inside the noise of 200 examples); the runs trained before it carry no "
        "`rule` in results.json and stopped on windows of two to four evaluations. A run that ended by the time "
        "budget has not converged by this rule and says so below.",
        "",
        "Accuracy is rank classification over the label words' next-token logits, on each task's held-out test "
        "split (the same examples for every column; fixed seed, never trained on), scored in float32. *Zero-shot* "
        "is the template alone, *instruction* puts the task's hand-written instruction before it, *soft prompt* "
        "puts the trained virtual tokens there instead. *Training time* sums the optimizer steps; *wall time* adds "
        "loading and the evaluations. Numbers are as measured on a shared 2-core CPU (several training and "
        "benchmark jobs at once: times are long and not comparable between rows; ~1 s a step on an idle core).",
        "",
        "| prompt | task | init | virtual tokens | lr | steps | ended by | batch | training time | "
        "wall time incl. evals | soft prompt | zero-shot | instruction | majority class | test n |",
        "|:---|:---|:---|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = [s.name for s in SPECS if s.name in runs] + [n for n in runs if n not in {s.name for s in SPECS}]
    runs = {n: runs[n] for n in order}
    for name, r in runs.items():
        b = base[r["task"]]
        lines.append(
            f"| `{name}` | {r['task']} | {r['init']} | {r['num_virtual_tokens']} | {r['lr']:g} | {r['steps']} | "
            f"{_ended(r)} | {r['batch_size']} | {r['train_seconds'] / 60:.1f} min | "
            f"{r['wall_seconds_incl_evals'] / 60:.1f} min | **{r['soft']['accuracy']:.3f}** | "
            f"{b['zero_shot']['accuracy']:.3f} | {b['instruction']['accuracy']:.3f} | {b['majority']:.3f} | "
            f"{r['soft']['n']} |")
    notes = [f"- `{name}`: {r['note']}." for name, r in runs.items() if r.get("note")]
    if notes:
        lines += [""] + notes
    lines += ["", "Plateau evidence: validation accuracy at each evaluation (step: accuracy), and what the rule saw:", "",
              "| prompt | validation accuracy | rule |", "|:---|:---|:---|"]
    for name, r in runs.items():
        lines.append(f"| `{name}` | {_evals_text(r)} | {r.get('plateau') or _ended(r)} |")
    sweep = results.get("sweep")
    if sweep:
        lines += ["", f"**Learning-rate sweep** ({sweep['prompt']}, {sweep['note']}): validation accuracy "
                  "(200 examples) at each evaluation, and test accuracy on the table's 200 test examples (not used "
                  "for the choice):", "",
                  "| lr | steps | validation accuracy | ended by | test accuracy |", "|---:|---:|:---|:---|---:|"]
        for r in sweep["runs"]:
            test = f"{r['soft']['accuracy']:.3f}" if r.get("soft") else "–"
            lines.append(f"| {r['lr']:g} | {r['steps']} | {_evals_text(r)} | {r.get('plateau') or _ended(r)} | "
                         f"{test} |")
        lines += ["", sweep.get("choice", "")]
    attempts = results.get("attempts")
    if attempts:
        lines += ["", "**Runs not shipped** (same script and settings; kept here as evidence for the choice):", "",
                  "| prompt | lr | steps | validation accuracy | ended by | test accuracy | why not shipped |",
                  "|:---|---:|---:|:---|:---|---:|:---|"]
        for r in attempts:
            test = f"{r['soft']['accuracy']:.3f}" if r.get("soft") else "–"
            lines.append(f"| `{r['name']}` | {r['lr']:g} | {r['steps']} | {_evals_text(r)} | "
                         f"{r.get('plateau') or _ended(r)} | {test} | {r['why']} |")
    lines += ["", "Balanced accuracy (mean of per-class accuracy; matters for the imbalanced spam task):", "",
              "| prompt | soft prompt | zero-shot | instruction |", "|:---|---:|---:|---:|"]
    for name, r in runs.items():
        b = base[r["task"]]
        lines.append(f"| `{name}` | {r['soft']['balanced_accuracy']:.3f} | "
                     f"{b['zero_shot']['balanced_accuracy']:.3f} | {b['instruction']['balanced_accuracy']:.3f} |")
    lines += ["", "Hand-written instructions:", ""]
    for task, b in base.items():
        lines.append(f"- {task}: \"{b['instruction_text']}\"")
    lines += ["", "Settings: AdamW on the prompt only, learning rate with linear warm-up (10% of the planned steps, at "
              "most 50) and linear decay to 10% at the planned end, length-grouped batches, loss = cross-entropy "
              "over the label words at the last position; the frozen model in bfloat16 autocast where the CPU "
              "multiplies bfloat16 natively (`dtype=auto`; the runs' `training_meta.json` say what was used)."
              + "".join(f" Init text of `{n}`: \"{r['init_text']}\"." for n, r in runs.items() if r.get("init_text")),
              "",
              f"Environment: {results.get('environment', '')}", ""]
    extra = results.get("not_done")
    if extra:
        lines += ["Not trained in this version: " + extra, ""]
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from prompt_swap import readme_section

    swap = readme_section(folder if folder is not None else OUT)
    if swap:
        lines += [swap.rstrip(), ""]
    lines += _multitask_section(results.get("multitask"), folder if folder is not None else OUT,
                                results.get("multitask_attempts", []))
    # the decoded prompts' section (scripts/decode_samples.py) survives a re-render
    old = (Path(folder if folder is not None else OUT) / "README.md")
    text = old.read_text(encoding="utf-8") if old.is_file() else ""
    start, end = "<!-- decoded: written by scripts/decode_samples.py -->", "<!-- /decoded -->"
    if start in text and end in text:
        lines += ["", text[text.index(start):text.index(end) + len(end)]]
    return "\n".join(lines)


def _multitask_section(r: dict | None, folder: Path, attempts=()) -> list[str]:
    """The multitask sample (scripts/train_multitask_sample.py): its run, per-task validation, its swap, and the
    runs not shipped."""
    if not r or not r.get("tasks"):
        return []
    from prompt_swap import readme_section

    tasks = r["tasks"]
    ended = r.get("plateau") or (f"planned steps ({r['steps']})" if r["steps"] >= r["planned_steps"] else "stopped")
    lines = [f"## A multitask prompt: `{r['name']}`", "",
             f"One PEFT `MULTITASK_PROMPT_TUNING` adapter for {', '.join(tasks)} (`make sample-multitask`, "
             "`softprompt-analyzer train --task " + ",".join(tasks) + "`): a shared 20-token prompt, initialised "
             f"from the text \"{r['init_text']}\", times a rank-{r['num_ranks']} factor per task (PEFT's "
             "`MultitaskPromptEmbedding`: task t's prompt is `shared * (cols[t] @ rows[t])`; the factors start at 1). "
             f"The steps go round the tasks in turn ({r['steps']} steps, {r['steps'] // len(tasks)} a task), lr "
             f"{r['lr']:g}, batch {r['batch_size']}, the plateau rule above on the mean validation accuracy of the "
             f"tasks. Ended by: {ended}. Training time {r['train_seconds'] / 60:.1f} min "
             f"({r['wall_seconds_incl_evals'] / 60:.1f} min with the evaluations, on the shared machine).", "",
             "Validation accuracy per task (200 examples each) at each evaluation:", "",
             "| step | " + " | ".join(tasks) + " | mean |", "|---:|" + "---:|" * (len(tasks) + 1)]
    for e in r.get("evals_by_task", []):
        accs = [e[t] for t in tasks]
        lines.append(f"| {e['step']} | " + " | ".join(f"{a:.3f}" for a in accs) + f" | {sum(accs) / len(accs):.3f} |")
    kept = r.get("kept") or {}
    if kept.get("kept") == "best":
        lines += ["", f"The adapter holds the prompts of the best mean validation evaluation (`--keep-best`): step "
                  f"{kept['step']} ({kept['accuracy']:.3f}); the run's last evaluation, step {kept['last_step']}, "
                  f"had {kept['last_accuracy']:.3f}."]
    swap = readme_section(folder, r.get("swap_file", "swap-multitask.json"),
                          title="Each task's prompt of the adapter on every task (test split):",
                          how="`make sample-multitask`")
    if swap:
        lines += ["", swap.rstrip()]
    for a in attempts:
        ev = ", ".join(f"{e['step']}: " + "/".join(f"{e[t]:.3f}" for t in tasks) for e in a.get("evals_by_task", []))
        own = [f"{a['name']}/task{i}" for i in range(len(tasks))]      # task i's column of the attempt's swap
        test = "; ".join(f"{t} {a['test'][t][own[i]]:.3f} (zero-shot {a['test'][t]['zero-shot']:.3f})"
                         for i, t in enumerate(tasks)) if a.get("test") else "–"
        lines += ["", f"Not shipped: a run with the same settings{' but ' + a['differs'] if a.get('differs') else ''}, "
                  f"{a['steps']} steps ({a.get('plateau') or 'planned steps'}). Validation ({'/'.join(tasks)}) at "
                  f"each evaluation: {ev}. Test, each task's own prompt: {test}. Why not shipped: {a['why']}."]
    return lines + [""]


def main(argv=None) -> int:
    global MODEL
    _cwd = os.getcwd()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="train only these prompts (names in the table)")
    ap.add_argument("--model", default=MODEL, help=f"the frozen model (default {MODEL}; the Qwen prompts: "
                    "--model qwen2.5-coder-0.5b --only qwen-sentiment-labels qwen-spam-labels --out "
                    "sample_prompts/qwen2.5-coder-0.5b; see SCALE_SPECS)")
    ap.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    ap.add_argument("--steps", type=int, help="override the steps of every prompt (quick trials)")
    ap.add_argument("--lr", type=float, help="override the learning rate of every prompt (the sweep)")
    ap.add_argument("--budget-minutes", type=float, default=0.0,
                    help="stop a prompt's training when its training time passes this (0: no limit)")
    ap.add_argument("--stop-at", type=float, default=0.0,
                    help="stop training cleanly at this Unix time (resumable; 0: never)")
    ap.add_argument("--no-plateau", action="store_true", help="train the planned steps, no plateau rule")
    ap.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 (TrainConfig.dtype)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--limit", type=int, help="score only the first N test examples (quick trials)")
    ap.add_argument("--readme-only", action="store_true")
    ap.add_argument("--keep-checkpoints", action="store_true")
    args = ap.parse_args(argv)
    MODEL = args.model
    os.chdir(ROOT)  # the relative paths below (and in training_meta.json) are the repository's
    out_root = Path(args.out).resolve() if os.path.isabs(args.out) else Path(_cwd, args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    results_path = out_root / "results.json"
    if args.readme_only:
        results = json.loads(results_path.read_text()) if results_path.is_file() else {"runs": {}, "baselines": {}}
        (out_root / "README.md").write_text(render_readme(results, out_root))
        return 0

    import torch
    import transformers

    from analyzer.cache import atomic_write_text
    from analyzer.models import load_frozen_model
    from analyzer.training import PlateauStop, ProgressBar, TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    every_spec = SPECS + EXTRA_SPECS + SCALE_SPECS
    specs = [s for s in every_spec if s.name in args.only] if args.only else SPECS
    unknown = set(args.only or ()) - {s.name for s in every_spec}
    if unknown:
        print(f"error: unknown prompt(s) {sorted(unknown)}; known: {[s.name for s in every_spec]}",
              file=sys.stderr)
        return 2
    model, tok = load_frozen_model(MODEL)
    env = (f"torch {torch.__version__}, transformers {transformers.__version__}, "
           f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    for spec in specs:
        out = out_root / spec.name
        steps = args.steps or spec.steps
        lr = args.lr or spec.lr
        every = max(1, steps // 20)                 # evaluations every 5% of the planned steps
        # snapshots every 2.5% (a run the plateau rule stops at a third of its steps still shows ~13 points of its
        # path); a long prompt every 5% (100 x 576 float32 is 230 kB a snapshot)
        snap = max(1, steps // (40 if spec.num_virtual_tokens <= 24 else 20))
        resume = args.resume and (out / "checkpoint.safetensors").is_file()
        # relative to the repository when inside it: training_meta.json records this path
        shown = os.path.relpath(out, ROOT) if ROOT in out.resolve().parents else str(out)
        cfg = TrainConfig(model=MODEL, task=spec.task, out=shown, num_virtual_tokens=spec.num_virtual_tokens,
                          prompt_tuning_init=spec.init, prompt_tuning_init_text=spec.init_text, steps=steps,
                          batch_size=spec.batch_size, lr=lr, seed=spec.seed, eval_every=every,
                          checkpoint_every=every, snapshot_every=snap, dtype=args.dtype,
                          resume=resume, overwrite=not resume)
        plateau = PlateauStop(**PLATEAU)
        if resume:   # the evaluations before the checkpoint count for the rule
            from analyzer.training.config import read_training_meta

            plateau.evals = [(e["step"], e["accuracy"]) for e in read_training_meta(out).get("evals", [])]
        callbacks = [ProgressBar(), Budget(args.budget_minutes * 60, args.stop_at)]
        if not args.no_plateau:
            callbacks.append(plateau)
        print(f"\n== {spec.name}: {spec.task}, init {spec.init}, lr {lr}, up to {steps} steps", flush=True)
        t0 = time.perf_counter()
        res = train(cfg, callbacks=callbacks, model=model, tokenizer=tok)
        wall = time.perf_counter() - t0
        meta = json.loads((out / "training_meta.json").read_text())
        baselines = json.loads(results_path.read_text()).get("baselines", {}) if results_path.is_file() else {}
        soft = evaluate_all(model, tok, spec, out, baselines, args.limit)
        run = {"task": spec.task, "init": spec.init, "init_text": spec.init_text, "steps": res.steps,
               "planned_steps": steps, "stopped": res.stopped, "plateau": plateau.reason,
               "converged": plateau.reason is not None, "batch_size": spec.batch_size, "lr": lr,
               "num_virtual_tokens": spec.num_virtual_tokens, "seed": spec.seed, "dtype": meta.get("precision"),
               "train_seconds": meta["train_seconds"], "wall_seconds_incl_evals": round(wall, 1),
               "mean_step_seconds": res.mean_step_time, "validation_accuracy": res.eval_accuracy,
               "evals": meta.get("evals", []), "soft": soft, "rule": None if args.no_plateau else dict(PLATEAU)}
        if not args.keep_checkpoints and not res.stopped:
            (out / "checkpoint.safetensors").unlink(missing_ok=True)
        from analyzer.training.files import shrink_snapshots

        shrink_snapshots(out, SNAPSHOT_LIMIT)     # below ~2 MB (a 100-token prompt's: float16 after step 0)
        print(f"   soft {soft['accuracy']:.3f} | zero-shot {baselines[spec.task]['zero_shot']['accuracy']:.3f} | "
              f"{meta['train_seconds'] / 60:.1f} min training | {plateau.reason or 'no plateau'}", flush=True)

        def update(results, name=spec.name, run=run):
            results["environment"] = env
            results["model"] = MODEL
            results.setdefault("baselines", {}).update(baselines)
            results.setdefault("runs", {})[name] = run

        results = _update_results(results_path, update)
        atomic_write_text(out_root / "README.md", render_readme(results, out_root))
    shutil.rmtree(out_root / ".cache", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""TrainConfig: the settings of one prompt-tuning run.

Field names follow PEFT's ``PromptTuningConfig`` where they overlap (``num_virtual_tokens``,
``prompt_tuning_init``, ``prompt_tuning_init_text``, ``tokenizer_name_or_path``), so a run's settings read the
same here, on the command line and in the saved ``adapter_config.json``.  Every field is checked in
``__post_init__``; messages name the field, what was expected and the value that was given.

Importing this module pulls only the standard library."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from numbers import Integral, Real
from typing import Any, Mapping

from .._params import SEED, Boolean, Interval, Text, check_param, check_params
from ..exceptions import TrainingError

INIT_MODES = ("text", "labels", "vocab", "random")


def read_training_meta(directory) -> dict[str, Any]:
    """``training_meta.json`` of a run directory as a dict; ``{}`` when it is missing or unreadable
    (:meth:`analyzer.training.run_meta.RunMeta.load` as a dict)."""
    from .run_meta import RunMeta

    meta = RunMeta.load(directory)
    return {} if meta.is_empty() else meta.to_dict()


def meta_task_name(meta: Mapping[str, Any], task_index: int | None = None) -> str | None:
    """The task name of a run record given as a dict (:meth:`analyzer.training.run_meta.RunMeta.task_name`)."""
    from .run_meta import RunMeta

    return RunMeta.from_dict(meta).task_name(task_index)


# PEFT's own names are accepted too and mean the closest of ours.
_INIT_ALIASES = {"sample_vocab": "vocab", "label": "labels", "class_labels": "labels"}
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16")   # analyzer.training.precision.DTYPES (this module imports no torch)

# Settings a resumed run must share with the checkpoint (others -- steps, eval/checkpoint intervals -- may change).
RESUME_FIXED = ("model", "task", "num_virtual_tokens", "prompt_tuning_init", "prompt_tuning_init_text", "seed",
                "batch_size", "max_length", "label_words", "template", "text_column", "label_column")


#: the largest learning rate accepted.  AdamW moves every prompt entry by about ``lr`` per step whatever the
#: gradient's scale, and token embeddings are small (SmolLM2: median |entry| 0.08, at most 2; row norms 1.8 to
#: 7.5): above 10 a single step moves a 576-d row by ~240, far outside the vocabulary, and the run diverges.
#: the learning rate the CLI's ``train`` and the dashboard's Train form start from: Lester et al.'s 0.3, at which
#: every shipped sample prompt was trained (TrainConfig's own default, 0.03, keeps the Python API's earlier
#: behaviour; at 0.03 a 20-token prompt still sits on its init tokens after 300 steps, README "Training dynamics")
TRAIN_LR = 0.3
LR_MAX = 10.0


def check_lr(lr: Any) -> float:
    """``lr`` as a float when it is a finite number in ``(0, LR_MAX]`` (see :data:`LR_MAX` for why); else
    TrainingError."""
    return check_param("TrainConfig", "lr", lr, Interval(Real, 0, LR_MAX, closed="right"), error=TrainingError)


#: the command-line flag of each field (``softprompt-analyzer train``; ``waywardness`` uses the same spellings): the
#: one map from TrainConfig's PEFT-style names to what a CLI user typed (:func:`in_cli_terms`)
FLAGS = {"model": "--model", "task": "--task", "out": "--out", "num_virtual_tokens": "--virtual-tokens",
         "prompt_tuning_init": "--init", "prompt_tuning_init_text": "--init-text", "steps": "--steps",
         "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed", "warmup_steps": "--warmup-steps",
         "eval_every": "--eval-every", "eval_examples": "--eval-examples", "checkpoint_every": "--checkpoint-every",
         "snapshot_every": "--snapshot-every", "max_length": "--max-length", "resume": "--resume",
         "overwrite": "--overwrite", "device": "--device", "dtype": "--dtype", "text_column": "--text-column",
         "label_column": "--label-column", "label_words": "--label-words", "template": "--template",
         "instruction": "--instruction", "num_ranks": "--ranks", "keep_best": "--keep-best"}


def in_cli_terms(message: str) -> str:
    """A TrainConfig / trainer message with every field name replaced by the flag the CLI user typed
    (``The 'prompt_tuning_init_text' parameter of TrainConfig must be ...`` -> ``--init-text must be ...``); the
    Python API keeps the field names."""
    import re

    def flag(m):
        return FLAGS.get(m.group(1), m.group(0))

    msg = re.sub(r"The '(\w+)' parameter of TrainConfig", flag, message)
    for name, fl in FLAGS.items():
        msg = re.sub(rf"\b{name} \({re.escape(fl)}\)", fl, msg)            # "num_ranks (--ranks)"
        msg = re.sub(rf"(?<![\w-]){name}=", f"{fl} ", msg)                   # "seed=0" in a resume mismatch
        if "_" in name:                                                     # bare names only where unambiguous
            msg = re.sub(rf"(?<![\w'-]){name}(?![\w'])", fl, msg)
    for fl in set(FLAGS.values()):                                          # "... --seed 0 ... (--seed)": once
        i = msg.find(fl)
        j = msg.find(f" ({fl})", i + 1) if i >= 0 else -1
        if j > i >= 0:
            msg = msg[:j] + msg[j + len(fl) + 3:]
    return msg


def _bad(name: str, expected: str, got: Any) -> TrainingError:
    """The message shape of :func:`analyzer._params.check_param`, for the rules no constraint says (cross-field
    ones, a template's placeholder)."""
    return TrainingError(f"The {name!r} parameter of TrainConfig must be {expected}. Got {got!r} instead.")


@dataclass
class TrainConfig:
    """Settings of one prompt-tuning run (the CLI flag of each field is in brackets).

    model:                   the frozen model: an embedded name, a HF directory or a .gguf (``--model``).
    task:                    a built-in task name, a CSV/JSONL path or ``hf:NAME`` (``--task``); several,
                             comma-separated, train one multitask prompt (``analyzer.training.multitask``).
    out:                     the output directory: the PEFT adapter, log, snapshots, checkpoint (``--out``).
    num_virtual_tokens:      prompt length (``--virtual-tokens``).
    prompt_tuning_init:      ``text`` | ``labels`` | ``vocab`` | ``random`` (``--init``).
    prompt_tuning_init_text: the text of ``text`` init; default: the task's hand-written instruction
                             (``--init-text``).
    tokenizer_name_or_path:  recorded in the adapter config; default: ``model``.
    steps, batch_size, lr, seed: the optimisation (AdamW on the prompt only; linear warm-up then linear decay);
                             ``lr`` in ``(0, LR_MAX]`` (see :data:`LR_MAX`).  A run whose loss or prompt becomes
                             non-finite or explodes stops with TrainingError and keeps its last good checkpoint
                             (``analyzer.training.divergence``).
    warmup_steps:            default: 10% of ``steps``, at most 50; at most ``steps``.
    eval_every:              evaluate on the validation split every N steps and at the end (0: only at the end).
    eval_examples:           how many validation examples each evaluation scores.
    checkpoint_every:        write a resumable checkpoint every N steps (and on stop / Ctrl-C).
    snapshot_every:          save the prompt matrix every N steps into snapshots.safetensors (0: never).
    max_length:              longest input, in tokens of the formatted text (longer texts are truncated).
    resume:                  continue from the checkpoint in ``out`` (``--resume``).
    overwrite:               replace a previous run in ``out`` instead of refusing (``--overwrite``).
    device:                  ``auto`` (cuda:LOCAL_RANK when available, else cpu), ``cpu``, ``cuda``, ``mps``.
    dtype:                   the frozen model's compute dtype: ``auto`` (bfloat16 autocast where the hardware
                             multiplies bfloat16 natively, by a measured probe; else float32), ``float32``,
                             ``bfloat16``; the prompt and the optimizer state stay float32 (``--dtype``).
    text_column, label_column, label_words, template, instruction: task options (see ``analyzer.tasks``).
    num_ranks:               rank of each task's factor of a multitask prompt (PEFT's ``num_ranks``; ``--ranks``).
    keep_best:               the adapter written at the end holds the prompt of the best validation evaluation
                             (the first of equals), not the last step's; the checkpoint keeps the last, so
                             ``--resume`` trains on from there (``--keep-best``; needs ``eval_every > 0``).
    """

    model: str = "smollm2-135m"
    task: str = "sentiment"
    out: str = ""
    num_virtual_tokens: int = 20
    prompt_tuning_init: str = "labels"
    prompt_tuning_init_text: str | None = None
    tokenizer_name_or_path: str | None = None
    steps: int = 300
    batch_size: int = 8
    lr: float = 0.03
    seed: int = 0
    warmup_steps: int | None = None
    weight_decay: float = 0.0
    eval_every: int = 50
    eval_examples: int = 200
    checkpoint_every: int = 50
    snapshot_every: int = 10
    max_length: int = 128
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    dtype: str = "auto"
    text_column: str = "text"
    label_column: str = "label"
    label_words: dict[str, str] | None = None
    template: str | None = None
    instruction: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, recorded in training_meta.json
    num_ranks: int = 1
    keep_best: bool = False

    def _check(self, constraints: Mapping[str, list]) -> None:
        """Check the fields named in ``constraints`` (:func:`analyzer._params.check_params`, TrainingError) and
        store their plain values (a numpy int as an int)."""
        for name, value in check_params("TrainConfig", {n: getattr(self, n) for n in constraints}, constraints,
                                        error=TrainingError).items():
            setattr(self, name, value)

    def __post_init__(self):
        for name in ("model", "task", "out"):
            if hasattr(getattr(self, name), "__fspath__"):
                setattr(self, name, str(getattr(self, name)))
        self._check({"model": [Text()], "task": [Text()]})
        if not isinstance(self.out, str) or not self.out.strip():
            raise _bad("out", "an output directory (--out DIR)", self.out)
        if self.tokenizer_name_or_path is None:
            self.tokenizer_name_or_path = self.model
        self._check({"num_virtual_tokens": [Interval(Integral, 1, 4096)], "steps": [Interval(Integral, 1, None)],
                     "batch_size": [Interval(Integral, 1, None)], "seed": [SEED],
                     "eval_every": [Interval(Integral, 0, None)], "eval_examples": [Interval(Integral, 1, None)],
                     "checkpoint_every": [Interval(Integral, 1, None)],
                     "snapshot_every": [Interval(Integral, 0, None)], "max_length": [Interval(Integral, 4, None)],
                     "num_ranks": [Interval(Integral, 1, 64)]})
        names = self.tasks
        if any(not t for t in names) or len(set(names)) != len(names):
            raise _bad("task", "one task, or several distinct ones separated by commas", self.task)
        if self.num_ranks != 1 and len(names) == 1:
            raise TrainingError(f"num_ranks (--ranks) is the rank of each task's factor of a multitask prompt; got "
                                f"{self.num_ranks} for the single task {self.task!r}. Drop --ranks, or give several "
                                f"comma-separated tasks.")
        if self.warmup_steps is not None:      # None: the default share of steps (not said to a CLI user)
            self._check({"warmup_steps": [Interval(Integral, 0, self.steps)]})
        self.lr = check_lr(self.lr)
        wd = self.weight_decay
        if not Interval(Real, 0, None).is_satisfied_by(wd) or self.lr * wd >= 1:
            # AdamW's decoupled decay multiplies the prompt by 1 - lr * weight_decay every step
            raise _bad("weight_decay", f"a finite number >= 0 with lr * weight_decay < 1 (AdamW multiplies the prompt "
                                       f"by 1 - lr * weight_decay each step; lr is {self.lr:g})", wd)
        self.weight_decay = float(wd)

        init = self.prompt_tuning_init
        if not isinstance(init, str):
            init = getattr(init, "value", init)   # PEFT's PromptTuningInit enum
        key = str(init).strip().lower() if isinstance(init, str) else None
        key = _INIT_ALIASES.get(key, key)
        if key not in INIT_MODES:
            raise _bad("prompt_tuning_init", f"one of {list(INIT_MODES)}", self.prompt_tuning_init)
        self.prompt_tuning_init = key
        if self.prompt_tuning_init_text is not None:
            self._check({"prompt_tuning_init_text": [Text()]})
            if key != "text":
                raise TrainingError(f"prompt_tuning_init_text (--init-text) is only used with init 'text'; got init "
                                    f"{key!r}. Pass --init text or drop --init-text.")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in DEVICES:
            raise _bad("device", f"one of {list(DEVICES)} (optionally with :INDEX)", self.device)
        if not isinstance(self.dtype, str) or self.dtype.strip().lower() not in DTYPES:
            raise _bad("dtype", f"one of {list(DTYPES)}", self.dtype)
        self.dtype = self.dtype.strip().lower()
        if self.label_words is not None:
            if not isinstance(self.label_words, Mapping) or not self.label_words:
                raise _bad("label_words", "a non-empty mapping label -> word", self.label_words)
            self.label_words = {str(k): v for k, v in self.label_words.items()}
            bad = {k: v for k, v in self.label_words.items() if not isinstance(v, str) or not v.strip()}
            if bad:
                raise _bad("label_words", "a mapping label -> non-empty word", bad)
        if self.template is not None and (not isinstance(self.template, str) or self.template.count("{text}") != 1):
            raise _bad("template", "a string containing {text} exactly once", self.template)
        self._check({"resume": [Boolean()], "overwrite": [Boolean()], "keep_best": [Boolean()]})
        if self.keep_best and not self.eval_every:
            raise TrainingError("keep_best (--keep-best) picks the best validation evaluation; it needs "
                                "evaluations: eval_every (--eval-every) > 0.")
        if self.resume and self.overwrite:
            raise TrainingError("resume and overwrite exclude each other: --resume continues the run in --out, "
                                "--overwrite starts it again.")

    # ---------------------------------------------------------------- derived
    @property
    def tasks(self) -> list[str]:
        """The task names: one, or several for a multitask prompt (``task`` split at commas; a file whose own
        name holds a comma is one task)."""
        from pathlib import Path

        if "," not in self.task or Path(self.task).expanduser().is_file():
            return [self.task]
        return [t.strip() for t in self.task.split(",")]

    @property
    def warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else min(50, self.steps // 10)

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (1-based): linear warm-up, then linear decay to 10%."""
        w = self.warmup
        if w and step <= w:
            return self.lr * step / w
        span = max(1, self.steps - w)
        frac = min(1.0, max(0.0, (step - w) / span))
        return self.lr * (1.0 - 0.9 * frac)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], **overrides) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TrainingError(f"Unknown TrainConfig field(s) {unknown}; known fields are {sorted(names)}.")
        return cls(**{**dict(d), **overrides})


__all__ = ["TrainConfig", "INIT_MODES", "RESUME_FIXED", "LR_MAX", "FLAGS", "check_lr", "in_cli_terms"]

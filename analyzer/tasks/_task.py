"""The task type: :class:`Example`, :class:`Task` (its splits, template and label-word checks) and how one is
built from labelled rows (de-duplicated, then cut into fixed splits by :func:`split_examples`).

Importing this module pulls only the standard library."""

from __future__ import annotations

import random
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Iterable, Mapping, Sequence

from .._params import SEED, Interval, Options, check_param, check_params
from ..exceptions import TaskError
from ._verbalizer import _check_words, _vocab_rows_spelling

DEFAULT_TEMPLATE = "Input: {text}\nLabel:"
SPLITS = ("train", "validation", "test")
SPLIT_SEED = 20240607  # fixed: the held-out examples never change between runs


@dataclass(frozen=True)
class Example:
    """One example: its text and the index of its label in ``Task.labels``."""

    text: str
    label: int


@dataclass(frozen=True, eq=False)
class Task:
    """A classification task with one label word per class.

    name:        ``sentiment``, ``question-type``, ``spam`` or the user file's stem.
    labels:      the class names as they appear in the data (``fresh``, ``DESC``, ``0``...).
    label_words: one word per class, aligned with ``labels``; the model is scored on the next-token logit of
                 the word with a leading space (``" positive"``), which must be a single token.
    template:    turns a text into the model input; holds ``{text}`` exactly once.
    instruction: a hand-written instruction of the task (the hard-prompt baseline).
    train, validation, test: the fixed splits (``test`` is held out).
    source:      the data file the examples were read from.
    file:        for a user file, what identifies it (``path`` as given, ``resolved``, ``sha256``, ``size``,
                 ``text_column``, ``label_column``): what a run records to find the same file again.
    """

    name: str
    labels: tuple[str, ...]
    label_words: tuple[str, ...]
    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    test: tuple[Example, ...]
    template: str = DEFAULT_TEMPLATE
    instruction: str = ""
    description: str = ""
    source: str = ""
    file: Mapping[str, Any] | None = None

    # ------------------------------------------------------------------ views
    @property
    def verbalizer(self) -> dict[str, str]:
        """``{label: word}``."""
        return dict(zip(self.labels, self.label_words))

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def sizes(self) -> dict[str, int]:
        return {s: len(getattr(self, s)) for s in SPLITS}

    def split(self, name: str) -> tuple[Example, ...]:
        if name not in SPLITS:       # the check only on the way to its message: this runs per batch
            check_param("Task.split", "name", name, Options(*SPLITS), error=TaskError)
        return getattr(self, name)

    def format(self, text: str) -> str:
        """The model input for one text (the template filled in)."""
        return self.template.replace("{text}", text)

    def label_counts(self, split: str = "train") -> dict[str, int]:
        counts = dict.fromkeys(self.labels, 0)
        for ex in self.split(split):
            counts[self.labels[ex.label]] += 1
        return counts

    def __repr__(self) -> str:
        return (f"Task(name={self.name!r}, labels={self.verbalizer}, train={len(self.train)}, "
                f"validation={len(self.validation)}, test={len(self.test)})")

    # ------------------------------------------------------------------ tokenizer checks
    @property
    def label_tail(self) -> str:
        """What the label word follows in a scored input: the template after ``{text}`` (``"Label:"`` when the
        template ends with the text)."""
        return self.template.split("{text}")[-1] or "Label:"

    def spaced_label_word(self, word: str) -> str:
        """``word`` as it follows :attr:`label_tail`: with one leading space unless the tail ends in whitespace."""
        return word if self.label_tail[-1:].isspace() else " " + word

    def label_word_pieces(self, tokenizer, word: str) -> list[int]:
        """The token ids ``word`` becomes right after the template's tail (tokenized together with the tail, so
        the tokenizer's merges across the boundary are those the model sees)."""
        tail, spaced = self.label_tail, self.spaced_label_word(word)
        before = tokenizer.encode(tail, add_special_tokens=False)
        after = tokenizer.encode(tail + spaced, add_special_tokens=False)
        return [int(i) for i in (after[len(before):] if after[:len(before)] == before else
                                 tokenizer.encode(spaced, add_special_tokens=False))]

    def label_token_ids(self, tokenizer_or_vocab, model_name: str | None = None) -> list[int]:
        """The token id of each label word where training scores it: **the one token the word becomes right
        after the template's tail** (``" positive"`` after ``"Sentiment:"``).  This is the single rule of the
        toolkit: the trainer and the faithfulness readings score these ids, the labels init starts from them,
        and the label-persistence test of the analysis looks for them.

        ``tokenizer_or_vocab``: a tokenizer (exact: :meth:`label_word_pieces`), or a ``Vocabulary`` when no
        tokenizer is loaded: the non-excluded row whose token string is the spaced word (``␣positive``).  The
        two agree whenever the word is one token, since one token that spells the spaced word is that string.

        Raises TaskError when a word is not exactly one token (saying how it tokenizes) or two words share a
        token."""
        from ..types import Vocabulary

        where = f" of {model_name}" if model_name else ""
        ids: list[int] = []
        for label, word in zip(self.labels, self.label_words):
            spaced = self.spaced_label_word(word)
            if isinstance(tokenizer_or_vocab, Vocabulary):
                extra = _vocab_rows_spelling(tokenizer_or_vocab, spaced)[:1]
                how = "is no token of the vocabulary" if not extra else ""
                where = where or f" of {tokenizer_or_vocab.name}"
            else:
                extra = self.label_word_pieces(tokenizer_or_vocab, word)
                how = f"tokenizes as {tokenizer_or_vocab.convert_ids_to_tokens(extra)} ({len(extra)} tokens)"
            if len(extra) != 1:
                raise TaskError(
                    f"The label word {word!r} (label {label!r} of task {self.name!r}) is not a single token"
                    f"{where}: {spaced!r} {how}. Choose a word that is one token, e.g. with "
                    f"--label-words {label}=WORD.")
            ids.append(int(extra[0]))
        if len(set(ids)) != len(ids):
            dup = [w for w, i in zip(self.label_words, ids) if ids.count(i) > 1]
            raise TaskError(f"The label words {dup} of task {self.name!r} map to the same token{where}.")
        return ids

    def with_options(self, *, template: str | None = None, instruction: str | None = None,
                     label_words: Mapping[str, str] | None = None) -> "Task":
        """A copy with another template, instruction or (some) label words."""
        words = list(self.label_words)
        if label_words:
            unknown = sorted(set(label_words) - set(self.labels))
            if unknown:
                raise TaskError(f"--label-words names labels {unknown} that task {self.name!r} does not have; "
                                f"its labels are {list(self.labels)}.")
            words = [label_words.get(lab, w) for lab, w in zip(self.labels, words)]
            _check_words(self.name, self.labels, words)
        tpl = self.template if template is None else _check_template(template)
        return Task(name=self.name, labels=self.labels, label_words=tuple(words), train=self.train,
                    validation=self.validation, test=self.test, template=tpl,
                    instruction=self.instruction if instruction is None else instruction,
                    description=self.description, source=self.source, file=self.file)


def _check_template(template: str) -> str:
    if template.count("{text}") != 1:
        raise TaskError(f"A task template must contain {{text}} exactly once; got {template!r}.")
    return template


def split_examples(examples: Sequence[Example], *, test_size: int | float = 500,
                   validation_size: int | float = 200, seed: int = SPLIT_SEED,
                   max_test_fraction: float = 0.2, max_validation_fraction: float = 0.1):
    """Shuffle with a fixed seed and cut into (train, validation, test).

    An int size is capped at ``max_*_fraction`` of the data (so small files keep most examples for training);
    a float size is a fraction.  Every split of a dataset with at least 3 examples is non-empty."""
    size_ = [Interval(Integral, 0, None), Interval(Real, 0, 1)]
    test_size, validation_size, seed, max_test_fraction, max_validation_fraction = check_params("split_examples", {
        "test_size": test_size, "validation_size": validation_size, "seed": seed,
        "max_test_fraction": max_test_fraction, "max_validation_fraction": max_validation_fraction}, {
        "test_size": size_, "validation_size": size_, "seed": [SEED],
        "max_test_fraction": [Interval(Real, 0, 1)], "max_validation_fraction": [Interval(Real, 0, 1)]},
        error=TaskError).values()
    n = len(examples)

    def size(s, cap):
        k = int(round(s * n)) if isinstance(s, float) else min(int(s), int(cap * n))
        return max(1, k) if n >= 3 else 0

    n_test, n_val = size(test_size, max_test_fraction), size(validation_size, max_validation_fraction)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    shuffled = [examples[i] for i in order]
    test = tuple(shuffled[:n_test])
    val = tuple(shuffled[n_test:n_test + n_val])
    train = tuple(shuffled[n_test + n_val:])
    return train, val, test


def _dedupe(rows: Iterable[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """Drop exact duplicate texts (keep the first); drop texts that occur with conflicting labels."""
    first: dict[str, str] = {}
    conflict: set[str] = set()
    for text, label in rows:
        text = text.strip()
        if not text:
            continue
        if text in first:
            if first[text] != label:
                conflict.add(text)
            continue
        first[text] = label
    return [(t, lab) for t, lab in first.items() if t not in conflict]


def _make(name: str, rows: list[tuple[str, str]], labels: Sequence[str], words: Sequence[str], *, template: str,
          instruction: str, description: str, source: str, test_size=500, validation_size=200,
          seed: int = SPLIT_SEED) -> Task:
    rows = _dedupe(rows, name)
    if not rows:
        raise TaskError(f"The dataset of task {name!r} ({source}) has no examples after dropping empty and "
                        f"duplicate texts.")
    index = {lab: i for i, lab in enumerate(labels)}
    examples = [Example(t, index[lab]) for t, lab in rows]
    if len(examples) < 3:
        raise TaskError(f"The dataset of task {name!r} ({source}) has {len(examples)} usable example(s); at least "
                        f"3 are needed for train, validation and test splits.")
    train, val, test = split_examples(examples, test_size=test_size, validation_size=validation_size, seed=seed)
    _check_words(name, labels, words)
    return Task(name=name, labels=tuple(labels), label_words=tuple(words), train=train, validation=val, test=test,
                template=_check_template(template), instruction=instruction, description=description,
                source=source)

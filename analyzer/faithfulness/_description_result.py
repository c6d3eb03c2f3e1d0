"""The result of the description reading (:func:`~.description.describe_prompt`) and its renderings.

Importing this module pulls numpy only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..provenance import model_line
from ..results import Renderable
from ..stats import Test, format_p


@dataclass(frozen=True)
class DescriptionCell:
    """One cell of the layer grid: the text the model wrote with the prompt's state read at ``source_layer`` and
    patched in at ``target_layer``, its ``class_rate`` and ``keyword_share`` (None without keywords), ``p``
    against the same cell of the null, ``q`` (BH across the grid; shown, not claimed) and ``null_class_rate``
    (the null's mean there)."""

    source_layer: int
    target_layer: int
    text: str
    class_rate: float
    keyword_share: float | None
    p: float | None
    q: float | None
    null_class_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"source_layer": self.source_layer, "target_layer": self.target_layer, "text": self.text,
                "class_rate": self.class_rate, "keyword_share": self.keyword_share, "p": self.p, "q": self.q,
                "null_class_rate": self.null_class_rate}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DescriptionCell:
        return cls(**{f: d.get(f) for f in cls.__dataclass_fields__})


def _rows(tests) -> tuple[Test, ...]:
    return tuple(t if isinstance(t, Test) else Test.from_dict(t) for t in tests)


@dataclass(frozen=True)
class NullCell:
    """The null's mean class rate in one (source, target) cell of the grid."""

    source_layer: int
    target_layer: int
    class_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"source_layer": self.source_layer, "target_layer": self.target_layer, "class_rate": self.class_rate}


@dataclass(frozen=True)
class FrequentText:
    """A text the null's prompts produced, and how many cells produced it."""

    text: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "count": self.count}


@dataclass(frozen=True)
class DescriptionNull:
    """What the report shows of a description null: its ``constructions`` (``per_construction`` prompts each,
    ``n`` in all), whether it came from the cache (``cached``, ``file``), its mean class rate overall, per
    construction (``{construction: rate}``) and per cell, and its most frequent texts."""

    constructions: tuple[str, ...]
    per_construction: int
    n: int
    cached: bool
    file: str | None
    class_rate_mean: float | None
    class_rate_by_construction: dict[str, float | None]
    class_rate_by_cell: tuple[NullCell, ...]
    frequent_texts: tuple[FrequentText, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"constructions": list(self.constructions), "per_construction": self.per_construction, "n": self.n,
                "cached": self.cached, "file": self.file, "class_rate_mean": self.class_rate_mean,
                "class_rate_by_construction": dict(self.class_rate_by_construction),
                "class_rate_by_cell": [c.to_dict() for c in self.class_rate_by_cell],
                "frequent_texts": [f.to_dict() for f in self.frequent_texts]}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DescriptionNull | None:
        """Read back a ``to_dict()``; an empty one gives None."""
        if not d:
            return None
        return cls(constructions=tuple(d["constructions"]), per_construction=d["per_construction"], n=d["n"],
                   cached=d["cached"], file=d.get("file"), class_rate_mean=d.get("class_rate_mean"),
                   class_rate_by_construction=dict(d.get("class_rate_by_construction") or {}),
                   class_rate_by_cell=tuple(NullCell(**c) for c in d.get("class_rate_by_cell") or ()),
                   frequent_texts=tuple(FrequentText(**f) for f in d.get("frequent_texts") or ()))


@dataclass(frozen=True)
class SelfDescription:
    """One self-description continuation: after ``question`` with the prompt (``soft``), with no prompt
    (``none``) and with its initialisation (``init``); never a claim."""

    question: str
    soft: str
    none: str | None = None
    init: str | None = None
    differs_from_none: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "soft": self.soft, "none": self.none, "init": self.init,
                "differs_from_none": self.differs_from_none}


@dataclass(frozen=True)
class LensTops:
    """The logit lens's top tokens (and probabilities) of each virtual token at a few ``layers``."""

    layers: tuple[int, ...]
    positions: tuple[str, ...]
    top_tokens: tuple[tuple[tuple[str, ...], ...], ...]
    top_probs: tuple[tuple[tuple[float, ...], ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"layers": list(self.layers), "positions": list(self.positions),
                "top_tokens": [[list(t) for t in layer] for layer in self.top_tokens],
                "top_probs": [[list(p) for p in layer] for layer in self.top_probs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LensTops:
        return cls(layers=tuple(d["layers"]), positions=tuple(d.get("positions") or ()),
                   top_tokens=tuple(tuple(tuple(t) for t in layer) for layer in d.get("top_tokens") or ()),
                   top_probs=tuple(tuple(tuple(p) for p in layer) for layer in d.get("top_probs") or ()))


@dataclass(frozen=True)
class OtherReadings:
    """Readings shown beside the description, never claims: the ``self_description`` continuations and the
    logit lens's top tokens (``logit_lens``); either is None when absent."""

    self_description: tuple[SelfDescription, ...] | None = None
    logit_lens: LensTops | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.self_description is not None:
            d["self_description"] = [r.to_dict() for r in self.self_description]
        if self.logit_lens is not None:
            d["logit_lens"] = self.logit_lens.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> OtherReadings | None:
        """Read back a ``to_dict()``; an empty one (not run) gives None."""
        if not d:
            return None
        sd, lens = d.get("self_description"), d.get("logit_lens")
        return cls(self_description=None if sd is None else tuple(SelfDescription(**r) for r in sd),
                   logit_lens=None if lens is None else LensTops.from_dict(lens))


@dataclass(frozen=True)
class PlantedDescription:
    """A planted control: the task's ``kind`` of text (``instruction``, ``label_words``) embedded as a prompt and
    read over the same grid; ``detected`` when its grid-mean class rate is significant above its null."""

    kind: str
    text: str
    detected: bool
    grid: tuple[DescriptionCell, ...]
    best: DescriptionCell
    tests: tuple[Test, ...]
    class_rate_mean: float
    profile: list[Any]
    null: DescriptionNull | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "detected": self.detected,
                "grid": [c.to_dict() for c in self.grid], "best": self.best.to_dict(),
                "tests": [t.to_dict() for t in self.tests], "class_rate_mean": self.class_rate_mean,
                "profile": self.profile, "null": self.null.to_dict() if self.null else {}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlantedDescription:
        return cls(kind=d["kind"], text=d["text"], detected=bool(d["detected"]),
                   grid=tuple(DescriptionCell.from_dict(c) for c in d.get("grid") or ()),
                   best=DescriptionCell.from_dict(d["best"]), tests=_rows(d.get("tests") or ()),
                   class_rate_mean=d.get("class_rate_mean"), profile=d.get("profile"),
                   null=DescriptionNull.from_dict(d.get("null")))


@dataclass(frozen=True)
class DescribedPrompt:
    """The prompt a description reading is of: its ``name``, ``num_virtual_tokens``, ``norm_profile`` (median and
    spread of log2 norms, the null's key; kept as given) and ``source`` (where it was read from; None when not
    known)."""

    name: str
    num_virtual_tokens: int | None = None
    norm_profile: Any = None
    source: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "num_virtual_tokens": self.num_virtual_tokens, "norm_profile": self.norm_profile,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DescribedPrompt:
        d = d or {}
        return cls(name=d.get("name", "prompt"), num_virtual_tokens=d.get("num_virtual_tokens"),
                   norm_profile=d.get("norm_profile"), source=d.get("source"))


@dataclass(frozen=True)
class DescriptionResult(Renderable):
    """What the model says a soft prompt means, over a grid of (source, target) layers.

    prompt:          the :class:`DescribedPrompt`: ``name``, ``num_virtual_tokens``, ``norm_profile`` (median
                     and spread of log2 norms, the null's key), ``source`` (its ``to_dict()`` layout is read back
                     on construction).
    grid:            one :class:`DescriptionCell` per (source, target) layer pair.
    best:            the cell with the highest class rate (then keyword share, a non-empty text, the lowest p).
    tests:           the prompt's :class:`analyzer.stats.Test` rows: the grid-mean class rate (the claim), the
                     best cell's class rate and the grid-mean keyword share (described references).
    describes_task:  the claim "the model describes this prompt as about the task" holds (the grid-mean class
                     rate significant above its null).
    null:            the :class:`DescriptionNull`: its size, constructions, cache state, mean class rates and
                     frequent texts.
    planted:         one :class:`PlantedDescription` per planted signal.
    other_readings:  :class:`OtherReadings`: ``self_description`` continuations and ``logit_lens`` top tokens
                     (never claims); None when not run.
    settings:        layers, description prompt, classes, keywords, null size, seed, decoding.
    """

    prompt: DescribedPrompt
    task: str
    model: str
    grid: tuple[DescriptionCell, ...]
    best: DescriptionCell
    tests: tuple[Test, ...]
    describes_task: bool
    class_rate_mean: float
    null: DescriptionNull | None
    planted: tuple[PlantedDescription, ...] = ()
    other_readings: OtherReadings | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None   # which model was run, and what it stands in for

    def __post_init__(self):
        if not isinstance(self.prompt, DescribedPrompt):
            object.__setattr__(self, "prompt", DescribedPrompt.from_dict(self.prompt))

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt.to_dict(), "task": self.task, "model": self.model,
                "model_provenance": self.provenance, "grid": [c.to_dict() for c in self.grid],
                "best": self.best.to_dict(), "tests": [t.to_dict() for t in self.tests],
                "describes_task": bool(self.describes_task), "class_rate_mean": self.class_rate_mean,
                "null": self.null.to_dict() if self.null else {}, "planted": [p.to_dict() for p in self.planted],
                "other_readings": self.other_readings.to_dict() if self.other_readings else {},
                "settings": dict(self.settings),
                "summary": self.summary()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DescriptionResult:
        """Read back a ``to_dict()`` (e.g. one entry of ``sample_prompts/describe.json``)."""
        return cls(prompt=DescribedPrompt.from_dict(d.get("prompt")), task=d.get("task", ""), model=d.get("model", ""),
                   grid=tuple(DescriptionCell.from_dict(c) for c in d.get("grid") or ()),
                   best=DescriptionCell.from_dict(d["best"]), tests=_rows(d.get("tests") or ()),
                   describes_task=bool(d.get("describes_task")), class_rate_mean=d.get("class_rate_mean"),
                   null=DescriptionNull.from_dict(d.get("null")),
                   planted=tuple(PlantedDescription.from_dict(p) for p in d.get("planted") or ()),
                   other_readings=OtherReadings.from_dict(d.get("other_readings")),
                   settings=dict(d.get("settings") or {}),
                   provenance=d.get("model_provenance"))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    # ------------------------------------------------------------------ words
    def _title(self) -> str:
        return (f"Description of {self.prompt.name} — task {self.task}, model {self.model}; "
                f"{len(self.grid)}-cell layer grid")

    def summary(self) -> list[str]:
        """Plain sentences: the best description, the claim and its null, the planted signal."""
        b = self.best
        out = [f"Best description (source layer {b.source_layer} → target layer {b.target_layer}): "
               f"{b.text!r} — class rate {b.class_rate:.2f} (the null's {b.null_class_rate:.2f} there), "
               f"{_p(b)}."]
        claims = [t for t in self.tests if t.claim]
        if self.describes_task:
            out.append(f"The model describes this prompt as about {self.task}: "
                       + " ".join(t.verdict for t in claims if t.significant))
        else:
            out.append(f"Not distinguishable from chance: the model does not describe this prompt as about "
                       f"{self.task} more than it describes meaningless prompts ("
                       + "; ".join(f"{t.measure.replace('description ', '')} {_g(t.value)} vs "
                                   f"{_g(t.null_mean)}, {format_p(t.q, None, 'q')}" for t in claims) + ").")
        nl = self.null
        freq = nl.frequent_texts
        top = f"; its most frequent text {freq[0].text!r} ({freq[0].count} of {nl.n * len(self.grid)})" \
            if freq else ""
        out.append(f"Null: {nl.n} meaningless prompts ({len(nl.constructions)} constructions × "
                   f"{nl.per_construction}, norm profile {self.prompt.norm_profile}"
                   f"{', from the cache' if nl.cached else ''}), mean class rate "
                   f"{nl.class_rate_mean:.3f}{top}.")
        for p in self.planted:
            pb = p.best
            out.append(f"Planted {p.kind.replace('_', ' ')} ({p.text!r} embedded as the prompt): grid-mean class "
                       f"rate {p.class_rate_mean:.2f} against its null's {p.null.class_rate_mean:.2f}, best "
                       f"{pb.text!r} ({pb.class_rate:.2f}); {'detected' if p.detected else 'NOT detected'} "
                       f"({_row_q(p.tests)}).")
        if self.planted and not any(p.detected for p in self.planted) and not self.describes_task:
            out.append("The planted signal is not described either: at this grid the model describes nothing "
                       "(see the numbers above).")
        return out

    # ------------------------------------------------------------------ tables
    _HEAD = ["source", "target", "class rate", "null rate", "keywords", "p", "q", "text"]

    def _rows(self, grid=None) -> list[list[str]]:
        return [[str(c.source_layer), str(c.target_layer), f"{c.class_rate:.2f}", f"{c.null_class_rate:.2f}",
                 "–" if c.keyword_share is None else f"{c.keyword_share:.2f}", format_p(c.p, None, "").lstrip("="),
                 "–" if c.q is None else f"{c.q:.2g}", c.text] for c in (grid or self.grid)]

    def _others(self) -> list[str]:
        o = self.other_readings
        if not o:
            return []
        out = [f"self-description after {r.question!r}: {r.soft!r} (no prompt: {r.none!r})"
               for r in o.self_description or ()]
        lens = o.logit_lens
        if lens:
            for layer, toks in zip(lens.layers, lens.top_tokens):
                out.append(f"logit lens, layer {layer}: " + " ".join(t[0] for t in toks))
        return out

    def to_markdown(self) -> str:
        esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")   # noqa: E731
        src = [model_line(self.provenance) + ".", ""] if model_line(self.provenance) else []
        lines = [f"# {self._title()}", "", *src, "| " + " | ".join(self._HEAD) + " |",
                 "|" + "---:|" * (len(self._HEAD) - 1) + ":---|"]
        lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in self._rows()]
        lines += ["", "## Tests", ""] + [f"- {t.verdict}" for t in self.tests]
        lines += ["", "## Summary", ""] + [f"- {s}" for s in self.summary()]
        other = self._others()
        if other:
            lines += ["", "## Other readings (not claims)", ""] + [f"- {esc(s)}" for s in other]
        return "\n".join(lines) + "\n"

    def to_table(self, width: int = 140) -> str:
        from rich.table import Table

        from ..render.text import text_console

        console = text_console(width)
        if model_line(self.provenance):
            from rich.markup import escape

            console.print(escape(model_line(self.provenance)))
        t = Table(title=self._title(), title_justify="left")
        for h in self._HEAD:
            t.add_column(h, justify="left" if h == "text" else "right", overflow="fold")
        for row in self._rows():
            t.add_row(*row)
        console.print(t)
        for line in [r.verdict for r in self.tests] + self.summary():
            console.print(f"• {line}")
        other = self._others()
        if other:
            console.print("Other readings (not claims):")
            for line in other:
                console.print(f"  {line}")
        return console.export_text()

    def to_html(self) -> str:
        """A self-contained page: the class-rate heat map, the grid, the tests, the planted signal."""
        from html import escape

        from ..render.html import page
        from ..render.tables import source_html
        from ..plotting import plot_description

        def table(grid) -> str:
            return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in self._HEAD) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                              for row in self._rows(grid)) + "</table>")

        src = source_html(self.provenance)
        body: list[Any] = [f"<h1>{escape(self._title())}</h1>", *src, plot_description(self), table(self.grid),
                           "<h2>Tests</h2><ul>" + "".join(f"<li>{escape(t.verdict)}</li>" for t in self.tests)
                           + "</ul>", "<h2>Summary</h2><ul>"
                           + "".join(f"<li>{escape(s)}</li>" for s in self.summary()) + "</ul>"]
        for p in self.planted:
            body += [f"<h2>Planted {escape(p.kind.replace('_', ' '))}: {escape(p.text)}</h2>", table(p.grid)]
        other = self._others()
        if other:
            body.append("<h2>Other readings (not claims)</h2><ul>"
                        + "".join(f"<li>{escape(s)}</li>" for s in other) + "</ul>")
        return page(self._title(), body)


def _p(cell: DescriptionCell) -> str:
    p = format_p(cell.p, None, "p")
    return p + (f", q={cell.q:.2g} across the grid" if cell.q is not None else "")


def _g(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _row_q(tests: Sequence[Test]) -> str:
    claims = [t for t in tests if t.claim]
    return ", ".join(f"{t.measure.replace('description ', '')} {format_p(t.q, None, 'q')}" for t in claims)


__all__ = ["DescribedPrompt", "DescriptionCell", "NullCell", "FrequentText", "DescriptionNull", "SelfDescription",
           "LensTops", "OtherReadings", "PlantedDescription", "DescriptionResult"]

"""The accuracy-readability frontier: decodes of one soft prompt over a grid of fluency weights (and lengths), each
scored on the same test examples, beside the soft prompt, its nearest-token projection, the task's instruction
and zero-shot as reference points.

Every decode of the sweep is an ordinary :func:`analyzer.decode.decode` run in its own sub-folder of ``out``
(``fluency-0.3``, ``fluency-0.3-length-10``), so a stopped sweep resumes decode by decode.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..exceptions import AnalyzerError
from ..results import Renderable
from .config import DecodeConfig
from .result import DecodeResult, _num

FRONTIER = "frontier.json"


def point_name(fluency: float, length: int | None) -> str:
    """The sub-folder (and label) of one decode of a sweep."""
    return f"fluency-{fluency:g}" + (f"-length-{length}" if length is not None else "")


@dataclass(frozen=True)
class ReferencePoint:
    """A reference of the frontier (the soft prompt, its projection, the instruction, zero-shot): its accuracy
    with the 95% interval ``ci``, its ``balanced_accuracy`` (the mean recall over classes) and, for a hard prompt,
    its ``perplexity`` under the frozen model."""

    accuracy: float
    ci: tuple[float, float]
    perplexity: float | None
    balanced_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "ci": list(self.ci), "perplexity": self.perplexity,
                "balanced_accuracy": self.balanced_accuracy}


@dataclass(frozen=True)
class FrontierPoint:
    """One decode of the sweep as the frontier shows it: its ``name`` (sub-folder), ``fluency`` weight, decoded
    ``length`` and ``text``, test ``accuracy`` with its interval ``ci``, ``perplexity``, ``agreement`` with the
    soft prompt, ``gain_recovered`` (and in balanced accuracy, ``balanced_gain_recovered``, with the decoded
    prompt's ``balanced_accuracy``) and the q of the decoded-vs-soft comparison."""

    name: str
    fluency: float
    length: int
    text: str
    accuracy: float
    ci: tuple[float, float]
    perplexity: float | None
    agreement: float
    gain_recovered: float | None
    vs_soft_q: float | None
    balanced_accuracy: float | None = None
    balanced_gain_recovered: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fluency": self.fluency, "length": self.length, "text": self.text,
                "accuracy": self.accuracy, "ci": list(self.ci), "perplexity": self.perplexity,
                "agreement": self.agreement, "gain_recovered": self.gain_recovered, "vs_soft_q": self.vs_soft_q,
                "balanced_accuracy": self.balanced_accuracy, "balanced_gain_recovered": self.balanced_gain_recovered}


@dataclass(frozen=True)
class FrontierResult(Renderable):
    """``points``: one :class:`DecodeResult` per (fluency, length) of the sweep, in grid order; ``references``:
    ``{name: ReferencePoint}`` for the soft prompt, its projection, the instruction and zero-shot (from the first
    decode: every decode of the sweep scores them on the same examples)."""

    model: str
    prompt: str
    task: str
    points: tuple[DecodeResult, ...]
    references: dict[str, ReferencePoint]
    provenance: dict | None = None

    def rows(self) -> list[FrontierPoint]:
        """One :class:`FrontierPoint` per decode, in grid order."""
        out = []
        for r in self.points:
            s = r.scores["decoded"]
            out.append(FrontierPoint(name=point_name(r.settings["fluency"], r.settings.get("length")),
                                     fluency=r.settings["fluency"], length=len(r.token_ids), text=r.text,
                                     accuracy=s.accuracy, ci=(s.ci_low, s.ci_high),
                                     perplexity=r.perplexity.get("decoded"), agreement=r.agreement["rate"],
                                     gain_recovered=r.gain_recovered, vs_soft_q=r.versus["soft"].q,
                                     balanced_accuracy=s.balanced_accuracy,
                                     balanced_gain_recovered=r.balanced_gain_recovered))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_provenance": self.provenance, "prompt": self.prompt, "task": self.task,
                "points": [p.to_dict() for p in self.rows()],
                "references": {k: v.to_dict() for k, v in self.references.items()},
                "decodes": [r.to_dict() for r in self.points]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    _HEAD = ["decode", "accuracy [95% CI]", "balanced", "perplexity", "agreement", "gain recovered (balanced)",
             "text"]

    def _table_rows(self) -> list[list[str]]:
        rows = []
        for p in self.rows():
            g = "—" if p.gain_recovered is None else f"{p.gain_recovered:.0%}"
            if p.balanced_gain_recovered is not None:
                g += f" ({p.balanced_gain_recovered:.0%})"
            rows.append([p.name, f"{p.accuracy:.3f} [{p.ci[0]:.2f}, {p.ci[1]:.2f}]", _num(p.balanced_accuracy, 3),
                         _ppl(p.perplexity), f"{p.agreement:.0%}", g, p.text])
        for name, ref in self.references.items():
            rows.append([f"[{name}]", f"{ref.accuracy:.3f} [{ref.ci[0]:.2f}, {ref.ci[1]:.2f}]",
                         _num(ref.balanced_accuracy, 3), _ppl(ref.perplexity), "", "", ""])
        return rows

    def _title(self) -> str:
        n = self.points[0].n if self.points else 0
        return (f"Accuracy-readability frontier of {self.prompt} on {self.task} ({self.model}): {len(self.points)} "
                f"decodes, each on the same first {n} test examples; references in brackets")

    def to_table(self, width: int = 140) -> str:
        from ..render.tables import text_table

        return text_table(self._title(), self._HEAD, self._table_rows(), provenance=self.provenance,
                          left=("decode", "text"), width=width)

    def to_markdown(self) -> str:
        from ..render.tables import markdown_table

        return markdown_table(self._title(), self._HEAD, self._table_rows(), provenance=self.provenance,
                              left=("decode", "text"), cell=lambda c: c.replace("|", "\\|").replace("\n", "↵"))

    def to_html(self) -> str:
        from ..plotting import plot_decode_frontier
        from ..render.tables import html_table_page

        return html_table_page(self._title(), self._HEAD, self._table_rows(), provenance=self.provenance,
                               before=[plot_decode_frontier(self)])


def _ppl(x) -> str:
    return "—" if x is None else f"{x:,.1f}"


def references_of(res: DecodeResult) -> dict[str, ReferencePoint]:
    """The reference points of a decode: accuracy, interval and (for hard prompts) perplexity."""
    out = {}
    for name in ("soft", "projection", "instruction", "zero-shot"):
        s = res.scores.get(name)
        if s is not None:
            out[name] = ReferencePoint(accuracy=s.accuracy, ci=(s.ci_low, s.ci_high),
                                       perplexity=res.perplexity.get(name), balanced_accuracy=s.balanced_accuracy)
    return out


def decode_frontier(model, tokenizer, prompt, task, vocab, *, fluencies: Sequence[float] = (0.0, 0.1, 0.3, 1.0),
                    lengths: Sequence[int | None] = (None,), config: DecodeConfig | None = None,
                    out: str | Path | None = None, resume: bool = False, limit: int | None = 200,
                    model_name: str | None = None, progress: Callable[[str], None] | None = None,
                    stop_event=None) -> FrontierResult:
    """One decode per (fluency, length) of the grid (``config`` gives every other setting), each in
    ``out/<point_name>`` when ``out`` is given (``resume``: a finished point is read back, a stopped one continues,
    a missing one starts).  Writes ``out/frontier.json``."""
    from .run import decode

    fluencies, lengths = list(fluencies), list(lengths)
    if not fluencies or not lengths:
        raise AnalyzerError("The frontier needs at least one fluency weight and one length.")
    base = config or DecodeConfig()
    say = progress or (lambda msg: None)
    points: list[DecodeResult] = []
    grid = [(f, n) for n in lengths for f in fluencies]
    for j, (f, n) in enumerate(grid):
        cfg = replace(base, fluency=float(f), length=n)
        sub = Path(out) / point_name(f, n) if out is not None else None
        say(f"frontier {j + 1}/{len(grid)}: fluency {f:g}" + (f", length {n}" if n else ""))
        done = sub is not None and (sub / "decode.json").is_file()
        ck = sub is not None and (sub / "decode_checkpoint.safetensors").is_file()
        if done and resume:
            points.append(_read_point(sub, tokenizer))
            continue
        points.append(decode(model, tokenizer, prompt, task, vocab, cfg, limit=limit, out=sub,
                             resume=bool(resume and ck), model_name=model_name, progress=progress,
                             stop_event=stop_event))
        if stop_event is not None and stop_event.is_set():
            break
    res = FrontierResult(model=points[0].model, prompt=points[0].prompt, task=points[0].task, points=tuple(points),
                         references=references_of(points[0]))
    if out is not None:
        from ..cache import atomic_write_text

        atomic_write_text(Path(out) / FRONTIER, res.to_json())
    return res


def _read_point(sub: Path, tokenizer) -> DecodeResult:
    """A finished decode of a sweep, read back from its ``decode.json``."""
    from ..faithfulness.evaluation import Score, Versus

    d = json.loads((sub / "decode.json").read_text(encoding="utf-8"))
    scores = {k: Score(accuracy=v["accuracy"], correct=v["correct"], n=v["n"], ci_low=v["ci"][0], ci_high=v["ci"][1],
                       balanced_accuracy=v["balanced_accuracy"], per_class=v["per_class"], nll=v["nll"], outcomes="")
              for k, v in d["scores"].items()}
    versus = {k: Versus(baseline=v["baseline"], diff=v["diff"], a_only=v["a_only"], b_only=v["b_only"], p=v["p"],
                        q=v["q"], verdict=v["verdict"]) for k, v in d["versus"].items()}
    return DecodeResult(model=d["model"], prompt=d["prompt"], task=d["task"], split=d["split"], n=d["n"],
                        text=d["text"], token_ids=tuple(d["token_ids"]), tokens=tuple(d["tokens"]),
                        round_trip=d["round_trip"], scores=scores, versus=versus, agreement=d["agreement"],
                        perplexity=d["perplexity"], gain_recovered=d["gain_recovered"], trace=d["trace"],
                        settings=d["settings"], projection_text=d.get("projection_text", ""), out=str(sub),
                        provenance=d.get("model_provenance"))


__all__ = ["FrontierResult", "FrontierPoint", "ReferencePoint", "decode_frontier", "point_name", "references_of", "FRONTIER"]

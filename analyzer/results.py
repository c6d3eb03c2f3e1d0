"""The typed results of an analysis: :class:`Report` holds one :class:`PromptAnalysis` per prompt -- its
neighbour rows, its table of tests (``stats.Test`` rows) and one small frozen dataclass per measure group; a
section that was not computed is a :class:`Skipped` with its reason.  Renderers (:mod:`analyzer.render`), the
plotting functions, the dashboard and the notebook read these attributes; ``to_dict()`` is the JSON contract.

The measure functions return JSON-able dicts; :meth:`PromptAnalysis.from_dict` (through :meth:`Report.from_dict`
for a whole saved report) is the one place they become typed objects (the groups are in
:mod:`analyzer.result_groups`).  Each measure group keeps the layout it was built from, so ``to_dict()`` gives
back exactly the JSON the measures wrote (more keys may be added; these keep their meaning):

``{"model": {"name", "source", "vocab_size", "dim", "tied", "provenance"}, "settings": {...}, "prompts": [{"name",
"source", "kind", "num_virtual_tokens", "dim", "tokens": [{"index", "norm", "norm_ratio", "neighbors":
[{"token_id", "token", "score"}]}], ...}]}``

This module sits at the bottom of the layers: it imports no renderer, no model and no plotting, so computation
modules may import :class:`Renderable` from it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from .result_groups import (Faithfulness, Geometry, Hubness, NullBaselines, Persistence, Redundancy,
                                Relatedness, Tightness)
    from .stats import Test

FORMATS = ("table", "json", "markdown", "html")


class Renderable:
    """``render(fmt)`` for a result with ``to_table``, ``to_json``, ``to_markdown`` and ``to_html``."""

    def render(self, fmt: str = "table") -> str:
        if fmt not in FORMATS:
            from .exceptions import AnalyzerError

            raise AnalyzerError(f"Expected a format in {list(FORMATS)}; got {fmt!r}.")
        return getattr(self, f"to_{fmt}")()


@dataclass(frozen=True)
class Skipped:
    """A section that was not computed, and why (a reader never mistakes an absent number for a zero)."""

    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"skipped": self.reason}




@dataclass(frozen=True)
class ModelInfo:
    """The vocabulary the prompts were read against (a typed view of the report's ``model`` dict)."""

    name: str
    vocab_size: int
    dim: int
    tied: bool
    median_norm: float | None = None
    provenance: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelInfo":
        return cls(d["name"], d["vocab_size"], d["dim"], bool(d["tied"]), d.get("median_norm"), d.get("provenance"))

    @property
    def source_line(self) -> str | None:
        """The sentence on which model's vocabulary was read (and what it stands in for)."""
        from .provenance import model_line

        return model_line(self.provenance)


@dataclass(frozen=True)
class Neighbor:
    """One vocabulary neighbour of a virtual token, with its score under the index's metric."""

    token_id: int
    token: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "token": self.token, "score": self.score}


@dataclass(frozen=True)
class NeighborRow:
    """A virtual token: its position, norm, norm over the vocabulary's median norm, and top-k neighbours."""

    index: int
    norm: float
    norm_ratio: float | None
    neighbors: tuple[Neighbor, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NeighborRow":
        return cls(d["index"], d.get("norm"), d.get("norm_ratio"),
                   tuple(Neighbor(n.get("token_id"), n["token"], n["score"]) for n in d["neighbors"]))

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "norm": self.norm, "norm_ratio": self.norm_ratio,
                "neighbors": [n.to_dict() for n in self.neighbors]}


@dataclass(frozen=True)
class ClusterMetric:
    """One cluster metric of the virtual tokens grouped by prompt, against label permutations."""

    name: str
    value: float | None
    null_mean: float | None
    p: float | None
    n_null: int | None
    verdict: str


@dataclass(frozen=True)
class Clusters:
    """Cluster metrics across prompts (scikit-learn), each against shuffled prompt labels."""

    metrics: tuple[ClusterMetric, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Clusters":
        return cls(metrics=tuple(ClusterMetric(name, c.get("value"), c.get("null_mean"), c.get("p"), c.get("n_null"),
                                               c.get("verdict", ""))
                                 for name, c in d.items() if isinstance(c, Mapping) and "p" in c))


#: the measure groups of a prompt's JSON, by key: the dataclass each is read into
_GROUPS = {"tightness": "Tightness", "null": "NullBaselines", "hubness": "Hubness", "geometry": "Geometry",
           "persistence": "Persistence", "redundancy": "Redundancy", "relatedness": "Relatedness",
           "faithfulness": "Faithfulness"}
_INFO = ("name", "source", "kind", "num_virtual_tokens", "dim", "init", "init_text", "base_model", "task")


def _group(key: str, d, tests: tuple):
    from . import result_groups

    if d is None:
        return None
    if isinstance(d, Mapping) and "skipped" in d:
        return Skipped(str(d["skipped"]))
    cls = getattr(result_groups, _GROUPS[key])
    return cls.from_dict(d, tests) if key in result_groups.ROWS else cls.from_dict(d)


@dataclass(frozen=True)
class PromptAnalysis:
    """One prompt's analysis: what it is (name, source, kind, shape, init, task), its neighbour rows, its table
    of tests (``stats.Test`` rows: the only home of p, q and the verdict) and one measure group each (a
    :class:`Skipped` when the section was not computed; None when the reading did not ask for it, as in a
    plain neighbour report).  Build it with :meth:`from_dict` from the measure functions' output."""

    name: str = ""
    source: str | None = None
    kind: str | None = None
    num_virtual_tokens: int = 0
    dim: int = 0
    init: str | None = None
    init_text: str | None = None
    base_model: str | None = None
    task: str | None = None
    tokens: tuple[NeighborRow, ...] = ()
    k: int | None = None
    tightness: Tightness | Skipped | None = None
    null: NullBaselines | Skipped | None = None
    hubness: Hubness | Skipped | None = None
    geometry: Geometry | Skipped | None = None
    persistence: Persistence | Skipped | None = None
    redundancy: Redundancy | Skipped | None = None
    relatedness: Relatedness | Skipped | None = None
    faithfulness: Faithfulness | Skipped | None = None
    tests: tuple[Test, ...] = ()
    summary: tuple[str, ...] = ()
    other: Mapping[str, Any] = field(default_factory=dict, repr=False)   # keys this class does not read
    key_order: tuple[str, ...] = field(default=(), repr=False, compare=False)  # the JSON's keys, in order

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PromptAnalysis":
        from .stats import Test

        known = {*_INFO, "tokens", "k", "tests", "summary", *_GROUPS}
        tests = tuple(Test.from_dict(t) for t in d.get("tests") or [])
        return cls(**{f: d.get(f) for f in _INFO if f in d},
                   tokens=tuple(map(NeighborRow.from_dict, d.get("tokens") or [])), k=d.get("k"),
                   **{key: _group(key, d.get(key), tests) for key in _GROUPS}, tests=tests,
                   summary=tuple(d.get("summary") or ()), other={key: v for key, v in d.items() if key not in known},
                   key_order=tuple(d))

    @classmethod
    def of(cls, result: "PromptAnalysis | Mapping[str, Any]") -> "PromptAnalysis":
        """``result`` itself, or read from its JSON layout (a figure given ``to_dict()`` or a saved report's
        prompt)."""
        return result if isinstance(result, PromptAnalysis) else cls.from_dict(result)

    def to_dict(self) -> dict[str, Any]:
        def emit(key):
            if key in self.other:
                return copy.deepcopy(self.other[key])
            v = getattr(self, key)
            if key in ("tokens", "tests"):
                return [t.to_dict() for t in v]
            if key == "summary":
                return list(v)
            return v.to_dict() if hasattr(v, "to_dict") else v

        return {key: emit(key) for key in self.keys()}

    # read-only access by key to the JSON view, for callers written against the dict layout
    def keys(self) -> tuple[str, ...]:
        return self.key_order or (*_INFO, "tokens")

    def __getitem__(self, key: str):
        if key not in self.keys():
            raise KeyError(key)
        return self.to_dict()[key]

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def get(self, key: str, default=None):
        return self[key] if key in self else default


@dataclass
class Report(Renderable):
    """A rendered-anywhere analysis result: ``model`` info, ``settings`` and one :class:`PromptAnalysis` per
    prompt (dicts in the JSON layout are read into one), ``extra`` report-level sections (``clusters``)."""

    model: dict[str, Any]
    prompts: list[PromptAnalysis]
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.prompts = [p if isinstance(p, PromptAnalysis) else PromptAnalysis.from_dict(p) for p in self.prompts]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Report":
        """A report from its JSON (``to_dict()``, ``--format json``, the dashboard's cache)."""
        return cls(model=dict(d["model"]), prompts=list(d["prompts"]), settings=dict(d.get("settings") or {}),
                   extra={k: v for k, v in d.items() if k not in ("model", "settings", "prompts")})

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo.from_dict(self.model)

    @property
    def metric(self) -> str | None:
        """The neighbour metric the report was read with (``settings["metric"]``)."""
        return self.settings.get("metric")

    @property
    def k(self) -> int | None:
        """Neighbours per virtual token (``settings["k"]``)."""
        return self.settings.get("k")

    @property
    def clusters(self) -> Clusters | None:
        """The cluster metrics across prompts, or None (one prompt)."""
        return Clusters.from_dict(self.extra["clusters"]) if self.extra.get("clusters") else None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "settings": self.settings, "prompts": [p.to_dict() for p in self.prompts],
                **self.extra}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def to_markdown(self) -> str:
        from .render.markdown import report_markdown

        return report_markdown(self)

    def to_table(self, width: int = 100) -> str:
        """Rich tables rendered to text, readable in a ``width``-column terminal."""
        from .render.text import report_table

        return report_table(self, width)

    def to_html(self) -> str:
        """A self-contained HTML page (plotly.js inline, no network) that opens offline."""
        from .render.html import report_html

        return report_html(self)


__all__ = ["FORMATS", "Renderable", "Skipped", "ModelInfo", "Neighbor", "NeighborRow", "ClusterMetric", "Clusters",
           "PromptAnalysis", "Report"]

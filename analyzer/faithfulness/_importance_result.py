"""The result of the importance reading (:func:`~.importance.importance`): :class:`ImportanceResult`, one
:class:`PositionImportance` per virtual token and one :class:`ReplacementEffect` per replacement; ``to_dict()``
is the JSON contract and ``from_dict`` reads it back (the shipped ``sample_prompts/importance.json``).

Importing this module pulls numpy only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ._importance_render import ImportanceRendering

REPLACEMENTS = ("removed", "nearest", "mean")


@dataclass(frozen=True)
class ReplacementEffect:
    """The change (changed − original) when one position is replaced: mean ``delta_accuracy`` and gold-label
    ``delta_nll`` with their paired bootstrap intervals (``ci_accuracy``, ``ci_nll`` at ``level``); the nearest
    replacement also names its token (``token_id``, ``token``)."""

    delta_accuracy: float
    delta_nll: float
    ci_accuracy: tuple[float, float]
    ci_nll: tuple[float, float]
    level: float = 0.95
    token_id: int | None = None
    token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"delta_accuracy": self.delta_accuracy, "delta_nll": self.delta_nll,
                             "ci": {"delta_accuracy": list(self.ci_accuracy), "delta_nll": list(self.ci_nll),
                                    "level": self.level}}
        if self.token_id is not None:
            d.update(token_id=self.token_id, token=self.token)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReplacementEffect:
        ci = d.get("ci") or {}
        return cls(delta_accuracy=d.get("delta_accuracy"), delta_nll=d["delta_nll"],
                   ci_accuracy=tuple(ci.get("delta_accuracy") or ()), ci_nll=tuple(ci.get("delta_nll") or ()),
                   level=ci.get("level", 0.95), token_id=d.get("token_id"), token=d.get("token"))


@dataclass(frozen=True)
class PositionImportance:
    """One virtual token of the importance reading: its ``index``, the effect of each replacement run
    (``removed``, ``nearest``, ``mean``; None when not run) and the removal claim's ``p``, ``q``, ``significant``
    and ``verdict`` (copied from its :class:`analyzer.stats.Test` row; None when the removal null was not run)."""

    index: int
    removed: ReplacementEffect | None = None
    nearest: ReplacementEffect | None = None
    mean: ReplacementEffect | None = None
    p: float | None = None
    q: float | None = None
    significant: bool | None = None
    verdict: str | None = None

    def effect(self, replacement: str) -> ReplacementEffect | None:
        """The effect of ``replacement`` (one of ``removed``, ``nearest``, ``mean``), None when not run."""
        return getattr(self, replacement) if replacement in REPLACEMENTS else None

    def to_dict(self, order: Sequence[str] = REPLACEMENTS) -> dict[str, Any]:
        """The JSON row: ``index``, the replacements run in ``order`` (the order they were asked for), then the
        claim's fields when the removal null was run."""
        d: dict[str, Any] = {"index": self.index}
        for r in list(order) + [r for r in REPLACEMENTS if r not in order]:
            e = self.effect(r)
            if e is not None:
                d[r] = e.to_dict()
        if self.significant is not None:
            d.update(p=self.p, q=self.q, significant=self.significant, verdict=self.verdict)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PositionImportance:
        eff = {r: ReplacementEffect.from_dict(d[r]) for r in REPLACEMENTS if d.get(r) is not None}
        sig = d.get("significant")
        return cls(index=int(d["index"]), **eff, p=d.get("p"), q=d.get("q"),
                   significant=None if sig is None and "p" not in d else bool(sig), verdict=d.get("verdict"))


@dataclass(frozen=True)
class RandomBand:
    """Accuracy over ``n_orders`` random projection orders at each of ``counts`` projected positions: the
    ``low``/``median``/``high`` percentiles (``percentiles`` gives low and high; the lists are empty when no
    random order was run)."""

    counts: tuple[int, ...]
    low: tuple[float, ...]
    median: tuple[float, ...]
    high: tuple[float, ...]
    n_orders: int
    percentiles: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "low": list(self.low), "median": list(self.median),
                "high": list(self.high), "n_orders": self.n_orders, "percentiles": list(self.percentiles)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RandomBand:
        return cls(counts=tuple(d.get("counts") or ()), low=tuple(d.get("low") or ()),
                   median=tuple(d.get("median") or ()), high=tuple(d.get("high") or ()),
                   n_orders=int(d.get("n_orders") or 0), percentiles=tuple(d.get("percentiles") or (5, 95)))

    def at(self, count: int) -> int | None:
        """The index of ``count`` in :attr:`counts`, None when it is not there or no random order was run."""
        return self.counts.index(count) if self.n_orders and count in self.counts else None


@dataclass(frozen=True)
class ProjectionCurve:
    """The partial-projection curve: positions projected to their nearest tokens in ``order`` (least important
    first); ``accuracy`` and ``nll`` with the first ``counts[k]`` of them projected, ``gap`` = accuracy unprojected
    − fully projected, and the :class:`RandomBand` of random orders."""

    order: tuple[int, ...]
    counts: tuple[int, ...]
    accuracy: tuple[float, ...]
    nll: tuple[float, ...]
    gap: float
    random_band: RandomBand

    def to_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "counts": list(self.counts), "accuracy": list(self.accuracy),
                "nll": list(self.nll), "gap": self.gap, "random_band": self.random_band.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ProjectionCurve | None:
        """Read back a ``to_dict()``; None (or an empty dict) gives None (the curve was not run)."""
        if not d:
            return None
        acc = tuple(d.get("accuracy") or ())
        return cls(order=tuple(d.get("order") or ()), counts=tuple(d.get("counts") or ()), accuracy=acc,
                   nll=tuple(d.get("nll") or ()), gap=d.get("gap", acc[0] - acc[-1] if acc else 0.0),
                   random_band=RandomBand.from_dict(d.get("random_band") or {}))


@dataclass(frozen=True)
class Original:
    """The unchanged prompt's score on the examples: ``accuracy`` and mean gold-label ``nll``."""

    accuracy: float
    nll: float

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "nll": self.nll}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Original | None:
        """Read back a ``to_dict()``; None or an empty dict gives None."""
        return cls(accuracy=d["accuracy"], nll=d["nll"]) if d else None


@dataclass(frozen=True)
class NullStratum:
    """One stratum of the removal null (:data:`._removal_null.STRATA`): ``n`` effects, their ``mean`` and ``sd``."""

    n: int
    mean: float
    sd: float

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "sd": self.sd}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NullStratum:
        return cls(n=d["n"], mean=d["mean"], sd=d["sd"])


@dataclass(frozen=True)
class RemovalNullSummary:
    """The summary of the removal null (:meth:`._removal_null.RemovalNull.summary`): ``size`` pooled effects
    from ``pseudo_prompts`` matched meaningless prompts on ``n_examples`` examples, their ``mean`` and ``sd``, the
    :class:`NullStratum` of each stratum, the smallest possible p (``resolution``), the fewest positions that must
    reach it for BH to pass (``min_positions_for_claim``), whether it was read from the disk cache (``cached``)
    and the mean effect of removing each position (``mean_by_position``; None where never removed)."""

    size: int
    pseudo_prompts: int
    n_examples: int
    mean: float
    sd: float
    strata: dict[str, NullStratum]
    resolution: float
    min_positions_for_claim: int
    cached: bool
    mean_by_position: tuple[float | None, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "pseudo_prompts": self.pseudo_prompts, "n_examples": self.n_examples,
                "mean": self.mean, "sd": self.sd, "strata": {k: v.to_dict() for k, v in self.strata.items()},
                "resolution": self.resolution, "min_positions_for_claim": self.min_positions_for_claim,
                "cached": self.cached, "mean_by_position": list(self.mean_by_position)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RemovalNullSummary | None:
        """Read back a ``to_dict()``; None or an empty dict (the null was not run) gives None."""
        if not d:
            return None
        return cls(size=d["size"], pseudo_prompts=d["pseudo_prompts"], n_examples=d["n_examples"], mean=d["mean"],
                   sd=d["sd"], strata={k: NullStratum.from_dict(v) for k, v in (d.get("strata") or {}).items()},
                   resolution=d["resolution"], min_positions_for_claim=d["min_positions_for_claim"],
                   cached=d["cached"], mean_by_position=tuple(d.get("mean_by_position") or ()))


@dataclass(frozen=True)
class ImportanceResult(ImportanceRendering):
    """The importance reading of one prompt (see :mod:`analyzer.faithfulness.importance`); ``to_dict()`` is the
    JSON contract.

    positions: one :class:`PositionImportance` per virtual token.
    projection_curve: the :class:`ProjectionCurve` (least important first, beside random orders); None when
               not run.
    tests:     the claim rows (one per position), adjusted together.
    original:  the unchanged prompt's :class:`Original` score (None when not known).
    null:      the removal null's :class:`RemovalNullSummary`; None when the removal null was not run.
    (``original`` and ``null`` also accept their ``to_dict()`` layouts, read back on construction.)"""

    model: str
    prompt: str
    task: str
    split: str
    n: int
    original: Original | None
    positions: tuple[PositionImportance, ...]
    projection_curve: ProjectionCurve | None
    tests: tuple
    null: RemovalNullSummary | None
    settings: dict = field(default_factory=dict)
    provenance: dict | None = None   # which model was run, and what it stands in for (analyzer.provenance)

    def __post_init__(self):
        if isinstance(self.original, dict):
            object.__setattr__(self, "original", Original.from_dict(self.original))
        if isinstance(self.null, dict):
            object.__setattr__(self, "null", RemovalNullSummary.from_dict(self.null))

    def to_dict(self) -> dict[str, Any]:
        order = self.settings.get("replacements") or REPLACEMENTS
        return {"model": self.model, "model_provenance": self.provenance, "prompt": self.prompt, "task": self.task,
                "split": self.split, "n": self.n, "original": self.original.to_dict() if self.original else {},
                "positions": [p.to_dict(order) for p in self.positions],
                "projection_curve": self.projection_curve.to_dict() if self.projection_curve else None,
                "tests": [t.to_dict() for t in self.tests], "null": self.null.to_dict() if self.null else {},
                "settings": dict(self.settings),
                "summary": self.summary()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImportanceResult:
        """Read back a ``to_dict()`` (e.g. one entry of ``sample_prompts/importance.json``); the claim rows
        become :class:`analyzer.stats.Test` rows again."""
        from ..stats import Test

        return cls(model=d.get("model", ""), prompt=d.get("prompt", ""), task=d.get("task", ""),
                   split=d.get("split", "test"), n=int(d.get("n") or 0), original=Original.from_dict(d.get("original")),
                   positions=tuple(PositionImportance.from_dict(p) for p in d.get("positions") or ()),
                   projection_curve=ProjectionCurve.from_dict(d.get("projection_curve")),
                   tests=tuple(Test.from_dict(t) if isinstance(t, dict) else t for t in d.get("tests") or ()),
                   null=RemovalNullSummary.from_dict(d.get("null")), settings=dict(d.get("settings") or {}),
                   provenance=d.get("model_provenance"))


def as_importance(result) -> ImportanceResult:
    """``result`` itself, or an :class:`ImportanceResult` read from its ``to_dict()`` layout."""
    return result if isinstance(result, ImportanceResult) else ImportanceResult.from_dict(dict(result))


__all__ = ["REPLACEMENTS", "Original", "NullStratum", "RemovalNullSummary", "ReplacementEffect", "PositionImportance",
           "RandomBand", "ProjectionCurve", "ImportanceResult", "as_importance"]

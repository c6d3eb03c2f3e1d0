"""The measure groups of a prompt's analysis (:mod:`analyzer.results`): one small frozen dataclass per group
(tightness per space, null baselines, hubness, geometry, persistence, redundancy, relatedness, faithfulness,
clusters), built from the dict a measure function returns by its ``from_dict``.  Readers use the typed
attributes; ``to_dict()`` gives back the layout the group was built from (the JSON contract)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (list, tuple)) else ()


def _map(x) -> Mapping:
    return x if isinstance(x, Mapping) else {}


@dataclass(frozen=True)
class _Group:
    """A measure group: typed attributes for readers, and the layout it was built from for ``to_dict()``."""

    layout: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.layout))


# ------------------------------------------------------------------------------------- a score vs its nulls
@dataclass(frozen=True)
class NullReading:
    """One null's comparison of a score: the null's mean and sd, the p-value and, for a claim, its q and
    verdict (as the prompt's table of tests holds them)."""

    null: str
    null_mean: float | None = None
    null_std: float | None = None
    p: float | None = None
    q: float | None = None
    n_null: int | None = None
    alternative: str = "two-sided"
    claim: bool = False
    significant: bool = False
    verdict: str = ""
    omitted: str | None = None

    @classmethod
    def from_dict(cls, null: str, d: Mapping[str, Any]) -> "NullReading":
        return cls(null=null, null_mean=d.get("null_mean"), null_std=d.get("null_std"), p=d.get("p"),
                   q=d.get("q"), n_null=d.get("n_null"), alternative=d.get("alternative", "two-sided"),
                   claim=bool(d.get("claim")), significant=bool(d.get("significant")),
                   verdict=d.get("verdict", ""), omitted=d.get("omitted"))


@dataclass(frozen=True)
class ScoreVsNulls(_Group):
    """A score of the prompt tested against null baselines (a per-token or set test): its ``value``, each
    virtual token's value (``per_position``) and one :class:`NullReading` per null; ``omitted`` says why it
    was not computed."""

    value: float | None = None
    per_position: tuple = ()
    nulls: Mapping[str, NullReading] = field(default_factory=dict)
    omitted: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "ScoreVsNulls":
        d = _map(d)
        nulls = {k: NullReading.from_dict(k, v) for k, v in _map(d.get("null")).items() if isinstance(v, Mapping)}
        return cls(layout=d, value=d.get("value"), per_position=_tuple(d.get("per_position")), nulls=nulls,
                   omitted=d.get("omitted") if isinstance(d.get("omitted"), str) else None)

    @property
    def computed(self) -> bool:
        return self.omitted is None and self.value is not None


# ------------------------------------------------------------------------------------------ measure groups
@dataclass(frozen=True)
class Tightness(_Group):
    """How similar each virtual token's neighbours are to each other, per space (``model``, ``text``)."""

    spaces: Mapping[str, ScoreVsNulls] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Tightness":
        return cls(layout=d, spaces={s: ScoreVsNulls.from_dict(d[s]) for s in ("model", "text")
                                     if isinstance(d.get(s), Mapping)})

    def space(self, name: str) -> ScoreVsNulls:
        return self.spaces.get(name) or ScoreVsNulls(omitted="not computed")


@dataclass(frozen=True)
class NullDescription:
    """What one null baseline is, and its size."""

    description: str
    n: int | None = None
    n_pseudo_prompts: int | None = None
    omitted: str | None = None

    def size_text(self) -> str:
        """``… (500 queries)``, ``… (3000 pseudo-prompts)`` or ``… (omitted: why)``."""
        if self.n is not None:
            return f"{self.description} ({self.n} queries)"
        if self.n_pseudo_prompts is not None:
            return f"{self.description} ({self.n_pseudo_prompts} pseudo-prompts)"
        return f"{self.description} (omitted: {self.omitted})"


@dataclass(frozen=True)
class NullBaselines(_Group):
    """The null baselines the prompt's measures were compared with (``matched``, ``init`` and references)."""

    baselines: Mapping[str, NullDescription] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NullBaselines":
        return cls(layout=d, baselines={k: NullDescription(v["description"], v.get("n"), v.get("n_pseudo_prompts"),
                                                           v.get("omitted"))
                                        for k, v in d.items() if isinstance(v, Mapping) and "description" in v})


@dataclass(frozen=True)
class Hub:
    """A vocabulary token that is a neighbour of several virtual tokens."""

    token: str
    count: int
    positions: tuple[int, ...]
    expected_random: float | None


@dataclass(frozen=True)
class Hubness(_Group):
    """k-occurrence skew of the prompt's neighbours, its hub tokens and the mutual-neighbour share."""

    k_occurrence_skew: ScoreVsNulls = field(default_factory=ScoreVsNulls)
    top_hubs: tuple[Hub, ...] = ()
    mutual: ScoreVsNulls | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Hubness":
        hubs = tuple(Hub(h["token"], h["count"], tuple(h["positions"]),
                         _map(h.get("expected_count")).get("random_vectors")) for h in d.get("top_hubs") or [])
        mutual = ScoreVsNulls.from_dict(d["mutual"]) if isinstance(d.get("mutual"), Mapping) else None
        return cls(layout=d, k_occurrence_skew=ScoreVsNulls.from_dict(d.get("k_occurrence_skew")), top_hubs=hubs,
                   mutual=mutual)


@dataclass(frozen=True)
class Drift:
    """How far each virtual token moved from its initialisation (``omitted`` when the init is unknown)."""

    cosine: tuple = ()
    mean_cosine: float | None = None
    mean_relative_l2: float | None = None
    omitted: str | None = None


@dataclass(frozen=True)
class Geometry(_Group):
    """Norm percentiles among the vocabulary's norms, cosine to the nearest token, drift from the init."""

    norm_percentile: tuple = ()
    mean_norm_percentile: float | None = None
    nearest_cosine: ScoreVsNulls = field(default_factory=ScoreVsNulls)
    drift: Drift = field(default_factory=Drift)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Geometry":
        norm, dr = _map(d.get("norm")), _map(d.get("drift"))
        drift = Drift(omitted=dr["omitted"]) if "omitted" in dr else Drift(
            cosine=_tuple(_map(dr.get("cosine")).get("per_position")), mean_cosine=_map(dr.get("cosine")).get("mean"),
            mean_relative_l2=_map(dr.get("relative_l2")).get("mean"))
        return cls(layout=d, norm_percentile=_tuple(norm.get("percentile_in_vocab")),
                   mean_norm_percentile=norm.get("mean_percentile"),
                   nearest_cosine=ScoreVsNulls.from_dict(d.get("nearest_cosine")), drift=drift)


@dataclass(frozen=True)
class Persistence(_Group):
    """Whether the init tokens and the label words are still among the neighbours."""

    init_rate: float | None = None
    labels: ScoreVsNulls | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Persistence":
        labels = ScoreVsNulls.from_dict(d["labels"]) if isinstance(d.get("labels"), Mapping) else None
        return cls(layout=d, init_rate=_map(d.get("init")).get("rate"), labels=labels)


@dataclass(frozen=True)
class Redundancy(_Group):
    """How many virtual tokens share their neighbours (unique-neighbour ratio, shared top-1 ...)."""

    scores: Mapping[str, ScoreVsNulls] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Redundancy":
        return cls(layout=d, scores={k: ScoreVsNulls.from_dict(v) for k, v in d.items()
                                     if isinstance(v, Mapping) and "value" in v})


@dataclass(frozen=True)
class TaskWord:
    """A word that describes the task (a label word, a keyword) and the vocabulary token it reads as."""

    word: str | None
    token: str | None
    label: str | None = None
    plain: bool = False      # given as a bare word (no token reading)

    @classmethod
    def from_dict(cls, d) -> "TaskWord":
        if not isinstance(d, Mapping):
            return cls(word=str(d), token=None, plain=True)
        return cls(word=d.get("word"), token=d.get("token"), label=d.get("label"))


@dataclass(frozen=True)
class RelatedToken:
    """A task-related neighbour: how many virtual tokens have it, where, and which task word it matches."""

    token: str | None
    count: int | None
    positions: tuple[int, ...]
    match_word: str
    match_kind: str


@dataclass(frozen=True)
class RelatedSpace:
    """Task-relatedness in one space: the share of related neighbours against the nulls, the most related
    neighbours and how "related" is defined there."""

    share: ScoreVsNulls = field(default_factory=ScoreVsNulls)
    top_related: tuple[RelatedToken, ...] = ()
    definition: str | None = None
    omitted: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "RelatedSpace":
        d = _map(d)
        top = tuple(RelatedToken(t.get("token"), t.get("count"), tuple(t.get("positions", [])),
                                 _map(t.get("match")).get("word", ""), _map(t.get("match")).get("kind", ""))
                    for t in d.get("top_related") or [] if isinstance(t, Mapping))
        share = d.get("share", d) if d else None
        return cls(share=ScoreVsNulls.from_dict(share), top_related=top, definition=d.get("definition"),
                   omitted=d.get("omitted") if isinstance(d.get("omitted"), str) else None)


@dataclass(frozen=True)
class Relatedness(_Group):
    """Task-relatedness of the prompt's neighbours: the task's words, per space the related share, and the
    summary sentences (the claims themselves are rows of the table of tests)."""

    task: str | None = None
    label_words: tuple[TaskWord, ...] = ()
    keywords: tuple[TaskWord, ...] = ()
    spaces: Mapping[str, RelatedSpace] = field(default_factory=dict)
    summary: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Relatedness":
        return cls(layout=d, task=d.get("task"), label_words=tuple(map(TaskWord.from_dict, d.get("label_words") or [])),
                   keywords=tuple(map(TaskWord.from_dict, d.get("keywords") or [])),
                   spaces={s: RelatedSpace.from_dict(d[f"{s}_space"]) for s in ("model", "text")
                           if isinstance(d.get(f"{s}_space"), Mapping)},
                   summary=_tuple(d.get("summary")))

    def space(self, name: str) -> RelatedSpace:
        return self.spaces.get(name) or RelatedSpace(omitted="not computed")


@dataclass(frozen=True)
class ConditionAccuracy:
    """Accuracy of one condition (soft prompt, projection, init, instruction, no prompt) with its 95% CI."""

    condition: str
    accuracy: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class PairedGap:
    """soft − projection on the same examples: the difference with its CI, McNemar's p and the agreement."""

    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    mcnemar_p: float | None = None
    agreement: float | None = None


@dataclass(frozen=True)
class ProjectionGap(_Group):
    """Accuracy by condition beside chance and the majority class, and the soft − projection gap."""

    conditions: tuple[ConditionAccuracy, ...] = ()
    chance: float | None = None
    majority: float | None = None
    gap: PairedGap | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ProjectionGap":
        acc = d.get("accuracy") or d.get("conditions") or {}
        rows = [dict(v, condition=k) for k, v in acc.items() if isinstance(v, Mapping)] if isinstance(acc, Mapping) \
            else [a for a in acc if isinstance(a, Mapping)]
        conds = tuple(ConditionAccuracy(str(r.get("condition")), float(r["accuracy"]),
                                        r.get("ci_low", r.get("low")), r.get("ci_high", r.get("high")), r.get("n"))
                      for r in rows if r.get("accuracy") is not None)
        g = _map(d.get("gap"))
        gap = PairedGap(g.get("diff"), g.get("ci_low"), g.get("ci_high"), _map(g.get("mcnemar")).get("p_value"),
                        g.get("agreement")) if g else None
        num = (int, float)
        return cls(layout=d, conditions=conds, gap=gap,
                   chance=d["chance"] if isinstance(d.get("chance"), num) else None,
                   majority=d["majority"] if isinstance(d.get("majority"), num) else None)


@dataclass(frozen=True)
class SelfDescription:
    """The model's greedy continuation after a question, per condition (``soft``, ``none``, ``init`` ...)."""

    question: str
    texts: Mapping[str, str]


@dataclass(frozen=True)
class Faithfulness(_Group):
    """The readings that run the frozen model: projection gap, hard projection, its token-overlap F1 against
    reference texts, the logit lens (its ``to_dict()`` layout, which :func:`~analyzer.plotting.plot_logit_lens`
    takes) and the self-description."""

    projection_gap: ProjectionGap | None = None
    projection_text: str | None = None
    projection_tokens: tuple[str, ...] = ()
    prompt_f1: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    logit_lens: Mapping[str, Any] | None = None
    self_description: tuple[SelfDescription, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Faithfulness":
        proj = _map(d.get("projection"))
        sd = d.get("self_description") if isinstance(d.get("self_description"), list) else []
        return cls(layout=d,
                   projection_gap=ProjectionGap.from_dict(d["projection_gap"]) if d.get("projection_gap") else None,
                   projection_text=None if proj.get("text") is None else str(proj["text"]),
                   projection_tokens=_tuple(proj.get("tokens")),
                   prompt_f1={k: {m: v for m, v in _map(f).items() if isinstance(v, float)}
                              for k, f in _map(d.get("prompt_f1")).items()},
                   logit_lens=d.get("logit_lens") or None,
                   self_description=tuple(SelfDescription(str(q.get("question")), {
                       c: str(_map(q.get(c)).get("text", "")) for c in ("soft", "none", "init", "projection")
                       if isinstance(q.get(c), Mapping)}) for q in sd if isinstance(q, Mapping)))


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
class Clusters(_Group):
    """Cluster metrics across prompts (scikit-learn), each against shuffled prompt labels."""

    metrics: tuple[ClusterMetric, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Clusters":
        return cls(layout=d, metrics=tuple(ClusterMetric(name, c.get("value"), c.get("null_mean"), c.get("p"),
                                                         c.get("n_null"), c.get("verdict", ""))
                                           for name, c in d.items() if isinstance(c, Mapping) and "p" in c))


__all__ = ["NullReading", "ScoreVsNulls", "Tightness", "NullDescription", "NullBaselines", "Hub", "Hubness", "Drift",
           "Geometry", "Persistence", "Redundancy", "TaskWord", "RelatedToken", "RelatedSpace", "Relatedness",
           "ConditionAccuracy", "PairedGap", "ProjectionGap", "SelfDescription", "Faithfulness", "ClusterMetric",
           "Clusters"]

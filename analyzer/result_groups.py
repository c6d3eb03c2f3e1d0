"""The measure groups of a prompt's analysis (:mod:`analyzer.results`): one small frozen dataclass per group
(tightness per space, null baselines, hubness, geometry, persistence, redundancy, relatedness, faithfulness,
clusters), built from the dict a measure function returns by its ``from_dict``.  Readers use the typed
attributes; ``to_dict()`` gives back the layout the group was built from (the JSON contract).

A score tested against nulls (:class:`ScoreVsNulls`) is linked to its rows of the prompt's table of tests
(``stats.Test``, by measure, space and null; :data:`ROWS` says which row each score shows): the rows are the
only home of q, significance and the verdict, and ``to_dict()`` writes them into the score's null comparisons."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping


if TYPE_CHECKING:  # pragma: no cover
    from .stats import Test

#: the row of the table of tests each tested score shows: group -> {path in the group's layout: (measure, space)}
ROWS: dict[str, dict[tuple[str, ...], tuple[str, str]]] = {
    "tightness": {("model",): ("tightness", "model"), ("text",): ("tightness", "text")},
    "hubness": {("k_occurrence_skew",): ("k-occurrence skew", "-"), ("mutual",): ("mutual-neighbour share", "-")},
    "geometry": {("nearest_cosine",): ("nearest-token cosine", "-"),
                 ("nearest_distance",): ("nearest-token distance", "-")},
    "persistence": {("labels",): ("label-word rate", "-")},
    "redundancy": {("unique_neighbor_ratio",): ("unique neighbor ratio", "-")},
    "relatedness": {("model_space", "share"): ("task-related share", "model"),
                    ("text_space", "share"): ("task-related share", "text"),
                    ("specificity",): ("task specificity", "model")},
}


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (list, tuple)) else ()


def _map(x) -> Mapping:
    return x if isinstance(x, Mapping) else {}


def _at(d, path: tuple[str, ...]):
    for key in path:
        d = d.get(key) if isinstance(d, Mapping) else None
    return d


@dataclass(frozen=True)
class _Group:
    """A measure group: typed attributes for readers, and the layout it was built from for ``to_dict()``, with
    its tested scores (``scores``, by their path in the layout) written back from their own ``to_dict()``."""

    layout: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    scores: Mapping[tuple[str, ...], "ScoreVsNulls"] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = copy.deepcopy(dict(self.layout))
        for path, score in self.scores.items():
            parent = _at(out, path[:-1])
            if isinstance(parent, dict) and isinstance(parent.get(path[-1]), Mapping):
                parent[path[-1]] = score.to_dict()
        return out

    @classmethod
    def _tested(cls, group: str, d: Mapping[str, Any], tests) -> dict[tuple[str, ...], "ScoreVsNulls"]:
        """The tested scores of ``d`` that :data:`ROWS` names for ``group``, linked to their rows of ``tests``."""
        return {path: ScoreVsNulls.from_dict(_at(d, path), tests=tests, row=row)
                for path, row in ROWS.get(group, {}).items() if isinstance(_at(d, path), Mapping)}


def with_rows(group: str, d: Mapping[str, Any], tests) -> dict[str, Any]:
    """The layout ``d`` of measure group ``group`` (a key of :data:`ROWS`) as the JSON shows it: each tested
    score's null comparisons carry q, significance, the verdict, claim and direction of their rows of ``tests``
    (``stats.Test``), as the typed group's ``to_dict()`` writes them."""
    return _Group(layout=d, scores=_Group._tested(group, d, tests)).to_dict()


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
    def from_dict(cls, null: str, d: Mapping[str, Any], row: "Test | None" = None) -> "NullReading":
        """From the null comparison ``d``; q, claim, significance and the verdict from its table row ``row``
        when it has one."""
        adjusted = {"q": row.q, "claim": row.claim, "significant": row.significant, "verdict": row.verdict} \
            if row is not None else {"q": d.get("q"), "claim": d.get("claim"), "significant": d.get("significant"),
                                     "verdict": d.get("verdict", "")}
        return cls(null=null, null_mean=d.get("null_mean"), null_std=d.get("null_std"), p=d.get("p"),
                   n_null=d.get("n_null"), alternative=d.get("alternative", "two-sided"), omitted=d.get("omitted"),
                   q=adjusted["q"], claim=bool(adjusted["claim"]), significant=bool(adjusted["significant"]),
                   verdict=adjusted["verdict"])


@dataclass(frozen=True)
class ScoreVsNulls(_Group):
    """A score of the prompt tested against null baselines (a per-token or set test): its ``value``, each
    virtual token's value (``per_position``) and one :class:`NullReading` per null; ``omitted`` says why it
    was not computed."""

    value: float | None = None
    per_position: tuple = ()
    nulls: Mapping[str, NullReading] = field(default_factory=dict)
    omitted: str | None = None
    rows: Mapping[str, "Test"] = field(default_factory=dict, repr=False, compare=False)   # by null

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, *, tests=(), row: tuple[str, str] | None = None
                  ) -> "ScoreVsNulls":
        """From a per-token or set test's dict; ``row = (measure, space)`` links it to those rows of ``tests``."""
        d = _map(d)
        rows = {t.null: t for t in tests if (t.measure, t.space) == row} if row else {}
        nulls = {k: NullReading.from_dict(k, v, rows.get(k)) for k, v in _map(d.get("null")).items()
                 if isinstance(v, Mapping)}
        return cls(layout=d, value=d.get("value"), per_position=_tuple(d.get("per_position")), nulls=nulls,
                   omitted=d.get("omitted") if isinstance(d.get("omitted"), str) else None, rows=rows)

    def to_dict(self) -> dict[str, Any]:
        """The test's layout, each null comparison that is a row of the table carrying that row's ``q``,
        significance, verdict, claim and direction."""
        from .stats import with_row

        out = copy.deepcopy(dict(self.layout))
        comparisons = out.get("null")
        for null, t in self.rows.items():
            if isinstance(comparisons, dict) and isinstance(comparisons.get(null), dict):
                comparisons[null] = with_row(comparisons[null], t)
        return out

    @property
    def computed(self) -> bool:
        return self.omitted is None and self.value is not None


# ------------------------------------------------------------------------------------------ measure groups
@dataclass(frozen=True)
class Tightness(_Group):
    """How similar each virtual token's neighbours are to each other, per space (``model``, ``text``)."""

    spaces: Mapping[str, ScoreVsNulls] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], tests=()) -> "Tightness":
        scores = cls._tested("tightness", d, tests)
        return cls(layout=d, scores=scores, spaces={path[0]: sc for path, sc in scores.items()})

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
    def from_dict(cls, d: Mapping[str, Any], tests=()) -> "Hubness":
        hubs = tuple(Hub(h["token"], h["count"], tuple(h["positions"]),
                         _map(h.get("expected_count")).get("random_vectors")) for h in d.get("top_hubs") or [])
        scores = cls._tested("hubness", d, tests)
        return cls(layout=d, scores=scores, top_hubs=hubs, mutual=scores.get(("mutual",)),
                   k_occurrence_skew=scores.get(("k_occurrence_skew",)) or ScoreVsNulls())


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
    def from_dict(cls, d: Mapping[str, Any], tests=()) -> "Geometry":
        norm, dr = _map(d.get("norm")), _map(d.get("drift"))
        scores = cls._tested("geometry", d, tests)
        drift = Drift(omitted=dr["omitted"]) if "omitted" in dr else Drift(
            cosine=_tuple(_map(dr.get("cosine")).get("per_position")), mean_cosine=_map(dr.get("cosine")).get("mean"),
            mean_relative_l2=_map(dr.get("relative_l2")).get("mean"))
        return cls(layout=d, scores=scores, norm_percentile=_tuple(norm.get("percentile_in_vocab")),
                   mean_norm_percentile=norm.get("mean_percentile"),
                   nearest_cosine=scores.get(("nearest_cosine",)) or ScoreVsNulls(), drift=drift)


@dataclass(frozen=True)
class Persistence(_Group):
    """Whether the init tokens and the label words are still among the neighbours."""

    init_rate: float | None = None
    labels: ScoreVsNulls | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], tests=()) -> "Persistence":
        scores = cls._tested("persistence", d, tests)
        return cls(layout=d, scores=scores, init_rate=_map(d.get("init")).get("rate"), labels=scores.get(("labels",)))


@dataclass(frozen=True)
class Redundancy(_Group):
    """How many virtual tokens share their neighbours (unique-neighbour ratio, shared top-1 ...)."""

    ratios: Mapping[str, ScoreVsNulls] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], tests=()) -> "Redundancy":
        linked = cls._tested("redundancy", d, tests)
        return cls(layout=d, scores=linked, ratios={k: linked.get((k,)) or ScoreVsNulls.from_dict(v)
                                                    for k, v in d.items() if isinstance(v, Mapping) and "value" in v})


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
    def from_dict(cls, d: Mapping[str, Any] | None, share: ScoreVsNulls | None = None) -> "RelatedSpace":
        """From a space's dict; ``share``: its tested share, linked to the table (read from ``d`` when None)."""
        d = _map(d)
        top = tuple(RelatedToken(t.get("token"), t.get("count"), tuple(t.get("positions", [])),
                                 _map(t.get("match")).get("word", ""), _map(t.get("match")).get("kind", ""))
                    for t in d.get("top_related") or [] if isinstance(t, Mapping))
        share = share or ScoreVsNulls.from_dict(d.get("share", d) if d else None)
        return cls(share=share, top_related=top, definition=d.get("definition"),
                   omitted=d.get("omitted") if isinstance(d.get("omitted"), str) else None)


@dataclass(frozen=True)
class Relatedness(_Group):
    """Task-relatedness of the prompt's neighbours: the task's words, per space the related share, and the
    summary sentences (the claims themselves are rows of the table of tests)."""

    task: str | None = None
    label_words: tuple[TaskWord, ...] = ()
    keywords: tuple[TaskWord, ...] = ()
    spaces: Mapping[str, RelatedSpace] = field(default_factory=dict)
    specificity: ScoreVsNulls | None = None
    summary: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], tests=()) -> "Relatedness":
        scores = cls._tested("relatedness", d, tests)
        return cls(layout=d, scores=scores, task=d.get("task"),
                   label_words=tuple(map(TaskWord.from_dict, d.get("label_words") or [])),
                   keywords=tuple(map(TaskWord.from_dict, d.get("keywords") or [])),
                   spaces={s: RelatedSpace.from_dict(d[f"{s}_space"], scores.get((f"{s}_space", "share")))
                           for s in ("model", "text") if isinstance(d.get(f"{s}_space"), Mapping)},
                   specificity=scores.get(("specificity",)), summary=_tuple(d.get("summary")))

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


__all__ = ["NullReading", "ScoreVsNulls", "Tightness", "NullDescription", "NullBaselines", "Hub", "Hubness", "Drift",
           "Geometry", "Persistence", "Redundancy", "TaskWord", "RelatedToken", "RelatedSpace", "Relatedness",
           "ConditionAccuracy", "PairedGap", "ProjectionGap", "SelfDescription", "Faithfulness"]

"""The logic behind Explore's model-running tabs (Evaluate, Importance, Describe), free of streamlit (unit-tested
directly): the display rows and sentences drawn from the typed results.  Nothing here computes a p-value; the
rows show what :mod:`analyzer.stats` made."""

from __future__ import annotations

from typing import Any, Sequence

from ..stats import Test, format_p
from ._markdown import escape_markdown


def _num(x, fmt: str = ".3f") -> str:
    return "—" if x is None or x != x else format(x, fmt)


def verdict_words(sentence: str) -> str:
    """The closing words of an evaluation verdict (``… (n=200, q=0.14): not distinguishable from zero-shot.``
    → ``not distinguishable from zero-shot``)."""
    return sentence.rsplit(": ", 1)[-1].rstrip(".") if sentence else ""


def evaluation_rows(result) -> list[dict[str, str]]:
    """One row per prompt-task pair of an :class:`~analyzer.faithfulness.EvaluationResult`, then the task's
    baselines in brackets: task | prompt | n | accuracy [95% CI] | balanced | NLL | vs zero-shot | verdict."""
    rows = []
    for task, b in result.baselines.items():
        for r in result.results:
            if r.task != task:
                continue
            s, v = r.score, r.vs_zero_shot
            rows.append({"task": task, "prompt": r.prompt, "n": str(s.n),
                         "accuracy [95% CI]": f"{s.accuracy:.3f} [{s.ci_low:.2f}, {s.ci_high:.2f}]",
                         "balanced": _num(s.balanced_accuracy), "NLL": _num(s.nll),
                         "vs zero-shot": f"{v.diff:+.3f} ({format_p(v.q, name='q')})",
                         "verdict": verdict_words(v.verdict)})
        for name, s in (("zero-shot", b.zero_shot), ("instruction", b.instruction),
                        (f"majority ({b.majority_label})", b.majority)):
            if s is not None:
                rows.append({"task": task, "prompt": f"[{name}]", "n": str(s.n),
                             "accuracy [95% CI]": f"{s.accuracy:.3f} [{s.ci_low:.2f}, {s.ci_high:.2f}]",
                             "balanced": _num(s.balanced_accuracy), "NLL": _num(s.nll), "vs zero-shot": "",
                             "verdict": ""})
    return rows


# ------------------------------------------------------------------------------------------------ importance
def importance_rows(result) -> list[dict[str, Any]]:
    """One row per position of an :class:`~analyzer.faithfulness.ImportanceResult` (numbers left as numbers for
    the table's formats): v | nearest token | removed ΔNLL | 95% CI | removed Δacc | nearest ΔNLL | mean ΔNLL | q
    | matters."""
    rows = []
    for p in result.positions:
        rem, near, mean = p.removed, p.nearest, p.mean
        ci = rem.ci_nll if rem is not None else None
        rows.append({"v": f"v{p.index}", "nearest token": near.token if near is not None else "–",
                     "removed ΔNLL": None if rem is None else rem.delta_nll,
                     "95% CI": "" if not ci else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]",
                     "removed Δacc": None if rem is None else rem.delta_accuracy,
                     "nearest ΔNLL": None if near is None else near.delta_nll,
                     "mean ΔNLL": None if mean is None else mean.delta_nll,
                     "q": p.q, "matters": bool(p.significant)})
    return rows


def mattering(result) -> str:
    """Which positions matter, in one Markdown sentence (the claim rows' verdicts, not a new test)."""
    if not result.tests:
        return "No claim: the removal null was not run (the 'removed' replacement was left out)."
    positions = result.positions
    sig = [p for p in positions if p.significant]
    alpha = (result.settings or {}).get("alpha", 0.05)
    if not sig:
        return (f"**No position matters more than chance**: removing any one of them raises the NLL no more than "
                f"removing a position of a matched meaningless prompt (BH q ≥ {alpha:g} for all "
                f"{len(positions)}).")
    parts = ", ".join(f"v{p.index} ({format_p(p.q, None, 'q')})" for p in sig)
    return (f"**{len(sig)} of {len(positions)} positions matter**: {parts} -- removing each raises the gold "
            f"label's NLL more than removing a position of a matched meaningless prompt (BH q < {alpha:g}).")


# ------------------------------------------------------------------------------------------------ description
def _claim_rows(tests: Sequence[Test]) -> list[Test]:
    return [t for t in tests if t.claim]


def best_description(result) -> tuple[str, str, str]:
    """``(heading, text, detail)`` of a description result's best cell; when no cell names a class of the task,
    the heading says so and the text is the grid's most frequent description (how many cells wrote it)."""
    from collections import Counter

    b = result.best
    kw = "" if b.keyword_share is None else f" · keyword share {b.keyword_share:.2f}"
    detail = (f"Source layer {b.source_layer} → target layer {b.target_layer} · class rate "
              f"{b.class_rate:.2f} (the null's {b.null_class_rate:.2f} in that cell){kw}.")
    if b.class_rate > 0:
        return "Best description", b.text.strip() or "(empty)", detail
    texts = Counter(c.text.strip() for c in result.grid if c.text.strip())
    if not texts:
        return f"No description names a class of {result.task}", "(every cell wrote nothing)", ""
    text, n = texts.most_common(1)[0]
    return (f"No description names a class of {result.task}", text,
            f"The grid's most frequent description ({n} of {len(result.grid)} cells); class rate 0 in every cell.")


def description_claim(result) -> tuple[bool, str]:
    """``(is a claim, Markdown sentence)`` of a :class:`~analyzer.faithfulness.DescriptionResult`: does the model
    describe the prompt as about the task more than it describes matched meaningless prompts?"""
    stats = "; ".join(f"{t.measure.replace('description ', '')} {_num(t.value, '.2f')} vs the null's "
                      f"{_num(t.null_mean, '.2f')}, {format_p(t.q, None, 'q')}"
                      for t in _claim_rows(result.tests))
    if result.describes_task:
        return True, f"**Claim: the model describes this prompt as about {result.task}** ({stats})."
    return False, (f"**Not distinguishable from chance**: the model describes this prompt as about {result.task} "
                   f"no more than it describes meaningless prompts ({stats}).")


def planted_lines(result) -> list[tuple[bool, str]]:
    """``(detected, Markdown sentence)`` per planted control of a description result."""
    out = []
    for p in result.planted:
        q = "; ".join(format_p(t.q, None, "q") for t in _claim_rows(p.tests))
        what = "the task's instruction" if p.kind == "instruction" else "the task's label words"
        out.append((bool(p.detected),
                    f"**Planted control** ({what} embedded as a prompt: *{escape_markdown(p.text)}*): "
                    f"**{'detected' if p.detected else 'NOT detected'}** -- grid-mean class rate "
                    f"{p.class_rate_mean:.2f} vs its null's {p.null.class_rate_mean:.2f} ({q}); best "
                    f"description “{escape_markdown(p.best.text.strip())}”."))
    return out


def other_readings_rows(result) -> list[dict[str, str]]:
    """The self-description continuations beside the question alone (never claims)."""
    o = result.other_readings
    return [{"question": r.question.strip(), "after the prompt": r.soft or "", "no prompt": r.none or ""}
            for r in (o.self_description if o else None) or ()]


__all__ = ["verdict_words", "evaluation_rows", "importance_rows", "mattering", "best_description",
           "description_claim", "planted_lines", "other_readings_rows"]

"""The Markdown rendering of a :class:`~analyzer.results.Report`: per prompt its neighbour table, its table of
tests with the nulls it uses, and what the relatedness and faithfulness sections describe."""

from __future__ import annotations

from .._format import cluster_rows, compact_rows, description_lines, nulls_used, num
from ..result_groups import Faithfulness, Relatedness
from ..results import Skipped


def md_escape(s: str) -> str:
    """Text safe inside a Markdown table cell or code span."""
    return s.replace("|", "\\|").replace("`", "ˋ")


def report_markdown(report) -> str:
    m = report.model_info
    lines = [f"# Soft-prompt report — {m.name}", "",
             f"Model `{m.name}`: vocabulary {m.vocab_size:,} × {m.dim}, "
             f"tied embeddings: {'yes' if m.tied else 'no'}. Metric: {report.metric}, "
             f"k = {report.k}; vocabulary median norm {num(m.median_norm)}.",
             ""]
    if m.source_line:
        lines[4:4] = [f"{md_escape(m.source_line)}.", ""]
    for p in report.prompts:
        lines += [f"## {p.name}", "",
                  f"`{p.source}` — {p.kind}, {p.num_virtual_tokens} virtual tokens × {p.dim}"
                  + (f", init {p.init}" if p.init else "") + (f", task {p.task}" if p.task else ""), "",
                  "| # | norm | × median | neighbours (score) |", "|---:|---:|---:|:---|"]
        for t in p.tokens:
            nb = ", ".join(f"`{md_escape(n.token)}` {n.score:.3f}" for n in t.neighbors)
            lines.append(f"| {t.index} | {t.norm:.3f} | {num(t.norm_ratio, 2)} | {nb} |")
        lines.append("")
        lines += _analysis_markdown(p)
    if report.clusters is not None:
        lines += ["## Across prompts", "", *_clusters_markdown(report.clusters), ""]
    return "\n".join(lines)


def _clusters_markdown(clusters) -> list[str]:
    rows = cluster_rows(clusters)
    return ["| measure | value | null (mean) | p | verdict |", "|:---|---:|:---|---:|:---|",
            *[f"| {r['measure']} | {r['value']} | {r['null']} | {r['p']} | {r['verdict']} |" for r in rows]]


def _tests_markdown(p) -> list[str]:
    rows = compact_rows(p.tests)
    if not rows:
        return []
    out = ["**The table of tests** (two-sided; q: Benjamini–Hochberg over the claims, significant when q < 0.05; "
           "references are shown with their p and are never claims)", "",
           "| measure | value | null (mean) | q / p | verdict |", "|:---|---:|:---|---:|:---|"]
    out += [f"| {r['measure']} | {r['value']} | {r['null']} | {r['q']} | {r['verdict']} |" for r in rows]
    out += ["", *[f"- *{n}*: {t}" for n, t in nulls_used(p.tests).items()], ""]
    return out


def _analysis_markdown(p) -> list[str]:
    lines: list[str] = list(_tests_markdown(p))
    for key, body_of in (("relatedness", _relatedness_markdown), ("faithfulness", _faithfulness_markdown)):
        sec = getattr(p, key)
        if isinstance(sec, Skipped):
            lines += [f"### {key}", "", f"Skipped: {sec.reason}.", ""]
        elif isinstance(sec, (Relatedness, Faithfulness)):
            body = body_of(sec)
            if body:
                lines += [f"### {key}", "", *body, ""]
    return lines


def _relatedness_markdown(r: Relatedness) -> list[str]:
    out = []
    if r.label_words:
        out.append("Label words: " + ", ".join(
            f"{w.label} → `{md_escape(str(w.token))}`" if not w.plain else str(w.word)
            for w in r.label_words) + ".")
    if r.keywords:
        out.append("Task keywords (log-odds vs background): "
                   + ", ".join(f"`{md_escape(str(k.token))}`" for k in r.keywords[:15]) + ".")
    for space, sec in r.spaces.items():
        if sec.top_related:
            out.append(f"Most task-related neighbours ({space} space): "
                       + ", ".join(f"`{md_escape(str(t.token))}`" for t in sec.top_related[:10]) + ".")
    out += [f"- {s}" for s in description_lines(r.summary)]   # the claims: the table
    return out + ([""] if out else [])


def _faithfulness_markdown(f: Faithfulness) -> list[str]:
    out = []
    gap = f.projection_gap
    if gap is not None and gap.conditions:
        out += ["| condition | accuracy | 95% CI | n |", "|:---|---:|:---:|---:|"]
        for a in gap.conditions:
            out.append(f"| {a.condition} | {a.accuracy:.3f} | [{num(a.ci_low)}, {num(a.ci_high)}] | {a.n} |")
        if gap.chance is not None:
            out.append(f"\nChance {gap.chance:.3f}; majority class {num(gap.majority)}.")
    if f.projection_text is not None:
        out.append(f"Hard projection (nearest tokens as text): `{md_escape(f.projection_text)}`")
    for q in f.self_description[:3]:
        out.append(f"Self-description — *{md_escape(q.question)}* → "
                   f"“{md_escape(q.texts.get('soft', '').strip())}” (no prompt: "
                   f"“{md_escape(q.texts.get('none', '').strip())}”)")
    return out + ([""] if out else [])


__all__ = ["md_escape", "report_markdown"]

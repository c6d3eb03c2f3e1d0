"""The HTML rendering of a :class:`~analyzer.results.Report`: one self-contained page (plotly.js inlined once,
no network) with the same figures the dashboard and the notebook draw (``analyzer.plotting``); and
:func:`page`, the page every other result's ``to_html`` is built on."""

from __future__ import annotations

import html
from typing import Any

from .._format import cluster_rows, compact_rows, description_lines, nulls_used, num
from ..result_groups import Faithfulness, Relatedness
from ..results import Skipped

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right;vertical-align:top}
th{background:#f4f4f8} td.l,th.l{text-align:left} code{background:#f4f4f8;padding:0 .2rem}
.sig{color:#0a7d32;font-weight:600} .ns{color:#888} .skip{color:#888;font-style:italic}
h2{border-bottom:2px solid #eee;padding-bottom:.2rem;margin-top:2.5rem}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fig_html(fig, first: bool) -> str:
    return fig.to_html(full_html=False, include_plotlyjs="inline" if first else False,
                       config={"displaylogo": False, "responsive": True})


def page(title: str, parts) -> str:
    """A whole self-contained HTML document from ``parts``: HTML strings, or plotly figures (plotly.js is
    inlined with the first one)."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style>"
           f"</head><body>"]
    first = True
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        try:
            out.append(_fig_html(part, first))
            first = False
        except Exception as e:  # a figure that cannot be drawn must not lose the rest of the page
            out.append(f"<p class='skip'>figure unavailable: {_e(e)}</p>")
    out.append("</body></html>")
    return "\n".join(out)


def _table(cols: list[str], rows: list[dict], *, cls_of=None) -> str:
    head = "".join(f"<th class='l'>{_e(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cls = cls_of(r) if cls_of else ""
        body.append("<tr>" + "".join(f"<td class='l {cls if c == cols[-1] else ''}'>{_e(r[c])}</td>" for c in cols)
                    + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def report_html(report) -> str:
    from .. import plotting

    m = report.model_info
    parts = [f"<h1>Soft-prompt report — {_e(m.name)}</h1>",
             f"<p>Vocabulary {m.vocab_size:,} × {m.dim} (tied embeddings: {'yes' if m.tied else 'no'}); "
             f"metric {_e(report.metric)}, k = {_e(report.k)}; median token norm "
             f"{num(m.median_norm)}. Every claim is one row of the prompt's table of tests: two-sided, "
             f"q from Benjamini–Hochberg over the prompt's claims, <span class='sig'>significant</span> when "
             f"q &lt; 0.05; references are shown with their p and are never claims.</p>"]
    if m.source_line:
        parts.insert(1, f"<p class='source'>{_e(m.source_line)}.</p>")

    def cls_of(r):
        return "sig" if r["verdict"].startswith(("higher", "lower")) else "ns"

    for p in report.prompts:
        parts.append(f"<h2>{_e(p.name)}</h2><p><code>{_e(p.source)}</code> — {_e(p.kind)}, "
                     f"{p.num_virtual_tokens} virtual tokens × {p.dim}"
                     + (f", init {_e(p.init)}" if p.init else "")
                     + (f", task {_e(p.task)}" if p.task else "") + "</p>")
        if p.tests:
            parts.append("<h3>The table of tests</h3>")
            parts.append(_table(["measure", "value", "null", "q", "verdict"], compact_rows(p.tests), cls_of=cls_of))
            used = nulls_used(p.tests).items()
            parts.append("<ul>" + "".join(f"<li><i>{_e(n)}</i>: {_e(t)}</li>" for n, t in used)
                         + "</ul>")
        parts.append("<table><tr><th>#</th><th>norm</th><th>× median</th><th class='l'>neighbours (score)</th></tr>")
        for t in p.tokens:
            nb = ", ".join(f"<code>{_e(n.token)}</code>&nbsp;{n.score:.3f}" for n in t.neighbors)
            parts.append(f"<tr><td>{t.index}</td><td>{t.norm:.3f}</td><td>{num(t.norm_ratio)}</td>"
                         f"<td class='l'>{nb}</td></tr>")
        parts.append("</table>")
        if p.tightness is not None and not isinstance(p.tightness, Skipped):
            parts.append(plotting.plot_tightness(p, space="model", title="Tightness, model space"))
            if p.tightness.space("text").value is not None:
                parts.append(plotting.plot_tightness(p, space="text", title="Tightness, MiniLM text space"))
        if p.geometry is not None and not isinstance(p.geometry, Skipped):
            parts.append(plotting.plot_geometry(p, title="Geometry"))
        for key in ("relatedness", "faithfulness"):
            sec = getattr(p, key)
            if not isinstance(sec, (Skipped, Relatedness, Faithfulness)):
                continue
            parts.append(f"<h3>{_e(key)}</h3>")
            if isinstance(sec, Skipped):
                parts.append(f"<p class='skip'>Skipped: {_e(sec.reason)}.</p>")
            elif isinstance(sec, Relatedness):
                parts += [f"<p>{_e(s)}</p>" for s in description_lines(sec.summary)]
            else:
                if sec.projection_gap is not None:
                    parts.append(plotting.plot_projection_gap(sec.projection_gap, title="Projection gap"))
                if sec.logit_lens:
                    parts.append(plotting.plot_logit_lens(sec.logit_lens, title="Logit lens"))
    if report.clusters is not None:
        parts.append("<h2>Across prompts</h2>")
        parts.append(_table(["measure", "value", "null", "p", "verdict"], cluster_rows(report.clusters)))
    return page(f"Soft-prompt report — {m.name}", parts)


__all__ = ["page", "report_html"]

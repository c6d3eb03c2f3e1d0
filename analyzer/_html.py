"""The HTML rendering of a :class:`~analyzer.report.Report`: one self-contained page (plotly.js inlined once,
no network) with the same figures the dashboard and the notebook draw (``analyzer.plotting``)."""

from __future__ import annotations

import html
from typing import Any

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


def render_html(report) -> str:
    from .report import NULL_ORDER, _num, score_rows

    m = report.model
    st = report.settings
    parts = [f"<h1>Soft-prompt report — {_e(m['name'])}</h1>",
             f"<p>Vocabulary {m['vocab_size']:,} × {m['dim']} (tied embeddings: {'yes' if m['tied'] else 'no'}); "
             f"metric {_e(st.get('metric'))}, k = {_e(st.get('k'))}; median token norm "
             f"{_num(m.get('median_norm'))}. Every score is shown beside its chance level; "
             f"<span class='sig'>green</span> p-values are below 0.05.</p>"]
    from . import plotting

    for p in report.prompts:
        parts.append(f"<h2>{_e(p['name'])}</h2><p><code>{_e(p['source'])}</code> — {_e(p['kind'])}, "
                     f"{p['num_virtual_tokens']} virtual tokens × {p['dim']}"
                     + (f", init {_e(p['init'])}" if p.get("init") else "")
                     + (f", task {_e(p['task'])}" if p.get("task") else "") + "</p>")
        if p.get("summary"):
            parts.append("<ul>" + "".join(f"<li>{_e(s)}</li>" for s in p["summary"]) + "</ul>")
        parts.append("<table><tr><th>#</th><th>norm</th><th>× median</th><th class='l'>neighbours (score)</th></tr>")
        for t in p["tokens"]:
            nb = ", ".join(f"<code>{_e(n['token'])}</code>&nbsp;{n['score']:.3f}" for n in t["neighbors"])
            parts.append(f"<tr><td>{t['index']}</td><td>{t['norm']:.3f}</td><td>{_num(t.get('norm_ratio'))}</td>"
                         f"<td class='l'>{nb}</td></tr>")
        parts.append("</table>")
        if p.get("tightness"):
            parts.append(plotting.plot_tightness(p, space="model", title="Tightness, model space"))
            if (p["tightness"].get("text") or {}).get("value") is not None:
                parts.append(plotting.plot_tightness(p, space="text", title="Tightness, MiniLM text space"))
        if p.get("geometry"):
            parts.append(plotting.plot_geometry(p, title="Geometry"))
        for key in ("tightness", "hubness", "geometry", "persistence", "redundancy", "relatedness", "faithfulness"):
            sec = p.get(key)
            if not isinstance(sec, dict):
                continue
            parts.append(f"<h3>{_e(key)}</h3>")
            if sec.get("skipped"):
                parts.append(f"<p class='skip'>Skipped: {_e(sec['skipped'])}.</p>")
                continue
            if key == "relatedness":
                for s in sec.get("summary") or []:
                    parts.append(f"<p>{_e(s)}</p>")
            if key == "faithfulness":
                if sec.get("projection_gap"):
                    parts.append(plotting.plot_projection_gap(sec["projection_gap"], title="Projection gap"))
                if sec.get("logit_lens"):
                    parts.append(plotting.plot_logit_lens(sec["logit_lens"], title="Logit lens"))
            rows = score_rows(sec)
            if rows:
                parts.append("<table><tr><th class='l'>measure</th><th>value</th>"
                             + "".join(f"<th>{n.replace('_', ' ')}: mean</th><th>p</th>" for n in NULL_ORDER)
                             + "</tr>")
                for r in rows:
                    cells = []
                    for n in NULL_ORDER:
                        c = r["nulls"].get(n)
                        if not c:
                            cells.append("<td>—</td><td>—</td>")
                            continue
                        cls = "sig" if c.get("significant") else "ns"
                        cells.append(f"<td>{_num(c.get('null_mean'))}</td><td class='{cls}'>{_num(c.get('p'))}</td>")
                    parts.append(f"<tr><td class='l'>{_e(r['measure'])}</td><td>{_num(r['value'])}</td>"
                                 + "".join(cells) + "</tr>")
                parts.append("</table>")
    if report.extra.get("clusters"):
        parts.append("<h2>Across prompts</h2><pre>" + _e(report.extra["clusters"]) + "</pre>")
    return page(f"Soft-prompt report — {m['name']}", parts)

"""One ``Report`` object, rendered to table (rich), JSON, Markdown (and HTML, see ``to_html``).

``build_report`` is the single function the CLI, the dashboard and the notebook call to get neighbours of
each virtual token.  The JSON layout is the stable contract other tools rely on:

``{"model": {"name", "source", "vocab_size", "dim", "tied", "provenance"}, "settings": {...}, "prompts": [{"name",
"source", "kind", "num_virtual_tokens", "dim", "tokens": [{"index", "norm", "norm_ratio", "neighbors":
[{"token_id", "token", "score"}]}]}]}``  (more keys may be added; these keep their meaning).  ``model.provenance``
(:func:`analyzer.provenance.model_provenance`) says which checkpoint's vocabulary was read and whether it stands
in for the model the adapter names; its ``sentence`` heads every rendering."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ._format import cluster_rows, compact_rows, description_lines, nulls_used
from ._format import num as _num
from .types import SoftPrompt, Vocabulary

FORMATS = ("table", "json", "markdown", "html")


class Renderable:
    """``render(fmt)`` for a result with ``to_table``, ``to_json``, ``to_markdown`` and ``to_html``."""

    def render(self, fmt: str = "table") -> str:
        if fmt not in FORMATS:
            from .exceptions import AnalyzerError

            raise AnalyzerError(f"Expected a format in {list(FORMATS)}; got {fmt!r}.")
        return getattr(self, f"to_{fmt}")()


@dataclass
class Report(Renderable):
    """A rendered-anywhere analysis result: ``model`` info, ``settings`` and one dict per prompt."""

    model: dict[str, Any]
    prompts: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)   # report-level sections (e.g. "clusters")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "settings": self.settings, "prompts": self.prompts, **self.extra}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def to_markdown(self) -> str:
        m = self.model
        lines = [f"# Soft-prompt report — {m['name']}", "",
                 f"Model `{m['name']}`: vocabulary {m['vocab_size']:,} × {m['dim']}, "
                 f"tied embeddings: {'yes' if m['tied'] else 'no'}. Metric: {self.settings.get('metric')}, "
                 f"k = {self.settings.get('k')}; vocabulary median norm {_num(m.get('median_norm'))}.",
                 ""]
        if source_line(m):
            lines[4:4] = [f"{_md_escape(source_line(m))}.", ""]
        for p in self.prompts:
            lines += [f"## {p['name']}", "",
                      f"`{p['source']}` — {p['kind']}, {p['num_virtual_tokens']} virtual tokens × {p['dim']}"
                      + (f", init {p['init']}" if p.get("init") else "")
                      + (f", task {p['task']}" if p.get("task") else ""), "",
                      "| # | norm | × median | neighbours (score) |", "|---:|---:|---:|:---|"]
            for t in p["tokens"]:
                nb = ", ".join(f"`{_md_escape(n['token'])}` {n['score']:.3f}" for n in t["neighbors"])
                lines.append(f"| {t['index']} | {t['norm']:.3f} | {_num(t.get('norm_ratio'), 2)} | {nb} |")
            lines.append("")
            lines += _analysis_markdown(p)
        if self.extra.get("clusters"):
            lines += ["## Across prompts", "", *_clusters_markdown(self.extra["clusters"]), ""]
        return "\n".join(lines)

    def to_table(self, width: int = 100) -> str:
        """Rich tables rendered to text, readable in a ``width``-column terminal."""
        from rich.table import Table

        console = text_console(width)
        m = self.model
        console.print(f"[bold]{m['name']}[/bold]  vocab {m['vocab_size']:,} × {m['dim']}  tied={m['tied']}  "
                      f"metric={self.settings.get('metric')}  k={self.settings.get('k')}  "
                      f"median norm={_num(m.get('median_norm'))}")
        if source_line(m):
            from rich.markup import escape

            console.print(escape(source_line(m)))
        for p in self.prompts:
            t = Table(title=f"{p['name']} ({p['kind']}, {p['num_virtual_tokens']}×{p['dim']})", title_justify="left",
                      expand=False, show_lines=False)
            t.add_column("#", justify="right", no_wrap=True)
            t.add_column("norm", justify="right", no_wrap=True)
            t.add_column("×med", justify="right", no_wrap=True)
            t.add_column("neighbours (score)", overflow="fold")
            for tok in p["tokens"]:
                nb = "  ".join(f"{n['token']}:{n['score']:.2f}" for n in tok["neighbors"])
                t.add_row(str(tok["index"]), f"{tok['norm']:.2f}", _num(tok.get("norm_ratio"), 2), nb)
            console.print(t)
            rows = compact_rows(p.get("tests") or [])
            if rows:
                s = Table(title=f"{p['name']}: the table of tests (two-sided; q: Benjamini-Hochberg over the "
                                f"claims; references are never claims)", title_justify="left")
                for col in ("measure", "value", "null (mean)", "q / p", "verdict"):
                    s.add_column(col, justify="left" if col in ("measure", "verdict") else "right",
                                 overflow="fold")
                for r in rows:
                    s.add_row(r["measure"], r["value"], r["null"], r["q"], r["verdict"])
                console.print(s)
                for name, text in nulls_used(p.get("tests") or []).items():
                    console.print(f"  {name}: {text}")
            for key in ("relatedness", "faithfulness"):
                if isinstance(p.get(key), dict) and p[key].get("skipped"):
                    console.print(f"{key}: skipped — {p[key]['skipped']}")
        return console.export_text()

    def to_html(self) -> str:
        """A self-contained HTML page (plotly.js inline, no network) that opens offline."""
        from ._html import render_html

        return render_html(self)



class _NullIO:
    def write(self, s):  # rich needs a file; we only want its recorded export
        return len(s)

    def flush(self):
        pass


def text_console(width: int):
    """A rich console that records what is printed, for ``export_text()`` (no terminal, no colour)."""
    from rich.console import Console

    return Console(width=width, record=True, file=_NullIO(), force_terminal=False, color_system=None)


def _clusters_markdown(clusters: dict) -> list[str]:
    rows = cluster_rows(clusters)
    return ["| measure | value | null (mean) | p | verdict |", "|:---|---:|:---|---:|:---|",
            *[f"| {r['measure']} | {r['value']} | {r['null']} | {r['p']} | {r['verdict']} |" for r in rows]]


def _tests_markdown(p: dict) -> list[str]:
    rows = compact_rows(p.get("tests") or [])
    if not rows:
        return []
    out = ["**The table of tests** (two-sided; q: Benjamini–Hochberg over the claims, significant when q < 0.05; "
           "references are shown with their p and are never claims)", "",
           "| measure | value | null (mean) | q / p | verdict |", "|:---|---:|:---|---:|:---|"]
    out += [f"| {r['measure']} | {r['value']} | {r['null']} | {r['q']} | {r['verdict']} |" for r in rows]
    out += ["", *[f"- *{n}*: {t}" for n, t in nulls_used(p.get("tests") or []).items()], ""]
    return out


def _analysis_markdown(p: dict) -> list[str]:
    lines: list[str] = list(_tests_markdown(p))
    for key in ("relatedness", "faithfulness"):
        sec = p.get(key)
        if not isinstance(sec, dict):
            continue
        if sec.get("skipped"):
            lines += [f"### {key}", "", f"Skipped: {sec['skipped']}.", ""]
            continue
        body = _relatedness_markdown(sec) if key == "relatedness" else _faithfulness_markdown(sec)
        if body:
            lines += [f"### {key}", "", *body, ""]
    return lines


def _relatedness_markdown(r: dict) -> list[str]:
    out = []
    if r.get("label_words"):
        out.append("Label words: " + ", ".join(
            f"{w.get('label')} → `{_md_escape(str(w.get('token')))}`" if isinstance(w, dict) else str(w)
            for w in r["label_words"]) + ".")
    if r.get("keywords"):
        out.append("Task keywords (log-odds vs background): "
                   + ", ".join(f"`{_md_escape(str(k.get('token')))}`" for k in r["keywords"][:15]) + ".")
    for space in ("model_space", "text_space"):
        top = (r.get(space) or {}).get("top_related")
        if top:
            out.append(f"Most task-related neighbours ({space.replace('_', ' ')}): "
                       + ", ".join(f"`{_md_escape(str(t.get('token')))}`" for t in top[:10]) + ".")
    out += [f"- {s}" for s in description_lines(r.get("summary") or [])]   # the claims: the table
    return out + ([""] if out else [])


def _faithfulness_markdown(f: dict) -> list[str]:
    out = []
    gap = f.get("projection_gap") or {}
    acc = gap.get("accuracy") or {}
    if acc:
        out += ["| condition | accuracy | 95% CI | n |", "|:---|---:|:---:|---:|"]
        for cond, a in acc.items():
            if isinstance(a, dict) and a.get("accuracy") is not None:
                ci = [a.get("ci_low"), a.get("ci_high")]
                out.append(f"| {cond} | {a['accuracy']:.3f} | [{_num(ci[0])}, {_num(ci[1])}] | {a.get('n')} |")
        if gap.get("chance") is not None:
            out.append(f"\nChance {gap['chance']:.3f}; majority class {_num(gap.get('majority'))}.")
    proj = f.get("projection") or {}
    if proj.get("text") is not None:
        out.append(f"Hard projection (nearest tokens as text): `{_md_escape(str(proj['text']))}`")
    rows = f.get("self_description") if isinstance(f.get("self_description"), list) else []
    for q in rows[:3]:
        if isinstance(q, dict):
            soft, none = q.get("soft") or {}, q.get("none") or {}
            out.append(f"Self-description — *{_md_escape(str(q.get('question')))}* → "
                       f"“{_md_escape(str(soft.get('text', '')).strip())}” (no prompt: "
                       f"“{_md_escape(str(none.get('text', '')).strip())}”)")
    return out + ([""] if out else [])


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("`", "ˋ")


def source_line(model: dict[str, Any]) -> str | None:
    """The report header's sentence on which model's vocabulary was read (and what it stands in for)."""
    from .provenance import model_line

    return model_line(model.get("provenance"))


def model_info(vocab: Vocabulary, median_norm: float | None = None, prompts: Sequence[SoftPrompt] = ()
               ) -> dict[str, Any]:
    """The report's ``model`` dict; ``provenance`` (see :func:`analyzer.provenance.model_provenance`) says which
    model's vocabulary was read and whether it stands in for the one the prompts' adapters (or the user) named."""
    from .provenance import vocab_provenance

    info = {"name": vocab.name, "source": vocab.source, "vocab_size": vocab.size, "dim": vocab.dim,
            "tied": bool(vocab.tied), "architecture": vocab.architecture,
            "embed_scale": float(getattr(vocab, "embed_scale", 1.0)),
            "excluded_tokens": int(np.asarray(vocab.excluded).sum()),
            "provenance": vocab_provenance(vocab, prompts)}
    if median_norm is not None:
        info["median_norm"] = float(median_norm)
    return info


def prompt_task(prompt: SoftPrompt) -> str | None:
    """The task a prompt was trained on, when its adapter records it: our trainer writes it to
    ``training_meta.json`` beside the adapter (``{"task": {"name": ...}}``; a multitask run's ``tasks``, read at
    the prompt's ``task_index``)."""
    from .training.config import meta_task_name, read_training_meta

    meta = read_training_meta(prompt.source)
    name = meta_task_name(meta, prompt.task_index)
    if name or meta.get("multitask"):
        return name
    cfg = prompt.config or {}
    for key in ("task", "task_name", "dataset"):
        v = cfg.get(key)
        if isinstance(v, str) and v:
            return v
    meta = cfg.get("softprompt_analyzer") if isinstance(cfg.get("softprompt_analyzer"), dict) else {}
    return meta.get("task") if isinstance(meta.get("task"), str) else None


def prompt_info(p: SoftPrompt) -> dict[str, Any]:
    return {"name": p.name, "source": p.source, "kind": p.kind, "num_virtual_tokens": p.num_virtual_tokens,
            "dim": p.dim, "init": p.init, "init_text": p.init_text, "base_model": p.base_model}


def neighbor_rows(prompt: SoftPrompt, vocab: Vocabulary, index, k: int) -> list[dict[str, Any]]:
    """Per virtual token: index, norm, ratio to the vocabulary's median norm, top-k neighbours."""
    scores, ids = index.kneighbors(prompt.vectors, k)
    norms = np.linalg.norm(prompt.vectors, axis=1)
    rows = []
    for i in range(prompt.num_virtual_tokens):
        rows.append({
            "index": i,
            "norm": float(norms[i]),
            "norm_ratio": float(norms[i] / index.median_norm_) if index.median_norm_ > 0 else None,
            "neighbors": [{"token_id": int(t), "token": vocab.tokens[int(t)], "score": float(s)}
                          for s, t in zip(scores[i], ids[i])],
        })
    return rows


def build_report(prompts: Sequence[SoftPrompt] | SoftPrompt, vocab: Vocabulary, index=None, *, k: int = 10,
                 metric: str = "cosine", include_special: bool = False, task: str | None = None) -> Report:
    """Neighbour report of one or more soft prompts against one vocabulary.

    ``index`` is a fitted ``NeighborIndex`` (built here from ``metric``/``include_special`` when omitted).
    ``task``: the task the prompts are read against (recorded with each prompt; default: the task each adapter
    records, if any).  Every prompt is checked against the vocabulary's dimension first."""
    from .loaders import check_compatible
    from .neighbors import NeighborIndex

    if isinstance(prompts, SoftPrompt):
        prompts = [prompts]
    prompts = list(prompts)
    for p in prompts:
        check_compatible(p, vocab)
    if index is None:
        index = NeighborIndex(metric=metric, k=k, include_special=include_special).fit(vocab)
    out = []
    for p in prompts:
        d = prompt_info(p)
        d["task"] = task or prompt_task(p)
        d["tokens"] = neighbor_rows(p, vocab, index, k)
        out.append(d)
    return Report(model=model_info(vocab, index.median_norm_, prompts), prompts=out,
                  settings={"metric": index.metric, "k": k, "include_special": index.include_special})


def iter_neighbors(report: Report) -> Iterable[tuple[str, int, list[dict]]]:
    for p in report.prompts:
        for t in p["tokens"]:
            yield p["name"], t["index"], t["neighbors"]

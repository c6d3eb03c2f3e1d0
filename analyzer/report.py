"""One ``Report`` object, rendered to table (rich), JSON, Markdown (and HTML, see ``to_html``).

``build_report`` is the single function the CLI, the dashboard and the notebook call to get neighbours of
each virtual token.  The JSON layout is the stable contract other tools rely on:

``{"model": {"name", "source", "vocab_size", "dim", "tied"}, "settings": {...}, "prompts": [{"name",
"source", "kind", "num_virtual_tokens", "dim", "tokens": [{"index", "norm", "norm_ratio", "neighbors":
[{"token_id", "token", "score"}]}]}]}``  (more keys may be added; these keep their meaning)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .types import SoftPrompt, Vocabulary

FORMATS = ("table", "json", "markdown", "html")


@dataclass
class Report:
    """A rendered-anywhere analysis result: ``model`` info, ``settings`` and one dict per prompt."""

    model: dict[str, Any]
    prompts: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "settings": self.settings, "prompts": self.prompts}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def to_markdown(self) -> str:
        m = self.model
        lines = [f"# Soft-prompt report — {m['name']}", "",
                 f"Model `{m['name']}`: vocabulary {m['vocab_size']:,} × {m['dim']}, "
                 f"tied embeddings: {'yes' if m['tied'] else 'no'}. Metric: {self.settings.get('metric')}, "
                 f"k = {self.settings.get('k')}; vocabulary median norm {m.get('median_norm', float('nan')):.3f}.",
                 ""]
        for p in self.prompts:
            lines += [f"## {p['name']}", "",
                      f"`{p['source']}` — {p['kind']}, {p['num_virtual_tokens']} virtual tokens × {p['dim']}"
                      + (f", init {p['init']}" if p.get("init") else ""), "",
                      "| # | norm | × median | neighbours (score) |", "|---:|---:|---:|:---|"]
            for t in p["tokens"]:
                nb = ", ".join(f"`{_md_escape(n['token'])}` {n['score']:.3f}" for n in t["neighbors"])
                lines.append(f"| {t['index']} | {t['norm']:.3f} | {t['norm_ratio']:.2f} | {nb} |")
            lines.append("")
        return "\n".join(lines)

    def to_table(self, width: int = 100) -> str:
        """Rich tables rendered to text, readable in a ``width``-column terminal."""
        from rich.console import Console
        from rich.table import Table

        console = Console(width=width, record=True, file=_NullIO(), force_terminal=False, color_system=None)
        m = self.model
        console.print(f"[bold]{m['name']}[/bold]  vocab {m['vocab_size']:,} × {m['dim']}  tied={m['tied']}  "
                      f"metric={self.settings.get('metric')}  k={self.settings.get('k')}  "
                      f"median norm={m.get('median_norm', float('nan')):.3f}")
        for p in self.prompts:
            t = Table(title=f"{p['name']} ({p['kind']}, {p['num_virtual_tokens']}×{p['dim']})", title_justify="left",
                      expand=False, show_lines=False)
            t.add_column("#", justify="right", no_wrap=True)
            t.add_column("norm", justify="right", no_wrap=True)
            t.add_column("×med", justify="right", no_wrap=True)
            t.add_column("neighbours (score)", overflow="fold")
            for tok in p["tokens"]:
                nb = "  ".join(f"{n['token']}:{n['score']:.2f}" for n in tok["neighbors"])
                t.add_row(str(tok["index"]), f"{tok['norm']:.2f}", f"{tok['norm_ratio']:.2f}", nb)
            console.print(t)
        return console.export_text()

    def to_html(self) -> str:
        import html

        body = html.escape(self.to_markdown())
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.model['name'])}"
                f"</title></head><body><pre>{body}</pre></body></html>")

    def render(self, fmt: str = "table") -> str:
        if fmt not in FORMATS:
            from .exceptions import AnalyzerError

            raise AnalyzerError(f"Expected a format in {list(FORMATS)}; got {fmt!r}.")
        return {"table": self.to_table, "json": self.to_json, "markdown": self.to_markdown,
                "html": self.to_html}[fmt]()


class _NullIO:
    def write(self, s):  # rich needs a file; we only want its recorded export
        return len(s)

    def flush(self):
        pass


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("`", "ˋ")


def model_info(vocab: Vocabulary, median_norm: float | None = None) -> dict[str, Any]:
    info = {"name": vocab.name, "source": vocab.source, "vocab_size": vocab.size, "dim": vocab.dim,
            "tied": bool(vocab.tied), "architecture": vocab.architecture,
            "excluded_tokens": int(np.asarray(vocab.excluded).sum())}
    if median_norm is not None:
        info["median_norm"] = float(median_norm)
    return info


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
                 metric: str = "cosine", include_special: bool = False) -> Report:
    """Neighbour report of one or more soft prompts against one vocabulary.

    ``index`` is a fitted ``NeighborIndex`` (built here from ``metric``/``include_special`` when omitted).
    Every prompt is checked against the vocabulary's dimension first."""
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
        d["tokens"] = neighbor_rows(p, vocab, index, k)
        out.append(d)
    return Report(model=model_info(vocab, index.median_norm_), prompts=out,
                  settings={"metric": index.metric, "k": k, "include_special": index.include_special})


def iter_neighbors(report: Report) -> Iterable[tuple[str, int, list[dict]]]:
    for p in report.prompts:
        for t in p["tokens"]:
            yield p["name"], t["index"], t["neighbors"]

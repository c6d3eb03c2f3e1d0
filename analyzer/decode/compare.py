"""``compare``: which prompts are alike (four similarities) and whether being alike predicts transfer.

Importing this module pulls numpy only; torch is imported inside the functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._params import SEED, Interval, check_params
from ..exceptions import AnalyzerError
from ..provenance import model_line
from ..results import Renderable
from .similarity import MEASURES


@dataclass(frozen=True)
class CompareResult(Renderable):
    """``names`` of the prompts, the task each was trained for (``tasks_of``; None when unrecorded),
    ``similarities`` ``{measure: "p p"}``; with transfer: ``accuracy`` ``"p t"`` on ``tasks``, ``relative``
    ``"p p"`` and ``correlations`` (one row per similarity, :func:`.similarity.similarity_vs_transfer`)."""

    model: str
    names: tuple[str, ...]
    tasks_of: tuple[str | None, ...]
    similarities: Mapping[str, np.ndarray]
    tasks: tuple[str, ...] = ()
    accuracy: np.ndarray | None = None
    relative: np.ndarray | None = None
    correlations: tuple[dict, ...] = ()
    limit: int | None = None
    provenance: dict | None = None

    def summary(self) -> list[str]:
        if not self.correlations:
            return ["Transfer not measured (pass --transfer with prompts that record their tasks)."]
        best = max(self.correlations, key=lambda r: r["rho"])
        out = [f"{MEASURES[r['similarity']]}: Spearman rho {r['rho']:+.2f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}] "
               f"with relative transfer over {r['n_pairs']} prompt pairs (Mantel p={r['p']:.3g}, q={r['q']:.3g})"
               for r in self.correlations]
        if any(r["significant"] for r in self.correlations):
            out.append(f"The best predictor of transfer here is {MEASURES[best['similarity']]} (rho {best['rho']:+.2f}).")
        else:
            out.append("No similarity predicts transfer beyond chance here (every q >= 0.05).")
        return out

    def to_dict(self) -> dict[str, Any]:
        def mat(m):
            return None if m is None else [[float(v) for v in row] for row in np.asarray(m)]

        return {"model": self.model, "model_provenance": self.provenance,
                "prompts": [{"name": n, "task": t} for n, t in zip(self.names, self.tasks_of)],
                "similarities": {k: mat(v) for k, v in self.similarities.items()},
                "transfer": None if self.relative is None else {
                    "tasks": list(self.tasks), "accuracy": mat(self.accuracy), "relative": mat(self.relative),
                    "limit": self.limit,
                    "definition": "relative[i][j] = accuracy of prompt i on the task of prompt j / accuracy of prompt "
                                  "j there, on the same first `limit` test examples"},
                "correlations": list(self.correlations),
                "tests": "Spearman over ordered prompt pairs i != j; one-sided Mantel permutation p (prompt "
                         "identities permuted); bootstrap 95% interval over prompts; Benjamini-Hochberg over the "
                         "similarities"}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def _matrix_lines(self, m: np.ndarray, title: str) -> list[str]:
        head = "| | " + " | ".join(self.names) + " |"
        lines = [f"**{title}**", "", head, "|:---|" + "---:|" * len(self.names)]
        for n, row in zip(self.names, np.asarray(m)):
            lines.append(f"| {n} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
        return lines + [""]

    def to_markdown(self) -> str:
        lines = [f"**Prompt similarity{' and transfer' if self.relative is not None else ''} on {self.model}**", ""]
        if model_line(self.provenance):
            lines += [model_line(self.provenance) + ".", ""]
        for k, m in self.similarities.items():
            lines += self._matrix_lines(m, MEASURES[k])
        if self.relative is not None:
            lines += self._matrix_lines(self.relative, "relative transfer (row on the task of column)")
        return "\n".join(lines + [f"- {s}" for s in self.summary()]) + "\n"

    def to_table(self, width: int = 120) -> str:
        from rich.markup import escape
        from rich.table import Table

        from ..render.text import text_console

        console = text_console(width)
        if model_line(self.provenance):
            console.print(escape(model_line(self.provenance)))
        for k, m in list(self.similarities.items()) + ([("relative", self.relative)] if self.relative is not None
                                                       else []):
            t = Table(title=escape(MEASURES.get(k, "relative transfer (row on the task of column)")),
                      title_justify="left")
            t.add_column("")
            for n in self.names:
                t.add_column(escape(n[:14]), justify="right")
            for n, row in zip(self.names, np.asarray(m)):
                t.add_row(escape(n), *[f"{v:.2f}" for v in row])
            console.print(t)
        for line in self.summary():
            console.print(f"• {escape(line)}")
        return console.export_text()

    def to_html(self) -> str:
        from html import escape

        from ..render.html import page
        from ..plotting import plot_prompt_similarity, plot_transfer

        title = f"Prompt similarity and transfer on {self.model}"
        parts = [f"<h1>{escape(title)}</h1>"]
        if model_line(self.provenance):
            parts.append(f"<p class='source'>{escape(model_line(self.provenance))}.</p>")
        parts.append(plot_prompt_similarity(self.names, self.similarities))
        if self.relative is not None:
            parts.append(plot_transfer(self.names, self.relative, [t or "?" for t in self.tasks_of]))
        parts.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in self.summary()) + "</ul>")
        return page(title, parts)


def compare_prompts(model, tokenizer, prompts: Mapping[str, Any], *, tasks_of: Sequence[Any] | None = None,
                    transfer: bool = True, activation: bool = True, limit: int | None = 200,
                    model_name: str | None = None, n_perm: int = 2000, n_boot: int = 2000, seed: int = 0,
                    progress: Callable[[str], None] | None = None) -> CompareResult:
    """The similarities of ``prompts`` (``{name: SoftPrompt}``; ``activation`` adds ON, which runs the model)
    and, with ``transfer``, every prompt scored on every prompt's task (``tasks_of``: one task per prompt, names or
    ``Task`` objects; default: what each prompt's run records) and each similarity's correlation with it."""
    from ..faithfulness._common import _prompt_matrix
    from ..tasks import get_task
    from .similarity import activation_overlap, prompt_similarity, similarity_vs_transfer, transfer_matrix

    limit, n_perm, n_boot, seed = check_params("compare_prompts", {
        "limit": limit, "n_perm": n_perm, "n_boot": n_boot, "seed": seed}, {
        "limit": [Interval(Integral, 1, None), None], "n_perm": [Interval(Integral, 1, None)],
        "n_boot": [Interval(Integral, 1, None)], "seed": [SEED]}).values()
    names = list(prompts)
    if len(names) < 2:
        raise AnalyzerError(f"compare needs at least 2 prompts; got {len(names)}.")
    say = progress or (lambda msg: None)
    mats = [_prompt_matrix(p, model).numpy() for p in prompts.values()]
    sims = prompt_similarity(mats)
    if activation:
        say(f"activated neurons of {len(names)} prompts")
        sims["activation_overlap"] = activation_overlap(model, mats)
    if tasks_of is None:
        from ..report import prompt_task

        tasks_of = [prompt_task(p) if hasattr(p, "source") else None for p in prompts.values()]
    tnames = tuple(t.name if hasattr(t, "name") else t for t in tasks_of)
    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or "model"
    if not transfer:
        return CompareResult(model=str(name), names=tuple(names), tasks_of=tnames, similarities=sims)
    missing = [n for n, t in zip(names, tnames) if not t]
    if missing:
        raise AnalyzerError(f"Transfer needs the task each prompt was trained for; {', '.join(missing)} record none. "
                            "Pass --tasks with one task per prompt, or --no-transfer.")
    own = {n: (t if hasattr(t, "name") else get_task(t)) for n, t in zip(names, tasks_of)}
    acc, rel, task_names = transfer_matrix(model, tokenizer, dict(zip(names, prompts.values())), own, limit=limit,
                                           model_name=model_name, progress=say)
    corr = similarity_vs_transfer(sims, rel, n_perm=n_perm, n_boot=n_boot, seed=seed) if len(names) >= 4 else []
    return CompareResult(model=str(name), names=tuple(names), tasks_of=tnames, similarities=sims,
                         tasks=tuple(task_names), accuracy=acc, relative=rel, correlations=tuple(corr), limit=limit)


def compare_for_model(model_name: str | None, paths: Sequence[str], *, tasks: Sequence[str] | None = None,
                      progress=None, **kw) -> CompareResult:
    """:func:`compare_prompts` from paths (every prompt of a multitask adapter counts), as ``compare`` runs it."""
    from dataclasses import replace

    from .._progress import loading
    from ..loaders import load_prompts
    from ..models import load_frozen_model, model_for_prompts
    from ..provenance import model_provenance

    prompts: dict[str, Any] = {}
    for path in paths:
        for p in load_prompts(path):
            key = p.name if p.name not in prompts else f"{p.name} ({path})"
            prompts[key] = p
    if tasks is not None and len(tasks) != len(prompts):
        raise AnalyzerError(f"--tasks gives {len(tasks)} tasks for {len(prompts)} prompts; give one per prompt, in "
                            f"order: {', '.join(prompts)}.")
    name = model_for_prompts(list(prompts.values()), model_name)
    with loading(progress, name):
        frozen, tok = load_frozen_model(name)
    res = compare_prompts(frozen, tok, prompts, tasks_of=tasks, model_name=name, progress=progress, **kw)
    return replace(res, provenance=model_provenance(name, list(prompts.values()), what="model"))


__all__ = ["CompareResult", "compare_prompts", "compare_for_model"]

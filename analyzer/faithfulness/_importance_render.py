"""Table, JSON, Markdown and HTML of an :class:`~analyzer.faithfulness.ImportanceResult` (the
renderers read the result's fields and its claim rows; nothing here computes a p-value).

Importing this module pulls numpy only."""

from __future__ import annotations

import json
from typing import Any

from ..provenance import model_line
from ..results import Renderable
from ..stats import format_p

_HEAD = ["#", "nearest token", "removed Δacc", "removed ΔNLL [95% CI]", "nearest ΔNLL [95% CI]",
         "mean ΔNLL [95% CI]", "p", "q", "matters"]

_SHORT = ["#", "nearest", "rm Δacc", "removed ΔNLL [CI]", "nearest ΔNLL [CI]", "mean ΔNLL [CI]", "p", "q",
          "matters"]


def _ci(r) -> str:
    """``+0.123 [+0.05, +0.20]``: a :class:`~._importance_result.ReplacementEffect`'s ΔNLL and its interval."""
    if r is None:
        return "–"
    lo, hi = r.ci_nll
    return f"{r.delta_nll:+.3f} [{lo:+.2f}, {hi:+.2f}]"


def _bare(s: str) -> str:
    """``p=0.031`` → ``0.031``; ``p≤0.005`` → ``≤0.005`` (the column says which)."""
    return s[1:].lstrip("=")


class ImportanceRendering(Renderable):
    """Renderers shared by the importance result (a frozen dataclass; see its fields)."""

    def summary(self) -> list[str]:
        """Plain sentences: which positions matter, and where the projection gap comes from."""
        o, st = self.original, self.settings
        out = [f"The prompt scores accuracy {o.accuracy:.3f} (mean gold-label NLL {o.nll:.3f}) on "
               f"{self.n} {self.split} examples of {self.task}; each position was changed alone on the same "
               f"examples (changed − original)."]
        if self.tests:
            sig = [p.index for p in self.positions if p.significant]
            nl = self.null
            res = (f"null of {nl.size} removals from {nl.pseudo_prompts} matched meaningless prompts on "
                   f"{nl.n_examples} examples; smallest possible p {nl.resolution:.4f}, so at least "
                   f"{nl.min_positions_for_claim} positions must reach it for BH over {len(self.positions)} to pass")
            if sig:
                out.append(f"Removing position{'s' if len(sig) > 1 else ''} {', '.join(map(str, sig))} hurts more "
                           f"than removing a position of a matched meaningless prompt (BH q < {st.get('alpha', 0.05)}; "
                           f"{res}).")
            else:
                out.append(f"No position's removal is distinguishable from removing a position of a matched "
                           f"meaningless prompt ({res}).")
        c = self.projection_curve
        if c:
            n = len(c.order)
            acc = c.accuracy
            half = n // 2
            gap = acc[0] - acc[-1]
            late = acc[half] - acc[-1]
            out.append(f"Projecting every position to its nearest token changes accuracy {acc[0]:.3f} → "
                       f"{acc[-1]:.3f} "
                       f"(gap {gap:+.3f}); the {half} least important positions (ranked by the nearest replacement) "
                       f"cost {acc[0] - acc[half]:+.3f} of it, the other {n - half} {late:+.3f}.")
            band = c.random_band
            j = band.at(half)
            if j is not None:
                out.append(f"In {band.n_orders} random orders, {half} projected positions give accuracy "
                           f"{band.low[j]:.3f}–{band.high[j]:.3f} (percentiles {band.percentiles[0]:g}–"
                           f"{band.percentiles[1]:g}), against {acc[half]:.3f} along the ranked order.")
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def _title(self) -> str:
        return (f"Importance of each position — {self.prompt} on {self.task} ({self.split}, {self.n} examples, "
                f"{self.model})")

    def _rows(self) -> list[list[str]]:
        nn = self.null.size if self.null else None
        rows = []
        for p in self.positions:
            rem = p.removed
            rows.append([str(p.index), p.nearest.token if p.nearest is not None else "–",
                         f"{rem.delta_accuracy:+.3f}" if rem else "–", _ci(rem), _ci(p.nearest), _ci(p.mean),
                         _bare(format_p(p.p, nn, direction="greater")) if p.p is not None else "–",
                         _bare(format_p(p.q, None, "q")) if p.q is not None else "–",
                         "yes" if p.significant else "no" if p.significant is not None else "–"])
        return rows

    def _curve_rows(self) -> list[list[str]]:
        c = self.projection_curve
        if not c:
            return []
        band = c.random_band
        rows = []
        for k, a in zip(c.counts, c.accuracy):
            j = band.at(k)
            rnd = "" if j is None else f"{band.low[j]:.3f}–{band.high[j]:.3f} (median {band.median[j]:.3f})"
            last = str(c.order[k - 1]) if k else "–"
            rows.append([str(k), last, f"{a:.3f}", f"{c.nll[k]:.3f}", rnd])
        return rows

    _CURVE_HEAD = ["projected", "last projected", "accuracy", "NLL", "random orders (band)"]

    def to_markdown(self) -> str:
        def table(head, rows):
            out = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
            return out + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]

        src = [model_line(self.provenance) + ".", ""] if model_line(self.provenance) else []
        lines = [f"# {self._title()}", "", *src, *table(_HEAD, self._rows()), ""]
        if self.projection_curve:
            lines += ["## Partial-projection curve (least important first)", "",
                      *table(self._CURVE_HEAD, self._curve_rows()), ""]
        return "\n".join(lines + [f"- {s}" for s in self.summary()])

    def to_table(self, width: int = 140) -> str:
        from rich.table import Table

        from ..render.text import text_console

        console = text_console(width)
        if model_line(self.provenance):
            from rich.markup import escape

            console.print(escape(model_line(self.provenance)))
        t = Table(title=self._title(), title_justify="left")
        for h in _SHORT:
            t.add_column(h, justify="right", no_wrap=True, min_width=len(h))
        for r in self._rows():
            t.add_row(*r)
        console.print(t)
        if self.projection_curve:
            c = Table(title="Partial-projection curve (least important first)", title_justify="left")
            for h in self._CURVE_HEAD:
                c.add_column(h, justify="right", no_wrap=True)
            for r in self._curve_rows():
                c.add_row(*r)
            console.print(c)
        for line in self.summary():
            console.print(f"• {line}")
        return console.export_text()

    def to_html(self) -> str:
        """A self-contained page: the per-position figure, the projection curve, the tables and the sentences."""
        from html import escape

        from ..render.html import page
        from ..render.tables import source_html
        from ..plotting import plot_importance, plot_projection_curve

        def table(head, rows):
            return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
                    + "</table>")

        src = source_html(self.provenance)
        body: list[Any] = [f"<h1>{escape(self._title())}</h1>", *src, plot_importance(self),
                           table(_HEAD, self._rows())]
        if self.projection_curve:
            body += [plot_projection_curve(self), table(self._CURVE_HEAD, self._curve_rows())]
        body += ["<ul>"] + [f"<li>{escape(s)}</li>" for s in self.summary()] + ["</ul>"]
        return page(self._title(), body)


__all__ = ["ImportanceRendering"]

"""Explore's **Decode** tab: the soft prompt turned into real tokens (PEZ-style, :mod:`analyzer.decode`), one decode
per fluency weight in the background on the model lane, then the decoded texts, how they score beside the soft
prompt, its projection, the instruction and zero-shot, and the accuracy-readability frontier."""

from __future__ import annotations

import streamlit as st

from . import resources
from ._common import Selection
from ._glossary import TERMS
from ._markdown import escape_rows
from ._model_readings import CHART, _glossary, _job, _need_task, _pick_prompt

#: choices of the tab (the CLI's defaults; the tests make them tiny)
FLUENCIES = (0.0, 0.1, 0.3, 1.0, 3.0)
STEPS = (50, 100, 200, 400)
DEFAULT_STEPS = 200
LIMITS = (100, 200)
DEFAULT_LIMIT = 200
SETTINGS: dict = {}


def decode_tab(sel: Selection) -> None:
    from ..plotting import plot_decode_frontier

    if not _need_task(sel, "the decode"):
        return
    name, path, stamp, prompt = _pick_prompt(sel, "dec_prompt")
    c1, c2, c3, c4 = st.columns([3, 1, 2, 2])
    lams = c1.multiselect("Fluency weights λ", list(FLUENCIES), default=[0.0], key="dec_fluency",
                          help=TERMS["fluency weight"])
    length = c2.number_input("Tokens", 1, 100, int(prompt.num_virtual_tokens), key="dec_length")
    steps = c3.select_slider("Steps", STEPS, value=DEFAULT_STEPS, key="dec_steps")
    limit = c4.select_slider("Test examples", LIMITS, value=DEFAULT_LIMIT, key="dec_limit")
    st.caption(f"Runs the frozen model: a hard prompt of {length} real tokens is searched by projected gradient "
               f"descent (PEZ), starting from the nearest tokens of {name}, on the training split of {sel.task}: the "
               "task loss, agreement with the soft prompt's own predictions, and λ × the model's surprise at the "
               "prompt as text. Then the decoded prompt, the soft prompt, its nearest-token projection, the task's "
               f"instruction and zero-shot are scored on the same first {limit} test examples.")
    if not lams:
        st.info("Pick at least one fluency weight.", icon=":material/info:")
        return
    lams = tuple(sorted(float(v) for v in lams))
    key = (sel.model, path, stamp, prompt.name, sel.task, lams, int(length), int(steps), int(limit),
           tuple(sorted(SETTINGS.items())))
    res = _job("decode", key, resources.decoding, label="Decode", button_key="dec_run",
               what=f"Decoding {name} into real tokens",
               note=f"{len(lams)} decode{'s' if len(lams) > 1 else ''} of {steps} steps, about "
                    f"{max(1, round((steps * 2.5 + limit * 5 / 15) / 60))} min each on 2 cores (~2.5 s a step, then "
                    "the scoring); kept on disk, so asking again reads them back.")
    if res is None:
        return
    for r in res.points:
        s, soft = r.scores["decoded"], r.scores["soft"]
        bal = r.balanced_gain_recovered
        gain = ("" if r.gain_recovered is None else f", {r.gain_recovered:.0%} of the soft prompt's gain over "
                "zero-shot" + ("" if bal is None else f"; {bal:.0%} in balanced accuracy, {s.balanced_accuracy:.1%} "
                                                      f"against {soft.balanced_accuracy:.1%}"))
        st.markdown(f"**λ = {r.settings['fluency']:g}** — accuracy {s.accuracy:.1%} (soft prompt {soft.accuracy:.1%}"
                    f"{gain}), agrees with the soft prompt on {r.agreement['rate']:.0%} of the examples, perplexity "
                    f"{_ppl(r.perplexity.get('decoded'))}")
        st.code(r.text, language=None, wrap_lines=True)
    st.plotly_chart(plot_decode_frontier(res, title=f"Accuracy against readability of the decodes of {name}"),
                    key="dec_frontier", config=CHART)
    st.table(escape_rows(_rows(res)), hide_index=True)
    first = res.points[0]
    st.markdown("\n".join(f"- {v.verdict}" for r in res.points for v in r.versus.values()))
    if first.out:
        st.caption(f"Each decode is a PEFT adapter (init TEXT) with its decode.json, in {first.out.rsplit('/', 1)[0]} "
                   "— add it with “Add a prompt (path)” to read it like any prompt.")
    _glossary("fluency weight", "perplexity", "agreement", "gain recovered", "balanced accuracy", "q")


def _ppl(x) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _rows(res) -> list[dict]:
    rows = [{"prompt": f"decoded, λ={p.fluency:g}", "accuracy": f"{p.accuracy:.3f} [{p.ci[0]:.2f}, "
             f"{p.ci[1]:.2f}]", "balanced": f"{p.balanced_accuracy:.3f}", "perplexity": _ppl(p.perplexity), "agreement": f"{p.agreement:.0%}",
             "text": p.text} for p in res.rows()]
    rows += [{"prompt": f"[{k}]", "accuracy": f"{v.accuracy:.3f} [{v.ci[0]:.2f}, {v.ci[1]:.2f}]",
              "balanced": "" if v.balanced_accuracy is None else f"{v.balanced_accuracy:.3f}",
              "perplexity": _ppl(v.perplexity), "agreement": "", "text": ""}
             for k, v in res.references.items()]
    return rows


__all__ = ["decode_tab"]

"""``decode`` on the shipped single-task sample prompts (SmolLM2, the CLI's defaults: as many tokens as the soft
prompt, 200 steps, lambda 0): each decoded prompt as a PEFT adapter in ``sample_prompts/<name>/decoded/`` with its
``decode.json``, a summary in ``sample_prompts/decode.json`` and the Markdown rows of ``sample_prompts/README.md``.
``--frontier NAME`` also sweeps the fluency weight for one prompt into ``artifacts/frontier-NAME/`` (its JSON is
copied to ``sample_prompts/frontier.json`` for the README's figure).

    python scripts/decode_samples.py                                   # every single-task sample, resumable
    python scripts/decode_samples.py --prompts spam-labels --frontier spam-labels --fluencies 0,0.1,0.3,1

A prompt whose ``decoded/decode.json`` exists is read back, not decoded again (``--again`` to redo it); a stopped
decode resumes from its checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "sample_prompts"
MODEL = "smollm2-135m"
SINGLE_TASK = {"spam-labels": "spam", "question-type-text": "question-type", "sentiment-labels": "sentiment",
               "sentiment-random": "sentiment", "sentiment-vocab": "sentiment", "sentiment-labels-100": "sentiment",
               # the transfer study's extra prompts (scripts/train_samples.py EXTRA_SPECS)
               "transfer-study/spam-random": "spam", "transfer-study/question-type-random": "question-type"}


def row(name: str, d: dict) -> str:
    s = d["scores"]
    g = "—" if d["gain_recovered"] is None else f"{d['gain_recovered']:.0%}"
    b = d.get("balanced_gain_recovered")
    gb = "—" if b is None else f"{b:.0%}"
    text = d["text"].replace("|", "\\|").replace("\n", "↵")
    return (f"| {name} | `{text}` | {s['decoded']['accuracy']:.3f} | {s['soft']['accuracy']:.3f} | "
            f"{s['projection']['accuracy']:.3f} | {s['zero-shot']['accuracy']:.3f} | {g} | "
            f"{s['decoded']['balanced_accuracy']:.3f} | {s['soft']['balanced_accuracy']:.3f} | "
            f"{s['zero-shot']['balanced_accuracy']:.3f} | {gb} | "
            f"{d['perplexity']['decoded']:,.0f} | {d['perplexity']['projection']:,.0f} | "
            f"{d['agreement']['rate']:.0%} |")


HEAD = ("| prompt | decoded text | decoded | soft | projection | zero-shot | gain recovered | balanced: decoded | "
        "soft | zero-shot | balanced gain recovered | perplexity | projection perplexity | agreement |\n"
        "|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", default=",".join(SINGLE_TASK))
    ap.add_argument("--frontier", default="", help="a sample prompt whose fluency frontier is swept too")
    ap.add_argument("--fluencies", default="0,0.1,0.3,1")
    ap.add_argument("--again", action="store_true", help="decode prompts that already have decoded/decode.json")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from analyzer.decode import DecodeConfig, decode, decode_frontier
    from analyzer.decode.result import gain_recovered
    from analyzer.loaders import load_prompt, load_vocabulary
    from analyzer.models import load_frozen_model

    model, tok = load_frozen_model(MODEL)
    vocab = load_vocabulary(MODEL)
    say = lambda msg: print(f"  … {msg}", file=sys.stderr, flush=True)     # noqa: E731
    summary_path = SAMPLES / "decode.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {"model": MODEL, "prompts": {}}
    for name in [p for p in a.prompts.split(",") if p]:
        out = SAMPLES / name / "decoded"
        done = (out / "decode.json").is_file()
        if done and not a.again:
            d = json.loads((out / "decode.json").read_text())
            if "balanced_gain_recovered" not in d:            # a decode.json written before the key existed
                d["balanced_gain_recovered"] = gain_recovered(*(d["scores"][k]["balanced_accuracy"]
                                                                for k in ("decoded", "soft", "zero-shot")))
                (out / "decode.json").write_text(json.dumps(d, indent=2, ensure_ascii=False))
        else:
            t = time.perf_counter()
            resume = (out / "decode_checkpoint.safetensors").is_file() and not a.again
            res = decode(model, tok, load_prompt(SAMPLES / name), SINGLE_TASK[name], vocab, DecodeConfig(),
                         out=out, resume=resume, overwrite=a.again, model_name=MODEL, progress=say)
            d = res.to_dict()
            d["out"] = str(out.relative_to(ROOT))              # not this machine's absolute path
            (out / "decode.json").write_text(json.dumps(d, indent=2, ensure_ascii=False))
            print(f"{name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        for f in ("decode_checkpoint.safetensors",):          # the adapter and its JSON stay; the checkpoint goes
            if (out / f).exists():
                (out / f).unlink()
        summary["prompts"][name] = {k: d[k] for k in ("task", "text", "token_ids", "scores", "versus", "agreement",
                                                      "perplexity", "gain_recovered", "balanced_gain_recovered", "trace",
                                                      "settings")}
        summary_path.write_text(json.dumps(summary, indent=1))
        print(row(name, d), flush=True)
    if a.frontier:
        fl = [float(v) for v in a.fluencies.split(",")]
        res = decode_frontier(model, tok, load_prompt(SAMPLES / a.frontier), SINGLE_TASK[a.frontier], vocab,
                              fluencies=fl, out=ROOT / "artifacts" / f"frontier-{a.frontier}", resume=True,
                              model_name=MODEL, progress=say)
        (SAMPLES / "frontier.json").write_text(json.dumps({k: v for k, v in res.to_dict().items() if k != "decodes"},
                                                          indent=1))
        print(res.to_markdown(), flush=True)
    table = "\n".join([HEAD] + [row(name, d) for name, d in summary["prompts"].items()])
    print(table)
    write_readme_section(table)
    return 0


START, END = "<!-- decoded: written by scripts/decode_samples.py -->", "<!-- /decoded -->"


def write_readme_section(table: str) -> None:
    """Put the decoded prompts' table into ``sample_prompts/README.md`` between its markers (appended once)."""
    path = SAMPLES / "README.md"
    text = path.read_text(encoding="utf-8")
    section = (f"{START}\n## Decoded prompts\n\nEach single-task sample decoded into real tokens "
               "(`softprompt-analyzer decode`, SmolLM2, the defaults: as many tokens as the soft prompt, 200 steps, "
               "lambda 0; `scripts/decode_samples.py`), as a PEFT adapter in `<name>/decoded/` with its "
               "`decode.json`. Accuracy on the first 200 test examples, the same for every column; perplexity of "
               "each hard prompt under the frozen model; agreement: the share of examples on which the decoded "
               "prompt predicts what the soft prompt predicts; balanced: mean recall per class, and the gain "
               "recovered in it — on spam (87% ham) the decoded prompts made before class balancing answer 'ham' to "
               "every message, so their gain in accuracy is the majority class and their gain in balanced accuracy "
               "is small; decodes made since weigh each class the same (their settings say class_balanced)."
               f"\n\n{table}\n{END}")
    if START in text and END in text:
        text = text[:text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

"""The training-dynamics reading (``analyzer.dynamics``) of every run folder given, as a Markdown table: positions
whose init token left its top-k, the median leave step, how many came back, and tightness / relatedness / share of
init tokens in the top-k at the first and the last snapshot.

    python scripts/dynamics_table.py sample_prompts/* [--k 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from analyzer import NeighborIndex, load_vocabulary
    from analyzer.dynamics import training_dynamics

    index = NeighborIndex(k=args.k).fit(load_vocabulary(args.model))
    rows, out = [], {}
    for run in args.runs:
        p = Path(run)
        if not (p / "snapshots.safetensors").is_file():
            continue
        s = training_dynamics(p, index, k=args.k).summary()
        out[p.name] = s

        def pair(v, fmt="{:.3f}"):
            return "–" if v is None or None in v else f"{fmt.format(v[0])} → {fmt.format(v[1])}"

        med = "–" if s["median_leave_step"] is None else f"{s['median_leave_step']:.0f}"
        rows.append(f"| `{p.name}` | {s['steps'][1]} ({s['n_snapshots']}) | "
                    f"{s['positions_left']} / {s['positions_with_init_token']} | {med} | "
                    f"{s['positions_returned']} | {pair(s['share_init_in_top_k'], '{:.2f}')} | {pair(s['tightness'])} | "
                    f"{pair(s.get('relatedness'), '{:.2f}')} |")
    print(f"| run | last step (snapshots) | init token left top-{args.k} | median leave step | came back | "
          f"share of init tokens in top-{args.k}, first → last | tightness, first → last | "
          "related share, first → last |")
    print("|:---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

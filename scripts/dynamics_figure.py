"""The README's training-dynamics figure: the dashboard's own plot (``analyzer.plotting.plot_training_dynamics``)
of one run, rendered by headless Chromium to a PNG.

    python scripts/dynamics_figure.py sample_prompts/question-type-text docs/dynamics-question-type.png [--k 5]

Needs Chromium (``apt-get install -y chromium``; ``$CHROMIUM`` names another binary)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WIDTH, HEIGHT = 1120, 640


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("png")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args(argv)
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("error: no Chromium found; install it (apt-get install -y chromium) or set $CHROMIUM", file=sys.stderr)
        return 2
    from analyzer import NeighborIndex, load_vocabulary
    from analyzer.dynamics import training_dynamics
    from analyzer.plotting import plot_training_dynamics

    index = NeighborIndex(k=args.k).fit(load_vocabulary(args.model))
    dyn = training_dynamics(Path(args.run), index, k=args.k)
    fig = plot_training_dynamics(dyn, width=WIDTH, height=HEIGHT, title=f"Training dynamics of {Path(args.run).name}")
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "fig.html"
        fig.write_html(str(html), include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
        out = Path(args.png).resolve()
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={out}", "--virtual-time-budget=5000",
                        html.as_uri()], check=True, capture_output=True, timeout=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

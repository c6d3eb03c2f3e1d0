"""Calibration of compare's claim "similarity S predicts transfer" (Spearman over ordered prompt pairs, one-sided
Mantel permutation p): how often it is made when similarity and transfer are unrelated, and how often it is found
when transfer follows the similarity plus noise.  Synthetic matrices of 9 prompts (the size of the shipped set):
prompts are points in 3 dimensions, a similarity is their Gram matrix; "unrelated" transfer comes from other
points, "planted" transfer is a monotone function of the similarity plus Gaussian noise of the given share of its
spread.  Pure numpy/scipy: no model runs.

    python benchmarks/calibration_compare.py [--trials 400] [--prompts 9]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _gram(rng, p):
    x = rng.normal(size=(p, 3))
    return x @ x.T


def main() -> None:
    from analyzer.decode.similarity import similarity_vs_transfer
    from analyzer.stats import wilson_interval

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--prompts", type=int, default=9)
    ap.add_argument("--perms", type=int, default=499)
    a = ap.parse_args()
    rng = np.random.default_rng(2026)
    cases = {"unrelated": None, "planted, noise 0.5": 0.5, "planted, noise 1": 1.0, "planted, noise 2": 2.0}
    for name, noise in cases.items():
        hits = 0
        for t in range(a.trials):
            sim = _gram(rng, a.prompts)
            if noise is None:
                tr = _gram(rng, a.prompts)
            else:
                tr = sim + noise * sim.std() * rng.normal(size=sim.shape)
            r = similarity_vs_transfer({"s": sim}, tr, n_perm=a.perms, n_boot=1, seed=t)[0]
            hits += r["p"] < 0.05
        lo, hi = wilson_interval(hits, a.trials)
        print(f"{name:22s} claims {hits}/{a.trials} = {hits / a.trials:.3f} [{lo:.3f}, {hi:.3f}]", flush=True)


if __name__ == "__main__":
    main()

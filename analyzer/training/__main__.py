"""``python -m analyzer.training --config run.json`` -- run one training from a JSON TrainConfig.

Meant for launchers: ``torchrun --nproc_per_node 2 -m analyzer.training --config run.json`` (the CLI's
``softprompt-analyzer train`` works under torchrun as well).  Prints one JSON line with the result on rank 0."""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analyzer.training", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="a JSON file (or JSON text) with TrainConfig fields")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    from ..exceptions import AnalyzerError
    from .callbacks import ProgressBar
    from .config import TrainConfig
    from .trainer import train

    text = args.config if args.config.lstrip().startswith("{") else open(args.config, encoding="utf-8").read()
    try:
        config = TrainConfig.from_dict(json.loads(text))
        res = train(config, callbacks=[] if args.quiet else [ProgressBar()])
    except AnalyzerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with resume=true", file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"out": str(res.out), "steps": res.steps, "stopped": res.stopped, "loss": res.loss,
                          "eval_accuracy": res.eval_accuracy, "mean_step_time": res.mean_step_time}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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

    try:
        config = TrainConfig.from_dict(_read_config(args.config))
        res = train(config, callbacks=[] if args.quiet else [ProgressBar()])
    except AnalyzerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with resume=true", file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"out": str(res.out), "steps": res.steps, "stopped": res.stopped, "loss": res.loss,
                          "last_loss": res.last_loss, "eval_accuracy": res.eval_accuracy, "mean_step_time": res.mean_step_time}))
    return 0


def _read_config(arg: str) -> dict:
    """The TrainConfig fields of ``--config``: JSON text (starting with ``{``) or the path of a JSON file."""
    from ..exceptions import TrainingError

    if arg.lstrip().startswith("{"):
        text, where = arg, "The --config text"
    else:
        try:
            with open(arg, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            example = json.dumps({"task": "sentiment", "out": "run"})
            raise TrainingError(f"Cannot read the config file {arg!r}: {why}. Expected a JSON file (or JSON text) "
                                f"with TrainConfig fields, e.g. {example}.") from None
        where = f"The config file {arg}"
    try:
        d = json.loads(text)
    except ValueError as e:
        raise TrainingError(f"{where} is not valid JSON ({e}); expected an object with TrainConfig fields.") from None
    if not isinstance(d, dict):
        raise TrainingError(f"Expected a JSON object with TrainConfig fields in {arg!r}; got a {_json_kind(d)}.")
    return d


def _json_kind(v) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(v), "null")


if __name__ == "__main__":
    raise SystemExit(main())

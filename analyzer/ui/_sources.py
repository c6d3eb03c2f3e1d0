"""Where the dashboard finds prompts and writes its files (no streamlit here).

Environment variables (each also settable in the sidebar where it makes sense):

* ``SOFTPROMPT_ANALYZER_MODEL``    the model to read prompts against (default ``smollm2-135m``);
* ``SOFTPROMPT_ANALYZER_PROMPTS``  the prompt folder (default ``./sample_prompts`` when there is one, else the
  sample prompts shipped with the package);
* ``SOFTPROMPT_ANALYZER_RUNS``     where in-app training writes adapters (default ``<cache>/runs``);
* ``SOFTPROMPT_ANALYZER_SELECT``   comma-separated prompt labels selected on first load (default: the first)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..task_record import find_task_file, recorded_task
from ..training.run_meta import RunMeta

ENV_MODEL = "SOFTPROMPT_ANALYZER_MODEL"
ENV_PROMPTS = "SOFTPROMPT_ANALYZER_PROMPTS"
ENV_RUNS = "SOFTPROMPT_ANALYZER_RUNS"
ENV_SELECT = "SOFTPROMPT_ANALYZER_SELECT"
TENSOR_FILES = (".safetensors", ".npy")
_SKIP_FILES = ("adapter_model.safetensors", "snapshots.safetensors", "checkpoint.safetensors")


def default_model() -> str:
    from ..models import DEFAULT_MODEL

    return os.environ.get(ENV_MODEL) or DEFAULT_MODEL


def default_prompts_dir() -> str:
    """The prompt folder listed at start: $SOFTPROMPT_ANALYZER_PROMPTS, ``./sample_prompts``, or the shipped
    samples (a pip install run from any folder)."""
    env = os.environ.get(ENV_PROMPTS)
    if env:
        return env
    here = Path.cwd() / "sample_prompts"
    if here.is_dir():
        return str(here)
    from ..exceptions import InputFileError
    from ..samples import samples_dir

    try:
        return str(samples_dir())
    except InputFileError:
        return str(here)


def runs_dir() -> Path:
    env = os.environ.get(ENV_RUNS)
    if env:
        p = Path(env).expanduser()
        p.mkdir(parents=True, exist_ok=True)
        return p
    from ..cache import entry_dir

    return entry_dir("runs")


def uploads_dir() -> Path:
    from ..cache import entry_dir

    return entry_dir("uploads")


def default_selection() -> list[str]:
    env = os.environ.get(ENV_SELECT, "")
    return [s.strip() for s in env.split(",") if s.strip()]


def _is_adapter(d: Path) -> bool:
    return (d / "adapter_config.json").is_file()


def discover(folder: str | os.PathLike | None, *, prefix: str = "", depth: int = 2) -> dict[str, str]:
    """``{label: path}`` of the prompts in ``folder``: adapter directories (up to ``depth`` levels down) and
    loose tensor files.  Labels are paths relative to ``folder`` (with ``prefix``), sorted."""
    out: dict[str, str] = {}
    if not folder:
        return out
    root = Path(folder).expanduser()
    if not root.is_dir():
        return out

    def walk(d: Path, level: int) -> None:
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                if _is_adapter(e):
                    out[prefix + e.relative_to(root).as_posix()] = str(e)
                elif level < depth:
                    walk(e, level + 1)
            elif e.suffix.lower() in TENSOR_FILES and e.name not in _SKIP_FILES:
                out[prefix + e.relative_to(root).as_posix()] = str(e)

    if _is_adapter(root):
        out[prefix + root.name] = str(root)
    else:
        walk(root, 1)
    return dict(sorted(out.items()))


def stamp(path: str | os.PathLike) -> tuple:
    """A cheap change marker of a prompt source (for cache keys): mtimes and sizes of its files."""
    p = Path(path)
    try:
        if p.is_dir():
            files = [p / n for n in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin",
                                     "snapshots.safetensors", "training_log.jsonl")]
            return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())
        st = p.stat()
        return ((p.name, st.st_mtime_ns, st.st_size),)
    except OSError:
        return ()


@dataclass(frozen=True)
class RunInfo:
    """What a prompt's directory says about how it was trained (all optional)."""

    task: str | None = None
    init: str | None = None
    steps: int | None = None
    accuracy: float | None = None
    has_snapshots: bool = False
    has_log: bool = False


def run_info(path: str | os.PathLike) -> RunInfo:
    """Read ``training_meta.json`` (written by ``analyzer.training``) and what run files exist."""
    p = Path(path)
    if not p.is_dir():
        return RunInfo()
    meta = RunMeta.load(p)
    task = meta.task_name()
    rec = recorded_task(None, directory=p)
    f = rec.get("file") if rec and rec.get("kind") == "file" and isinstance(rec.get("file"), dict) else None
    if f:   # a task file: its path (where it is found by content), never the built-in task of its name
        found, _ = find_task_file(f, p)
        task = str(found or f.get("path") or f.get("resolved"))
    if meta.multitask and isinstance(meta.tasks, list):   # one prompt per task
        task = ", ".join(str(name) for name in meta.task_names) or None
    init = meta.init_mode
    acc = meta.final_accuracy
    steps = meta.steps_done if meta.steps_done is not None else meta.steps
    return RunInfo(task=str(task) if task else None, init=str(init) if init else None,
                   steps=int(steps) if isinstance(steps, int) else None, accuracy=acc,
                   has_snapshots=(p / "snapshots.safetensors").is_file(), has_log=(p / "training_log.jsonl").is_file())


__all__ = ["default_model", "default_prompts_dir", "runs_dir", "uploads_dir", "default_selection", "discover",
           "stamp", "RunInfo", "run_info"]

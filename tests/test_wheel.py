"""The package as a pip user gets it: ``python -m build`` makes the sdist and, from it, the wheel; the wheel goes
with ``--no-deps`` into a fresh virtual environment that reuses this project's installed dependencies (a ``.pth``
line to the project's site-packages: nothing is downloaded); from a temporary folder outside the checkout the
installed CLI runs ``--version``, ``samples``, ``report``, ``analyze`` on a sample, ``models --install`` and
``app`` until ``/_stcore/health`` answers, and the packaged dashboard script renders with the shipped samples.

Every file under ``analyzer/`` (bar bytecode) and every sample file must be in the wheel; a file left out of the
package data fails here, before any command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from analyzer.samples import FOLDER_FILES, SAMPLE_FILES
from app_helpers import sample_labels

pytestmark = [pytest.mark.wheel, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[1]
SAFETY_S = 300  # only a safety net: every wait below ends on an event (a process exit, a connection)


def checkout_samples(root: Path = ROOT) -> dict[str, Path]:
    """``{name: folder}`` of the checkout's sample_prompts/ (what the wheel must ship, whatever they are): the adapters
    at the top and, one level down, those of a group folder (``transfer-study/spam-random``), as
    ``analyzer.samples.list_samples`` names them."""
    top = root / "sample_prompts"
    found = {}
    for d in sorted(top.iterdir()):
        if (d / "adapter_config.json").is_file():
            found[d.name] = d
        elif d.is_dir():
            found.update({f"{d.name}/{e.name}": e for e in sorted(d.iterdir())
                          if (e / "adapter_config.json").is_file()})
    return dict(sorted(found.items()))


def required_files(root: Path = ROOT) -> set[str]:
    """The paths (as in the wheel) the installed package needs: every file under ``analyzer/`` but bytecode,
    and each sample's shipped files under ``analyzer/sample_prompts/``."""
    need = {p.relative_to(root).as_posix() for p in (root / "analyzer").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    for name, d in checkout_samples(root).items():
        need |= {f"analyzer/sample_prompts/{name}/{n}" for n in SAMPLE_FILES if (d / n).is_file()}
    need |= {f"analyzer/sample_prompts/{n}" for n in FOLDER_FILES if (root / "sample_prompts" / n).is_file()}
    return need


def missing_from_wheel(names, root: Path = ROOT) -> list[str]:
    return sorted(required_files(root) - set(names))


def test_missing_file_check_names_what_the_wheel_lacks():
    """The check the built wheel must pass reports a left-out settings file and a left-out sample."""
    need = required_files()
    sample = f"analyzer/sample_prompts/{next(iter(checkout_samples()))}/adapter_model.safetensors"
    assert "analyzer/ui/_app/.streamlit/config.toml" in need and "analyzer/ui/_app/dashboard.py" in need
    assert sample in need
    lacking = need - {"analyzer/ui/_app/.streamlit/config.toml", sample}
    assert missing_from_wheel(lacking) == [sample, "analyzer/ui/_app/.streamlit/config.toml"]
    assert missing_from_wheel(need) == []


def run(argv, *, cwd, env, timeout=SAFETY_S, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, f"{argv[:4]} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``python -m build`` (no isolation: the installed setuptools builds; nothing is downloaded)."""
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], cwd=ROOT, env=env)
    (wheel,) = out.glob("softprompt_analyzer-*.whl")
    (sdist,) = out.glob("softprompt_analyzer-*.tar.gz")
    return wheel, sdist


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """A fresh venv holding the wheel, seeing the project's dependencies through a .pth line; returns
    ``(bin dir, env, a work folder outside the checkout)``."""
    wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    assert not missing_from_wheel(names), f"missing from the wheel: {missing_from_wheel(names)}"
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=SAFETY_S)
    bindir = venv / "bin"
    py = bindir / "python"
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=venv, env=os.environ.copy()).stdout.strip())
    # the project's site-packages as a plain path: its packages are importable, its .pth files (the editable
    # finder of this checkout) are not run, so `analyzer` can only come from the wheel
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path_factory.mktemp("user")
    assert ROOT not in work.parents
    run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--ignore-installed",
         "--no-cache-dir", "--disable-pip-version-check", str(wheel)], cwd=work, env=env)
    return bindir, env, work


def test_sdist_carries_the_samples_licence_and_changelog(built):
    import tarfile

    _, sdist = built
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= names
    assert {f"sample_prompts/{name}/adapter_model.safetensors" for name in checkout_samples()} <= names
    assert not any("checkpoint.safetensors" in n or "__pycache__" in n for n in names)


def test_installed_package_comes_from_the_wheel_with_one_version(installed, built):
    bindir, env, work = installed
    r = run([str(bindir / "python"), "-c", "import analyzer, importlib.metadata as m; "
             "print(analyzer.__file__); print(m.version('softprompt-analyzer')); print(analyzer.__version__)"],
            cwd=work, env=env)
    where, meta, attr = r.stdout.split()
    assert Path(where).is_relative_to(bindir.parent) and not Path(where).is_relative_to(ROOT)
    assert meta == attr and built[0].name.startswith(f"softprompt_analyzer-{meta}-")
    assert run([str(bindir / "softprompt-analyzer"), "--version"], cwd=work, env=env).stdout.strip() == \
        f"softprompt-analyzer {meta}"


def test_installed_cli_samples_report_analyze(installed):
    bindir, env, work = installed
    cli = str(bindir / "softprompt-analyzer")
    r = run([cli, "samples", "my-samples"], cwd=work, env=env)
    checkout = checkout_samples()
    assert f"wrote {len(checkout)} sample prompts" in r.stdout
    for n in FOLDER_FILES:
        if (ROOT / "sample_prompts" / n).is_file():
            assert (work / "my-samples" / n).read_bytes() == (ROOT / "sample_prompts" / n).read_bytes()
    for name, d in checkout.items():  # what the checkout's sample_prompts/ held when the wheel was built, byte for byte
        for n in SAMPLE_FILES:
            if (d / n).is_file():
                assert (work / "my-samples" / name / n).read_bytes() == (d / n).read_bytes()
    again = run([cli, "samples", "my-samples"], cwd=work, env=env, check=False)
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr

    sample = f"my-samples/{sample_labels()[0]}"         # a SmolLM2 sample: the embedded model reads it
    report = json.loads(run([cli, "report", sample, "-k", "3", "--format", "json"], cwd=work, env=env).stdout)
    n_virtual = json.loads((work / sample / "adapter_config.json").read_text())["num_virtual_tokens"]
    assert len(report["prompts"][0]["tokens"]) == n_virtual
    assert all(len(t["neighbors"]) == 3 for t in report["prompts"][0]["tokens"])

    analysis = json.loads(run([cli, "analyze", sample, "--format", "json", "--quiet"], cwd=work, env=env).stdout)
    claims = analysis["prompts"][0]["tests"]
    assert claims and {"measure", "p", "q", "verdict"} <= set(claims[0])

    # the data and model packages are seen (reused from the project), so there is nothing to install
    r = run([cli, "models", "--install"], cwd=work, env=env)
    assert "already installed" in r.stdout and "Will install" not in r.stdout


def test_installed_app_serves_and_renders_the_shipped_samples(installed, tmp_path):
    """`softprompt-analyzer app` from the wheel, in a folder with no sample_prompts/: the server answers its
    health check (the CLI opens the browser, here a script that reports the URL, only then), stops on SIGTERM;
    the packaged entry script renders the page listing the shipped samples."""
    from serving import serve_then_stop

    bindir, env, work = installed
    app_env = {k: v for k, v in env.items() if k != "SOFTPROMPT_ANALYZER_PROMPTS"}
    serve_then_stop([str(bindir / "softprompt-analyzer"), "app"], env=app_env, workdir=tmp_path, cwd=work,
                    safety_s=SAFETY_S)

    script = ("import json, analyzer.ui.launch as l\n"
              "from streamlit.testing.v1 import AppTest\n"
              # the page's first metrics may still be computing at the end: the exit waits for them (exit 0)
              "at = AppTest.from_file(str(l.app_path()), default_timeout=600).run()\n"
              "print(json.dumps({'exceptions': [e.value for e in at.exception], 'errors': [e.value for e in at.error],"
              " 'options': list(at.sidebar.multiselect(key='prompt').options),"
              " 'folder': at.sidebar.text_input(key='prompt_folder').value}))\n")
    page = json.loads(run([str(bindir / "python"), "-c", script], cwd=work, env=app_env).stdout.splitlines()[-1])
    assert not page["exceptions"] and not page["errors"], page
    assert Path(page["folder"]).is_relative_to(bindir.parent)  # the shipped samples, inside the venv
    # every shipped sample of the default model's width (the others are set apart by width: Gemma's, Qwen's)
    assert set(page["options"]) == set(sample_labels()) and set(page["options"]) <= set(checkout_samples())

"""The package against its map (docs/explanation/architecture.md): every module named there exists and every module is named;
no module over 500 lines; module-level imports form no cycle; computation never imports a renderer, a figure or
the dashboard; streamlit only in ``ui/``; no p-value made outside the statistics layer.  Static (ast), no import
of the package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app_helpers import ROOT

PKG = ROOT / "analyzer"
MAP = ROOT / "docs" / "explanation" / "architecture.md"
MAX_LINES = 500
#: modules that draw or print results, or are the dashboard: the only ones that may import render/plotting/ui
SURFACES = ("render/", "plotting/", "ui/", "cli.py", "__main__.py", "_cli_args.py", "_cli_types.py", "_format.py", "_progress.py")


def _modules() -> dict[str, Path]:
    return {p.relative_to(PKG).as_posix(): p for p in sorted(PKG.rglob("*.py"))}


def _dotted(rel: str) -> str:
    parts = ["analyzer", *rel[:-3].split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(rel: str, path: Path) -> set[str]:
    """The analyzer modules ``rel`` imports when it is imported (top-level statements, not inside functions or
    ``if TYPE_CHECKING:``), as dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    known = {_dotted(r) for r in _modules()}
    here = _dotted(rel).split(".")
    package = here if rel.endswith("__init__.py") else here[:-1]
    out = set()

    def visit(stmts):
        for node in stmts:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for h in getattr(node, "handlers", []):
                    visit(h.body)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("analyzer"))
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                mod = ".".join(base + (node.module.split(".") if node.module else []))
                if mod.startswith("analyzer"):
                    subs = {f"{mod}.{a.name}" for a in node.names} & known
                    out.update(subs)
                    if len(subs) < len(node.names):      # a name defined by the module itself, not a submodule
                        out.add(mod)
    visit(tree.body)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = {_dotted(r): r for r in mods}
    return {_dotted(r): {m for m in _module_level_imports(r, p) if m in known and m != _dotted(r)}
            for r, p in mods.items()}


def test_the_map_names_every_module_and_only_modules_that_exist():
    named = set(re.findall(r"^\| `([\w/]+\.py)` \|", MAP.read_text(encoding="utf-8"), flags=re.M))
    have = set(_modules())
    assert not have - named, f"modules missing from docs/explanation/architecture.md: {sorted(have - named)}"
    assert not named - have, f"docs/explanation/architecture.md names modules that do not exist: {sorted(named - have)}"


def test_no_module_over_500_lines():
    long = {r: n for r, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these by job (DESIGN.md: rooms of one job): {long}"


def test_module_level_imports_form_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                dfs(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m)


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    # the checker itself: two modules importing each other at module level are reported
    pkg = tmp_path / "analyzer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("from . import a\nx = 1\n")
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    try:
        test_module_level_imports_form_no_cycle()
    except AssertionError as e:
        assert "analyzer.a" in str(e) and "analyzer.b" in str(e)
    else:
        raise AssertionError("the cycle a -> b -> a was not found")


def test_computation_never_imports_a_surface_and_only_ui_imports_streamlit():
    bad, streamlit = [], []
    for rel, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if not rel.startswith("ui/") and re.search(r"^\s*(import streamlit|from streamlit)", text, flags=re.M):
            streamlit.append(rel)
        if rel.startswith(SURFACES) or rel == "__init__.py":
            continue
        surf = [m for m in _module_level_imports(rel, path)
                if m.startswith(("analyzer.render", "analyzer.plotting", "analyzer.ui", "analyzer.cli"))]
        if surf:
            bad.append((rel, sorted(surf)))
    assert not streamlit, f"streamlit imported outside ui/: {streamlit}"
    assert not bad, f"computation imports a renderer, figure or the dashboard at import time: {bad}"


def test_no_p_value_is_made_outside_the_statistics_layer():
    # a p-value is made with scipy.stats' tests or by counting a null at or beyond a value; both only in stats/
    pattern = re.compile(r"from scipy\.stats import|scipy\.stats\.\w+\(|\(1(\.0)? \+ (np\.)?(sum|count_nonzero)\(")
    found = [rel for rel, p in _modules().items()
             if not rel.startswith("stats/") and pattern.search(re.sub(r'"""[\s\S]*?"""', "", p.read_text("utf-8")))]
    assert not found, f"p-values (or scipy.stats tests) outside analyzer/stats/: {found}"


def test_every_subpackage_is_in_the_wheels_package_list():
    # pyproject.toml lists the packages by hand (sample_prompts/ maps to package data); a new subpackage missing
    # there is missing from the wheel (tests/test_wheel.py finds it too, minutes later)
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    have = {_dotted(r) for r in _modules() if r.endswith("__init__.py")}
    assert not have - listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(have - listed)}"

"""The project's set-up contracts: declared dependencies, CI entry point, README, Makefile."""

import ast
import importlib.metadata as md
import os
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["swarm", "topologies", "scenarios", "reports"]


def _declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def _imports(paths, top_level_only: bool = False) -> set[str]:
    """Top-level package names imported by ``paths`` (only module-level statements if asked:
    an import inside a function is an optional dependency, loaded on use)."""
    found = set()
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        nodes = tree.body if top_level_only else ast.walk(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def _undeclared(files, declared, top_level_only: bool = False) -> set[str]:
    dist_of = md.packages_distributions()
    local = set(PACKAGES) | {"tests", "benchmarks", "run_learning_tests"}
    missing = set()
    for mod in _imports(files, top_level_only):
        if mod in sys.stdlib_module_names or mod in local or mod == "__future__":
            continue
        dists = {d.lower().replace("_", "-") for d in dist_of.get(mod, [mod])}
        if not dists & declared:
            missing.add(mod)
    return missing


def test_package_code_imports_only_declared_runtime_dependencies():
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    assert files
    assert _undeclared(files, _declared(), top_level_only=True) == set()
    # imported on use (inside a function): an optional dependency, declared in the dev extra
    assert _undeclared(files, _declared("dev")) == set()


def test_tests_and_benchmarks_import_only_declared_dependencies():
    files = list((ROOT / "tests").rglob("*.py")) + list((ROOT / "benchmarks").rglob("*.py"))
    assert _undeclared(files, _declared("dev")) == set()


def test_pyproject_names_the_distribution_and_packages():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["name"] == "reasoningbank-swarm"
    assert data["project"]["requires-python"] == ">=3.11"
    for pkg in PACKAGES:
        assert (ROOT / pkg / "__init__.py").is_file()


def test_ci_entry_point_runs_make_test_and_fails_with_it():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    text = ci.read_text()
    assert "make test" in text and "set -e" in text


def test_makefile_has_the_three_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("test:", "bench:", "run:"):
        assert re.search(rf"^{target}", text, re.M), target


def test_make_test_runs_the_lint_gates_first():
    """CI runs ``make test``: it must run ruff, mypy and the layer contract, not only pytest."""
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: lint\b", text, re.M)
    lint = text.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for tool in ("ruff check", "mypy", "lint-imports"):
        assert tool in lint, tool
    pyproject = (ROOT / "pyproject.toml").read_text()
    for section in ("[tool.ruff", "[tool.mypy]", "[tool.importlinter]"):
        assert section in pyproject, section


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text()[:1500]
    assert "make run" in head and "make test" in head

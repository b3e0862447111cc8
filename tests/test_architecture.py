"""The shape the design fixes: a pure core, LMDB only in the store, lint and types clean."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SHELL_LIBRARIES = {"flask", "werkzeug", "requests", "click", "h11"}
OUR_SHELLS = {"validator", "cli", "federation"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "tchain").glob("*.py")), ids=lambda p: p.name)
def test_core_does_no_io_but_the_store(path):
    modules = imported_modules(path)
    assert not modules & (SHELL_LIBRARIES | OUR_SHELLS), f"{path.name} imports the shell"
    if path.name != "store.py":
        assert "lmdb" not in modules, f"{path.name} touches LMDB; only store.py may"


@pytest.mark.parametrize("path", sorted((ROOT / "federation").glob("*.py")),
                         ids=lambda p: p.name)
def test_federation_depends_only_on_the_core(path):
    assert not imported_modules(path) & {"validator", "cli", "lmdb"}


def _tool(name: str) -> list[str]:
    """Run a tool of the test extra from this interpreter's environment (a virtual
    environment that is not activated has its tools off PATH)."""
    if importlib.util.find_spec(name) is None:
        pytest.fail(f"{name} is not installed; it is in the test extra")
    return [sys.executable, "-m", name]


def test_ruff_is_clean():
    result = subprocess.run([*_tool("ruff"), "check", str(ROOT)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout


def test_core_is_strictly_typed():
    result = subprocess.run([*_tool("mypy")], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stdout

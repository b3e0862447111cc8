"""The shape the design fixes: a pure core that never touches the store, no import cycles,
lint and types clean."""

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


# What the core may never import: LMDB and the store, and every shell, ours or a library.
FORBIDDEN_IN_CORE = {"lmdb"} | SHELL_LIBRARIES | OUR_SHELLS
OUR_PACKAGES = ("tchain", "validator", "cli", "federation")


@pytest.mark.parametrize("path", sorted((ROOT / "tchain").rglob("*.py")), ids=lambda p: p.name)
def test_core_does_no_io(path):
    modules = imported_modules(path)
    assert not modules & FORBIDDEN_IN_CORE, \
        f"{path.name} imports {sorted(modules & FORBIDDEN_IN_CORE)}: the core decides, the " \
        "shell (validator/, cli/) does I/O and holds the store"
    assert not (ROOT / "tchain" / "store.py").exists(), "the store belongs to validator/"


def module_names() -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its ``__init__``)."""
    out = {}
    for package in OUR_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ours that module ``name`` imports, wherever in it (a function's import
    too): ``from a.b import c`` names ``a.b.c`` if that is a module, else ``a.b``. A package's
    own ``__init__`` is not counted as imported by its submodules (Python runs it first, but
    it is no arrow of ours)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def ours(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(ours(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            found.update(ours(f"{base}.{alias.name}") if f"{base}.{alias.name}" in known
                         else ours(base) for alias in node.names)
    return {m for m in found if m is not None and m != name}


def import_graph() -> dict[str, set[str]]:
    known = module_names()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as the path round it (first module repeated at the end),
    or None if there is none."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(sorted(graph[start])))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, arrows = stack[-1]
            nxt = next(arrows, None)
            if nxt is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif nxt in on_path:
                return [*path[path.index(nxt):], nxt]
            elif nxt not in done:
                stack.append((nxt, iter(sorted(graph[nxt]))))
                path.append(nxt)
                on_path.add(nxt)
    return None


def test_the_import_graph_finds_a_cycle_it_is_given():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    graph = import_graph()
    assert "validator.store" in graph["validator.ledger"]  # the graph sees real arrows
    assert "validator.bank" in graph["validator.serving.sender_process"]


def test_no_import_cycle_among_our_packages():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


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


def test_every_package_is_strictly_typed():
    result = subprocess.run([*_tool("mypy")], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stdout


# The one module that may set a flow's state (tchain/flow_states.py: the transition table).
FLOW_TABLE = ROOT / "tchain" / "flow_states.py"
FLOW_STATE_VALUES = {"pending", "accepted", "awaiting_peer", "settled", "released", "defaulted"}


def flow_state_writes(path: Path) -> list[str]:
    """Where a module sets a flow's state by hand: ``["state"] = ...`` anywhere; ``state=`` to
    replace, update or a Flow; and ``state=``, ``"state": ...`` or ``.state = ...`` with a
    flow state's name or value (``"settled"``, ``FlowState.SETTLED``)."""
    def flow_state(value: ast.expr) -> bool:
        return (isinstance(value, ast.Constant) and value.value in FLOW_STATE_VALUES) or \
            "FlowState" in ast.unparse(value)

    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func).rpartition(".")[2]
            found += [ast.unparse(node) for kw in node.keywords if kw.arg == "state" and (
                flow_state(kw.value) or called in ("replace", "update", "Flow"))]
        elif isinstance(node, ast.Dict):
            found += [ast.unparse(node) for key, value in zip(node.keys, node.values,
                                                              strict=True)
                      if isinstance(key, ast.Constant) and key.value == "state"
                      and flow_state(value)]
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            for target in targets:
                by_key = isinstance(target, ast.Subscript) and \
                    isinstance(target.slice, ast.Constant) and target.slice.value == "state"
                by_attribute = isinstance(target, ast.Attribute) and target.attr == "state" \
                    and value is not None and flow_state(value)
                if by_key or by_attribute:
                    found.append(ast.unparse(node))
    return found


def test_only_the_flow_table_sets_a_flow_state():
    writes = [f"{path.relative_to(ROOT)}: {write}" for package in OUR_PACKAGES
              for path in sorted((ROOT / package).rglob("*.py")) if path != FLOW_TABLE
              for write in flow_state_writes(path)]
    assert not writes, "a flow's state changes only through tchain/flow_states.py " \
        f"(Flow.moved and its table): {writes}"


@pytest.mark.parametrize("line", [
    'flow["state"] = "settled"',
    "flow.update(state=record_state)",
    "put_record(w, 'flows', i, {'type': 'transfer', 'state': 'pending'})",
    "flow = dataclasses.replace(flow, state=FlowState.SETTLED)",
    "flow.state = FlowState.RELEASED",
])
def test_the_flow_state_check_sees_a_write(tmp_path, line):
    module = tmp_path / "module.py"
    module.write_text(line + "\n", "utf-8")
    assert flow_state_writes(module), line
    module.write_text("chain.state = state.advance(entry)\nok = flow['state'] == 'open'\n",
                      "utf-8")
    assert not flow_state_writes(module)

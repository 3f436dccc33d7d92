"""The code's layout (issue 17): lib/ in stage sub-packages, free of Dagster, with no import circle.

Read from the sources with `ast` (nothing is imported), so the test takes milliseconds. Imports inside
functions count too: a lazy import hides a circle from the interpreter, not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "nexus_assets" / "lib"
STAGES = {"ingest", "index", "publish", "distribution", "aws", "core"}
FORBIDDEN = ("dagster", "dagster_", "nexus_assets.defs", "nexus_assets.cli", "nexus_assets.definitions")


def _module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(LIB.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every module name `path` imports, `from package import module` resolved to the module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the project imports by absolute name)"
            base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def lib_import_graph() -> dict[str, set[str]]:
    """lib module -> the lib modules it imports (packages' __init__ excluded: they import nothing)."""
    sources = _sources()
    modules = {name for name, path in sources.items() if path.name != "__init__.py"}
    return {name: {m for m in _imports(sources[name]) if m in modules and m != name} for name in sorted(modules)}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_lib_is_in_stage_subpackages_each_described():
    loose = sorted(p.name for p in LIB.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules directly under lib/ (put each in a stage sub-package): {loose}"
    packages = {p.name for p in LIB.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == STAGES
    for package in sorted(packages):
        doc = ast.get_docstring(ast.parse((LIB / package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, f"lib/{package}/__init__.py: say in its docstring what lives there"


def test_lib_never_imports_dagster_or_defs():
    offenders = {
        name: sorted(m for m in _imports(path) if m.startswith(FORBIDDEN)) for name, path in _sources().items()
    }
    assert not {name: found for name, found in offenders.items() if found}


def test_lib_import_graph_is_acyclic():
    graph = lib_import_graph()
    assert len(graph) >= 40  # the walk found the modules (a wrong root would pass vacuously)
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph) or [])}"


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_tests_import_helpers_not_other_tests():
    """Shared test helpers live in support/; a test file importing another couples their order."""
    tests = Path(__file__).resolve().parent
    helpers = sorted(p.name for p in tests.glob("*.py") if not p.name.startswith("test_"))
    assert helpers == ["__init__.py", "conftest.py"], f"helpers beside the tests: {helpers}; move them to support/"
    for path in sorted(tests.glob("*.py")):
        for name in _imports(path):
            if name.startswith("nexus_assets_tests."):
                target = name.split(".")[1]
                if target.startswith("test_") or target == "conftest":
                    pytest.fail(f"{path.name} imports {name}: move the helper to nexus_assets_tests/support/")

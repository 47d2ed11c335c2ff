"""The library and the applications built on it are separate layers.

Library code (everything under ``crossmodal`` except ``crossmodal.apps``, plus the
``encoders/`` and ``data/`` folders installed as ``crossmodal.encoders`` and
``crossmodal.data``) never imports an application module, not even inside a function;
and the library's module-level imports form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"crossmodal": REPO / "crossmodal", "crossmodal.encoders": REPO / "encoders",
         "crossmodal.data": REPO / "data"}  # fmt: skip


def _module_name(root: str, folder: Path, path: Path) -> str:
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([root, *parts])


def _library_modules() -> dict[str, Path]:
    modules = {}
    for root, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            name = _module_name(root, folder, path)
            # ``python -m crossmodal`` is the CLI's entry point: an app, not library.
            if not name.startswith("crossmodal.apps") and name != "crossmodal.__main__":
                modules[name] = path
    return modules


def _imports(path: Path, module: str, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("crossmodal")}


def test_library_never_imports_the_apps() -> None:
    offenders = {
        module: sorted(n for n in _imports(path, module, top_level_only=False) if n.startswith("crossmodal.apps"))
        for module, path in _library_modules().items()
    }  # fmt: skip
    offenders = {m: names for m, names in offenders.items() if names}
    assert offenders == {}


def test_library_has_no_import_cycles() -> None:
    modules = _library_modules()
    graph = {
        module: {n for n in _imports(path, module, top_level_only=True) if n in modules and n != module}
        for module, path in modules.items()
    }  # fmt: skip
    # A package's __init__ importing its own submodules is not a cycle in the sense that
    # matters (it is how packages re-export); drop edges from a submodule to its parents.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("name", ["fcntl", "argparse"])
def test_library_modules_stay_portable_and_cli_free(name: str) -> None:
    """POSIX-only locking and command-line parsing belong to apps, except where named."""
    allowed = {"fcntl": {"crossmodal.retrieval.lock"}, "argparse": set()}[name]
    users = set()
    for module, path in _library_modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == name for a in node.names):
                users.add(module)
    assert users <= allowed, sorted(users - allowed)

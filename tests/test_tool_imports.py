"""The tool packages stand alone: none imports another, and none has an import circle.

The tools (`make dev`'s runtime, the local SQS, the operator commands, the
benchmarks, the load test) run beside the product, never in Lambda. Each may import
the product (the layer, the functions), third-party packages and `toolkit/`, the
library they share; none imports another tool, so each can be read, changed or
replaced alone (issue 26 replaces the HTTP server under two of them). A tool reaches
another only across a process: the runtime starts local_queue with
`python -m local_queue` and speaks SQS to it.

The test suite is not a tool: it imports the tools to test them, so no tool (nor
the library) imports the suite; what a tool borrowed from its helpers (the embedded
PostgreSQL, a scratch database, Lambda's events) lives in `toolkit/`.

Read from the source with `ast`, so an import inside a function counts as much as
one at the top of a module, and nothing is imported to find out.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("local_runtime", "local_queue", "tools", "benchmarks", "loadtest")
LIBRARY = "toolkit"  # shared by the tools; a library, so it imports none of them
SUITE = "tests"  # imports the tools; read only so that an import of it is seen


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: Collection[str]) -> set[str]:
    """The `modules` that `path` imports, wherever the import statement is.

    `from package import module` counts as importing the module, not the package's
    `__init__` (Python runs that first whatever is imported from the package).
    """
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            submodules = {f"{base}.{alias.name}" for alias in node.names}
            names.update(submodules)
            if not submodules <= set(modules):
                names.add(base)
    return names & set(modules)


def graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the modules of `packages` it imports."""
    modules = {
        module_name(path): path
        for package in packages
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }
    return {name: imported(path, modules) for name, path in modules.items()}


def top(module: str) -> str:
    return module.partition(".")[0]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `edges`, one path each (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


EDGES = graph((*TOOLS, LIBRARY, SUITE))


def test_the_graph_is_read():
    # Given the known imports, when the graph is read, then they are in it (the test sees)
    assert "local_runtime.template" in EDGES["local_runtime.runtime"]
    assert "local_queue.service" in EDGES["local_queue.server"]


@pytest.mark.parametrize("package", TOOLS)
def test_no_tool_imports_another(package):
    crossings = sorted(
        f"{module} imports {target}"
        for module, targets in EDGES.items()
        if top(module) == package
        for target in targets
        if top(target) != package and top(target) != LIBRARY
    )

    assert crossings == []


@pytest.mark.parametrize("package", (*TOOLS, LIBRARY))
def test_no_tool_imports_the_tests(package):
    crossings = sorted(
        f"{module} imports {target}"
        for module, targets in EDGES.items()
        if top(module) == package
        for target in targets
        if top(target) == SUITE
    )

    assert crossings == []


def test_the_library_imports_no_tool():
    crossings = sorted(
        f"{module} imports {target}"
        for module, targets in EDGES.items()
        if top(module) == LIBRARY
        for target in targets
        if top(target) != LIBRARY
    )

    assert crossings == []


@pytest.mark.parametrize("package", (*TOOLS, LIBRARY))
def test_no_import_circles(package):
    inside = {
        module: {t for t in targets if top(t) == package}
        for module, targets in EDGES.items()
        if top(module) == package
    }

    assert circles(inside) == []


def test_circles_are_found():
    # The finder itself: a circle of three and a self-import are found, a chain is not.
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"a"}}) == [["a"]]
    assert circles({"a": {"b"}, "b": set()}) == []

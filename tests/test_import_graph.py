"""The import graph, read from the source (ast): the layer's flows stay visible and apart.

The layer (layers/sluice) is split by flow: intake -> queue -> store; accounts ->
email; manage; rollups; retention; schema. Each sub-package imports the core and only
what its flow receives, as declared in FLOWS: adding an edge is a change to this file,
made on purpose and reviewed. Every import counts, those inside functions too (a lazy
import hides a circle; it does not remove it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER = "sluice"
# What each unit of the layer may import besides itself and sluice.core.
FLOWS: dict[str, set[str]] = {
    "sluice.core": set(),
    # The message that crosses the events queue: what ingest writes and the store reads.
    "sluice.queued_events": set(),
    "sluice.intake": {"sluice.queued_events"},
    "sluice.store": {"sluice.queued_events"},
    "sluice.accounts": set(),
    # The email requests accounts queue (accounts.email_queue), and the accounts and
    # challenges rows, which accounts_data owns (read and set with the email role's columns).
    "sluice.email": {"sluice.accounts"},
    # Rules are checked as ingest checks them (validation), keys made as ingest reads
    # them (keys, catalog_data), event ids read (event_ids); stats read from the
    # rollups; operators name an account by its address (accounts); events read with
    # the columns of the table the store owns (store.events_table).
    "sluice.manage": {"sluice.intake", "sluice.rollups", "sluice.accounts", "sluice.store"},
    "sluice.rollups": set(),
    # How long ingest answers for a queued event (intake.event_ids.QUEUED_HORIZON) and
    # the longest rate-limit window (accounts.limits) bound what may be forgotten; the
    # archive's lines hold the columns of the table the store owns (store.events_table).
    "sluice.retention": {"sluice.intake", "sluice.accounts", "sluice.store"},
    "sluice.schema": set(),
}
# The repository's other packages, read so that a circle through them is found too;
# that each stands alone is tests/test_tool_imports.py's to check.
OTHER_PACKAGES = ("local_runtime", "local_queue", "tools", "toolkit", "benchmarks", "loadtest")


def _module_name(path: Path) -> str:
    relative = path.relative_to(REPO_ROOT)
    if relative.parts[0] == "layers":
        relative = relative.relative_to("layers")
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    roots = [REPO_ROOT / "layers" / LAYER, REPO_ROOT / "functions"]
    roots += [REPO_ROOT / name for name in OTHER_PACKAGES]
    return {
        _module_name(path): path
        for root in roots
        for path in root.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def _imports(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The repository modules `name` imports, anywhere in its file."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module; `from module import name`, it.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # The longest known module the name points into (a module, or its package).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    return {name: _imports(name, path, sources) for name, path in sources.items()}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one member (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def unit(module: str) -> str:
    """sluice.intake.ingest -> sluice.intake; a top-level module is its own unit."""
    parts = module.split(".")
    return ".".join(parts[:2])


def unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module.split(".")[0] != LAYER or module == LAYER:
            continue
        edges = units.setdefault(unit(module), set())
        edges.update(
            unit(t) for t in targets if t.split(".")[0] == LAYER and unit(t) != unit(module)
        )
    return units


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_is_read(graph):
    # The reader finds what it should, or every other test here passes for nothing.
    assert "sluice.core.config" in graph["sluice.intake.ingest"]
    assert "sluice.intake.event_ids" in graph["sluice.manage.manage"]  # from a package import
    assert {"sluice.rollups.aggregate", "tools.cli"} <= graph["tools.aggregate"]
    assert "functions.ingest.app" in graph


def test_no_import_circles_in_the_layer(graph):
    layer = {m: t for m, t in graph.items() if m.split(".")[0] == LAYER}
    assert circles(layer) == []


def test_no_import_circles_anywhere(graph):
    assert circles(graph) == []


def test_every_unit_of_the_layer_is_declared(graph):
    assert set(unit_graph(graph)) == set(FLOWS)


def test_the_layers_units_import_only_the_core_and_what_their_flow_receives(graph):
    unexpected = {
        source: sorted(targets - FLOWS.get(source, set()) - {"sluice.core"})
        for source, targets in unit_graph(graph).items()
    }
    assert {source: targets for source, targets in unexpected.items() if targets} == {}


def test_the_core_imports_nothing_else_of_the_layer(graph):
    assert unit_graph(graph)["sluice.core"] == set()


def test_no_circles_between_the_layers_units(graph):
    assert circles(unit_graph(graph)) == []


def test_the_layer_imports_nothing_of_the_repository_outside_it(graph):
    outside = {
        module: sorted(t for t in targets if t.split(".")[0] != LAYER)
        for module, targets in graph.items()
        if module.split(".")[0] == LAYER
    }
    assert {m: t for m, t in outside.items() if t} == {}


def test_functions_import_the_layer_and_their_own_folder_only(graph):
    wrong = {
        module: sorted(
            t
            for t in targets
            if t.split(".")[0] != LAYER and not t.startswith(module.rpartition(".")[0] + ".")
        )
        for module, targets in graph.items()
        if module.startswith("functions.")
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_operator_commands_are_not_in_the_layer():
    """What ships to Lambda holds no command line: `main()` and argparse live in tools/."""
    with_main = [
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "layers" / LAYER).rglob("*.py")
        if any(
            isinstance(node, ast.FunctionDef) and node.name == "main"
            for node in ast.parse(path.read_text()).body
        )
        or "argparse" in _imports(_module_name(path), path, ["argparse"])
    ]
    assert with_main == []


def test_http_is_read_in_the_handlers_and_the_cores_glue_only():
    """Query strings and API Gateway's events are the handlers' (functions/*); the layer's
    flows take plain values, and only sluice.core.http_api knows Powertools' Response."""
    http = ["urllib.parse", "aws_lambda_powertools.event_handler"]
    reading = {
        name: sorted(found)
        for name, path in _sources().items()
        if name.split(".")[0] == LAYER
        and name != "sluice.core.http_api"
        and (found := _imports(name, path, http))
    }
    assert reading == {}

"""The import graph of ``wmlm``: imports go downward only (no circles), and no lower module imports ``wmlm``.

Every module under ``wmlm/`` is parsed with ``ast`` (nothing is imported). Every ``import`` statement counts,
at module level, inside functions, and under ``if TYPE_CHECKING:``: a type-only import of a higher module
still makes the lower one know about it (the ``wmlm.data.sim`` circle was type-only, through
``ScenarioPreset``), and moving the shared type below both modules always removes it. ``from a import b``
is an edge to ``a.b`` when ``a.b`` is a module, else to ``a``. Imports by string (``importlib``: the
registry's ``DEFAULT_PLUGINS``, ``wmlm/__init__``'s lazy names) are not edges: they are resolved at run
time, after both modules exist. A package's ``__init__`` run implicitly by importing one of its
submodules is not an edge either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "wmlm"

# Edges the lead removes from files another change is editing; each entry says how. The test fails when an
# entry's edge no longer exists, so the list shrinks to empty.
KNOWN_EDGES: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    """``wmlm/data/cache.py`` -> ``wmlm.data.cache``; ``wmlm/data/__init__.py`` -> ``wmlm.data``."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def wmlm_modules() -> dict[str, Path]:
    """Every module of the ``wmlm`` package: ``{dotted name: source file}``."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``wmlm`` modules that module ``name`` (source ``path``) imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package upwards
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(
                    package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                )
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            # `import wmlm.a.b` names wmlm.a.b; keep the longest prefix that is a wmlm module
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the ``wmlm`` package."""
    modules = wmlm_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, set(c)) for c in components]


def _cycle_through(graph: dict[str, set[str]], members: set[str]) -> list[str]:
    """A shortest cycle from the first member back to itself, inside one strongly connected component."""
    start = min(members)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & members):
                if successor == start:
                    return paths[node] + [start]
                if successor not in paths:
                    paths[successor] = paths[node] + [successor]
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(members)}")


def test_the_graph_sees_the_imports_it_should() -> None:
    graph = import_graph()
    assert "wmlm.beams" in graph["wmlm.heads.beam"]  # module level
    assert "wmlm.hookspecs" in graph["wmlm.registry"]  # `from wmlm import hookspecs` is the submodule
    assert "wmlm.data.readers" in graph["wmlm.registry"]  # under TYPE_CHECKING
    assert "wmlm.model.wmlm" in graph["wmlm"]


def test_no_import_circles() -> None:
    graph = import_graph()
    for edge in KNOWN_EDGES:
        graph[edge[0]].discard(edge[1])
    cycles = find_cycles(graph)
    assert not cycles, "import circles in wmlm:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)


def test_no_lower_module_imports_the_package_init() -> None:
    graph = import_graph()
    importers = sorted(
        m for m, targets in graph.items() if "wmlm" in targets and (m, "wmlm") not in KNOWN_EDGES
    )
    assert not importers, f"these modules import wmlm/__init__ (import from the defining module): {importers}"


def test_known_edges_still_exist() -> None:
    """Each allow-listed edge is still in the code; once the lead removes it, its entry goes too."""
    graph = import_graph()
    gone = [edge for edge in KNOWN_EDGES if edge[1] not in graph.get(edge[0], set())]
    assert not gone, f"remove these entries from KNOWN_EDGES, their imports are gone: {gone}"


def test_find_cycles_reports_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_version_has_one_home() -> None:
    """``wmlm.__version__`` is ``wmlm.version.__version__``, and pyproject.toml reads it from there."""
    import wmlm
    import wmlm.version

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    assert wmlm.__version__ is wmlm.version.__version__
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wmlm.version.__version__"}

"""The import graph of ``manual`` and ``torch_ref`` has no cycle.

Every module is read from disk with :mod:`ast` (nothing is imported) and every import of a module of
these packages is an edge, wherever it is written: at module level, inside a function or a method,
in a ``try``; ``import a.b.c``, ``from .x import y`` (relative imports resolved against the module's
package), ``from . import x`` where ``x`` is a submodule (an edge to the submodule), and
``importlib.import_module("a.b")`` with a literal argument. An import inside an
``if TYPE_CHECKING:`` block is not an edge: it never runs. Nor is the implicit import of a package's
``__init__`` as the parent of the module asked for (``import a.b.c`` is an edge to ``a.b.c`` only).

A cycle is reported as ``a -> b -> c -> a``, one line per cycle, with the file and line of each
import in it; within one strongly connected component, cycles are listed until every edge of the
component is in one of them.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("manual", "torch_ref")

Graph = Mapping[str, Iterable[str]]


# ------------------------------------------------------------------------------------- the modules


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of :data:`PACKAGES` by its dotted name (a package by its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


# ------------------------------------------------------------------------------------- the imports


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (any module's attribute of that name)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (its ``else`` runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            stack.append(node.test)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _base(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - (level - 1)]
    return ".".join([*anchor, name] if name else anchor)


def _targets(node: ast.AST, module: str, is_package: bool, known: Mapping[str, Path]) -> list[str]:
    """The modules of ``known`` that ``node`` imports (none when it is not an import)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = _base(module, is_package, node.level, node.module)
        # "from a import b": the submodule a.b where there is one, else a name of a itself
        return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        name = node.args[0].value
        if name.startswith("."):  # import_module(".x", package=...): taken against the module's package
            level = len(name) - len(name.lstrip("."))
            return [_base(module, is_package, level, name.lstrip(".") or None)]
        return [name]
    return []


def import_edges(known: Mapping[str, Path], root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """``(importer, imported) -> ["file:line", ...]`` for every runtime import between ``known`` modules."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in _runtime_nodes(tree):
            for target in _targets(node, module, is_package, known):
                if target in known and target != module:
                    where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
                    sites = edges.setdefault((module, target), [])
                    if where not in sites:  # "from .x import a, b" is one import
                        sites.append(where)
    return edges


def _graph(edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    return {a: sorted(set(bs)) for a, bs in graph.items()}


# ------------------------------------------------------------------------------------- the cycles


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (iterative, so depth is no limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, successors = work[-1]
            w = next(successors, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph.get(w, ()))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                components.append(sorted(component))
    return components


def _path(graph: Graph, start: str, goal: str, inside: set[str]) -> list[str]:
    """A shortest path ``start ... goal`` through the nodes of ``inside`` (breadth first)."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        if v == goal:
            break
        for w in graph.get(v, ()):
            if w in inside and w not in came_from:
                came_from[w] = v
                queue.append(w)
    path = [goal]
    while (previous := came_from[path[-1]]) is not None:
        path.append(previous)
    return path[::-1]


def _rotated(cycle: list[str]) -> tuple[str, ...]:
    """The cycle (without its closing node) started at its smallest name, so that each prints once."""
    first = cycle.index(min(cycle))
    return tuple(cycle[first:] + cycle[:first])


def find_cycles(graph: Graph) -> list[tuple[str, ...]]:
    """Cycles of ``graph``, each a tuple of its nodes in order (``a -> b -> a`` is ``("a", "b")``):
    in every strongly connected component of more than one node (or a node importing itself), for
    each edge not yet in a listed cycle, the edge closed by a shortest path back."""
    cycles: list[tuple[str, ...]] = []
    for component in strongly_connected(graph):
        inside = set(component)
        if len(component) == 1 and component[0] not in graph.get(component[0], ()):
            continue
        covered: set[tuple[str, str]] = set()
        for a in component:
            for b in graph.get(a, ()):
                if b not in inside or (a, b) in covered:
                    continue
                cycle = [a] if a == b else [a, *_path(graph, b, a, inside)[:-1]]
                covered.update(zip(cycle, cycle[1:] + cycle[:1]))
                if _rotated(cycle) not in cycles:
                    cycles.append(_rotated(cycle))
    return sorted(cycles)


def describe(cycle: tuple[str, ...], edges: Mapping[tuple[str, str], list[str]] | None = None) -> str:
    """``a -> b -> c -> a``, and with ``edges`` the file and line of each import on a line below."""
    line = " -> ".join([*cycle, cycle[0]])
    if edges is None:
        return line
    sites = [f"    {a} -> {b}: {', '.join(edges[a, b])}" for a, b in zip(cycle, cycle[1:] + cycle[:1])]
    return "\n".join([line, *sites])


# --------------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    edges = import_edges(modules())
    cycles = [c for c in find_cycles(_graph(edges)) if any(m.split(".")[0] == package for m in c)]
    assert not cycles, f"{len(cycles)} import cycle(s) through {package}:\n" + "\n".join(
        describe(c, edges) for c in cycles
    )


def test_the_cycle_finder_finds_cycles():
    graph = {
        "a": ["b"],
        "b": ["c", "d"],
        "c": ["a"],  # a -> b -> c -> a
        "d": ["e"],
        "e": [],
        "f": ["f"],  # a module importing itself
        "g": ["h"],
        "h": ["g", "e"],  # g -> h -> g
    }
    assert [describe(c) for c in find_cycles(graph)] == ["a -> b -> c -> a", "f -> f", "g -> h -> g"]
    assert find_cycles({"a": ["b", "c"], "b": ["c"], "c": []}) == []


def test_every_edge_of_a_component_is_in_a_listed_cycle():
    graph = {"a": ["b", "c"], "b": ["a"], "c": ["a"]}  # two cycles through a
    assert [describe(c) for c in find_cycles(graph)] == ["a -> b -> a", "a -> c -> a"]


def test_imports_are_read_wherever_they_run(tmp_path):
    """Module level, function level, relative, a submodule or a package's name through
    ``from . import``, ``import a.b`` and ``importlib.import_module`` are edges; an import under
    ``if TYPE_CHECKING:`` (pkg.f) and a parent package (pkg.sub) are not."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from .a import f\n",
        "a.py": (
            "from typing import TYPE_CHECKING\n"
            "from . import b\n"
            "if TYPE_CHECKING:\n    from .f import F\nelse:\n    import pkg.sub.d\n"
            "def f():\n    from .sub import e\n    import importlib\n    importlib.import_module('pkg.c')\n"
        ),
        "b.py": "",
        "c.py": "from . import VERSION\n",  # a name of the package, not a submodule
        "f.py": "",
        "sub/__init__.py": "",
        "sub/d.py": "from .. import b\n",
        "sub/e.py": "from ..c import x\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    known = {_module_name(p, tmp_path): p for p in sorted(package.rglob("*.py"))}
    assert sorted(import_edges(known, tmp_path)) == [
        ("pkg", "pkg.a"),
        ("pkg.a", "pkg.b"),
        ("pkg.a", "pkg.c"),
        ("pkg.a", "pkg.sub.d"),
        ("pkg.a", "pkg.sub.e"),
        ("pkg.c", "pkg"),
        ("pkg.sub.d", "pkg.b"),
        ("pkg.sub.e", "pkg.c"),
    ]


# torch_ref's roles, lowest first: a subpackage imports only from those before it (and from itself).
# twins.py is the twin's public module; strategies.py the drawn cases.
LAYERS = (
    ("pages",),  # the HTML report, rendered from records alone
    ("twin", "twins"),
    ("numerics",),
    ("strategies",),
    ("engine",),
    ("first_order",),
    ("training", "second_order", "data_parallel", "layers"),
    ("networks",),
    ("figures",),  # a failing outcome's page fields, of every kind's outcome type
    ("kinds",),
    ("frontends", "slides", "pytest_plugin", "__main__", "__init__"),
)


def _role(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def test_torch_refs_roles_import_downwards_only():
    """The layout's arrow: every import of torch_ref points to its own role or one below it."""
    level = {role: k for k, roles in enumerate(LAYERS) for role in roles}
    known = {m: p for m, p in modules().items() if m.startswith("torch_ref")}
    roles = {_role(m) for m in known}
    assert roles <= set(level), f"roles without a layer: {sorted(roles - set(level))}"
    upwards = [
        f"{a} -> {b} ({', '.join(where)})"
        for (a, b), where in import_edges(known).items()
        if level[_role(b)] > level[_role(a)]
    ]
    assert not upwards, "imports that point up the layers:\n" + "\n".join(upwards)

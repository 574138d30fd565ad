"""
Fail on any import cycle among the product's packages (common, enrichment, playbooks, sample_tenant).

Every import statement counts wherever it stands (module level or inside a function: a lazy import still
runs, only later), except those under `if TYPE_CHECKING:`, which never run. An edge goes to the module an
import names: `from pkg import name` points at `pkg.name` when that is a module, else at `pkg`. The source
is read with `ast`, nothing is imported, so the check takes well under a second.

    python scripts/import_cycles.py [ROOT]    # exit 0: no cycle; exit 1: each cycle printed with its lines
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("common", "enrichment", "playbooks", "sample_tenant")


@dataclass(frozen=True, slots=True)
class Edge:
    """`source` imports `target` at `line` of the source's file."""

    source: str
    target: str
    line: int


def module_files(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every `.py` file under the packages (a package is its `__init__`)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all nesting levels, minus the bodies of `if TYPE_CHECKING:`."""
    if isinstance(tree, ast.Import | ast.ImportFrom):
        yield tree
        return
    if isinstance(tree, ast.If) and _is_type_checking(tree.test):
        for statement in tree.orelse:
            yield from _imports(statement)
        return
    for child in ast.iter_child_nodes(tree):
        yield from _imports(child)


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names, resolving relative levels."""
    if node.level == 0:
        return node.module or ""
    anchor = module.split(".") if is_package else module.split(".")[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of our modules (`a.b.func` -> `a.b`)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def edges(modules: dict[str, Path]) -> list[Edge]:
    """Every import of one of our modules by another (self-imports of a package's own name are left out)."""
    found: list[Edge] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(module, is_package, node)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            for target in targets:
                known = _known(target, modules)
                if known is not None and known != module:
                    found.append(Edge(module, known, node.lineno))
    return list(dict.fromkeys(found))  # `from m import a, b` is one import of m


def cycles(found: list[Edge]) -> list[list[Edge]]:
    """One cycle (as its edges) per strongly connected group of modules that import each other."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in found:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm; the graph is a few hundred modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(group, graph) for group in groups]


def _cycle_in(group: set[str], graph: dict[str, dict[str, Edge]]) -> list[Edge]:
    """A shortest path from the group's first module back to itself, staying inside the group."""
    start = min(group)
    paths: dict[str, list[Edge]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target, edge in sorted(graph.get(node, {}).items()):
                if target not in group:
                    continue
                if target == start:
                    return [*paths[node], edge]
                if target not in paths:
                    paths[target] = [*paths[node], edge]
                    following.append(target)
        frontier = following
    msg = f"no cycle through {start} in its strongly connected group"
    raise AssertionError(msg)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    modules = module_files(root)
    found = edges(modules)
    loops = cycles(found)
    for loop in loops:
        print("import cycle: " + " -> ".join([loop[0].source, *(edge.target for edge in loop)]))
        for edge in loop:
            print(f"  {modules[edge.source].relative_to(root)}:{edge.line} imports {edge.target}")
    if loops:
        return 1
    print(f"import cycles: none among {len(modules)} modules ({len(found)} imports, function-level ones included)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The box's modules import each other without a cycle, including imports made only for
type checking (a cycle hidden behind ``TYPE_CHECKING`` is still two modules that cannot be
read, or changed, apart)."""

from __future__ import annotations

import ast
from pathlib import Path

EDGE = Path(__file__).resolve().parents[2] / "edge"


def _module_name(path: Path) -> str:
    parts = path.relative_to(EDGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _edge_imports(path: Path) -> set[str]:
    """Every ``edge.*`` module ``path`` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("edge.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "edge":
                found |= {f"edge.{alias.name}" for alias in node.names}
            elif node.module.startswith("edge."):
                found.add(node.module)
    return found


def _import_graph() -> dict[str, set[str]]:
    graph = {_module_name(path): _edge_imports(path) for path in EDGE.rglob("*.py")}
    return {module: {t for t in targets if t in graph} for module, targets in graph.items()}


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as the list of modules on it, or None."""
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph[module]):
            cycle = walk(target, [*path, module])
            if cycle is not None:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = walk(module, [])
        if cycle is not None:
            return cycle
    return None


def test_the_graph_sees_an_import_made_only_for_type_checking(tmp_path: Path) -> None:
    module = tmp_path / "health.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edge.runtime import X\n"
    )
    assert _edge_imports(module) == {"edge.runtime"}
    assert _a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _a_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_of_the_box_imports_itself_back() -> None:
    cycle = _a_cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])

"""The modules of asdex import each other without circles, and only at module level."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import asdex

ROOT = pathlib.Path(asdex.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement run at some point, with whether it runs at module level.

    Imports under `if TYPE_CHECKING:` are never run and are left out.
    """
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit_one(sub, top)
                continue
            visit_one(child, top)

    def visit_one(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append((node, top))
            return
        inner = top and not isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        )
        visit(node, inner)

    visit(tree, True)
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The asdex modules an import statement loads (parent packages' `__init__` aside)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                 for alias in node.names]
    return {name for name in names if name in MODULES}


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    edges: dict[str, set[str]] = {}
    local: list[str] = []
    for module, path in MODULES.items():
        edges[module] = set()
        for node, top in _runtime_imports(ast.parse(path.read_text(), str(path))):
            targets = _targets(module, node)
            if targets and not top:
                local.append(f"{module} (line {node.lineno}) imports {sorted(targets)}")
            edges[module] |= targets
    return edges, local


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                return [*stack[stack.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_every_module_imports():
    for module in MODULES:
        importlib.import_module(module)


def test_no_function_local_imports_of_asdex_modules():
    _, local = _graph()
    assert not local, "Import asdex modules at module level:\n" + "\n".join(local)


def test_no_import_cycles():
    edges, _ = _graph()
    cycle = _cycle(edges)
    assert cycle is None, "Import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f():\n    from asdex import _io\n", "function-local"),
        ("import asdex._io\n", "cycle"),
    ],
)
def test_the_checks_catch_what_they_look_for(source, message):
    tree = ast.parse(source)
    found = [(_targets("asdex._display", node), top) for node, top in _runtime_imports(tree)]
    if message == "function-local":
        assert found == [({"asdex._io"}, False)]
    else:
        edges = {"asdex._display": {"asdex._io"}, "asdex._io": {"asdex._display"}}
        assert found == [({"asdex._io"}, True)]
        assert _cycle(edges) == ["asdex._display", "asdex._io", "asdex._display"]

"""The app's import graph: no import cycles, and no imports hidden inside functions.

The graph is read from the source with `ast`, so a module is never executed to be checked.
An edge is an import at module level (not inside a function, not under `if TYPE_CHECKING:`)
of another module of the app. Edges to the parent packages Python also runs on the way are
left out, so a package's `__init__` may gather its own submodules.
"""

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "redemption"
# Packages whose modules must lie on no import cycle.
ACYCLIC_PACKAGES = ("redemption",)
# Packages where every import sits at module level, so the graph above shows every dependency.
MODULE_LEVEL_IMPORTS_ONLY = ("redemption",)
# The exceptions: AppConfig.ready() runs after the models load, which is why Django wants its
# imports there; migrations are frozen history that the migration executor loads on its own.
FUNCTION_IMPORTS_ALLOWED = ("redemption.apps", "redemption.migrations")

FUNCTION = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _within(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def parse_app(app: Path) -> dict[str, tuple[ast.Module, bool]]:
    """Every module under `app` by dotted name, with its syntax tree and whether it is a package."""
    found = {}
    for path in sorted(app.rglob("*.py")):
        parts = list(path.relative_to(app.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (ast.parse(path.read_text(), str(path)), is_package)
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, FUNCTION) or (isinstance(node, ast.If) and _is_type_checking(node)):
            continue
        else:
            pending.extend(ast.iter_child_nodes(node))


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]
) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    found = set()
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in known:
            found.add(submodule)
        elif source in known:
            found.add(source)
    return found


def import_graph(modules: dict[str, tuple[ast.Module, bool]]) -> dict[str, set[str]]:
    """Each module's module-level imports of other modules of the app."""
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, (tree, is_package) in modules.items():
        targets: set[str] = set()
        for node in _module_level_imports(tree):
            targets |= _targets(node, name, is_package, known)
        graph[name] = targets - {name}
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components, each with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, as the list of modules on it."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & members):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"no cycle in {component}")


def import_cycles(graph: dict[str, set[str]], packages: Iterable[str]) -> list[str]:
    """Every import cycle that runs through one of `packages`, as 'a -> b -> a'."""
    packages = tuple(packages)
    return sorted(
        " -> ".join(_one_cycle(graph, component))
        for component in _strongly_connected(graph)
        if any(_within(m, packages) for m in component)
    )


def function_local_imports(
    modules: dict[str, tuple[ast.Module, bool]], packages: Iterable[str]
) -> list[str]:
    """Every import inside a function of a module in `packages`, as 'module:line'."""
    found = []
    for name, (tree, _) in sorted(modules.items()):
        if not _within(name, packages):
            continue
        for function in ast.walk(tree):
            if isinstance(function, FUNCTION):
                found += [
                    f"{name}:{node.lineno}"
                    for node in ast.walk(function)
                    if isinstance(node, ast.Import | ast.ImportFrom)
                ]
    return sorted(set(found))


# --- the app ----------------------------------------------------------------------------------


def test_no_import_cycle_runs_through_the_acyclic_packages():
    graph = import_graph(parse_app(APP))

    cycles = import_cycles(graph, ACYCLIC_PACKAGES)

    assert graph["redemption.api.openapi"], "the graph found no imports at all"
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_no_module_of_the_listed_packages_imports_inside_a_function():
    found = [
        place
        for place in function_local_imports(parse_app(APP), MODULE_LEVEL_IMPORTS_ONLY)
        if not _within(place.split(":")[0], FUNCTION_IMPORTS_ALLOWED)
    ]

    assert found == [], "imports inside functions: " + ", ".join(found)


# --- the checks themselves, on a small app written for the purpose ---------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "redemption"


@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    """An app with one cycle through api, one outside it, and imports of every spelling."""
    return _write(
        tmp_path,
        {
            "redemption/__init__.py": "",
            "redemption/models.py": "",
            "redemption/api/__init__.py": "",
            "redemption/api/views.py": "from redemption.api import openapi\n",
            "redemption/api/openapi.py": "from . import table\n",
            "redemption/api/table.py": (
                "import redemption.models\n"
                "try:\n    from ..api.views import VIEWS\nexcept ImportError:\n    pass\n"
            ),
            "redemption/api/typed.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from redemption.api.late import Late\n"
                "def handler():\n    from redemption.api import late\n"
            ),
            "redemption/api/late.py": "from redemption.api.typed import handler\n",
            "redemption/tasks.py": "from redemption import services\n",
            "redemption/services/__init__.py": "from redemption.services.bulk import run\n",
            "redemption/services/bulk.py": "import redemption.tasks\n",
        },
    )


def test_every_spelling_of_an_import_is_an_edge_and_lazy_ones_are_not(tangled):
    graph = import_graph(parse_app(tangled))

    assert graph["redemption.api.views"] == {"redemption.api.openapi"}
    assert graph["redemption.api.openapi"] == {"redemption.api.table"}
    assert graph["redemption.api.table"] == {"redemption.models", "redemption.api.views"}
    assert graph["redemption.api.typed"] == set()
    assert graph["redemption.services"] == {"redemption.services.bulk"}


def test_cycles_are_found_and_listed_only_where_they_are_checked(tangled):
    graph = import_graph(parse_app(tangled))

    assert import_cycles(graph, ["redemption.api"]) == [
        "redemption.api.openapi -> redemption.api.table -> redemption.api.views "
        "-> redemption.api.openapi"
    ]
    assert import_cycles(graph, ["redemption"]) == [
        "redemption.api.openapi -> redemption.api.table -> redemption.api.views "
        "-> redemption.api.openapi",
        "redemption.services -> redemption.services.bulk -> redemption.tasks "
        "-> redemption.services",
    ]


def test_imports_inside_functions_are_found(tangled):
    assert function_local_imports(parse_app(tangled), ["redemption.api"]) == [
        "redemption.api.typed:5"
    ]
    assert function_local_imports(parse_app(tangled), ["redemption.services"]) == []

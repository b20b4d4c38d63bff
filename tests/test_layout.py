"""The package layout holds: the library never imports the training application, components import each other
without cycles, and library functions stay short enough to read. Read from the source, function-level imports
included, so an import hidden inside a function cannot slip past."""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vis_mae_hf"
APPLICATION = "vis_mae_hf.app"
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = ["vis_mae_hf", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """Every vis_mae_hf module `path` imports, at any depth of its code."""
    name = module_name(path)
    package = name if is_package(path) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            # `from . import medical` names a module, not an attribute
            found.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES)
    return {module for module in found if module == "vis_mae_hf" or module.startswith("vis_mae_hf.")}


def component(module: str) -> str:
    """The unit whose imports must not form cycles: a top-level module or package, and inside the application
    each of its sub-packages and modules."""
    parts = module.split(".")
    depth = 3 if module.startswith(APPLICATION + ".") else 2
    return ".".join(parts[:depth])


def component_graph() -> dict[str, dict[str, set[str]]]:
    """component -> imported component -> the modules that import it (for the error message)."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module, path in MODULES.items():
        for imported in imported_modules(path):
            source, target = component(module), component(imported)
            if source != target:
                graph[source][target].add(module)
    return graph


def cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, {}):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_is_read_from_the_source():
    # A known library edge and a known application edge, so the reader cannot silently find nothing.
    graph = component_graph()
    assert "vis_mae_hf.medical" in graph["vis_mae_hf.inference"]
    assert "vis_mae_hf.data" in graph["vis_mae_hf.app.pretraining"]


def test_the_library_never_imports_the_application():
    offending = sorted(
        f"{module} imports {imported}"
        for module, path in MODULES.items()
        if not (module == APPLICATION or module.startswith(APPLICATION + "."))
        for imported in imported_modules(path)
        if imported == APPLICATION or imported.startswith(APPLICATION + ".")
    )
    assert offending == []


def test_components_import_each_other_without_cycles():
    graph = component_graph()
    problems = []
    for members in cycles(graph):
        edges = [
            f"{source} -> {target} (in {', '.join(sorted(graph[source][target]))})"
            for source in members
            for target in members
            if target in graph[source]
        ]
        problems.append("; ".join(edges))
    assert problems == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b": set()}, "b": {"c": set()}, "c": {"a": set()}, "d": {"a": set()}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_functions_have_one_job(module):
    """No function over about a screen: a longer one is doing several jobs (docstring included)."""
    tree = ast.parse(MODULES[module].read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    import vis_mae_hf

    assert vis_mae_hf.__version__ == version("vis-mae-hf") != "0+unknown"

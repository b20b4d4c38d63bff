"""The package layout holds: the library never imports the training application, components import each other
without cycles, and library functions stay short enough to read. Read from the source, function-level imports
included, so an import hidden inside a function cannot slip past."""

import ast
import re
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


ROOT = PACKAGE.parent
ARCHITECTURE = (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def readme_layout_paths() -> list[str]:
    """The paths the README's Layout block names, with their folders resolved (`  cli/` under `vis_mae_hf/app/`)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    paths, parent = [], ""
    for line in block.strip().splitlines():
        names = line.split("   ")[0].strip()
        top_level = not line.startswith(" ")
        for name in names.split(", "):
            path = name if top_level else parent + name
            paths.append(path)
        if top_level:
            parent = names
    return paths


def test_the_readme_layout_names_what_is_in_the_tree():
    paths = readme_layout_paths()
    assert "vis_mae_hf/app/cli/" in paths and "vis_mae_hf/recipes.py" in paths
    assert [path for path in paths if not (ROOT / path).exists()] == []
    for component in COMPONENT_PATHS:
        assert any(path.rstrip("/") == component for path in paths), f"README's Layout omits {component}"


# Every component of the import graph, as a path: what docs/ARCHITECTURE.md and the README must each describe.
COMPONENT_PATHS = sorted(
    {
        str(MODULES[name].relative_to(ROOT).parent if is_package(MODULES[name]) else MODULES[name].relative_to(ROOT))
        for name in {component(module) for module in MODULES}
        if name != "vis_mae_hf"
    }
)


def test_the_architecture_page_describes_every_component_and_names_only_real_files():
    undescribed = [path for path in COMPONENT_PATHS if f"`{path.removeprefix('vis_mae_hf/')}" not in ARCHITECTURE
                   and f"`{path.removeprefix('vis_mae_hf/')}/" not in ARCHITECTURE]
    assert undescribed == []
    named = set(re.findall(r"`((?:app/|vis_mae_hf/)?[\w/]+\.py)`", ARCHITECTURE))
    missing = [name for name in named if not any(ROOT.joinpath(base, name).exists()
                                                 for base in ("", "tests", "vis_mae_hf", "vis_mae_hf/app", *COMPONENT_PATHS))]
    assert missing == []

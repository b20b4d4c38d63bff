"""No file the package reads is unpickled unsafely (issue 13): read from the source with `ast`, every call that can
run code from a file is refused: `torch.load` without `weights_only=True`, any `weights_only=False`, the pickle
module's loaders and their kin, `numpy.load(allow_pickle=True)`, and Accelerate's `load_state` (it unpickles the
objects registered for checkpointing with `weights_only=False`). Imports under another name are followed."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vis_mae_hf"

# Calls that unpickle whatever the file holds, whatever their arguments.
UNPICKLERS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads", "_pickle.Unpickler",
    "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load", "pandas.read_pickle",
    "shelve.open", "marshal.load", "marshal.loads", "torch.serialization._legacy_load",
    "accelerate.checkpointing.load_custom_state",
}
TORCH_LOADERS = {"torch.load", "torch.serialization.load"}
NUMPY_LOADERS = {"numpy.load"}
# Methods whose name alone gives them away (the object they are called on is not traceable from the source).
UNPICKLING_METHODS = {"load_state": "Accelerate's load_state unpickles registered objects with weights_only=False",
                      "register_for_checkpointing": "Accelerate saves what it registers as pickles"}


def imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it was imported as (`np` -> `numpy`, `load` -> `torch.load`)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def dotted_name(node: ast.AST, names: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(names.get(node.id, node.id))
    return ".".join(reversed(parts))


def keyword_value(call: ast.Call, name: str, unpacked_counts: bool = True):
    """The constant value of keyword `name` (None when absent), or `...` when it is not a constant (or, with
    `unpacked_counts`, when a `**mapping` could set it)."""
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else ...
    if unpacked_counts and any(keyword.arg is None for keyword in call.keywords):
        return ...
    return None


def unsafe_unpickling(source: str, filename: str = "<source>") -> list[str]:
    """`file:line: why` for every call in `source` that could unpickle a file unsafely."""
    tree = ast.parse(source, filename)
    names = imported_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted_name(node.func, names) or ""
        weights_only = keyword_value(node, "weights_only", unpacked_counts=name in TORCH_LOADERS)
        where = f"{filename}:{node.lineno}"
        if weights_only is not None and weights_only is not True:
            shown = "a non-constant" if weights_only is ... else repr(weights_only)
            found.append(f"{where}: weights_only={shown} in a call to {name or 'something'}")
        elif name in TORCH_LOADERS and weights_only is not True:
            found.append(f"{where}: {name} without weights_only=True")
        elif name in UNPICKLERS:
            found.append(f"{where}: {name} unpickles whatever the file holds")
        elif name in NUMPY_LOADERS and keyword_value(node, "allow_pickle") not in (None, False):
            found.append(f"{where}: {name} with allow_pickle")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in UNPICKLING_METHODS:
            found.append(f"{where}: .{node.func.attr}(): {UNPICKLING_METHODS[node.func.attr]}")
    return found


def test_the_package_never_unpickles_a_file_unsafely():
    found = [
        problem
        for path in sorted(PACKAGE.rglob("*.py"))
        for problem in unsafe_unpickling(path.read_text(), str(path.relative_to(PACKAGE.parent)))
    ]
    assert found == []


def test_the_package_loads_its_torch_files_with_the_safe_loader():
    """The reader sees the package's torch.load calls (so the test above cannot pass by seeing nothing)."""
    calls = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = imported_names(tree)
        calls += [node for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and dotted_name(node.func, names) == "torch.load"]
    assert len(calls) >= 2  # the published-checkpoint converter and the pretraining optimiser state
    assert all(keyword_value(call, "weights_only") is True for call in calls)


UNSAFE = '''
import pickle as pk
import numpy as np
import torch
from torch import load
from pandas import read_pickle
torch.load(path)
torch.load(path, weights_only=False)
load(path, map_location="cpu")
torch.load(path, **options)
pk.loads(data)
np.load(path, allow_pickle=True)
read_pickle(path)
accelerator.load_state(folder)
accelerator.register_for_checkpointing(scheduler)
safetensors.torch.load_file(path, weights_only=flag)
'''

SAFE = '''
import numpy as np
import torch
from safetensors.torch import load_file
torch.load(path, map_location="cpu", weights_only=True)
np.load(path)
np.load(path, allow_pickle=False)
load_file(path)
json.loads(text)
'''


@pytest.mark.parametrize(("source", "expected"), [(UNSAFE, 10), (SAFE, 0)], ids=["unsafe", "safe"])
def test_the_checker_finds_each_unsafe_call_and_nothing_else(source, expected):
    found = unsafe_unpickling(source)
    assert len(found) == expected, found
    if expected:
        assert [int(problem.split(":")[1]) for problem in found] == list(range(7, 17))

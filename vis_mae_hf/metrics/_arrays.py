"""Input plumbing shared by the metric modules: array conversion and class names."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


def is_torch_tensor(value) -> bool:
    return isinstance(value, torch.Tensor)


def to_numpy(value, name: str) -> np.ndarray:
    """Return `value` (numpy array, torch tensor, nested list) as a numpy array.

    Floating torch tensors are widened to float64 first: numpy has no bfloat16, and metric arithmetic is float64.
    """
    if is_torch_tensor(value):
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.double()
        return tensor.numpy()
    try:
        return np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"`{name}` could not be read as an array ({error}); pass equally shaped items.") from None


def class_names(num_classes: int, id2label: Mapping | None, argument: str = "id2label") -> list[str]:
    """Names for classes 0..num_classes-1: `id2label[i]`, or `str(i)` without a mapping.

    `id2label` keys may be ints or digit strings (a config read from JSON). Every class must be named, and names must
    be unique, because they become result keys such as `dice/<name>`.
    """
    if id2label is None:
        return [str(index) for index in range(num_classes)]
    normalised: dict[int, str] = {}
    for key, label in id2label.items():
        try:
            normalised[int(key)] = str(label)
        except (TypeError, ValueError):
            raise ValueError(f"`{argument}` keys must be class indices (int), got {key!r}.") from None
    missing = [index for index in range(num_classes) if index not in normalised]
    if missing:
        raise ValueError(
            f"`{argument}` names no class for indices {missing}; it must name every class 0..{num_classes - 1}."
        )
    names = [normalised[index] for index in range(num_classes)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"`{argument}` gives the same name to several classes: {duplicates}; names must be unique.")
    return names


def describe_values(values: np.ndarray, limit: int = 8) -> str:
    """Short listing of the distinct offending values for an error message."""
    unique = np.unique(values)
    shown = ", ".join(str(v) for v in unique[:limit].tolist())
    return shown + (f", ... ({unique.size} distinct)" if unique.size > limit else "")

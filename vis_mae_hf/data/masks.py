"""The one rule for the values of a segmentation mask: one declared class index, 0..K-1, per pixel.

Converters call it before a mask is stored, and fine-tuning can call it as a batch is loaded (`checked_mask`), so a
hand-built dataset gets the same clear error as a converted one.

255 is the loss's ignore value (`VisMaeConfig.semantic_loss_ignore_index`). A binary mask saved as 0/255, which is
what most image editors and exporters write, would otherwise train on background alone: every foreground pixel
ignored, no error, a foreground Dice of 0. Such a mask of a two-label set is recognised and read as 0/1, with a
notice. Any other value outside 0..K-1 (127 from anti-aliasing, 4 in a three-label set) is refused, naming the values
and the labels, rather than reaching the loss as a bare "Target 127 is out of bounds".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

BINARY_255_NOTICE = "binary masks stored as 0/255 were read as 0/1 (255 is the loss's ignore value)"
_BINARY_255 = 255


class MaskValueError(ValueError):
    """A mask whose values are not the declared class indices; the message names the mask, the values, the labels."""


class BinaryMaskNotice(UserWarning):
    """A 0/255 binary mask was read as 0/1 (see the module docstring)."""


def mask_class_indices(
    mask: np.ndarray,
    labels: int | Sequence[str],
    *,
    name: str,
    allow_binary_255: bool = True,
) -> tuple[np.ndarray, bool]:
    """(`mask` as int64 class indices 0..K-1, whether it was a 0/255 binary mask read as 0/1).

    Args:
        mask: the stored mask values (any integer dtype, or floats holding whole numbers).
        labels: the declared labels: their names (K of them, background first) or their number K.
        name: how errors name the mask (a file, "row 3 of the batch").
        allow_binary_255: read a 0/255 mask of a two-label set as 0/1; False refuses it like any other value.

    Raises:
        MaskValueError: non-integer values, or values outside 0..K-1 (other than a binary 0/255 mask).
    """
    n_labels = labels if isinstance(labels, int) else len(labels)
    values = np.asarray(mask)
    if values.dtype.kind == "f":
        rounded = np.rint(values)
        if not np.allclose(values, rounded, atol=1e-3):
            raise MaskValueError(
                f"{name}: the mask holds fractional values; a mask holds one class index 0..{n_labels - 1} per pixel "
                f"({_described(labels)})."
            )
        values = rounded
    elif values.dtype.kind not in "uib":
        raise MaskValueError(f"{name}: a mask holds integer class indices, got values of dtype {values.dtype}.")
    values = values.astype(np.int64, copy=False)
    if values.size == 0 or (values.min() >= 0 and values.max() < n_labels):
        return values, False  # the common case, decided without sorting the pixels
    found = np.unique(values)
    if allow_binary_255 and n_labels == 2 and set(found.tolist()) <= {0, _BINARY_255}:
        return (values == _BINARY_255).astype(np.int64), True
    unknown = [int(value) for value in found if not 0 <= value < n_labels]
    hint = " A binary mask may be stored as 0/1 or 0/255." if n_labels == 2 else ""
    raise MaskValueError(
        f"{name}: mask values {_listed(unknown)} are not among the declared labels 0..{n_labels - 1} "
        f"({_described(labels)}); each pixel must hold one of them.{hint}"
    )


def checked_mask(mask: np.ndarray, labels: int | Sequence[str], *, name: str) -> np.ndarray:
    """`mask_class_indices` for masks read while training: the mask as class indices, a `BinaryMaskNotice` warning
    (shown once per place, by Python's default warning filter) when a 0/255 mask was read as 0/1."""
    indices, mapped = mask_class_indices(mask, labels, name=name)
    if mapped:
        # One text for every mask, so the default filter shows it once, not once per row.
        warnings.warn(f"Segmentation masks: {BINARY_255_NOTICE}.", BinaryMaskNotice, stacklevel=2)
    return indices


def _described(labels: int | Sequence[str]) -> str:
    if isinstance(labels, int):
        return f"{labels} labels"
    return ", ".join(f"{index} {label}" for index, label in enumerate(labels))


def _listed(values: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(value) for value in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


__all__ = ["BINARY_255_NOTICE", "BinaryMaskNotice", "MaskValueError", "checked_mask", "mask_class_indices"]

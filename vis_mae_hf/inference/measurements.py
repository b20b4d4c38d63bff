"""How large each segmented class is, in the patient's units: area on a slice (mm²) and volume of a study (mL).

Sizes come from the spacing the file states, never from a guess: a 2-D image's `MedicalImage.pixel_spacing`
(row, column mm), a volume's `MedicalVolume.spacing` (X, Y, Z mm of its canonical RAS voxels). An image whose file
states no spacing (PNG, JPEG, many ultrasound DICOMs) gets pixel counts and no areas: a size in pixels presented as
millimetres would be wrong by an unknown factor. 1 mL = 1000 mm³. Background (class 0) is measured like any class,
so the rows add up to the whole image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..medical.orientation import AXIAL_AXIS

MM3_PER_ML = 1000.0


@dataclass(frozen=True)
class ClassSize:
    """One class's size in one label map.

    Attributes:
        label: the class index.
        name: its `id2label` name.
        slice_pixels: pixels of the class on the image (or on the chosen axial slice of a volume).
        slice_area_mm2: their area in mm², None when the file states no pixel spacing.
        volume_voxels: voxels of the class in the whole volume; None for a 2-D image.
        volume_ml: their volume in mL; None for a 2-D image.
    """

    label: int
    name: str
    slice_pixels: int
    slice_area_mm2: float | None
    volume_voxels: int | None = None
    volume_ml: float | None = None


def _class_counts(label_map: np.ndarray, num_labels: int) -> np.ndarray:
    label_map = np.asarray(label_map)
    if label_map.size and int(label_map.max()) >= num_labels:
        raise ValueError(
            f"The label map holds class {int(label_map.max())} but only {num_labels} class names were given."
        )
    return np.bincount(label_map.ravel().astype(np.int64), minlength=num_labels)


def _checked_spacing(spacing: Sequence[float] | None, axes: int) -> tuple[float, ...] | None:
    if spacing is None:
        return None
    spacing = tuple(float(value) for value in spacing)
    if len(spacing) != axes or not all(np.isfinite(value) and value > 0 for value in spacing):
        raise ValueError(f"A spacing must be {axes} positive finite numbers in mm, got {spacing}.")
    return spacing


def image_class_sizes(
    label_map: np.ndarray, label_names: Sequence[str], pixel_spacing: Sequence[float] | None
) -> list[ClassSize]:
    """Per class of a 2-D (H, W) label map: pixels, and area in mm² from (row, column) `pixel_spacing` in mm."""
    label_map = np.asarray(label_map)
    if label_map.ndim != 2:
        raise ValueError(f"An image's label map is (H, W), got shape {label_map.shape}.")
    spacing = _checked_spacing(pixel_spacing, 2)
    pixel_area = None if spacing is None else spacing[0] * spacing[1]
    counts = _class_counts(label_map, len(label_names))
    return [
        ClassSize(label, name, int(counts[label]), None if pixel_area is None else float(counts[label]) * pixel_area)
        for label, name in enumerate(label_names)
    ]


def volume_class_sizes(
    label_volume: np.ndarray, label_names: Sequence[str], spacing: Sequence[float], slice_index: int
) -> list[ClassSize]:
    """Per class of a RAS (X, Y, Z) label volume: pixels and area (mm²) on axial slice `slice_index`, and voxels and
    volume (mL) of the whole volume, from the (X, Y, Z) voxel `spacing` in mm."""
    label_volume = np.asarray(label_volume)
    if label_volume.ndim != 3:
        raise ValueError(f"A label volume is (X, Y, Z), got shape {label_volume.shape}.")
    if not 0 <= slice_index < label_volume.shape[AXIAL_AXIS]:
        raise ValueError(f"Slice {slice_index} is outside the volume's {label_volume.shape[AXIAL_AXIS]} axial slices.")
    x_mm, y_mm, z_mm = _checked_spacing(spacing, 3)
    slice_counts = _class_counts(label_volume[:, :, slice_index], len(label_names))
    volume_counts = _class_counts(label_volume, len(label_names))
    return [
        ClassSize(
            label,
            name,
            int(slice_counts[label]),
            float(slice_counts[label]) * x_mm * y_mm,
            int(volume_counts[label]),
            float(volume_counts[label]) * x_mm * y_mm * z_mm / MM3_PER_ML,
        )
        for label, name in enumerate(label_names)
    ]


__all__ = ["ClassSize", "image_class_sizes", "volume_class_sizes"]

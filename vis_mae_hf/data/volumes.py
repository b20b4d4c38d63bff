"""From 3-D volumes to the 2-D slices the model sees: slice axis, intensity, image and mask on one grid, selection.

Volumes are read with `medical.load_medical_volume`, which returns physical values (HU for CT) in canonical RAS
orientation for NIfTI files and DICOM series alike; image and mask go through the same call, so they stay
voxel-aligned (orientation changes are permutations and flips, never interpolation, so masks keep their labels).
Windows and min-max scaling are `MedicalVolume.unit_range`; slices are cut and shown the radiological way with
`medical.orientation.display_slice`, which is how the 2-D DICOM images of the pretraining corpus look.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..image_processing_vis_mae import apply_window
from ..medical import MedicalVolume, load_medical_volume


def through_plane_axis(spacing: Sequence[float]) -> int:
    """The axis with the largest voxel spacing (`MedicalVolume.spacing`): the slice direction of a 2-D multi-slice
    acquisition.

    Cine MR (ACDC) is acquired as ~10 mm-apart short-axis slices of ~1.5 mm pixels; after reorientation to RAS the
    short axis can land on any array axis, so it is found from the spacing, not assumed to be the last one.
    """
    return int(np.argmax(np.asarray(spacing, dtype=np.float64)))


def percentile_unit_range(volume: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Map the [low, high] percentiles of the whole volume onto [0, 1], clipping outside (MR, PET).

    MR and PET intensities have no physical scale shared between scanners, and a few very bright voxels (vessels,
    bladder, fat) would squash plain min-max; percentiles over the whole volume keep one mapping for all slices of
    a case, so relative intensity between slices is preserved.
    """

    volume = np.asarray(volume, dtype=np.float32)
    if not np.isfinite(volume).all():
        raise ValueError("percentile_unit_range: the volume holds NaN or infinite values.")
    lower, upper = np.percentile(volume, [low, high])
    if upper <= lower:
        return np.zeros_like(volume)
    return apply_window(volume, width=float(upper - lower), level=float(upper + lower) / 2.0)


# Every CT in Hounsfield units holds air (-1000) or at least fat (-100 to -50) somewhere; a "CT" whose lowest value
# is above this holds something else: an MR or PET, or CT pixels stored without their rescale to HU.
LOWEST_HOUNSFIELD_EXPECTED = -50.0


def check_hounsfield(values: np.ndarray, *, name: str, declared_by: str) -> None:
    """Refuse a volume taken as CT (as `declared_by` says) whose values cannot be Hounsfield units, so that an MR is
    never windowed as CT without a word."""
    lowest = float(np.min(values)) if np.size(values) else 0.0
    if lowest > LOWEST_HOUNSFIELD_EXPECTED:
        raise ValueError(
            f"{name}: {declared_by} says CT, but its lowest value is {lowest:g}, so it is not in Hounsfield units (air "
            f"is -1000 HU, fat about -100 HU). If it is another modality, give it (--modality MR, PET, ...); if it is "
            "CT stored without its rescale, convert it to HU first."
        )


def load_label_volume(mask_path: Path, image: MedicalVolume) -> np.ndarray:
    """The label volume in `mask_path` as int16 class indices, checked to lie on the voxel grid of `image`."""

    mask = load_medical_volume(mask_path)
    if mask.values.shape != image.values.shape:
        raise ValueError(
            f"{mask_path} has shape {mask.values.shape} but its image {image.path} has {image.values.shape}."
        )
    if not np.allclose(mask.affine, image.affine, atol=1e-3):
        raise ValueError(f"{mask_path} and {image.path} are not on the same voxel grid (affines differ).")
    rounded = np.rint(mask.values)
    if not np.allclose(mask.values, rounded, atol=1e-3):
        raise ValueError(f"{mask_path}: a label volume must hold integer class indices.")
    return rounded.astype(np.int16)


def load_image_and_mask(image_path: Path, mask_path: Path) -> tuple[MedicalVolume, np.ndarray]:
    """(image volume, int16 mask on its grid) from two files that must share their voxel grid."""

    image = load_medical_volume(image_path)
    return image, load_label_volume(mask_path, image)


def foreground_slice_indices(mask: np.ndarray, axis: int) -> list[int]:
    """Indices along `axis` of the slices where the mask has any non-background voxel."""
    other_axes = tuple(dim for dim in range(mask.ndim) if dim != axis)
    return np.flatnonzero(np.any(mask > 0, axis=other_axes)).tolist()


def select_slices(mask: np.ndarray | None, axis: int, n_slices: int, policy: str, *, name: str) -> list[int]:
    """The slice indices to keep: `"all"`, or `"foreground"` (slices whose mask shows any label)."""
    if policy == "all":
        return list(range(n_slices))
    if policy == "foreground":
        if mask is None:
            raise ValueError(f"{name}: slices='foreground' needs a mask.")
        return foreground_slice_indices(mask, axis)
    raise ValueError(f"{name}: slices must be 'all' or 'foreground', got {policy!r}.")

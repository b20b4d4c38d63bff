"""From 3-D volumes to the 2-D slices the model sees: slice axis, display orientation, intensity, selection.

Volumes are read with `medical_io.load_medical_volume`, which returns physical values (HU for CT) in canonical
RAS orientation for NIfTI files and DICOM series alike; image and mask go through the same call, so they stay
voxel-aligned (orientation changes are permutations and flips, never interpolation, so masks keep their labels).

A slice `volume[..., k]` of a RAS array has patient-left-to-right along its first axis; `display_slice` turns it
into the radiological display convention of DICOM viewers (rows top = anterior for axial, superior for coronal
and sagittal; image left = patient right), which is how the 2-D DICOM images of the pretraining corpus look.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..medical.orientation import AXIAL_AXIS, display_slice  # noqa: F401  (re-exported: one implementation)

AXIAL = AXIAL_AXIS


def through_plane_axis(affine: np.ndarray) -> int:
    """The axis with the largest voxel spacing: the slice direction of a 2-D multi-slice acquisition.

    Cine MR (ACDC) is acquired as ~10 mm-apart short-axis slices of ~1.5 mm pixels; after reorientation to RAS the
    short axis can land on any array axis, so it is found from the spacing, not assumed to be the last one.
    """
    spacing = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    return int(np.argmax(spacing))


def percentile_unit_range(volume: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Map the [low, high] percentiles of the whole volume onto [0, 1], clipping outside (MR, PET).

    MR and PET intensities have no physical scale shared between scanners, and a few very bright voxels (vessels,
    bladder, fat) would squash plain min-max; percentiles over the whole volume keep one mapping for all slices of
    a case, so relative intensity between slices is preserved.
    """
    from ..image_processing_vis_mae import apply_window

    volume = np.asarray(volume, dtype=np.float32)
    if not np.isfinite(volume).all():
        raise ValueError("percentile_unit_range: the volume holds NaN or infinite values.")
    lower, upper = np.percentile(volume, [low, high])
    if upper <= lower:
        return np.zeros_like(volume)
    return apply_window(volume, width=float(upper - lower), level=float(upper + lower) / 2.0)


def window_unit_range(volume: np.ndarray, window: str | Sequence[float]) -> np.ndarray:
    """A CT volume in HU -> [0, 1] through a named preset or an explicit (width, level)."""
    from ..image_processing_vis_mae import apply_window, resolve_window

    width, level = resolve_window(window)
    return apply_window(volume, width, level)


def min_max_unit_range(volume: np.ndarray) -> np.ndarray:
    from ..image_processing_vis_mae import scale_min_max

    return scale_min_max(volume)


def load_image_and_mask(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image volume float32, mask volume int16, affine) from two files that must share their voxel grid."""
    from ..medical import load_medical_volume

    image, affine = load_medical_volume(image_path)
    mask, mask_affine = load_medical_volume(mask_path)
    if image.shape != mask.shape:
        raise ValueError(f"{mask_path} has shape {mask.shape} but its image {image_path} has {image.shape}.")
    if not np.allclose(affine, mask_affine, atol=1e-3):
        raise ValueError(f"{mask_path} and {image_path} are not on the same voxel grid (affines differ).")
    rounded = np.rint(mask)
    if not np.allclose(mask, rounded, atol=1e-3):
        raise ValueError(f"{mask_path}: a label volume must hold integer class indices.")
    return image, rounded.astype(np.int16), affine


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

"""Writing a label mask as NIfTI on a volume's grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import MedicalImageError
from .files import NIFTI_SUFFIXES


def save_mask_like(mask, affine, path: str | Path) -> Path:
    """Write a label mask as a uint8 NIfTI with `affine` (e.g. a `MedicalVolume`'s `affine`, or its `source_affine`
    for a mask in `to_source_layout`).

    Args:
        mask: integer class indices in [0, 255], (X, Y, Z) or (X, Y), aligned with the volume the affine belongs to.
        affine: 4x4 voxel-to-world matrix (RAS, mm).
        path: output file ending in .nii or .nii.gz.

    Returns:
        The path written.
    """
    path = Path(path)
    if not path.name.endswith(NIFTI_SUFFIXES):
        raise MedicalImageError(f"A mask is saved as NIfTI: {path} should end in .nii or .nii.gz.")
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3) or mask.size == 0:
        raise MedicalImageError(f"A mask must be a non-empty 2-D or 3-D array, got shape {mask.shape} for {path}.")
    if mask.dtype.kind not in "biuf":
        raise MedicalImageError(f"A mask must hold numbers, got dtype {mask.dtype} for {path}.")
    if mask.dtype.kind == "f" and not (np.isfinite(mask).all() and (mask == np.round(mask)).all()):
        raise MedicalImageError(f"A mask must hold integer class indices; the one for {path} has fractions or NaN.")
    if mask.min() < 0 or mask.max() > 255:
        raise MedicalImageError(
            f"A uint8 mask holds classes 0..255; the one for {path} spans [{mask.min()}, {mask.max()}]."
        )
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise MedicalImageError(f"affine must be a finite 4x4 matrix, got shape {affine.shape} for {path}.")
    image = nib.Nifti1Image(mask.astype(np.uint8), affine)
    image.set_data_dtype(np.uint8)
    image.header.set_xyzt_units("mm")
    # Scanner-anchored sform and qform, so every viewer places the mask where the image is.
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)
    return path

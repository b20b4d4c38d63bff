"""NIfTI files -> canonical RAS volumes, with the file's own grid kept so that results can be written back onto it.

`nib.as_closest_canonical` reorders axes by permutation and flips only (never interpolation), so the source grid is
fully described by the file's axis codes, its shape and its affine.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np

from .errors import MedicalImageError, UnreadableMedicalImageError
from .files import check_finite
from .windows import HeaderWindow


class NiftiVolume(NamedTuple):
    values: np.ndarray  # float32 (X, Y, Z), canonical RAS, scl_slope/scl_inter applied
    affine: np.ndarray  # RAS
    header_windows: tuple[HeaderWindow, ...]  # cal_min/cal_max when the file sets a display range
    source_axcodes: tuple[str, str, str]
    source_shape: tuple[int, ...]  # trailing singleton axes dropped: (X, Y) for a 2-D file
    source_affine: np.ndarray


def read_nifti(path: Path) -> NiftiVolume:
    """A NIfTI file as a canonical RAS volume (2-D data as one slice; 4-D data refused)."""
    try:
        image = nib.load(path)
        shape = image.shape
    except Exception as error:
        raise UnreadableMedicalImageError(f"{path} is not a readable NIfTI file: {error}") from error
    # Trailing singleton axes (X, Y, Z, 1) are common and harmless; real 4-D data (time, channels) is not an image.
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) > 3:
        raise MedicalImageError(
            f"{path} holds {len(shape)}-D data of shape {image.shape}; expected a 2-D or 3-D image."
        )
    try:
        data = np.asarray(image.dataobj, dtype=np.float32).reshape(shape + (1,) * (3 - len(shape)))
    except Exception as error:
        raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt NIfTI file: {error}") from error
    check_finite(data, path)
    source_affine = np.asarray(image.affine, dtype=np.float64)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, source_affine, image.header))
    return NiftiVolume(
        values=np.asarray(canonical.dataobj, dtype=np.float32),
        affine=np.asarray(canonical.affine, dtype=np.float64),
        header_windows=_display_range(image.header),
        source_axcodes=tuple(nib.aff2axcodes(source_affine)),
        source_shape=tuple(int(size) for size in shape),
        source_affine=source_affine,
    )


def _display_range(header) -> tuple[HeaderWindow, ...]:
    low, high = float(header["cal_min"]), float(header["cal_max"])
    if not high > low:  # both 0 (unset) in most files
        return ()
    return (HeaderWindow(high - low, (high + low) / 2.0, "cal_min/cal_max"),)


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """mm per array axis: the lengths of the affine's first three columns."""
    return tuple(float(length) for length in np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0))

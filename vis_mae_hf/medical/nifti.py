"""NIfTI files -> canonical RAS volumes, with the file's own grid kept so that results can be written back onto it.

`nib.as_closest_canonical` reorders axes by permutation and flips only (never interpolation), so the source grid is
fully described by the file's axis codes, its shape and its affine.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener

from .errors import InvalidGeometryError, MedicalImageError, UnreadableMedicalImageError
from .files import check_finite
from .limits import check_declared_size
from .windows import HeaderWindow


class NiftiVolume(NamedTuple):
    values: np.ndarray  # float32 (X, Y, Z), canonical RAS, scl_slope/scl_inter applied
    affine: np.ndarray  # RAS
    header_windows: tuple[HeaderWindow, ...]  # cal_min/cal_max when the file sets a display range
    source_axcodes: tuple[str, str, str]
    source_shape: tuple[int, ...]  # trailing singleton axes dropped: (X, Y) for a 2-D file
    source_affine: np.ndarray


def read_nifti(path: Path) -> NiftiVolume:
    """A NIfTI file as a canonical RAS volume (2-D data as one slice; 4-D data refused). The header is checked
    (shape against `limits.max_voxels()`, a finite non-singular affine) before any voxel is read."""
    try:
        image = nib.load(path)  # reads the header only; voxels are read from `dataobj` below
        shape = tuple(int(size) for size in image.shape)
    except Exception as error:
        raise UnreadableMedicalImageError(f"{path} is not a readable NIfTI file: {_reason(error)}") from error
    # Trailing singleton axes (X, Y, Z, 1) are common and harmless; real 4-D data (time, channels) is not an image.
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) > 3:
        raise MedicalImageError(
            f"{path} holds {len(shape)}-D data of shape {image.shape}; expected a 2-D or 3-D image."
        )
    check_declared_size(path, shape, f"a header shape of {' x '.join(str(size) for size in shape)}")
    source_affine = _checked_affine(image, path, len(shape))
    try:
        data = np.asarray(image.dataobj, dtype=np.float32).reshape(shape + (1,) * (3 - len(shape)))
    except Exception as error:
        raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt NIfTI file: {_reason(error)}") from error
    check_finite(data, path)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, source_affine, image.header))
    return NiftiVolume(
        values=np.asarray(canonical.dataobj, dtype=np.float32),
        affine=np.asarray(canonical.affine, dtype=np.float64),
        header_windows=_display_range(image.header),
        source_axcodes=tuple(nib.aff2axcodes(source_affine)),
        source_shape=shape,
        source_affine=source_affine,
    )


def _reason(error: BaseException) -> str:
    """An exception as text that is never empty (a MemoryError or an EOFError may carry no message)."""
    return str(error) or type(error).__name__


def _checked_affine(image, path: Path, spatial_axes: int) -> np.ndarray:
    """The voxel -> world affine, refused when it cannot place voxels: not finite, or singular (a zero voxel size or
    two axes along one direction). Without an sform, nibabel builds it from pixdim and silently turns a pixdim of 0
    into 1 mm: such a pixdim is refused too, rather than given a size the file never said."""
    header = image.header
    if not ("sform_code" in header.keys() and int(header["sform_code"]) > 0):
        zooms = _stored_voxel_sizes(image, path)[:spatial_axes]
        if not (np.isfinite(zooms).all() and (zooms != 0).all()):
            raise InvalidGeometryError(
                f"{path} has voxel sizes pixdim[1:{1 + spatial_axes}] = {zooms.tolist()} and no sform; expected finite "
                "voxel sizes other than 0 (mm)."
            )
    affine = np.asarray(image.affine, dtype=np.float64)
    lengths = np.linalg.norm(affine[:3, :3], axis=0)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) <= 1e-6 * np.prod(lengths):
        raise InvalidGeometryError(
            f"{path} has a singular or non-finite affine (voxel -> world mm) {affine[:3].round(4).tolist()}: its "
            "voxels cannot be placed in space. Expected finite voxel sizes other than 0 along three independent axes "
            "(pixdim, qform or sform)."
        )
    return affine


def _stored_voxel_sizes(image, path: Path) -> np.ndarray:
    """pixdim[1:4] as the file stores it: nibabel's header check, run as it loads, replaces a 0 there by 1."""
    try:
        with ImageOpener(path) as opener:
            stored = type(image.header).from_fileobj(opener, check=False)
    except Exception as error:
        raise UnreadableMedicalImageError(f"{path} is not a readable NIfTI file: {_reason(error)}") from error
    return np.asarray(stored["pixdim"][1:4], dtype=np.float64)


def _display_range(header) -> tuple[HeaderWindow, ...]:
    low, high = float(header["cal_min"]), float(header["cal_max"])
    if not high > low:  # both 0 (unset) in most files
        return ()
    return (HeaderWindow(high - low, (high + low) / 2.0, "cal_min/cal_max"),)


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """mm per array axis: the lengths of the affine's first three columns."""
    return tuple(float(length) for length in np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0))

"""Which kind of medical file a path is, and the checks every loader makes on paths, frames and pixel values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import MedicalImageError, MedicalImageNotFoundError

DICOM = "dicom"
NIFTI = "nifti"
RASTER = "raster"  # PNG, JPEG, TIFF, BMP

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def file_kind(path: Path) -> str:
    """`NIFTI`, `RASTER` or `DICOM` from the file name. DICOM files are named anyhow (.dcm, .ima, no suffix at all),
    so every name that is not NIfTI or a 2-D image format is taken to be DICOM; its 'DICM' prefix is checked when
    it is read."""
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return NIFTI
    if name.endswith(RASTER_SUFFIXES):
        return RASTER
    return DICOM


def existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MedicalImageNotFoundError(f"No such file: {path}")
    if path.is_dir():
        raise MedicalImageError(f"{path} is a folder; expected one image file (load_medical_volume reads folders).")
    return path


def check_finite(values: np.ndarray, path: Path) -> None:
    """Empty or NaN/Inf pixels would give a partial or meaningless image: refuse them, naming the file."""
    if values.size == 0:
        raise MedicalImageError(f"{path} holds an empty image (shape {values.shape}).")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise MedicalImageError(f"{path} has {bad} NaN or infinite pixel values; expected finite numbers.")


def checked_frame(frame: int | None, num_frames: int, path: Path) -> int:
    """The frame to read. A multi-frame file without `frame` is an error: taking frame 0 silently could hand a model
    the wrong image of a cine or a volume."""
    if frame is None:
        if num_frames > 1:
            raise MedicalImageError(f"{path} holds {num_frames} frames: pass frame=0..{num_frames - 1} to choose one.")
        return 0
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
        raise MedicalImageError(f"frame must be an int, got {frame!r} for {path}.")
    if not 0 <= frame < num_frames:
        raise MedicalImageError(f"frame={frame} is out of range for {path}, which has {num_frames} frame(s).")
    return int(frame)

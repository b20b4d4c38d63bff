"""A folder holding one DICOM series -> one volume in canonical RAS, with the series' modality and header window.

Folder files that are not DICOM images (no 'DICM' prefix, no pixel data: DICOMDIR, reports, notes) are skipped.
Slices are ordered by ImagePositionPatient projected on the slice normal (never by file name or InstanceNumber),
rescaled slice by slice, and the affine is built from ImageOrientationPatient, PixelSpacing and the positions
(DICOM LPS -> RAS). A folder that is not one consistent series (several series, orientations, sizes or spacings,
duplicate positions, uneven steps from a missing slice) is refused with `MixedSeriesError`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from .dicom import (
    MONOCHROME,
    decode_frame,
    frame_count,
    has_pixel_data,
    header_windows,
    modality_group,
    modality_values,
)
from .errors import MedicalImageError, MixedSeriesError, UnreadableMedicalImageError
from .files import check_finite
from .windows import HeaderWindow


class DicomSeries(NamedTuple):
    values: np.ndarray  # float32 (X, Y, Z), canonical RAS, modality values
    affine: np.ndarray  # RAS
    modality: str | None
    header_windows: tuple[HeaderWindow, ...]


def read_dicom_series(folder: Path) -> DicomSeries:
    slices = _series_slices(folder)
    _check_one_series(slices, folder)
    slices, positions, normal = _ordered_along_normal(slices, folder)
    planes = []
    for path, dataset in slices:
        pixels, photometric = decode_frame(dataset, path, 0)
        if photometric not in MONOCHROME or pixels.ndim != 2:
            raise MedicalImageError(f"{path} is {photometric}; a volume is built from greyscale slices only.")
        values = modality_values(pixels, dataset, 0)
        check_finite(values, path)
        planes.append(values.T)  # (rows, columns) -> (i = column, j = row)
    volume_lps = np.stack(planes, axis=-1).astype(np.float32)
    affine_ras = _series_affine(slices, positions, normal)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(volume_lps, affine_ras))
    windows = [header_windows(dataset, 0) for _, dataset in slices]
    return DicomSeries(
        values=np.asarray(canonical.dataobj, dtype=np.float32),
        affine=np.asarray(canonical.affine, dtype=np.float64),
        modality=_most_common(modality_group(dataset) for _, dataset in slices),
        # Slices normally share their windows; where they differ, the series shows best under the most common ones.
        header_windows=_most_common(found for found in windows if found) or (),
    )


def _most_common(values):
    counts = Counter(values)
    return counts.most_common(1)[0][0] if counts else None


def _series_slices(folder: Path) -> list[tuple[Path, Dataset]]:
    """Every DICOM image in the folder (not recursive); non-DICOM files and non-image objects are skipped."""
    slices = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            dataset = pydicom.dcmread(path)
        except InvalidDicomError:
            continue  # not DICOM at all (notes, thumbnails, .DS_Store)
        except Exception as error:
            raise UnreadableMedicalImageError(
                f"{path} (in the series folder) is a truncated or corrupt DICOM: {error}"
            ) from error
        if not has_pixel_data(dataset):
            continue  # DICOMDIR, reports, presentation states
        slices.append((path, dataset))
    if not slices:
        raise MedicalImageError(f"{folder} holds no DICOM image files.")
    return slices


def _single_value(slices, describe, what: str, folder: Path):
    values = Counter(describe(dataset) for _, dataset in slices)
    if len(values) > 1:
        listed = "; ".join(f"{value} ({count} files)" for value, count in values.most_common())
        raise MixedSeriesError(f"{folder} mixes {len(values)} different {what}: {listed}. Put one series per folder.")
    return next(iter(values))


def _check_one_series(slices: list[tuple[Path, Dataset]], folder: Path) -> None:
    for path, dataset in slices:
        if frame_count(dataset, path) > 1:
            raise MedicalImageError(f"{path} is a multi-frame DICOM; a series folder must hold one slice per file.")
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if keyword not in dataset:
                raise MedicalImageError(f"{path} has no {keyword}: it cannot be placed in a volume.")
    _single_value(slices, lambda d: str(d.get("SeriesInstanceUID", "")), "series (SeriesInstanceUID)", folder)
    _single_value(slices, lambda d: (int(d.Rows), int(d.Columns)), "image sizes (Rows, Columns)", folder)
    _single_value(
        slices, lambda d: tuple(round(float(v), 4) for v in d.ImageOrientationPatient), "orientations", folder
    )
    _single_value(slices, lambda d: tuple(round(float(v), 4) for v in d.PixelSpacing), "pixel spacings", folder)


def _ordered_along_normal(slices, folder: Path):
    """The slices sorted along the slice normal, their positions, and the normal; gaps and duplicates refused."""
    orientation = np.array([float(v) for v in slices[0][1].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([[float(v) for v in d.ImagePositionPatient] for _, d in slices])
    order = np.argsort(positions @ normal, kind="stable")
    slices, positions = [slices[i] for i in order], positions[order]
    distances = positions @ normal
    steps = np.diff(distances)
    if len(steps) and np.min(steps) < 1e-3:
        first = int(np.argmin(steps))
        raise MixedSeriesError(
            f"{folder}: {slices[first][0].name} and {slices[first + 1][0].name} sit at the same position "
            f"({distances[first]:.3f} mm along the slice normal): duplicate slices or several acquisitions."
        )
    if len(steps) > 1 and not np.allclose(steps, np.median(steps), rtol=0.01, atol=0.01):
        raise MixedSeriesError(
            f"{folder}: slice spacing is not uniform (from {steps.min():.3f} to {steps.max():.3f} mm): a slice is "
            "missing or the folder mixes acquisitions."
        )
    return slices, positions, normal


def _series_affine(slices, positions: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Voxel (column, row, slice) -> RAS mm."""
    first = slices[0][1]
    orientation = np.array([float(v) for v in first.ImageOrientationPatient])
    row_direction, column_direction = orientation[:3], orientation[3:]  # along a row (columns grow), down a column
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    if len(slices) > 1:
        slice_step = (positions[-1] - positions[0]) / (len(slices) - 1)
    else:
        thickness = first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        slice_step = normal * float(thickness)  # one slice: its thickness, else 1 mm, only scales the last axis
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_direction * column_spacing
    affine_lps[:3, 1] = column_direction * row_spacing
    affine_lps[:3, 2] = slice_step
    affine_lps[:3, 3] = positions[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps  # DICOM patient axes are LPS, NIfTI's are RAS

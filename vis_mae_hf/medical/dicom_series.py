"""A folder holding one DICOM series -> one volume in canonical RAS, with the series' modality and header window.

The volume is whole or refused: it never has fewer slices than the folder has slice files. Files that say they are
something else are skipped: DICOM objects without pixel data that are not images (DICOMDIR, reports, presentation
states) and non-DICOM files named like something else (notes.txt, a thumbnail .png, hidden files). A file that
should be a slice but cannot be read fails the series naming it (`UnreadableMedicalImageError`): a DICOM image
truncated before or inside its pixel data, and a file named like a slice (no suffix, .dcm, .dicom, .dic, .ima, or a
numeric suffix as in UID file names) without the 'DICM' prefix.

Headers are read first, pixel data only once the folder has passed every check (one series, one frame per file,
finite geometry, at most `limits.max_voxels()` voxels). Slices are ordered by ImagePositionPatient projected on the
slice normal (never by file name or InstanceNumber), rescaled slice by slice (each slice's RescaleSlope checked), and
the affine is built from ImageOrientationPatient, PixelSpacing and the positions (DICOM LPS -> RAS). A folder that is
not one consistent series (several series, orientations, sizes or spacings, duplicate positions, uneven steps from a
missing slice) is refused with `MixedSeriesError`; zero or non-finite spacings, positions or orientations with
`InvalidGeometryError`.
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
from pydicom.uid import UID

from .dicom import (
    MONOCHROME,
    check_inflated_size,
    decode_frame,
    frame_count,
    has_pixel_data,
    header_windows,
    modality_group,
    modality_values,
)
from .dicom_header import checked_pixel_spacing, header_numbers
from .errors import (
    InvalidGeometryError,
    MedicalImageError,
    MixedSeriesError,
    UnreadableMedicalImageError,
)
from .files import check_finite
from .limits import check_declared_size
from .windows import HeaderWindow


class DicomSeries(NamedTuple):
    values: np.ndarray  # float32 (X, Y, Z), canonical RAS, modality values
    affine: np.ndarray  # RAS
    modality: str | None
    header_windows: tuple[HeaderWindow, ...]


def read_dicom_series(folder: Path) -> DicomSeries:
    slices = _series_slices(folder)
    _check_one_series(slices, folder)
    rows, columns = int(slices[0][1].Rows), int(slices[0][1].Columns)
    check_declared_size(folder, (len(slices), rows, columns), f"{len(slices)} slices x Rows {rows} x Columns {columns}")
    slices, positions, normal = _ordered_along_normal(slices, folder)
    volume_lps = np.empty((columns, rows, len(slices)), dtype=np.float32)  # (i = column, j = row, slice)
    for index, (path, dataset) in enumerate(slices):
        pixels, photometric = decode_frame(dataset, path, 0)
        if photometric not in MONOCHROME or pixels.ndim != 2:
            raise MedicalImageError(f"{path} is {photometric}; a volume is built from greyscale slices only.")
        values = modality_values(pixels, dataset, 0, path)
        check_finite(values, path)
        volume_lps[:, :, index] = values.T
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


# Names DICOM slices are given: IM0001, slice.dcm, 1.2.840.113619.2.55.3.604688119.868.1249343483.504 (a UID).
_SLICE_SUFFIXES = ("", ".dcm", ".dicom", ".dic", ".ima")
_DEFER_BYTES = 4096  # pixel data (and other large values) stay on disk until the folder has passed its checks


def _named_like_a_slice(path: Path) -> bool:
    suffix = path.suffix.lower()
    return not path.name.startswith(".") and (suffix in _SLICE_SUFFIXES or suffix[1:].isdigit())


def _series_slices(folder: Path) -> list[tuple[Path, Dataset]]:
    """Every slice file of the folder (not recursive) with its header; pixel data are read when first used."""
    slices = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        check_inflated_size(path)
        try:
            dataset = pydicom.dcmread(path, defer_size=_DEFER_BYTES)
        except InvalidDicomError as error:
            if not _named_like_a_slice(path):
                continue  # notes, thumbnails, .DS_Store
            raise UnreadableMedicalImageError(
                f"{path} is named like a DICOM slice but is not a DICOM file (no 'DICM' prefix after the 128-byte "
                f"preamble): a truncated slice would be missing from the volume of {folder}. Replace it with the "
                "complete file, or move it out of the folder if it is not part of the series."
            ) from error
        except Exception as error:
            raise UnreadableMedicalImageError(
                f"{path} (in the series folder {folder}) is a truncated or corrupt DICOM: {error}"
            ) from error
        if has_pixel_data(dataset):
            slices.append((path, dataset))
        elif _should_hold_an_image(dataset):
            what = _sop_class(dataset) or "no SOP class"
            raise UnreadableMedicalImageError(
                f"{path} in the series folder {folder} is a DICOM image ({what}) without "
                "pixel data: the file is truncated before its pixels, and the volume would lack this slice. Replace "
                "it with the complete file."
            )
    if not slices:
        raise MedicalImageError(f"{folder} holds no DICOM image files.")
    return slices


def _sop_class(dataset: Dataset) -> str:
    """The object's SOP class by name ("CT Image Storage"), from the dataset or its file meta; "" when neither says."""
    file_meta = getattr(dataset, "file_meta", None) or Dataset()
    uid = str(dataset.get("SOPClassUID") or file_meta.get("MediaStorageSOPClassUID") or "")
    return UID(uid).name if uid else ""


def _should_hold_an_image(dataset: Dataset) -> bool:
    """A DICOM object without pixel data that should have them: an image storage class, image attributes, or no SOP
    class at all (a file cut off in its meta header). DICOMDIR, reports and presentation states have none of these."""
    sop_class = _sop_class(dataset)
    image_attributes = ("Rows", "Columns", "ImagePositionPatient")
    return not sop_class or "Image Storage" in sop_class or any(keyword in dataset for keyword in image_attributes)


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
        for keyword in ("Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if keyword not in dataset:
                raise MedicalImageError(f"{path} has no {keyword}: it cannot be placed in a volume.")
        _check_slice_geometry(path, dataset)
    _single_value(slices, lambda d: str(d.get("SeriesInstanceUID", "")), "series (SeriesInstanceUID)", folder)
    _single_value(slices, lambda d: (int(d.Rows), int(d.Columns)), "image sizes (Rows, Columns)", folder)
    _single_value(
        slices, lambda d: tuple(round(float(v), 4) for v in d.ImageOrientationPatient), "orientations", folder
    )
    _single_value(slices, lambda d: tuple(round(float(v), 4) for v in d.PixelSpacing), "pixel spacings", folder)


def _check_slice_geometry(path: Path, dataset: Dataset) -> None:
    """Finite positions, spacings > 0, and an orientation of two perpendicular unit vectors: anything else gives a
    singular or meaningless affine, or a slice order that means nothing."""
    header_numbers(dataset, "ImagePositionPatient", 3, path)
    checked_pixel_spacing(dataset, path, zero_is_unknown=False)
    orientation = np.array(header_numbers(dataset, "ImageOrientationPatient", 6, path))
    row_direction, column_direction = orientation[:3], orientation[3:]
    lengths = np.linalg.norm(row_direction), np.linalg.norm(column_direction)
    if not (np.allclose(lengths, 1.0, atol=0.01) and abs(row_direction @ column_direction) < 0.01):
        shown = "\\".join(f"{value:g}" for value in orientation)
        raise InvalidGeometryError(
            f"{path} has ImageOrientationPatient {shown}; expected two perpendicular unit vectors (the row and "
            "column directions in the patient)."
        )


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
        slice_step = normal * _single_slice_thickness(first)
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_direction * column_spacing
    affine_lps[:3, 1] = column_direction * row_spacing
    affine_lps[:3, 2] = slice_step
    affine_lps[:3, 3] = positions[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps  # DICOM patient axes are LPS, NIfTI's are RAS


def _single_slice_thickness(dataset: Dataset) -> float:
    """A one-slice volume's extent along the normal: SpacingBetweenSlices, else SliceThickness, else 1 mm. It only
    scales the last axis, so a missing, zero or unreadable value falls back to 1 mm rather than a singular affine."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            thickness = float(dataset.get(keyword) or 0.0)
        except (TypeError, ValueError):
            continue
        if np.isfinite(thickness) and thickness > 0:
            return thickness
    return 1.0

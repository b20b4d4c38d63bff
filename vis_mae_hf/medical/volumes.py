"""One 3-D medical volume in canonical RAS with the facts of its source: `load_medical_volume` -> `MedicalVolume`.

Volumes come from a NIfTI file or a folder holding one DICOM series (`dicom_series`), in the file's physical units
(HU for CT). The volume remembers the file's own grid (axis codes, shape, affine), so a result computed on the RAS
volume is written back in the input's voxel order (`to_source_layout`) without opening the file again.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..image_processing_vis_mae import apply_window, scale_min_max
from .archives import is_series_archive, unpack_series_archive
from .dicom_series import read_dicom_series
from .errors import MedicalImageError, MedicalImageNotFoundError
from .files import DICOM, NIFTI, file_kind
from .nifti import read_nifti, voxel_spacing
from .windows import HeaderWindow, Window, file_window

RAS = ("R", "A", "S")


@dataclass(frozen=True, eq=False)
class MedicalVolume:
    """A 3-D volume and what its source says about it.

    Attributes:
        values: float32 (X, Y, Z) in canonical RAS (X towards the patient's right, Y anterior, Z superior), in
            physical units (HU for CT; NIfTI scl_slope/scl_inter applied).
        affine: float64 4x4 voxel -> RAS world (mm) matrix of `values`.
        path: the NIfTI file or the DICOM series folder.
        kind: "nifti" or "dicom" (a series folder).
        modality: DICOM series: the `vocabulary` group of the slices' Modality tag; NIfTI: None (it carries none).
        header_windows: the source's own windows: a DICOM series' WindowWidth/WindowCenter (the most common among
            its slices), a NIfTI file's cal_min/cal_max when set.
        source_axcodes: the file's own axis codes, e.g. ("L", "A", "S"); ("R", "A", "S") for a DICOM series, which
            has no stored voxel grid beyond the one built from its slices.
        source_shape: the file's own shape ((X, Y) for a 2-D NIfTI).
        source_affine: the file's own affine.
    """

    values: np.ndarray
    affine: np.ndarray
    path: Path
    kind: str
    modality: str | None
    header_windows: tuple[HeaderWindow, ...]
    source_axcodes: tuple[str, str, str]
    source_shape: tuple[int, ...]
    source_affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along X, Y, Z of `values`."""
        return voxel_spacing(self.affine)

    def resolved_window(self, window: Window | None, *, window_index: int = 0) -> tuple[float, float] | None:
        """The (width, level) `window` means for this volume; None for min-max. Errors name the file."""
        return file_window(window, self.header_windows, window_index, self.path, self.kind)

    def unit_range(self, window: Window | None = None, *, window_index: int = 0) -> np.ndarray:
        """`values` mapped onto [0, 1], float32: None = min-max over the whole volume (so slices keep their relative
        brightness), "header" = the source's own window, a preset name or (width, level) that window.

        Raises:
            MedicalImageError: "header" for a source without a window of its own, an unknown preset.
        """
        width_level = self.resolved_window(window, window_index=window_index)
        scaled = scale_min_max(self.values) if width_level is None else apply_window(self.values, *width_level)
        return np.asarray(scaled, dtype=np.float32)

    def to_source_layout(self, array: np.ndarray) -> np.ndarray:
        """An array on the RAS grid of `values` (a label map, one class's probabilities) in the source's own voxel
        order and shape, so that with `source_affine` it overlays the input in every viewer and in plain indexing."""
        array = np.asarray(array)
        if array.shape != self.values.shape:
            raise MedicalImageError(
                f"An array of shape {array.shape} does not fit the volume of {self.path}, of shape {self.values.shape}."
            )
        # The volume was reoriented with as_closest_canonical (source -> RAS); undo it with the transform RAS -> source.
        to_source = nib.orientations.ornt_transform(
            nib.orientations.axcodes2ornt(RAS), nib.orientations.axcodes2ornt(self.source_axcodes)
        )
        return np.ascontiguousarray(nib.orientations.apply_orientation(array, to_source).reshape(self.source_shape))


def load_medical_volume(path: str | Path) -> MedicalVolume:
    """Load a 3-D volume in physical units (HU for CT) in canonical RAS orientation, with its source's facts.

    Args:
        path: a NIfTI file (.nii / .nii.gz), a folder holding one DICOM series (see `dicom_series`), or a zip file
            of such a folder (unpacked into a temporary folder by `archives`, removed once the series is read).

    Raises:
        MedicalImageNotFoundError; MixedSeriesError for several series, orientations or image sizes in one folder,
        duplicate slice positions or uneven slice spacing (a missing slice); MedicalImageError for 4-D data,
        NaN/Inf values, colour series, a path that is neither.
    """
    path = Path(path)
    if not path.exists():
        raise MedicalImageNotFoundError(f"No such file or folder: {path}")
    if path.is_dir() or is_series_archive(path):
        series = _read_series(path)
        return MedicalVolume(
            values=series.values,
            affine=series.affine,
            path=path,
            kind=DICOM,
            modality=series.modality,
            header_windows=series.header_windows,
            source_axcodes=RAS,
            source_shape=series.values.shape,
            source_affine=series.affine,
        )
    if file_kind(path) != NIFTI:
        raise MedicalImageError(
            f"load_medical_volume expects a NIfTI file (.nii, .nii.gz), a folder of DICOM slices or a zip of one, "
            f"got {path}."
        )
    nifti = read_nifti(path)
    return MedicalVolume(
        values=nifti.values,
        affine=nifti.affine,
        path=path,
        kind=NIFTI,
        modality=None,
        header_windows=nifti.header_windows,
        source_axcodes=nifti.source_axcodes,
        source_shape=nifti.source_shape,
        source_affine=nifti.source_affine,
    )


def _read_series(path: Path):
    """A series folder, or a zipped one unpacked under its own name (so errors name `<archive name>/<slice>`)."""
    if path.is_dir():
        return read_dicom_series(path)
    with tempfile.TemporaryDirectory(prefix="vis-mae-series-") as temporary:
        return read_dicom_series(unpack_series_archive(path, Path(temporary) / path.name))

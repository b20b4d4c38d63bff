"""Medical image files in, typed results out: DICOM, NIfTI and 2-D image formats.

- `load_medical_image(path, window=..., frame=...) -> MedicalImage`: one 2-D image as float32 in [0, 1] with its
  modality values, modality, pixel spacing, header windows and frame count; `MedicalImage.with_window` re-windows it
  without reading the file again (`images.py`).
- `load_medical_volume(path) -> MedicalVolume`: a NIfTI file or a DICOM series folder as a canonical RAS volume in
  physical units with its affine, spacing, modality, header windows and the source's own grid;
  `MedicalVolume.unit_range(window)` maps it to [0, 1], `to_source_layout` puts a result back on the input's grid
  (`volumes.py`).
- `save_mask_like(mask, affine, path)` writes a label mask as NIfTI (`masks.py`).

Window specifications (`preset | (width, level) | "header"`) are parsed in `windows.py`; display orientation of
volume slices and its inverse are in `orientation.py`. The format readers are `dicom.py`, `dicom_series.py`,
`nifti.py` and `raster.py`; errors (all ValueErrors) are in `errors.py`.

Input that disagrees with itself is refused, never read into a plausible wrong image: DICOM pixel data must agree
with their header and a RescaleSlope must be finite and non-zero (`dicom_header.py`), a series must be whole (every
slice file readable, no gaps), spacings and affines must place voxels. Every reader checks the size a header
declares against one limit, `limits.max_voxels()` (default 512 x 512 x 2048 voxels; the environment variable
VIS_MAE_MAX_VOXELS raises it), before allocating anything.
"""

from .errors import (
    ImageTooLargeError,
    InvalidGeometryError,
    InvalidRescaleError,
    MedicalImageError,
    MedicalImageNotFoundError,
    MissingDicomDecoderError,
    MixedSeriesError,
    NoImagePixelDataError,
    PixelDataMismatchError,
    UnknownFileFormatError,
    UnreadableMedicalImageError,
)
from .images import MedicalImage, load_medical_image
from .masks import save_mask_like
from .volumes import MedicalVolume, load_medical_volume
from .windows import HeaderWindow

__all__ = [
    "HeaderWindow",
    "ImageTooLargeError",
    "InvalidGeometryError",
    "InvalidRescaleError",
    "MedicalImage",
    "MedicalImageError",
    "MedicalImageNotFoundError",
    "MedicalVolume",
    "MissingDicomDecoderError",
    "MixedSeriesError",
    "NoImagePixelDataError",
    "PixelDataMismatchError",
    "UnknownFileFormatError",
    "UnreadableMedicalImageError",
    "load_medical_image",
    "load_medical_volume",
    "save_mask_like",
]

"""What `vis-mae predict` reads: which inputs are volumes, and which intensity window turns them into [0, 1].

Dispatch (`input_kind`): a folder is a DICOM series volume, a `.nii` / `.nii.gz` file a NIfTI volume (a 2-D NIfTI is
a volume of one slice), anything else one 2-D image (DICOM with any or no suffix, PNG, JPEG, TIFF, BMP). Reading and
validation are `medical_io`'s: this module only decides which window to ask for.

Window precedence, the same for 2-D images and volumes:

1. the window the user asked for (`--window`: a `CT_WINDOW_PRESETS` name, "W,L", or "header" for the file's own
   window: DICOM WindowCenter/WindowWidth, NIfTI cal_min/cal_max);
2. the model's processor `hounsfield_window` (the window the model was fine-tuned with), for inputs in Hounsfield
   units: CT DICOM files and series, and NIfTI volumes (NIfTI carries no modality; a model with a CT window is a CT
   model, so its NIfTI input is taken to be CT);
3. otherwise the loader's default: a CT DICOM's own header window (the view its scanner chose), else min-max
   scaling (per image for 2-D files, over the whole volume for volumes, so that slices keep their relative
   brightness); 8-bit PNG/JPEG are display images already and are only divided by 255.

The processor then applies the model's own normalisation to these [0, 1] images.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..image_processing_vis_mae import (
    apply_window,
    resolve_window,
    scale_min_max,
)
from ..medical import (
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    MedicalImageError,
    MedicalImageNotFoundError,
    header_windows,  # the one parser of WindowCenter/WindowWidth (multi-valued, functional groups)
    load_medical_volume,
    modality_of,
)
from ..medical.windows import HEADER_WINDOW, Window, describe_window
from ..vocabulary import CT

IMAGE = "image"
VOLUME = "volume"


def input_kind(path: str | Path) -> str:
    """`VOLUME` for a folder (DICOM series) or a NIfTI file, `IMAGE` for any other file."""
    path = Path(path)
    if not path.exists():
        raise MedicalImageNotFoundError(f"No such file or folder: {path}")
    if path.is_dir() or path.name.lower().endswith(NIFTI_SUFFIXES):
        return VOLUME
    return IMAGE


def output_stem(path: str | Path) -> str:
    """The name outputs are written under: the file name without its image suffix, or the folder name."""
    path = Path(path)
    name = path.name
    for suffix in sorted(NIFTI_SUFFIXES + RASTER_SUFFIXES + (".dcm", ".dicom", ".ima"), key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def image_window(path: str | Path, window: Window | None, processor_window: Window | None) -> Window | None:
    """The `window` to pass to `load_medical_image` for a 2-D input (see the module docstring for the order)."""
    if window is not None:
        return window
    if processor_window is None:
        return None
    path = Path(path)
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return processor_window
    if path.name.lower().endswith(RASTER_SUFFIXES):
        return None  # no modality: a PNG is a display image, a 16-bit TIFF raw data of unknown kind
    return processor_window if modality_of(path) == CT else None


def load_volume_in_unit_range(
    path: str | Path, window: Window | None, processor_window: Window | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """A NIfTI volume or DICOM series folder as float32 (X, Y, Z) in [0, 1], canonical RAS, with its affine.

    Returns:
        `(volume, affine, intensity)`: `intensity` says which mapping was used ("window abdomen (model processor)",
        "min-max over the volume", ...), for the user.
    """
    path = Path(path)
    volume, affine = load_medical_volume(path)
    # DICOM series: modality and header window from the slice headers (NIfTI has neither)
    series_headers = _series_headers(path) if path.is_dir() else None
    is_ct_series = series_headers is not None and _most_common_modality(series_headers) == CT
    if window is not None:
        source = "--window"
    elif processor_window is not None and (series_headers is None or is_ct_series):
        window, source = processor_window, "the model's processor"
    elif is_ct_series and _series_header_window(series_headers) is not None:
        window, source = HEADER_WINDOW, "CT default"
    else:
        return np.asarray(scale_min_max(volume), dtype=np.float32), affine, "min-max over the volume"

    if window == HEADER_WINDOW:
        width, level = _volume_header_window(path, series_headers)
        label = f"header W{width:g}/L{level:g}"
    else:
        try:
            width, level = resolve_window(window)
        except ValueError as error:
            raise MedicalImageError(f"{error} (predicting {path})") from error
        label = describe_window(window)
    unit = np.asarray(apply_window(volume, width, level), dtype=np.float32)
    return unit, affine, f"window {label} ({source})"


def _volume_header_window(path: Path, series_headers: list | None) -> tuple[float, float]:
    if series_headers is not None:
        window = _series_header_window(series_headers)
        if window is None:
            raise MedicalImageError(
                f"--window header but the DICOM series in {path} has no WindowCenter/WindowWidth; pass a preset or "
                "WIDTH,LEVEL."
            )
        return window
    header = nib.load(path).header
    low, high = float(header["cal_min"]), float(header["cal_max"])
    if not high > low:
        raise MedicalImageError(f"--window header but {path} sets no display range (cal_min/cal_max).")
    return high - low, (high + low) / 2.0


def _series_headers(folder: Path) -> list[pydicom.Dataset]:
    """The headers of the folder's slices (load_medical_volume has already read and validated the series)."""
    headers = []
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            dataset = pydicom.dcmread(file, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError):
            continue  # not DICOM: skipped by load_medical_volume too
        if "ImagePositionPatient" in dataset:  # slices only, not reports or DICOMDIRs
            headers.append(dataset)
    return headers


def _most_common_modality(headers: list[pydicom.Dataset]) -> str | None:
    modalities = Counter(modality_of(dataset) for dataset in headers)
    return modalities.most_common(1)[0][0] if modalities else None


def _series_header_window(headers: list[pydicom.Dataset]) -> tuple[float, float] | None:
    """The slices' first header window (width, level); slices normally share it, else the most common one."""
    windows: Counter[tuple[float, float]] = Counter()
    for dataset in headers:
        found = header_windows(dataset, 0)
        if found and found[0][0] > 0:
            windows[(found[0][0], found[0][1])] += 1
    return windows.most_common(1)[0][0] if windows else None


def unique_output_stems(paths: Sequence[Path]) -> dict[Path, str]:
    """Each input's output stem; two inputs that would overwrite each other's outputs are an error naming both."""
    stems: dict[str, Path] = {}
    for path in paths:
        stem = output_stem(path)
        if stem in stems:
            raise MedicalImageError(
                f"{stems[stem]} and {path} would both write outputs named {stem}_*: predict them into different "
                "--output folders."
            )
        stems[stem] = path
    return {path: stem for stem, path in stems.items()}

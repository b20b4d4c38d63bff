"""What `vis-mae predict` reads: which inputs are volumes, and which intensity window turns them into [0, 1].

Dispatch (`input_kind`): a folder or a zip file is a DICOM series volume, a `.nii` / `.nii.gz` file a NIfTI volume (a
2-D NIfTI is a volume of one slice), anything else one 2-D image (DICOM with any or no suffix, PNG, JPEG, TIFF, BMP). Reading and
validation are `medical`'s: each input is read once, and the window is chosen from what the loaded `MedicalImage` /
`MedicalVolume` says (its kind and modality), then applied to the values it holds.

Window precedence, the same for 2-D images and volumes (`model_window`):

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

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..medical import (
    MedicalImage,
    MedicalImageError,
    MedicalImageNotFoundError,
    MedicalVolume,
    load_medical_image,
)
from ..medical.archives import ARCHIVE_SUFFIXES, is_series_archive
from ..medical.files import NIFTI, NIFTI_SUFFIXES, RASTER_SUFFIXES
from ..medical.windows import HEADER_WINDOW, Window, window_label
from ..vocabulary import CT

IMAGE = "image"
VOLUME = "volume"

USER_WINDOW = "--window"
PROCESSOR_WINDOW = "the model's processor"
LOADER_DEFAULT = "loader default"
CT_DEFAULT = "CT default"


def input_kind(path: str | Path) -> str:
    """`VOLUME` for a folder (DICOM series), a zip of one or a NIfTI file, `IMAGE` for any other file."""
    path = Path(path)
    if not path.exists():
        raise MedicalImageNotFoundError(f"No such file or folder: {path}")
    if path.is_dir() or path.name.lower().endswith(NIFTI_SUFFIXES) or is_series_archive(path):
        return VOLUME
    return IMAGE


def output_stem(path: str | Path) -> str:
    """The name outputs are written under: the file name without its image suffix, or the folder name."""
    path = Path(path)
    name = path.name
    for suffix in sorted(NIFTI_SUFFIXES + RASTER_SUFFIXES + ARCHIVE_SUFFIXES + (".dcm", ".dicom", ".ima"), key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def model_window(
    window: Window | None, processor_window: Window | None, *, kind: str, modality: str | None
) -> tuple[Window | None, str]:
    """Steps 1 and 2 of the precedence above for a loaded input: (the window, who chose it); (None, `LOADER_DEFAULT`)
    leaves the loader's default."""
    if window is not None:
        return window, USER_WINDOW
    if processor_window is not None and (kind == NIFTI or modality == CT):
        return processor_window, PROCESSOR_WINDOW
    return None, LOADER_DEFAULT


def load_image_for_model(
    path: str | Path, window: Window | None, processor_window: Window | None, *, frame: int | None = None
) -> tuple[MedicalImage, str]:
    """A 2-D input read once, under the window of the precedence above; and how its intensities were mapped, for
    the user (e.g. "window brain (the model's processor)")."""
    image = load_medical_image(path, window=window, frame=frame)
    chosen, source = model_window(window, processor_window, kind=image.kind, modality=image.modality)
    if source == PROCESSOR_WINDOW:
        image = image.with_window(chosen)
    return image, f"{image.intensity} ({source})"


def volume_in_unit_range(
    volume: MedicalVolume, window: Window | None, processor_window: Window | None
) -> tuple[np.ndarray, str]:
    """A loaded volume as float32 (X, Y, Z) in [0, 1] under the window of the precedence above, and how its
    intensities were mapped ("window abdomen (the model's processor)", "min-max over the volume", ...)."""
    chosen, source = model_window(window, processor_window, kind=volume.kind, modality=volume.modality)
    if source == LOADER_DEFAULT and volume.modality == CT and volume.header_windows:
        chosen, source = HEADER_WINDOW, CT_DEFAULT
    if chosen is None:
        return volume.unit_range(None), "min-max over the volume"
    label = window_label(chosen, volume.resolved_window(chosen))
    return volume.unit_range(chosen), f"{label} ({source})"


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

"""Medical image files -> arrays: DICOM, NIfTI and 2-D image formats as model-ready [0, 1] images, volumes in RAS.

`load_medical_image` gives one 2-D image as float32 in [0, 1]: (H, W) grey or (H, W, 3) RGB. The intensity steps
follow DICOM's order: stored values -> modality transform (rescale slope/intercept, Modality LUT, or the Enhanced
functional groups) -> window (VOI) -> [0, 1] -> MONOCHROME1 inversion. Windowing is `apply_window` from
`image_processing_vis_mae`, the one implementation the processor uses too.

What `window` means:

- a `CT_WINDOW_PRESETS` name or `(width, level)`: that window on the modality values (HU for CT);
- "header": the file's own window: DICOM WindowCenter/WindowWidth (`window_index` picks one of several; Enhanced
  objects keep them per frame in the functional groups), else its VOI LUT Sequence; NIfTI cal_min/cal_max;
- None: CT DICOM uses its header window when it has one (the view the scanner/technologist chose), else min-max;
  everything else is min-max scaled per image. 8-bit PNG/JPEG/BMP (display images) are only divided by 255;
  16-bit, 32-bit and float images (raw data that often fills a small part of the type's range) are min-max scaled.

Frames: a DICOM with NumberOfFrames > 1 (or a multi-page TIFF) needs `frame`; taking frame 0 silently could hand a
model the wrong image of a cine or a volume. `count_frames` says how many there are.

NIfTI slices are axial slices of the volume in canonical RAS orientation (`nib.as_closest_canonical`), shown the
radiological way, like a DICOM axial image: top row anterior, left column the patient's right.

`load_medical_volume` gives a 3-D volume in the file's physical units (HU for CT) with its affine, both in canonical
RAS orientation, from a NIfTI file or a folder holding one DICOM series; `save_mask_like` writes a prediction back.
"""

from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    convert_color_space,
    get_decoder,
)
from pydicom.uid import UID

from ..image_processing_vis_mae import (
    apply_window,
    pil_image_to_array,
    resolve_window,
    scale_min_max,
)
from ..vocabulary import CT, DICOM_MODALITY_GROUPS
from .orientation import AXIAL_AXIS, display_slice

# ------------------------------------------------------------------------------------------------------------------
# Errors: all are ValueError subclasses (a missing file is also a FileNotFoundError, a missing codec an ImportError)
# ------------------------------------------------------------------------------------------------------------------


class MedicalImageError(ValueError):
    """A medical image file or argument that cannot give a valid image; the message names the file."""


class MedicalImageNotFoundError(MedicalImageError, FileNotFoundError):
    """The path does not exist."""


class UnreadableMedicalImageError(MedicalImageError):
    """Not DICOM / NIfTI / a known image format, or truncated or corrupt."""


class NoImagePixelDataError(MedicalImageError):
    """A DICOM object that holds no image (structured report, DICOM-SEG masks, ...)."""


class MissingDicomDecoderError(MedicalImageError, ImportError):
    """The DICOM's compressed transfer syntax needs a decoder package that is not installed."""


class MixedSeriesError(MedicalImageError):
    """A DICOM folder whose files are not one consistent series."""


NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"

# Which packages decode which compressed transfer syntaxes (pydicom decodes native and RLE data itself).
_DECODER_PACKAGES = {
    **dict.fromkeys(
        ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"),
        "pylibjpeg + pylibjpeg-libjpeg (or Pillow, or python-gdcm)",
    ),
    **dict.fromkeys(
        ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
        "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    ),
    **dict.fromkeys(
        (
            "1.2.840.10008.1.2.4.90",
            "1.2.840.10008.1.2.4.91",
            "1.2.840.10008.1.2.4.201",
            "1.2.840.10008.1.2.4.202",
            "1.2.840.10008.1.2.4.203",
        ),
        "pylibjpeg + pylibjpeg-openjpeg (or python-gdcm)",
    ),
}


# ------------------------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------------------------


def load_medical_image(
    path: str | Path,
    *,
    window: str | tuple[float, float] | None = None,
    frame: int | None = None,
    window_index: int = 0,
    slice_index: int | None = None,
) -> np.ndarray:
    """Load one 2-D medical image as float32 in [0, 1]: (H, W) for grey, (H, W, 3) for colour.

    Args:
        path: a DICOM file (any or no suffix), a NIfTI volume (.nii, .nii.gz), or a PNG/JPEG/TIFF/BMP image
            (8-bit, 16-bit or float).
        window: a CT preset name, `(width, level)`, "header", or None (see the module docstring). Colour images
            and 8-bit display images take no window.
        frame: the frame of a multi-frame DICOM or page of a multi-page TIFF, from 0; required when there are
            several. NIfTI volumes use `slice_index` instead.
        window_index: which of the header's windows (WindowCenter/WindowWidth values, or VOI LUT items) "header"
            uses, and CT with `window=None`.
        slice_index: axial slice of a NIfTI volume in canonical RAS order (0 = most inferior); default the middle.

    Raises:
        MedicalImageNotFoundError, UnreadableMedicalImageError, NoImagePixelDataError, MissingDicomDecoderError,
        MedicalImageError (bad frame/slice/window, NaN/Inf or empty pixels, 4-D data).
    """
    path = _existing_file(path)
    kind = file_kind(path)
    if slice_index is not None and kind != "nifti":
        raise MedicalImageError(f"slice_index applies to NIfTI volumes; {path} is not one (use frame for frames).")
    if kind == "nifti":
        if frame is not None:
            raise MedicalImageError(
                f"frame applies to multi-frame DICOM and TIFF; for the NIfTI {path} use slice_index."
            )
        return _load_nifti_slice(path, window, slice_index)
    if kind == "raster":
        return _load_raster_image(path, window, frame)
    return _load_dicom_image(path, window, frame, window_index)


def count_frames(path: str | Path) -> int:
    """How many frames `load_medical_image(path, frame=...)` accepts: DICOM NumberOfFrames, TIFF pages, else 1.

    NIfTI volumes have slices, not frames: use `load_medical_volume` (or `slice_index`) for them.
    """
    path = _existing_file(path)
    kind = file_kind(path)
    if kind == "nifti":
        raise MedicalImageError(f"{path} is a NIfTI volume: it has slices (slice_index), not frames.")
    if kind == "raster":
        with _open_raster(path) as image:
            return int(getattr(image, "n_frames", 1))
    return _dicom_frame_count(_read_dicom(path, with_pixels=False), path)


def modality_of(path_or_dataset: str | Path | Dataset) -> str | None:
    """The modality group of a DICOM: "CT", "MR", "PET", "XRAY" or "US"; None when unknown or not DICOM.

    From the Modality tag: PT -> PET; CR/DX/DR/MG/RF/XA/PX/IO/RG -> XRAY; US/IVUS -> US. NM (gamma camera, SPECT)
    is not PET and gives None, like secondary captures (OT) and non-image objects. NIfTI and PNG/JPEG/TIFF/BMP files
    carry no modality: None.
    """
    if isinstance(path_or_dataset, Dataset):
        dataset = path_or_dataset
    else:
        path = _existing_file(path_or_dataset)
        if file_kind(path) != "dicom":
            return None
        dataset = _read_dicom(path, with_pixels=False)
    modality = str(dataset.get("Modality", "") or "").strip().upper()
    return DICOM_MODALITY_GROUPS.get(modality)


def load_medical_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Load a 3-D volume in physical units (HU for CT) and its voxel-to-world affine, in canonical RAS orientation.

    Args:
        path: a NIfTI file (.nii / .nii.gz; scl_slope/scl_inter applied) or a folder holding one DICOM series.
            Folder files that are not DICOM images (no 'DICM' prefix, no pixel data: DICOMDIR, reports, notes) are
            skipped; DICOM slices are ordered by ImagePositionPatient projected on the slice normal (never by
            file name or InstanceNumber), rescaled slice by slice, and the affine is built from
            ImageOrientationPatient, PixelSpacing and the positions (DICOM LPS -> RAS).

    Returns:
        `(volume, affine)`: float32 (X, Y, Z) with X towards the patient's right, Y anterior, Z superior, and a
        float64 4x4 affine, so that `nib.Nifti1Image(mask, affine)` (or `save_mask_like`) writes a prediction that
        overlays the input.

    Raises:
        MixedSeriesError for several series, orientations or image sizes in one folder, duplicate slice positions
        or uneven slice spacing (a missing slice); MedicalImageError for 4-D data, NaN/Inf values, colour series.
    """
    path = Path(path)
    if not path.exists():
        raise MedicalImageNotFoundError(f"No such file or folder: {path}")
    if path.is_dir():
        volume, affine = _dicom_series_volume(path)
    elif file_kind(path) == "nifti":
        image = _load_nifti(path)
        volume, affine = np.asarray(image.dataobj, dtype=np.float32), image.affine
        _check_finite(volume, path)
    else:
        raise MedicalImageError(
            f"load_medical_volume expects a NIfTI file (.nii, .nii.gz) or a folder of DICOM slices, got {path}."
        )
    return volume, np.asarray(affine, dtype=np.float64)


def save_mask_like(mask, affine, path: str | Path) -> Path:
    """Write a label mask as a uint8 NIfTI with `affine` (e.g. the one `load_medical_volume` returned).

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


# ------------------------------------------------------------------------------------------------------------------
# Shared checks
# ------------------------------------------------------------------------------------------------------------------


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MedicalImageNotFoundError(f"No such file: {path}")
    if path.is_dir():
        raise MedicalImageError(f"{path} is a folder; expected one image file (load_medical_volume reads folders).")
    return path


def file_kind(path: Path) -> str:
    """"nifti", "raster" or "dicom" from the file name (DICOM files are named anyhow, so it is the default)."""
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(RASTER_SUFFIXES):
        return "raster"
    return "dicom"  # .dcm, .ima or no suffix at all: DICOM files are named anyhow


def _check_finite(values: np.ndarray, path: Path) -> None:
    if values.size == 0:
        raise MedicalImageError(f"{path} holds an empty image (shape {values.shape}).")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise MedicalImageError(f"{path} has {bad} NaN or infinite pixel values; expected finite numbers.")


def _checked_frame(frame: int | None, n_frames: int, path: Path) -> int:
    if frame is None:
        if n_frames > 1:
            raise MedicalImageError(
                f"{path} holds {n_frames} frames: pass frame=0..{n_frames - 1} to choose one "
                "(count_frames(path) tells how many)."
            )
        return 0
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
        raise MedicalImageError(f"frame must be an int, got {frame!r} for {path}.")
    if not 0 <= frame < n_frames:
        raise MedicalImageError(f"frame={frame} is out of range for {path}, which has {n_frames} frame(s).")
    return int(frame)


def _windowed(values: np.ndarray, window, path: Path) -> np.ndarray:
    """An explicit window (preset or (width, level)) or min-max for None; "header" is resolved by the callers."""
    if window is None:
        return scale_min_max(values)
    try:
        width, level = resolve_window(window)
    except ValueError as error:
        raise MedicalImageError(f"{error} (loading {path}; 'header' uses the file's own window)") from error
    return apply_window(values, width, level)


# ------------------------------------------------------------------------------------------------------------------
# DICOM
# ------------------------------------------------------------------------------------------------------------------


def _read_dicom(path: Path, with_pixels: bool = True) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=not with_pixels)
    except InvalidDicomError as error:
        raise UnreadableMedicalImageError(
            f"{path} is not a DICOM file (no 'DICM' prefix after the 128-byte preamble) and its suffix is not one of "
            f"{', '.join(NIFTI_SUFFIXES + RASTER_SUFFIXES)}."
        ) from error
    except Exception as error:  # pydicom raises many types on truncated or corrupt files
        raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt DICOM file: {error}") from error


def _dicom_frame_count(dataset: Dataset, path: Path) -> int:
    try:
        return max(int(dataset.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError) as error:
        raise UnreadableMedicalImageError(
            f"{path} has an invalid NumberOfFrames {dataset.get('NumberOfFrames')!r}."
        ) from error


def _check_has_image(dataset: Dataset, path: Path) -> None:
    sop_class = UID(str(dataset.get("SOPClassUID", "")))
    if sop_class == _SEGMENTATION_STORAGE or str(dataset.get("Modality", "")).upper() == "SEG":
        raise NoImagePixelDataError(
            f"{path} is a DICOM Segmentation (SEG): its pixel data are segment masks, not an image. Load the image "
            "series it references instead."
        )
    if not any(keyword in dataset for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        what = sop_class.name if sop_class else "unknown SOP class"
        raise NoImagePixelDataError(
            f"{path} has no pixel data ({what}): it is not an image (e.g. a structured report) or the file is "
            "truncated before its pixels."
        )


def _decode_dicom_frame(dataset: Dataset, path: Path, frame_index: int) -> tuple[np.ndarray, str]:
    """Decode one frame, returning the array and the photometric interpretation it is actually in."""
    transfer_syntax = getattr(dataset, "file_meta", Dataset()).get("TransferSyntaxUID")
    if transfer_syntax is None:
        raise UnreadableMedicalImageError(f"{path} has no Transfer Syntax UID in its file meta information.")
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError as error:
        raise UnreadableMedicalImageError(
            f"{path} uses the transfer syntax {transfer_syntax.name} ({transfer_syntax}), which pydicom cannot decode."
        ) from error
    if not decoder.is_available:
        packages = _DECODER_PACKAGES.get(str(transfer_syntax), "a pydicom pixel-data plugin")
        missing = "; ".join(decoder.missing_dependencies) or "none listed"
        raise MissingDicomDecoderError(
            f"{path} is compressed as {transfer_syntax.name} and no installed package decodes it. Install "
            f"{packages}, e.g. pip install 'vis-mae-hf[codecs]'. (pydicom plugins missing: {missing})"
        )
    try:
        # raw=True: colour conversion is done below, from the photometric interpretation the decoder reports.
        pixels, properties = decoder.as_array(dataset, index=frame_index, raw=True)
    except Exception as error:
        raise UnreadableMedicalImageError(
            f"Could not decode the pixel data of {path} ({transfer_syntax.name}, frame {frame_index}); the file may be "
            f"truncated or corrupt: {error}"
        ) from error
    photometric = str(properties.get("photometric_interpretation", dataset.get("PhotometricInterpretation", "")))
    return pixels, photometric.strip().upper()


def _functional_group_item(dataset: Dataset, frame_index: int, sequence_keyword: str) -> Dataset | None:
    """The first item of a functional-group macro for one frame: per-frame groups override the shared ones."""
    for groups_keyword, group_index in (
        ("PerFrameFunctionalGroupsSequence", frame_index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = dataset.get(groups_keyword)
        if groups and group_index < len(groups):
            sequence = groups[group_index].get(sequence_keyword)
            if sequence:
                return sequence[0]
    return None


def _modality_values(pixels: np.ndarray, dataset: Dataset, frame_index: int) -> np.ndarray:
    """Stored values -> modality values (HU for CT), float64.

    Enhanced (multi-frame) objects keep RescaleSlope/Intercept only in the functional groups, which pydicom's
    apply_modality_lut does not read: look there first.
    """
    transform = _functional_group_item(dataset, frame_index, "PixelValueTransformationSequence")
    if transform is not None and "RescaleSlope" in transform and "RescaleIntercept" in transform:
        return pixels.astype(np.float64) * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
    if dataset.get("ModalityLUTSequence") or ("RescaleSlope" in dataset and "RescaleIntercept" in dataset):
        return np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    return pixels.astype(np.float64)


def header_windows(dataset: Dataset, frame_index: int) -> list[tuple[float, float, str]]:
    """The (width, level, explanation) windows a DICOM carries for one frame (functional groups first)."""
    source = _functional_group_item(dataset, frame_index, "FrameVOILUTSequence") or dataset
    centers, widths = source.get("WindowCenter"), source.get("WindowWidth")
    if centers is None or widths is None:
        return []

    def as_list(value) -> list[float]:  # WindowCenter/Width are one number or a MultiValue of several
        return [float(v) for v in value] if isinstance(value, (list, tuple, MultiValue)) else [float(value)]

    centers, widths = as_list(centers), as_list(widths)
    explanations = source.get("WindowCenterWidthExplanation") or []
    explanations = [str(e) for e in explanations] if not isinstance(explanations, str) else [explanations]
    windows = []
    for index, (center, width) in enumerate(zip(centers, widths)):
        windows.append((width, center, explanations[index] if index < len(explanations) else ""))
    return windows


def _header_windowed(values: np.ndarray, dataset: Dataset, frame_index: int, window_index: int, path: Path):
    """The file's own VOI: WindowCenter/WindowWidth (or the Enhanced per-frame ones), else its VOI LUT Sequence."""
    windows = header_windows(dataset, frame_index)
    if windows:
        if not 0 <= window_index < len(windows):
            listed = ", ".join(
                f"{i}: width {w:g} level {c:g}{f' ({e})' if e else ''}" for i, (w, c, e) in enumerate(windows)
            )
            raise MedicalImageError(
                f"window_index={window_index} is out of range for {path}, whose windows are {listed}."
            )
        width, level, _ = windows[window_index]
        if width <= 0:
            raise MedicalImageError(f"{path} has a header window with width {width:g}; widths must be > 0.")
        return apply_window(values, width, level)
    lut_items = dataset.get("VOILUTSequence")
    if lut_items:
        if not 0 <= window_index < len(lut_items):
            raise MedicalImageError(
                f"window_index={window_index} is out of range for {path}, which has {len(lut_items)} VOI LUT(s)."
            )
        # The LUT maps integer modality values to display values of LUTDescriptor[2] bits.
        bits = int(lut_items[window_index].LUTDescriptor[2])
        mapped = apply_voi(np.rint(values).astype(np.int64), dataset, index=window_index)
        return (mapped.astype(np.float32) / float(2**bits - 1)).clip(0.0, 1.0)
    raise MedicalImageError(
        f"window='header' but {path} has no WindowCenter/WindowWidth and no VOI LUT Sequence; pass a preset, "
        "(width, level) or None."
    )


def _load_dicom_image(path: Path, window, frame: int | None, window_index: int) -> np.ndarray:
    dataset = _read_dicom(path)
    _check_has_image(dataset, path)
    frame_index = _checked_frame(frame, _dicom_frame_count(dataset, path), path)
    pixels, photometric = _decode_dicom_frame(dataset, path, frame_index)
    if pixels.size == 0:
        raise MedicalImageError(f"{path} holds an empty image (shape {pixels.shape}).")
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        image = _dicom_grey(pixels, dataset, path, frame_index, window, window_index)
        # MONOCHROME1 shows its minimum as white: invert after windowing so bone is bright, as on the viewer.
        return (1.0 - image) if photometric == "MONOCHROME1" else image
    if window is not None:
        raise MedicalImageError(f"{path} is a colour ({photometric}) image; windows apply to greyscale images only.")
    return _dicom_colour(pixels, dataset, path, photometric)


def _dicom_grey(pixels, dataset, path, frame_index, window, window_index) -> np.ndarray:
    if pixels.ndim != 2:
        raise MedicalImageError(f"{path}: expected a 2-D greyscale frame, got shape {pixels.shape}.")
    values = _modality_values(pixels, dataset, frame_index)
    _check_finite(values, path)
    if isinstance(window, str) and window.strip().lower() == "header":
        image = _header_windowed(values, dataset, frame_index, window_index, path)
    elif window is None and modality_of(dataset) == CT and header_windows(dataset, frame_index):
        image = _header_windowed(values, dataset, frame_index, window_index, path)
    else:
        image = _windowed(values, window, path)
    return np.asarray(image, dtype=np.float32)


def _dicom_colour(pixels, dataset, path, photometric: str) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, dataset)  # uint8 or uint16 depending on the LUT's entries
        return (rgb.astype(np.float32) / float(np.iinfo(rgb.dtype).max)).clip(0.0, 1.0)
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        pixels = convert_color_space(pixels, photometric, "RGB")
    elif photometric != "RGB":
        raise MedicalImageError(
            f"{path} has photometric interpretation {photometric}; supported: MONOCHROME1/2, RGB, PALETTE COLOR, "
            "YBR_FULL, YBR_FULL_422 (and JPEG 2000 YBR_ICT/YBR_RCT, which decode to RGB)."
        )
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise MedicalImageError(f"{path}: expected an RGB frame (H, W, 3), got shape {pixels.shape}.")
    bits_stored = int(dataset.get("BitsStored", 8 * pixels.dtype.itemsize))
    return (pixels.astype(np.float32) / float(2**bits_stored - 1)).clip(0.0, 1.0)


# ------------------------------------------------------------------------------------------------------------------
# DICOM series -> volume
# ------------------------------------------------------------------------------------------------------------------


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
        if not any(keyword in dataset for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
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


def _dicom_series_volume(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    slices = _series_slices(folder)
    for path, dataset in slices:
        if _dicom_frame_count(dataset, path) > 1:
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

    orientation = np.array([float(v) for v in slices[0][1].ImageOrientationPatient])
    row_direction, column_direction = orientation[:3], orientation[3:]  # along a row (columns grow), down a column
    normal = np.cross(row_direction, column_direction)
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

    planes = []
    for path, dataset in slices:
        pixels, photometric = _decode_dicom_frame(dataset, path, 0)
        if photometric not in ("MONOCHROME1", "MONOCHROME2") or pixels.ndim != 2:
            raise MedicalImageError(f"{path} is {photometric}; a volume is built from greyscale slices only.")
        values = _modality_values(pixels, dataset, 0)
        _check_finite(values, path)
        planes.append(values.T)  # (rows, columns) -> (i = column, j = row)
    volume_lps = np.stack(planes, axis=-1).astype(np.float32)

    row_spacing, column_spacing = (float(v) for v in slices[0][1].PixelSpacing)
    if len(slices) > 1:
        slice_step = (positions[-1] - positions[0]) / (len(slices) - 1)
    else:
        thickness = slices[0][1].get("SpacingBetweenSlices") or slices[0][1].get("SliceThickness") or 1.0
        slice_step = normal * float(thickness)  # one slice: its thickness, else 1 mm, only scales the last axis
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_direction * column_spacing
    affine_lps[:3, 1] = column_direction * row_spacing
    affine_lps[:3, 2] = slice_step
    affine_lps[:3, 3] = positions[0]
    affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps  # DICOM patient axes are LPS, NIfTI's are RAS
    canonical = nib.as_closest_canonical(nib.Nifti1Image(volume_lps, affine_ras))
    return np.asarray(canonical.dataobj, dtype=np.float32), canonical.affine


# ------------------------------------------------------------------------------------------------------------------
# NIfTI
# ------------------------------------------------------------------------------------------------------------------


def _load_nifti(path: Path) -> nib.Nifti1Image:
    """A NIfTI image reoriented to canonical RAS, with 2-D data as one slice and 4-D data refused."""
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
    _check_finite(data, path)
    return nib.as_closest_canonical(nib.Nifti1Image(data, image.affine, image.header))


def _load_nifti_slice(path: Path, window, slice_index: int | None) -> np.ndarray:
    image = _load_nifti(path)
    volume = np.asarray(image.dataobj, dtype=np.float32)
    n_slices = volume.shape[2]
    if slice_index is None:
        slice_index = n_slices // 2
    elif (
        isinstance(slice_index, bool)
        or not isinstance(slice_index, (int, np.integer))
        or not 0 <= slice_index < n_slices
    ):
        raise MedicalImageError(
            f"slice_index={slice_index!r} is out of range for {path}, which has {n_slices} axial slices "
            f"(0..{n_slices - 1})."
        )
    plane = display_slice(volume, AXIAL_AXIS, int(slice_index))
    if isinstance(window, str) and window.strip().lower() == "header":
        low, high = float(image.header["cal_min"]), float(image.header["cal_max"])
        if not high > low:
            raise MedicalImageError(f"window='header' but {path} sets no display range (cal_min/cal_max).")
        window = (high - low, (high + low) / 2.0)
    return np.ascontiguousarray(_windowed(plane, window, path), dtype=np.float32)


# ------------------------------------------------------------------------------------------------------------------
# PNG / JPEG / TIFF / BMP
# ------------------------------------------------------------------------------------------------------------------


def _open_raster(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as error:
        raise UnreadableMedicalImageError(f"{path} is not a readable image file: {error}") from error


def _load_raster_image(path: Path, window, frame: int | None) -> np.ndarray:
    with _open_raster(path) as image:
        frame_index = _checked_frame(frame, int(getattr(image, "n_frames", 1)), path)
        try:
            image.seek(frame_index)
            pixels = pil_image_to_array(image)
        except Exception as error:
            raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt image: {error}") from error
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    _check_finite(pixels, path)
    if isinstance(window, str) and window.strip().lower() == "header":
        raise MedicalImageError(f"window='header': {path} is a plain image with no window in its header.")
    if pixels.dtype == np.uint8:
        if window is not None:
            raise MedicalImageError(
                f"{path} is an 8-bit display image: it is already windowed, so window={window!r} cannot apply "
                "(windows act on raw values: DICOM, NIfTI, 16-bit or float images)."
            )
        return pixels.astype(np.float32) / 255.0
    if pixels.ndim != 2:
        raise MedicalImageError(
            f"{path}: expected a greyscale image for {pixels.dtype} data, got shape {pixels.shape}."
        )
    # 16-bit / 32-bit / float images hold raw values, often in a small part of their range: min-max, not /65535.
    return np.asarray(_windowed(pixels, window, path), dtype=np.float32)


__all__ = [
    "MedicalImageError",
    "MedicalImageNotFoundError",
    "MissingDicomDecoderError",
    "MixedSeriesError",
    "NoImagePixelDataError",
    "UnreadableMedicalImageError",
    "count_frames",
    "load_medical_image",
    "load_medical_volume",
    "modality_of",
    "save_mask_like",
]

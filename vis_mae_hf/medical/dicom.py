"""DICOM, one object at a time: reading, decoding a frame, the modality transform, and the header facts.

The intensity steps follow DICOM's order: stored values -> modality transform (rescale slope/intercept, Modality
LUT, or the Enhanced functional groups) -> window (VOI) -> [0, 1] -> MONOCHROME1 inversion. This module does the
first step and reports the facts the others need (header windows, VOI LUTs, modality, pixel spacing); `images.py`
applies them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.multival import MultiValue
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    convert_color_space,
    get_decoder,
)
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from ..vocabulary import DICOM_MODALITY_GROUPS
from .dicom_header import (
    PIXEL_DATA_KEYWORDS,
    check_pixel_data,
    checked_pixel_spacing,
    checked_rescale,
)
from .errors import (
    ImageTooLargeError,
    MedicalImageError,
    MissingDicomDecoderError,
    NoImagePixelDataError,
    UnknownFileFormatError,
    UnreadableMedicalImageError,
)
from .files import NIFTI_SUFFIXES, RASTER_SUFFIXES
from .limits import MAX_VOXELS_VARIABLE, max_voxels
from .windows import HeaderWindow

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_INFLATE_CHUNK = 1 << 20  # bytes inflated (and dropped) at a time by `check_inflated_size`
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


@dataclass(frozen=True, eq=False)
class VoiLut:
    """A VOI LUT Sequence item: modality values from `first_mapped` on index `table`; entries have `bits` bits."""

    first_mapped: int
    table: np.ndarray
    bits: int
    explanation: str = ""

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Modality values -> [0, 1]; values below the first mapped one take the first entry, above the last the last
        (PS3.3 C.11.2.1.1)."""
        indices = np.clip(np.rint(values).astype(np.int64) - self.first_mapped, 0, len(self.table) - 1)
        return (self.table[indices].astype(np.float32) / float(2**self.bits - 1)).clip(0.0, 1.0)


def read_dicom(path: Path, with_pixels: bool = True) -> Dataset:
    check_inflated_size(path)
    try:
        return pydicom.dcmread(path, stop_before_pixels=not with_pixels)
    except InvalidDicomError as error:
        raise UnknownFileFormatError(
            f"{path} is not a DICOM file (no 'DICM' prefix after the 128-byte preamble) and its suffix is not one of "
            f"{', '.join(NIFTI_SUFFIXES + RASTER_SUFFIXES)}."
        ) from error
    except Exception as error:  # pydicom raises many types on truncated or corrupt files
        raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt DICOM file: {error}") from error


def check_inflated_size(path: Path) -> None:
    """pydicom inflates a Deflated Explicit VR Little Endian file whole, before it reads a single tag, so a few MB of
    deflated zeros could take all memory. Inflate such a file once into nothing first, only counting, and refuse one
    that inflates to more than 4 bytes per voxel of `limits.max_voxels()` (the float32 budget the limit stands for).
    Files that are not DICOM, or not deflated, are left to `pydicom.dcmread` to read or report."""
    try:
        meta = read_file_meta_info(path)
    except Exception:  # not DICOM, or no readable meta information: dcmread says which
        return
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return
    # The dataset starts after the preamble, 'DICM' and the meta group, whose first element (12 bytes) gives its length.
    start = 128 + 4 + 12 + int(meta.get("FileMetaInformationGroupLength", 0))
    limit, inflated = 4 * max_voxels(), 0
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        with open(path, "rb") as file:
            file.seek(start)
            while inflated <= limit and (deflated := file.read(_INFLATE_CHUNK)):
                while deflated and inflated <= limit:
                    inflated += len(inflater.decompress(deflated, _INFLATE_CHUNK))
                    deflated = inflater.unconsumed_tail
    except zlib.error as error:
        raise UnreadableMedicalImageError(f"{path} has deflated data that cannot be inflated: {error}") from error
    if inflated > limit:
        raise ImageTooLargeError(
            f"{path} is deflated and inflates to more than {limit:,} bytes (4 bytes for each of the {limit // 4:,} "
            f"voxels of the limit): refused before reading it. If the image is genuine, raise the environment "
            f"variable {MAX_VOXELS_VARIABLE}."
        )


def modality_group(dataset: Dataset) -> str | None:
    """The `vocabulary` modality group of the Modality tag: PT -> PET; CR/DX/MG/... -> XRAY; US/IVUS -> US. NM (gamma
    camera, SPECT) is not PET and gives None, like secondary captures (OT) and non-image objects."""
    modality = str(dataset.get("Modality", "") or "").strip().upper()
    return DICOM_MODALITY_GROUPS.get(modality)


def frame_count(dataset: Dataset, path: Path) -> int:
    try:
        return max(int(dataset.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError) as error:
        raise UnreadableMedicalImageError(
            f"{path} has an invalid NumberOfFrames {dataset.get('NumberOfFrames')!r}."
        ) from error


def has_pixel_data(dataset: Dataset) -> bool:
    return any(keyword in dataset for keyword in PIXEL_DATA_KEYWORDS)


def check_has_image(dataset: Dataset, path: Path) -> None:
    sop_class = UID(str(dataset.get("SOPClassUID", "")))
    if sop_class == _SEGMENTATION_STORAGE or str(dataset.get("Modality", "")).upper() == "SEG":
        raise NoImagePixelDataError(
            f"{path} is a DICOM Segmentation (SEG): its pixel data are segment masks, not an image. Load the image "
            "series it references instead."
        )
    if not has_pixel_data(dataset):
        what = sop_class.name if sop_class else "unknown SOP class"
        raise NoImagePixelDataError(
            f"{path} has no pixel data ({what}): it is not an image (e.g. a structured report) or the file is "
            "truncated before its pixels."
        )


def decode_frame(dataset: Dataset, path: Path, frame_index: int) -> tuple[np.ndarray, str]:
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
    check_pixel_data(dataset, path, frame_count(dataset, path), transfer_syntax.is_encapsulated)
    try:
        # raw=True: colour conversion is done by `colour_pixels`, from the photometric interpretation reported here.
        pixels, properties = decoder.as_array(dataset, index=frame_index, raw=True)
    except Exception as error:
        raise UnreadableMedicalImageError(
            f"Could not decode the pixel data of {path} ({transfer_syntax.name}, frame {frame_index}); the file may be "
            f"truncated or corrupt: {error}"
        ) from error
    if pixels.size == 0:
        raise MedicalImageError(f"{path} holds an empty image (shape {pixels.shape}).")
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


def modality_values(pixels: np.ndarray, dataset: Dataset, frame_index: int, path: Path) -> np.ndarray:
    """Stored values -> modality values (HU for CT), float32; a RescaleSlope of 0 or a rescale that is not finite is
    refused (`InvalidRescaleError`) rather than turned into a constant or NaN image.

    Enhanced (multi-frame) objects keep RescaleSlope/Intercept only in the functional groups, which pydicom's
    apply_modality_lut does not read: look there first.
    """
    transform = _functional_group_item(dataset, frame_index, "PixelValueTransformationSequence")
    if transform is not None and "RescaleSlope" in transform and "RescaleIntercept" in transform:
        slope, intercept = checked_rescale(transform, path, f" (functional groups of frame {frame_index})")
        values = pixels.astype(np.float64) * slope + intercept
    elif dataset.get("ModalityLUTSequence"):
        values = apply_modality_lut(pixels, dataset)
    elif "RescaleSlope" in dataset and "RescaleIntercept" in dataset:
        slope, intercept = checked_rescale(dataset, path)
        values = pixels.astype(np.float64) * slope + intercept
    else:
        values = pixels
    return np.asarray(values, dtype=np.float32)


def header_windows(dataset: Dataset, frame_index: int) -> tuple[HeaderWindow, ...]:
    """The windows a DICOM carries for one frame: WindowWidth/WindowCenter (functional groups first)."""
    source = _functional_group_item(dataset, frame_index, "FrameVOILUTSequence") or dataset
    centers, widths = source.get("WindowCenter"), source.get("WindowWidth")
    if centers is None or widths is None:
        return ()

    def as_list(value) -> list[float]:  # WindowCenter/Width are one number or a MultiValue of several
        return [float(v) for v in value] if isinstance(value, (list, tuple, MultiValue)) else [float(value)]

    explanations = source.get("WindowCenterWidthExplanation") or []
    explanations = [str(e) for e in explanations] if not isinstance(explanations, str) else [explanations]
    explanations += [""] * len(as_list(centers))
    return tuple(
        HeaderWindow(width, center, explanation)
        for center, width, explanation in zip(as_list(centers), as_list(widths), explanations)
    )


def voi_luts(dataset: Dataset) -> tuple[VoiLut, ...]:
    """The VOI LUT Sequence items with their tables."""
    luts = []
    for item in dataset.get("VOILUTSequence") or []:
        entries, first_mapped, bits = (int(value) for value in item.LUTDescriptor)
        entries = entries or 2**16  # 0 means 65536 entries (PS3.3 C.11.2.1.1)
        data = item.LUTData
        if isinstance(data, bytes):  # VR OW: 16-bit words in the dataset's byte order
            order = ">" if dataset.original_encoding[1] is False else "<"
            table = np.frombuffer(data, dtype=f"{order}u2")[:entries]
        else:  # VR US: pydicom gives the numbers
            table = np.asarray(data if isinstance(data, (list, MultiValue)) else [data], dtype=np.int64)[:entries]
        luts.append(VoiLut(first_mapped, table.astype(np.int64), bits, str(item.get("LUTExplanation", "") or "")))
    return tuple(luts)


def pixel_spacing(dataset: Dataset, frame_index: int, path: Path) -> tuple[float, float] | None:
    """(row, column) spacing in mm in the patient (PixelSpacing, Enhanced objects: per-frame PixelMeasures), or None
    when the file does not say (no PixelSpacing, or 0\\0, which some exporters write for "unknown"); any other zero,
    negative or non-finite spacing is refused (`InvalidGeometryError`).

    ImagerPixelSpacing (at the detector of a radiograph, magnified by the beam geometry) is not a patient spacing.
    """
    source = _functional_group_item(dataset, frame_index, "PixelMeasuresSequence") or dataset
    return checked_pixel_spacing(source, path, zero_is_unknown=True)


def colour_pixels(pixels: np.ndarray, dataset: Dataset, path: Path, photometric: str) -> np.ndarray:
    """A colour frame as RGB float32 in [0, 1]."""
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

"""Whether a DICOM header can be believed: its pixel data agree with it, and its numbers are usable numbers.

Pixel data that a header describes wrongly still decode to an image, only the wrong one: 16-bit data declared
BitsAllocated 8 become byte noise (pydicom reads the excess as extra frames and warns), a RescaleSlope of 0 makes a
constant image, a PixelSpacing of 0 places every voxel at one point. A model would segment any of them without
complaint. These checks run on the header before decoding (and before anything is allocated) and refuse such a file
with a `MedicalImageError` subclass naming the file, the attribute, its value and what would be right.
"""

from __future__ import annotations

import math
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.multival import MultiValue

from .errors import InvalidGeometryError, InvalidRescaleError, PixelDataMismatchError
from .limits import check_declared_size

PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_FLOAT_BITS = {"FloatPixelData": 32, "DoubleFloatPixelData": 64}


def header_numbers(source: Dataset, keyword: str, count: int, path: Path) -> tuple[float, ...]:
    """The `count` values of a multi-valued numeric attribute (ImagePositionPatient: 3, ...), all finite."""
    try:
        raw = source[keyword].value
        values = tuple(float(value) for value in (raw if isinstance(raw, (list, tuple, MultiValue)) else [raw]))
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidGeometryError(f"{path} has no usable {keyword} ({error}); expected {count} numbers.") from error
    if len(values) != count or not all(math.isfinite(value) for value in values):
        shown = "\\".join(f"{value:g}" for value in values)
        raise InvalidGeometryError(f"{path} has {keyword} {shown}; expected {count} finite numbers.")
    return values


def checked_pixel_spacing(source: Dataset, path: Path, *, zero_is_unknown: bool) -> tuple[float, float] | None:
    """(row, column) PixelSpacing in mm, both finite and > 0; None when absent. Some exporters write 0\\0 for "not
    known", which a single image may say (`zero_is_unknown`): a volume cannot be built without its spacing."""
    if "PixelSpacing" not in source:
        return None
    rows, columns = header_numbers(source, "PixelSpacing", 2, path)
    if zero_is_unknown and rows == columns == 0:
        return None
    if not (rows > 0 and columns > 0):
        raise InvalidGeometryError(
            f"{path} has PixelSpacing {rows:g}\\{columns:g}; expected two finite distances in mm greater than 0 "
            f"(row spacing\\column spacing)."
        )
    return rows, columns


def checked_rescale(source: Dataset, path: Path, where: str = "") -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of a dataset or a functional-group item that has both: finite, and a slope
    other than 0, which would map every pixel to the intercept and give a constant image. `where` names the item."""
    slope, intercept = (
        _rescale_number(source, keyword, path, where) for keyword in ("RescaleSlope", "RescaleIntercept")
    )
    if slope == 0 or not math.isfinite(slope):
        outcome = "every pixel would become the intercept (a constant image)" if slope == 0 else "no value is finite"
        raise InvalidRescaleError(
            f"{path}{where} has RescaleSlope {slope:g}: {outcome}. Expected a finite slope other than 0 (1 when the "
            "stored values are the modality values)."
        )
    if not math.isfinite(intercept):
        raise InvalidRescaleError(f"{path}{where} has RescaleIntercept {intercept:g}; expected a finite number.")
    return slope, intercept


def _rescale_number(source: Dataset, keyword: str, path: Path, where: str) -> float:
    try:
        return float(source[keyword].value)
    except (TypeError, ValueError) as error:
        raise InvalidRescaleError(
            f"{path}{where} has {keyword} {source[keyword].value!r}; expected one finite number."
        ) from error


def _header_size(dataset: Dataset, keyword: str, path: Path, default: int | None = None) -> int:
    value = dataset.get(keyword, default)
    if value is None:
        raise PixelDataMismatchError(f"{path} has pixel data but no {keyword}: the pixels cannot be laid out.")
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise PixelDataMismatchError(f"{path} has {keyword} {value!r}; expected a whole number.") from error


def check_pixel_data(dataset: Dataset, path: Path, frames: int, encapsulated: bool) -> None:
    """Refuse pixel data that disagree with Rows, Columns, SamplesPerPixel, NumberOfFrames, BitsAllocated and
    BitsStored, then a declared size over `limits.max_voxels()`, before anything is decoded.

    Native (uncompressed) data must hold Rows x Columns x SamplesPerPixel x NumberOfFrames x BitsAllocated / 8 bytes,
    followed at most by the byte that pads an odd length or by zero padding shorter than a frame: more would be decoded
    as further frames or as pixels of another width than stored, less is a truncated file. Compressed data must hold
    at least one fragment per frame, and an offset table that lists its frames must list NumberOfFrames of them.
    """
    keyword = next(keyword for keyword in PIXEL_DATA_KEYWORDS if keyword in dataset)
    rows, columns = _header_size(dataset, "Rows", path), _header_size(dataset, "Columns", path)
    samples = _header_size(dataset, "SamplesPerPixel", path, 1)
    bits_allocated = _header_size(dataset, "BitsAllocated", path, _FLOAT_BITS.get(keyword))
    bits_stored = _header_size(dataset, "BitsStored", path, bits_allocated)
    if min(rows, columns, samples) < 1:
        raise PixelDataMismatchError(
            f"{path} has Rows {rows}, Columns {columns}, SamplesPerPixel {samples}; expected each to be at least 1."
        )
    if not (bits_allocated == 1 or (bits_allocated % 8 == 0 and 8 <= bits_allocated <= 64)):
        raise PixelDataMismatchError(
            f"{path} has BitsAllocated {bits_allocated}; expected 1, 8, 16, 32 or 64 bits per stored sample."
        )
    if not 1 <= bits_stored <= bits_allocated:
        raise PixelDataMismatchError(
            f"{path} has BitsStored {bits_stored} with BitsAllocated {bits_allocated}; BitsStored must be between 1 "
            "and BitsAllocated (the stored bits are part of the allocated ones)."
        )
    if encapsulated:
        _check_fragments(dataset, path, frames)
    else:
        _check_native_length(dataset, keyword, path, (rows, columns, samples, frames, bits_allocated))
    check_declared_size(path, (rows, columns, frames), f"Rows {rows} x Columns {columns} x NumberOfFrames {frames}")


def _check_native_length(dataset: Dataset, keyword: str, path: Path, layout: tuple[int, ...]) -> None:
    rows, columns, samples, frames, bits_allocated = layout
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
    # Native YBR_FULL_422 stores two samples per pixel (luminance for each, chroma shared by pairs of pixels).
    stored_samples = 2 if photometric == "YBR_FULL_422" and samples == 3 else samples
    frame_bytes = rows * columns * stored_samples * bits_allocated / 8
    expected = math.ceil(frame_bytes * frames)
    data = dataset[keyword].value
    excess = len(data) - expected
    # Some writers pad pixel data with zero bytes (pydicom's MR_small_padded.dcm): zeros shorter than a frame hide no
    # pixels. Anything more would be decoded as further frames or as pixels of another width; anything less is a cut.
    if excess in (0, 1) or (0 < excess < frame_bytes and not data[expected:].strip(b"\0")):
        return
    reason = "the file is truncated or corrupt"
    if excess > 0:
        reason = f"{excess} bytes too many, so BitsAllocated, NumberOfFrames or the image size is wrong"
    raise PixelDataMismatchError(
        f"{path} has {len(data)} bytes of {keyword}, but its header declares Rows {rows} x Columns {columns} x "
        f"SamplesPerPixel {samples} x NumberOfFrames {frames} x BitsAllocated {bits_allocated} / 8 = {expected} "
        f"bytes: {reason}, and decoding would give the wrong pixels. Expected pixel data of the declared length."
    )


def _check_fragments(dataset: Dataset, path: Path, frames: int) -> None:
    buffer = BytesIO(dataset.PixelData)
    try:
        listed = len(parse_basic_offsets(buffer))
        fragments = parse_fragments(buffer)[0]
    except Exception as error:  # pydicom raises ValueError or struct errors on broken item tags
        raise PixelDataMismatchError(
            f"{path} has compressed pixel data whose items cannot be parsed ({error}): the file is truncated or "
            "corrupt."
        ) from error
    if "ExtendedOffsetTable" in dataset:
        listed = len(dataset.ExtendedOffsetTable) // 8
    if fragments < frames or listed not in (0, frames):
        found = (
            f"its offset table lists {listed} frame(s)"
            if listed not in (0, frames)
            else (f"its compressed pixel data hold only {fragments} fragment(s)")
        )
        raise PixelDataMismatchError(
            f"{path} declares NumberOfFrames {frames}, but {found}: the header does not describe these pixels. "
            "Expected one frame (one or more fragments) for each declared frame."
        )

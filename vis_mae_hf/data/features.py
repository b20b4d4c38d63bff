"""Column schema shared by every converted set, and the encoding of pixels into the `Image` feature.

Every row has `image` (an `Image`), a target (`mask`: `Image` of uint8 class indices; `label`: `ClassLabel`;
`labels`: `List(ClassLabel)` for multi-label sets), `case_id` (the patient id, the unit folds are grouped by),
`slice_index` (the slice of the source volume or frame of the source clip, -1 for 2-D images), `source_file` (the
file inside the publisher's tree the row came from), `fold` and `label_rank` (see `folds.py`), plus
source-specific columns.

Pixels are encoded here, once: `datasets.Image(mode="L")` clips 16-bit and float input (1000 -> 255, 0.5 -> 0), so
intensities are windowed/normalised to [0, 1] by the source module and quantised to uint8 PNG by
`encode_grey_image`; masks are stored as uint8 PNG class indices, losslessly.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ..vocabulary import CLASSIFICATION, DATASET_TASKS, MULTILABEL, SEGMENTATION
from .masks import mask_class_indices

# What Pillow raises for truncated or non-image files, and for an image over its decompression-bomb guard.
_UNREADABLE_IMAGE = (OSError, SyntaxError, PILImage.DecompressionBombError)


def build_features(
    task: str,
    label_names: list[str],
    *,
    n_folds: int,
    extra_columns: dict | None = None,
):
    """The `datasets.Features` of a converted set.

    Args:
        task: "segmentation" (a `mask` column), "classification" (`label`) or "multilabel" (`labels`).
        label_names: class names; for segmentation the names of the mask values 0..K (kept in the conversion
            metadata, since an `Image` column cannot carry them), otherwise the `ClassLabel` names.
        n_folds: length of the `label_rank` list.
        extra_columns: source-specific columns (name -> feature), appended after the standard ones.
    """
    from datasets import ClassLabel, Features, Image, List, Value

    columns: dict = {"image": Image()}
    if task == SEGMENTATION:
        columns["mask"] = Image()
    elif task == CLASSIFICATION:
        columns["label"] = ClassLabel(names=list(label_names))
    elif task == MULTILABEL:
        columns["labels"] = List(ClassLabel(names=list(label_names)))
    else:
        raise ValueError(f"task must be one of {DATASET_TASKS}, got {task!r}.")
    columns.update(
        {
            "case_id": Value("string"),
            "slice_index": Value("int32"),
            "source_file": Value("string"),
            "fold": Value("int8"),
            "label_rank": List(Value("int32"), length=n_folds),
        }
    )
    for name, feature in (extra_columns or {}).items():
        if name in columns:
            raise ValueError(f"Source column {name!r} collides with a standard column.")
        columns[name] = feature
    return Features(columns)


def quantize_unit_interval(values: np.ndarray, *, name: str = "image") -> np.ndarray:
    """[0, 1] floats -> uint8 (rounded). Values outside [0, 1] mean the normalisation upstream is wrong."""
    values = np.asarray(values, dtype=np.float32)
    if values.size and (not np.isfinite(values).all() or values.min() < -1e-4 or values.max() > 1 + 1e-4):
        raise ValueError(
            f"{name}: expected intensities normalised to [0, 1], got range "
            f"[{np.nanmin(values):.4g}, {np.nanmax(values):.4g}] (non-finite values: {not np.isfinite(values).all()})."
        )
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    """Losslessly encode a uint8 (H, W) or (H, W, 3) array as PNG."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"png_bytes expects uint8 pixels, got {array.dtype}.")
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG", compress_level=1)  # fast; the data is re-read often
    return buffer.getvalue()


def encode_grey_image(values01: np.ndarray, *, name: str = "image") -> dict:
    """A [0, 1] (H, W) float image -> the `Image` feature's `{"bytes", "path"}` (uint8 PNG)."""
    return {"bytes": png_bytes(quantize_unit_interval(values01, name=name)), "path": None}


def encode_uint8_image(pixels: np.ndarray) -> dict:
    """Already-8-bit pixels (an ultrasound frame, an RGB photo) -> the `Image` feature's dict, unchanged."""
    return {"bytes": png_bytes(np.asarray(pixels, dtype=np.uint8)), "path": None}


def encode_mask(mask: np.ndarray, *, n_labels: int, name: str = "mask") -> dict:
    """Integer class indices (H, W) -> uint8 PNG, after checking every value is a known class (`masks`)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name}: a mask must be 2-D (H, W), got shape {mask.shape}.")
    indices, _ = mask_class_indices(mask, n_labels, name=name, allow_binary_255=False)
    return {"bytes": png_bytes(indices.astype(np.uint8)), "path": None}


def open_image_file(path: str | Path, *, mode: str) -> tuple[dict, tuple[int, int]]:
    """A 2-D image file -> (`Image` feature dict, (height, width)) in PIL `mode` ("L" or "RGB").

    When the file is already a PNG/JPEG in the wanted mode its bytes are kept as published (no re-encoding, so a
    JPEG is not compressed twice); otherwise it is converted and stored as PNG.
    """
    path = Path(path)
    try:
        with PILImage.open(path) as image:
            image.load()
            file_format, size = image.format, image.size
            if image.mode == mode and file_format in ("PNG", "JPEG"):
                return {"bytes": path.read_bytes(), "path": None}, (size[1], size[0])
            converted = _convert_mode(image, mode, path)
    except _UNREADABLE_IMAGE as error:
        raise ValueError(f"{path}: cannot be read as an image ({error}).") from error
    return {"bytes": png_bytes(np.asarray(converted)), "path": None}, (converted.height, converted.width)


def _convert_mode(image: PILImage.Image, mode: str, path: Path) -> PILImage.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greys: PIL's convert("L") clips instead of scaling, so rescale the full range.
        values = np.asarray(image, dtype=np.float32)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        image = PILImage.fromarray(quantize_unit_interval(scaled, name=str(path)))
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA").convert("RGB")
    return image.convert(mode)


def read_mask_file(path: str | Path) -> np.ndarray:
    """A 2-D mask file (PNG/TIFF/GIF/BMP) -> (H, W) integer array of its stored values.

    Palette images give their indices (the usual way class masks are saved). A colour file gives its first channel
    when its colour channels agree (a grey mask saved as RGB); a mask whose colours differ encodes classes as colours,
    which cannot be read as class indices, and is refused.
    """
    path = Path(path)
    try:
        with PILImage.open(path) as image:
            array = np.asarray(image)
    except _UNREADABLE_IMAGE as error:
        raise ValueError(f"{path}: cannot be read as a mask image ({error}).") from error
    if array.ndim == 3:
        colour = array[..., :3]
        if colour.shape[-1] > 1 and not (colour == colour[..., :1]).all():
            raise ValueError(
                f"{path}: a colour mask (its red, green and blue differ); store one class index per pixel, as a grey "
                "or palette PNG."
            )
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{path}: a mask is one 2-D image, got an array of shape {array.shape}.")
    return array


def binarize_mask(mask: np.ndarray, *, source: str) -> np.ndarray:
    """A published binary mask stored as {0, 255} or {0, 1} -> {0, 1}.

    8-bit masks are thresholded at 128 rather than at 0 because resaved masks (e.g. a few BUSI/ISIC files)
    carry faint anti-aliasing or compression values near the edges that are not lesion.
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "uib":
        raise ValueError(f"{source}: expected an integer binary mask, got dtype {mask.dtype}.")
    if mask.size and mask.min() < 0:
        raise ValueError(f"{source}: a binary mask cannot hold negative values.")
    if mask.size and mask.max() > 1:
        if mask.max() > 255:
            raise ValueError(f"{source}: expected a binary mask with values in 0..255, max is {mask.max()}.")
        return (mask >= 128).astype(np.uint8)
    return (mask > 0).astype(np.uint8)

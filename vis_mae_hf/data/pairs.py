"""One 2-D image and its mask, read and checked together: the row of the generic segmentation converters.

Images are 2-D raster files (PNG, JPEG, TIFF, BMP; 16-bit and float greys scaled over their range) or single-frame
DICOMs (windowed by `modality_preprocessing`'s rules: a CT's header window, else the `window`; MR, PET and header-less
X-ray percentiles). Masks are raster files of class indices (grey or palette PNG). Both must have the same size; the
mask's values must be the declared labels (`masks`; a 0/255 mask of a two-label set is read as 0/1, with a notice).
Label values need not be 0..K-1: `LabelValues` maps declared values such as 0, 1, 2, 4 onto the class indices 0..3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..medical.files import DICOM, NIFTI, file_kind
from .features import encode_grey_image, encode_mask, open_image_file, read_mask_file
from .masks import MaskValueError, mask_class_indices
from .modality_preprocessing import ModalityPreprocessing, read_dicom_images


@dataclass(frozen=True)
class LabelValues:
    """The declared labels: their names (class 0 first) and the value each is stored as in the masks."""

    names: tuple[str, ...]
    values: tuple[int, ...]

    @classmethod
    def consecutive(cls, names: Sequence[str]) -> LabelValues:
        return cls(tuple(names), tuple(range(len(names))))

    def __post_init__(self):
        if len(self.names) < 2:
            raise ValueError(f"A segmentation set declares at least two labels (background first), got {self.names}.")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"Label names must differ from each other, got {list(self.names)}.")
        if len(self.values) != len(self.names):
            raise ValueError(f"{len(self.names)} label names but {len(self.values)} label values.")
        if list(self.values) != sorted(set(self.values)) or self.values[0] != 0:
            raise ValueError(
                f"Label values must be distinct, ascending and start at 0 (background), got {self.values}."
            )

    def class_indices(self, mask: np.ndarray, *, name: str) -> tuple[np.ndarray, bool]:
        """(`mask` as class indices 0..K-1, whether a 0/255 binary mask was read as 0/1); undeclared values refused."""
        if self.values == tuple(range(len(self.values))):
            return mask_class_indices(mask, list(self.names), name=name)
        mask = np.asarray(mask)
        declared = np.asarray(self.values)
        found = np.unique(mask)
        unknown = found[~np.isin(found, declared)].tolist()
        if unknown:
            labels = ", ".join(f"{value} {label}" for value, label in zip(self.values, self.names))
            raise MaskValueError(f"{name}: mask values {unknown[:10]} are not among the declared labels ({labels}).")
        return np.searchsorted(declared, mask).astype(np.int64), False


def read_pair(
    image_path: Path,
    mask_path: Path,
    labels: LabelValues,
    *,
    names: tuple[str, str],
    colour: bool = False,
    preprocessing: ModalityPreprocessing = ModalityPreprocessing(),
    modality_hint: str | None = None,
) -> tuple[dict, str | None, bool]:
    """(row with `image`, `mask`, `slice_index`; the image's modality when its file says; whether the mask was a 0/255
    binary mask read as 0/1). `names` are how errors name the two files (paths relative to the source)."""
    image_name, mask_name = names
    image, (height, width), modality = read_2d_image(
        image_path, name=image_name, colour=colour, preprocessing=preprocessing, modality_hint=modality_hint
    )
    stored = read_mask_file(mask_path)
    if stored.shape != (height, width):
        raise ValueError(
            f"{mask_name}: the mask is {stored.shape[1]}x{stored.shape[0]} pixels but its image {image_name} is "
            f"{width}x{height}; a mask must have its image's size."
        )
    indices, mapped = labels.class_indices(stored, name=mask_name)
    row = {"image": image, "mask": encode_mask(indices, n_labels=len(labels.names), name=mask_name), "slice_index": -1}
    return row, modality, mapped


def read_2d_image(
    path: Path,
    *,
    name: str,
    colour: bool = False,
    preprocessing: ModalityPreprocessing = ModalityPreprocessing(),
    modality_hint: str | None = None,
) -> tuple[dict, tuple[int, int], str | None]:
    """(`Image` feature dict, (height, width), modality from a DICOM header or None) of one 2-D image file."""
    kind = file_kind(path)
    if kind == NIFTI:
        raise ValueError(
            f"{name}: a NIfTI volume; this converter reads 2-D images (PNG, JPEG, TIFF, BMP) and single-frame DICOMs. "
            "Convert volumes with `vis-mae data convert decathlon`."
        )
    if kind != DICOM:
        image, size = open_image_file(path, mode="RGB" if colour else "L")
        return image, size, None
    # Every frame, constant or not: a pair is one image, and dropping it would lose its mask without a word.
    options = replace(preprocessing, max_images_per_file=None, skip_constant=False)
    modality, frames = read_dicom_images(path, options, modality_hint)
    if len(frames) != 1:
        raise ValueError(f"{name}: a DICOM of {len(frames)} frames; a pair is one 2-D image (a single-frame DICOM).")
    pixels = frames[0][1]
    return encode_grey_image(pixels, name=name), pixels.shape, modality

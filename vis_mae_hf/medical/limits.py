"""The one limit on how large an image a file may declare, checked against its header before any pixel is allocated.

A small file can declare a huge image: a 10 MB .nii.gz that says 2048 x 2048 x 600 float32 (10 GB once read), a
JPEG 2000 DICOM that says 60000 x 60000, a PNG bomb. Every reader compares the voxel count its header declares
(DICOM Rows x Columns x NumberOfFrames, a DICOM series' slices x Rows x Columns, a NIfTI header's shape, a 2-D image
file's width x height) with `max_voxels()` before reading pixels, and refuses a larger one with
`ImageTooLargeError`, naming the file and how to raise the limit.

The default, 512 x 512 x 2048 voxels (2 GiB as float32), holds a whole-body CT. To read larger files set the
environment variable VIS_MAE_MAX_VOXELS, e.g. `VIS_MAE_MAX_VOXELS=2000000000 vis-mae predict ...`; it is read at
each load, so a program can also set `os.environ[MAX_VOXELS_VARIABLE]`. 2-D image files are also bounded by
Pillow's own decompression-bomb guard (2 x `PIL.Image.MAX_IMAGE_PIXELS` pixels, raised by setting that attribute).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from .errors import ImageTooLargeError, UnreadableMedicalImageError

MAX_VOXELS_VARIABLE = "VIS_MAE_MAX_VOXELS"
DEFAULT_MAX_VOXELS = 512 * 512 * 2048


def max_voxels() -> int:
    """The largest voxel count a file may declare: VIS_MAE_MAX_VOXELS when set, else `DEFAULT_MAX_VOXELS`."""
    text = os.environ.get(MAX_VOXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_VOXELS
    try:
        value = float(text)  # "2e9" is easier to type than "2000000000"
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise ValueError(
            f"The environment variable {MAX_VOXELS_VARIABLE}={text!r} is not a voxel count; expected a positive "
            f"whole number such as {DEFAULT_MAX_VOXELS} (the default) or 2e9."
        )
    return int(value)


def check_declared_size(path: str | Path, sizes: Sequence[int], declared: str) -> None:
    """Refuse a file whose header declares `sizes` (any number of axes) with more voxels than `max_voxels()`.

    `declared` says where the sizes come from, for the message: "Rows 4096 x Columns 4096 x NumberOfFrames 200".
    Sizes are multiplied as Python integers, so no declared size can overflow the check.
    """
    sizes = [int(size) for size in sizes]
    if any(size < 0 for size in sizes):
        raise UnreadableMedicalImageError(f"{path} declares a negative image size ({declared}): its header is corrupt.")
    count, limit = math.prod(sizes), max_voxels()
    if count > limit:
        raise ImageTooLargeError(
            f"{path} declares {declared} = {count:,} voxels, more than the limit of {limit:,}: refused before "
            f"reading its pixels. If the image is genuine, set the environment variable {MAX_VOXELS_VARIABLE} to at "
            f"least {count} to read it."
        )

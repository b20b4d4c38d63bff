"""PNG / JPEG / TIFF / BMP files -> pixel arrays that keep their 8-bit, 16-bit, 32-bit or float values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..image_processing_vis_mae import pil_image_to_array
from .errors import UnreadableMedicalImageError
from .files import check_finite, checked_frame


def read_raster(path: Path, frame: int | None) -> tuple[np.ndarray, int, int]:
    """(pixels, frame index, number of frames) of one page: grey (H, W) in the file's type, or RGB (H, W, 3) uint8."""
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError) as error:
        raise UnreadableMedicalImageError(f"{path} is not a readable image file: {error}") from error
    with image:
        num_frames = int(getattr(image, "n_frames", 1))
        frame_index = checked_frame(frame, num_frames, path)
        try:
            image.seek(frame_index)
            pixels = pil_image_to_array(image)
        except Exception as error:
            raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt image: {error}") from error
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    check_finite(pixels, path)
    return pixels, frame_index, num_frames

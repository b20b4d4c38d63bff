"""PNG / JPEG / TIFF / BMP files -> pixel arrays that keep their 8-bit, 16-bit, 32-bit or float values.

The size a file declares (width x height of the page read) is checked against `limits.max_voxels()` before its
pixels are decoded; Pillow's own decompression-bomb guard (its DecompressionBombError, or its
DecompressionBombWarning where warnings are errors) becomes this file's `ImageTooLargeError`, so one such file never
stops a batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..image_processing_vis_mae import pil_image_to_array
from .errors import ImageTooLargeError, UnreadableMedicalImageError
from .files import check_finite, checked_frame
from .limits import check_declared_size


def read_raster(path: Path, frame: int | None) -> tuple[np.ndarray, int, int]:
    """(pixels, frame index, number of frames) of one page: grey (H, W) in the file's type, or RGB (H, W, 3) uint8."""
    image = _open_image(path)
    with image:
        try:
            num_frames = int(getattr(image, "n_frames", 1))
        except Exception as error:
            raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt image: {error}") from error
        frame_index = checked_frame(frame, num_frames, path)
        try:
            image.seek(frame_index)
        except Exception as error:
            raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt image: {error}") from error
        width, height = image.size  # of this page: the pages of a TIFF may differ
        check_declared_size(path, (height, width), f"an image of {width} x {height} pixels")
        try:
            pixels = pil_image_to_array(image)
        except Exception as error:
            raise UnreadableMedicalImageError(f"{path} is a truncated or corrupt image: {error}") from error
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    check_finite(pixels, path)
    return pixels, frame_index, num_frames


def _open_image(path: Path) -> Image.Image:
    """The image file opened (header read, pixels not yet decoded)."""
    try:
        return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLargeError(
            f"{path} is larger than Pillow's decompression-bomb guard allows ({error}). If the image is genuine, "
            "raise PIL.Image.MAX_IMAGE_PIXELS (and VIS_MAE_MAX_VOXELS if it is over that limit too) to read it."
        ) from error
    except Exception as error:  # Pillow raises OSError, ValueError, SyntaxError, struct.error on odd files
        raise UnreadableMedicalImageError(f"{path} is not a readable image file: {error}") from error

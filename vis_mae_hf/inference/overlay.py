"""A picture a person can check a segmentation with: the image in grey, classes in translucent colour, a legend.

The image keeps its pixel size and position (top-left of the picture, no resampling), so a pixel of the overlay is
a pixel of the input; the legend sits in a panel to its right and lists every class but the background (class 0,
left unpainted) with its colour, its `id2label` name and the share of the image it covers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau), cycled for models with many classes.
LABEL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (148, 103, 189),
    (140, 86, 75),
    (188, 189, 34),
    (23, 190, 207),
    (227, 119, 194),
)
OVERLAY_ALPHA = 0.45
_LEGEND_BACKGROUND = (24, 24, 24)
_LEGEND_TEXT = (240, 240, 240)
_LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as the processor uses


def label_colour(label: int) -> tuple[int, int, int]:
    """The overlay colour of class `label` (>= 1)."""
    return LABEL_COLOURS[(label - 1) % len(LABEL_COLOURS)]


def grey_display(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) in [0, 1] -> (H, W) uint8 grey (RGB by luminance), for a neutral background."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[..., :3] @ _LUMINANCE_WEIGHTS
    if image.ndim != 2:
        raise ValueError(f"An overlay needs a (H, W) or (H, W, 3) image, got shape {image.shape}.")
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def blend_labels(grey: np.ndarray, label_map: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """(H, W) uint8 grey + (H, W) class indices -> (H, W, 3) uint8, classes >= 1 tinted with `label_colour`."""
    if grey.shape != label_map.shape:
        raise ValueError(f"The label map has shape {label_map.shape} but the image has {grey.shape}.")
    rgb = np.repeat(grey[..., None].astype(np.float32), 3, axis=-1)
    for label in np.unique(label_map):
        if label == 0:
            continue
        where = label_map == label
        rgb[where] = (1.0 - alpha) * rgb[where] + alpha * np.asarray(label_colour(int(label)), dtype=np.float32)
    return np.rint(rgb).clip(0, 255).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType
    except (TypeError, OSError):
        return ImageFont.load_default()


def overlay_image(image: np.ndarray, label_map: np.ndarray, label_names: Sequence[str]) -> Image.Image:
    """The overlay picture (RGB): the blended image at its own size, and a legend panel on its right.

    Args:
        image: the input as the model saw it before normalisation, (H, W) or (H, W, 3) in [0, 1].
        label_map: (H, W) class indices.
        label_names: name of each class index (`id2label` in order).
    """
    label_map = np.asarray(label_map)
    blended = blend_labels(grey_display(image), label_map)
    height, width = label_map.shape
    font_size = int(np.clip(round(height / 28), 11, 28))
    font = _font(font_size)
    line_height = font_size + font_size // 2
    padding = font_size // 2 + 2
    swatch = font_size

    entries = []
    for label in range(1, len(label_names)):
        share = 100.0 * float(np.mean(label_map == label))
        entries.append((label, f"{label_names[label]}  {share:.1f} %"))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = max((measure.textlength(text, font=font) for _, text in entries), default=0)
    panel_width = int(padding * 3 + swatch + text_width)
    panel_height = padding * 2 + line_height * len(entries)

    canvas = Image.new("RGB", (width + panel_width, max(height, panel_height)), _LEGEND_BACKGROUND)
    canvas.paste(Image.fromarray(blended), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for row, (label, text) in enumerate(entries):
        top = padding + row * line_height
        left = width + padding
        draw.rectangle((left, top, left + swatch - 1, top + swatch - 1), fill=label_colour(label))
        draw.text((left + swatch + padding, top), text, fill=_LEGEND_TEXT, font=font)
    return canvas

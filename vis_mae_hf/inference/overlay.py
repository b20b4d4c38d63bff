"""A picture a person can check a segmentation with: the image in grey, classes in translucent colour, a legend.

Size: an image smaller than `DISPLAY_SIZE` (512 px) on its longer side is enlarged by the largest whole factor that
keeps that side within 512 px (a 215 x 96 scan by 2, to 430 x 192; a 128 x 128 one by 4; 256 px and more stay as
they are). Each input pixel becomes a square block of identical pixels (nearest neighbour: no smoothing, no new
values), so the overlay still shows the input's own pixels and the mask's own decisions, only larger. Colours are
blended at the input's resolution first, then enlarged, so a block is one pixel of the input exactly.

Legend: a panel to the right of the picture lists every class but the background (class 0, left unpainted) with
its colour, its `id2label` name and the share of the image (of the whole volume, for a mosaic) it covers. Its text
is at least `LEGEND_MIN_FONT_SIZE` (14) px high whatever the image's size; the picture is made taller than the image
when the legend needs it.

Volumes (`overlay_mosaic`): one tile per chosen slice, left to right and top to bottom, each tile enlarged like an
image (to at most `TILE_SIZE`, 256 px) and captioned in a strip above it (the caption never covers image pixels).
`mosaic_slices` chooses the slices: those in which the label map holds any class other than background, all of
them when there are at most `MAX_TILES` (16), else 16 spread evenly over them (the first and the last included);
when no slice holds a label, the middle slice alone.
"""

from __future__ import annotations

import math
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
DISPLAY_SIZE = 512  # the longer side small images are enlarged towards
TILE_SIZE = 256  # the same for each tile of a mosaic
MAX_TILES = 16
LEGEND_MIN_FONT_SIZE = 14
TILE_GAP = 4
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


def display_scale(height: int, width: int, size: int = DISPLAY_SIZE) -> int:
    """The whole factor a (height, width) image is enlarged by: the largest that keeps its longer side within
    `size`, and at least 1 (larger images keep their size)."""
    return max(1, size // max(height, width, 1))


def enlarge(pixels: np.ndarray, scale: int) -> np.ndarray:
    """Each pixel of (H, W, ...) repeated into a `scale` x `scale` block: nearest neighbour, values unchanged."""
    return pixels if scale == 1 else np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)


def blended_picture(image: np.ndarray, label_map: np.ndarray, scale: int) -> np.ndarray:
    """The blended (H * scale, W * scale, 3) uint8 picture of one image and its label map."""
    return enlarge(blend_labels(grey_display(image), np.asarray(label_map)), scale)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType
    except (TypeError, OSError):
        return ImageFont.load_default()


def legend_entries(label_map: np.ndarray, label_names: Sequence[str]) -> list[tuple[int, str]]:
    """(class, "name  share %") for every class but the background; the share is of all pixels (voxels) given."""
    label_map = np.asarray(label_map)
    entries = []
    for label in range(1, len(label_names)):
        share = 100.0 * float(np.mean(label_map == label))
        entries.append((label, f"{label_names[label]}  {share:.1f} %"))
    return entries


def _legend_panel(entries: Sequence[tuple[int, str]], picture_height: int) -> Image.Image:
    """The legend as its own picture: a swatch and a line of text per entry, text at least 14 px high."""
    font_size = int(np.clip(round(picture_height / 28), LEGEND_MIN_FONT_SIZE, 28))
    font = _font(font_size)
    line_height = font_size + font_size // 2
    padding = font_size // 2 + 2
    swatch = font_size
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = max((measure.textlength(text, font=font) for _, text in entries), default=0)
    panel = Image.new(
        "RGB", (int(padding * 3 + swatch + text_width), padding * 2 + line_height * len(entries)), _LEGEND_BACKGROUND
    )
    draw = ImageDraw.Draw(panel)
    for row, (label, text) in enumerate(entries):
        top = padding + row * line_height
        draw.rectangle((padding, top, padding + swatch - 1, top + swatch - 1), fill=label_colour(label))
        draw.text((padding * 2 + swatch, top), text, fill=_LEGEND_TEXT, font=font)
    return panel


def _with_legend(picture: np.ndarray | Image.Image, entries: Sequence[tuple[int, str]]) -> Image.Image:
    """The picture at the top left, the legend panel to its right, on the legend's background."""
    picture = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    panel = _legend_panel(entries, picture.height)
    canvas = Image.new(
        "RGB", (picture.width + panel.width, max(picture.height, panel.height)), _LEGEND_BACKGROUND
    )
    canvas.paste(picture, (0, 0))
    canvas.paste(panel, (picture.width, 0))
    return canvas


def overlay_image(image: np.ndarray, label_map: np.ndarray, label_names: Sequence[str]) -> Image.Image:
    """The overlay picture (RGB) of one image: the blended image enlarged by `display_scale`, the legend on its right.

    Args:
        image: the input as the model saw it before normalisation, (H, W) or (H, W, 3) in [0, 1].
        label_map: (H, W) class indices.
        label_names: name of each class index (`id2label` in order).
    """
    label_map = np.asarray(label_map)
    scale = display_scale(*label_map.shape[:2])
    return _with_legend(blended_picture(image, label_map, scale), legend_entries(label_map, label_names))


def mosaic_slices(label_map: np.ndarray, axis: int, max_tiles: int = MAX_TILES) -> list[int]:
    """The slices along `axis` a mosaic shows (see the module docstring), in increasing order."""
    label_map = np.asarray(label_map)
    other_axes = tuple(dim for dim in range(label_map.ndim) if dim != axis)
    labelled = np.flatnonzero(np.any(label_map > 0, axis=other_axes))
    if labelled.size == 0:
        return [label_map.shape[axis] // 2]
    if labelled.size <= max_tiles:
        return labelled.tolist()
    spread = np.rint(np.linspace(0, labelled.size - 1, max_tiles)).astype(int)
    return sorted(set(labelled[spread].tolist()))


def overlay_mosaic(
    tiles: Sequence[tuple[np.ndarray, np.ndarray, str]], label_names: Sequence[str], legend_label_map: np.ndarray
) -> Image.Image:
    """The overlay picture of several slices: captioned tiles in a near-square grid, one legend for all.

    Args:
        tiles: (image (H, W) in [0, 1], label map (H, W), caption) per tile, all of one size.
        label_names: name of each class index.
        legend_label_map: what the legend's shares are counted over (the whole label volume).
    """
    if not tiles:
        raise ValueError("A mosaic needs at least one tile.")
    height, width = np.asarray(tiles[0][1]).shape[:2]
    scale = display_scale(height, width, TILE_SIZE)
    caption_size = int(np.clip(round(height * scale / 12), 12, 20))
    caption_font = _font(caption_size)
    strip = caption_size + 6
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    cell_width, cell_height = width * scale + TILE_GAP, strip + height * scale + TILE_GAP
    mosaic = Image.new("RGB", (columns * cell_width - TILE_GAP, rows * cell_height - TILE_GAP), _LEGEND_BACKGROUND)
    draw = ImageDraw.Draw(mosaic)
    for position, (image, label_map, caption) in enumerate(tiles):
        if np.asarray(label_map).shape[:2] != (height, width):
            raise ValueError(f"Mosaic tiles must share one size: {np.asarray(label_map).shape} != {(height, width)}.")
        left, top = (position % columns) * cell_width, (position // columns) * cell_height
        draw.text((left + 2, top + 3), caption, fill=_LEGEND_TEXT, font=caption_font)
        mosaic.paste(Image.fromarray(blended_picture(image, label_map, scale)), (left, top + strip))
    return _with_legend(mosaic, legend_entries(legend_label_map, label_names))

"""Training augmentation of the published fine-tuning recipes, on processed tensors, without torchvision.

Segmentation (Swin-Unet's recipe, which VIS-MAE fine-tuning used): with probability 1/2 a random multiple of 90
degrees and a random flip; otherwise, with probability 1/2, a random rotation in [-20, 20] degrees; then a mild random
affine (scale and translation). Image and mask always receive the *same* geometric transform; the mask is sampled by
nearest neighbour so class indices are never blended.

Classification: horizontal flip, rotation up to 20 degrees, a random affine (translation and scale) and a random
crop-and-resize, composed into one affine map so that each image is resampled once.

Everything works on channels-first float tensors (C, H, W) as the image processor returns them, and integer masks
(H, W). Pixels brought in from outside the image are `fill_value` in the image (0: the minimum after min-max
scaling, black for [0, 1] pixels) and `mask_fill_value` in the mask (0: background, as the published
`scipy.ndimage.rotate(..., cval=0)`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _coin(probability: float, generator: torch.Generator | None) -> bool:
    return float(torch.rand((), generator=generator)) < probability


def affine_matrix(
    rotation_degrees: float = 0.0,
    scale: float = 1.0,
    translate: tuple[float, float] = (0.0, 0.0),
    horizontal_flip: bool = False,
) -> torch.Tensor:
    """2x3 matrix mapping *output* to *input* coordinates in `affine_grid`'s normalised [-1, 1] space.

    The output centre shows the input point `-translate` (x then y, in normalised input units: 1 is half the image),
    and around it the input rotated by `rotation_degrees`, magnified by `scale` (> 1 zooms in, which is what a
    crop-and-resize does) and mirrored left-right when `horizontal_flip`.
    """
    angle = math.radians(rotation_degrees)
    cosine, sine = math.cos(angle) / scale, math.sin(angle) / scale
    flip = -1.0 if horizontal_flip else 1.0
    # Rows: x_in = (cos * x_out * flip - sin * y_out) - tx, y_in = (sin * x_out * flip + cos * y_out) - ty.
    return torch.tensor(
        [[cosine * flip, -sine, -translate[0]], [sine * flip, cosine, -translate[1]]], dtype=torch.float32
    )


def warp(
    pixel_values: torch.Tensor,
    matrix: torch.Tensor,
    labels: torch.Tensor | None = None,
    fill_value: float = 0.0,
    mask_fill_value: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resample an image (C, H, W) bilinearly and its mask (H, W) by nearest neighbour with one affine `matrix`."""
    channels, height, width = pixel_values.shape
    grid = F.affine_grid(matrix[None].to(pixel_values.dtype), [1, channels, height, width], align_corners=False)
    # Shift by the fill value so that grid_sample's zero padding becomes `fill_value`.
    warped = F.grid_sample(
        pixel_values[None] - fill_value, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    warped = warped[0] + fill_value
    warped_labels = None
    if labels is not None:
        if tuple(labels.shape) != (height, width):
            raise ValueError(
                f"The mask has shape {tuple(labels.shape)} but its image is {height}x{width}: they must match."
            )
        # Offset by one so that out-of-image pixels (zeros from the padding) are told apart from class 0.
        shifted = (labels.to(torch.float32) + 1.0)[None, None]
        sampled = F.grid_sample(
            shifted, grid.to(torch.float32), mode="nearest", padding_mode="zeros", align_corners=False
        )
        sampled = sampled[0, 0].round().to(labels.dtype) - 1
        warped_labels = torch.where(sampled < 0, torch.full_like(sampled, mask_fill_value), sampled)
    return warped, warped_labels


@dataclass
class SegmentationAugmentation:
    """The segmentation recipe (see the module docstring). Call with `(pixel_values, labels, generator=None)`.

    Args:
        rot90_flip_probability: chance of a random k x 90 degrees rotation plus a random flip (published 0.5).
        rotation_probability: chance, when no rot90/flip was drawn, of a random rotation (published 0.5).
        max_rotation_degrees: rotations are uniform in [-max, max] (published 20).
        affine_probability: chance of the scale/translation affine afterwards.
        scale_range: zoom factor range of the affine.
        max_translate: largest shift of the affine, as a fraction of the image size.
    """

    rot90_flip_probability: float = 0.5
    rotation_probability: float = 0.5
    max_rotation_degrees: float = 20.0
    affine_probability: float = 0.5
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_translate: float = 0.05
    fill_value: float = 0.0
    mask_fill_value: int = 0

    def __call__(
        self, pixel_values: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(labels.shape) != tuple(pixel_values.shape[-2:]):
            raise ValueError(
                f"The mask has shape {tuple(labels.shape)} but its image is {tuple(pixel_values.shape[-2:])}: "
                "they must match."
            )
        rotation = 0.0
        if _coin(self.rot90_flip_probability, generator):
            # Exact pixel permutations: no resampling, for image and mask alike. Square inputs keep their size.
            turns = int(torch.randint(0, 4, (), generator=generator))
            axis = int(torch.randint(0, 2, (), generator=generator))
            if pixel_values.shape[-1] != pixel_values.shape[-2]:
                turns = 2 * (turns % 2)  # quarter turns would swap height and width
            pixel_values = torch.flip(torch.rot90(pixel_values, turns, dims=(-2, -1)), dims=(-2 + axis,))
            labels = torch.flip(torch.rot90(labels, turns, dims=(-2, -1)), dims=(-2 + axis,))
        elif _coin(self.rotation_probability, generator):
            rotation = _uniform(-self.max_rotation_degrees, self.max_rotation_degrees, generator)
        scale, translate = 1.0, (0.0, 0.0)
        if _coin(self.affine_probability, generator):
            scale = _uniform(*self.scale_range, generator)
            translate = (
                2 * _uniform(-self.max_translate, self.max_translate, generator),
                2 * _uniform(-self.max_translate, self.max_translate, generator),
            )
        if rotation == 0.0 and scale == 1.0 and translate == (0.0, 0.0):
            return pixel_values, labels
        matrix = affine_matrix(rotation, scale, translate)
        warped, warped_labels = warp(pixel_values, matrix, labels, self.fill_value, self.mask_fill_value)
        return warped, warped_labels


@dataclass
class ClassificationAugmentation:
    """The classification recipe (see the module docstring). Call with `(pixel_values, generator=None)`.

    Args:
        flip_probability: chance of a horizontal flip.
        max_rotation_degrees: rotation uniform in [-max, max] (published 20).
        max_translate: affine shift, fraction of the image size.
        scale_range: affine zoom range.
        crop_scale_range: area fraction kept by the random crop (resized back to the full size).
    """

    flip_probability: float = 0.5
    max_rotation_degrees: float = 20.0
    max_translate: float = 0.1
    scale_range: tuple[float, float] = (0.9, 1.1)
    crop_scale_range: tuple[float, float] = (0.8, 1.0)
    fill_value: float = 0.0

    def __call__(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        flip = _coin(self.flip_probability, generator)
        rotation = _uniform(-self.max_rotation_degrees, self.max_rotation_degrees, generator)
        # A crop keeping a fraction `a` of the area, resized back, magnifies by 1 / sqrt(a); its centre may sit
        # anywhere that keeps the crop inside the image.
        crop_area = _uniform(*self.crop_scale_range, generator)
        crop_zoom = 1.0 / math.sqrt(crop_area)
        crop_room = 1.0 - 1.0 / crop_zoom
        crop_centre = (_uniform(-crop_room, crop_room, generator), _uniform(-crop_room, crop_room, generator))
        zoom = crop_zoom * _uniform(*self.scale_range, generator)
        translate = (
            2 * _uniform(-self.max_translate, self.max_translate, generator) - crop_centre[0],
            2 * _uniform(-self.max_translate, self.max_translate, generator) - crop_centre[1],
        )
        warped, _ = warp(pixel_values, affine_matrix(rotation, zoom, translate, flip), fill_value=self.fill_value)
        return warped


__all__ = [
    "ClassificationAugmentation",
    "SegmentationAugmentation",
]

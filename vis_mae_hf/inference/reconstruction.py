"""A picture of what a pretrained VIS-MAE does: input, masked input, reconstruction, reconstruction + visible."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

COLUMN_TITLES = ("input", "masked input", "reconstruction", "reconstruction + visible")


def _to_display(pixels: torch.Tensor, mean: float, std: float) -> np.ndarray:
    """(C, H, W) normalised -> (H, W, 3) uint8."""
    values = (pixels.float() * std + mean).clamp(0, 1)
    if values.shape[0] == 1:
        values = values.expand(3, -1, -1)
    return (values.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


@torch.no_grad()
def reconstruction_grid(model, pixel_values: torch.Tensor, noise: torch.Tensor, mean: float, std: float) -> Image.Image:
    """One row per image. `pixel_values` normalised as the model was trained; `noise` fixes the masks."""
    was_training = model.training
    model.eval()
    output = model(pixel_values, noise=noise)
    model.train(was_training)
    batch, channels, height, width = pixel_values.shape
    reconstruction = model.unpatchify(output.logits, height, width)
    patch = model.config.patch_size
    token_mask = output.mask.view(batch, 1, height // patch, width // patch).float()
    pixel_mask = token_mask.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)  # 1 = masked
    grey = torch.full_like(pixel_values, (0.5 - mean) / std)
    masked_input = pixel_values * (1 - pixel_mask) + grey * pixel_mask
    pasted = pixel_values * (1 - pixel_mask) + reconstruction * pixel_mask

    title_height, gap = 18, 4
    canvas = Image.new("RGB", (4 * width + 3 * gap, title_height + batch * (height + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(COLUMN_TITLES):
        draw.text((column * (width + gap) + 4, 3), title, fill="black")
    for row in range(batch):
        for column, tensor in enumerate((pixel_values, masked_input, reconstruction, pasted)):
            tile = Image.fromarray(_to_display(tensor[row], mean, std))
            canvas.paste(tile, (column * (width + gap), title_height + row * (height + gap)))
    return canvas

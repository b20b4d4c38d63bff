"""A picture of what a pretrained VIS-MAE does: input, masked input, reconstruction, reconstruction + visible.

`reconstruction_grid` draws it for processed images and given mask noise (the pretraining run's picture);
`MaskedReconstruction` loads a pretraining checkpoint with its processor and draws it for one image in [0, 1] under
the mask a seed gives (the demo page), so the same seed shows the same mask again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from transformers import AutoImageProcessor

from ..image_processing_vis_mae import PRETRAINING_MEAN, PRETRAINING_STD
from ..modeling_vis_mae import VisMaeForPreTraining
from .predictor import (
    CONFIG_ERRORS,
    PredictorLoadError,
    checkpoint_config,
    load_whole_model,
)

PRETRAINING_ARCHITECTURE = "VisMaeForPreTraining"

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


def is_pretraining_checkpoint(config) -> bool:
    """Whether a model config describes a pretraining (masked-autoencoder) checkpoint."""
    return PRETRAINING_ARCHITECTURE in (getattr(config, "architectures", None) or [])


class MaskedReconstruction:
    """A pretraining checkpoint, its image processor and a device: the reconstruction picture of one image.

    Args:
        model: a `VisMaeForPreTraining`.
        image_processor: the processor saved with it (pretraining normalisation).
        device: where the model runs; default CUDA when available.
    """

    def __init__(self, model: VisMaeForPreTraining, image_processor, *, device: str | torch.device | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.image_processor = image_processor

    @classmethod
    def from_pretrained(cls, name: str | Path, *, device=None, **from_pretrained_kwargs) -> MaskedReconstruction:
        """Load a whole pretraining checkpoint and its processor (a folder or a Hub repo id); `PredictorLoadError`
        naming it for anything else (a fine-tuned model, missing or damaged weights, no processor)."""
        name = str(name)
        config = checkpoint_config(name, from_pretrained_kwargs)
        if not is_pretraining_checkpoint(config):
            raise PredictorLoadError(
                f"{name} holds a {', '.join(config.architectures or [config.model_type])} checkpoint, not a "
                f"{PRETRAINING_ARCHITECTURE}: reconstructions need a pretraining checkpoint."
            )
        try:
            image_processor = AutoImageProcessor.from_pretrained(name, **from_pretrained_kwargs)
        except CONFIG_ERRORS as error:
            raise PredictorLoadError(
                f"{name} has no usable image processor ({error}); save the processor of the pretraining run with it."
            ) from error
        model = load_whole_model(name, config, VisMaeForPreTraining, from_pretrained_kwargs)
        return cls(model, image_processor, device=device)

    def mask_noise(self, height: int, width: int, seed: int) -> torch.Tensor:
        """The (1, mask units) noise that decides the mask of a `height` x `width` input under `seed`."""
        unit = self.model.config.mask_unit_size
        generator = torch.Generator().manual_seed(int(seed))
        return torch.rand((1, (height // unit) * (width // unit)), generator=generator)

    def picture(self, image: np.ndarray, seed: int) -> Image.Image:
        """Input, masked input, reconstruction and reconstruction + visible of one (H, W) or (H, W, 3) image in
        [0, 1], at the processor's size, the mask drawn from `seed`."""
        inputs = self.image_processor(images=[image], return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device, dtype=self.model.dtype)
        noise = self.mask_noise(*pixel_values.shape[-2:], seed).to(self.device)
        return reconstruction_grid(self.model, pixel_values, noise, PRETRAINING_MEAN, PRETRAINING_STD)
